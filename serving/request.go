package serving

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/capflow/capflow/featurestore"
)

// Limits bound what one request may ask for. Zero fields take the defaults.
type Limits struct {
	MaxBodyBytes    int64 // request body (default 1 MiB)
	MaxCandidates   int   // candidate_ids, exclude_ids, top_k, a feedback's candidate_ids (default 5,000)
	MaxTextBytes    int   // intent, session_id and every id (default 8,192)
	MaxContextTools int   // context_tools and require_tools (default 256)
	MaxBoosts       int   // boost rules (default 64)
}

func (l Limits) withDefaults() Limits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = 1 << 20
	}
	if l.MaxCandidates <= 0 {
		l.MaxCandidates = 5000
	}
	if l.MaxTextBytes <= 0 {
		l.MaxTextBytes = 8192
	}
	if l.MaxContextTools <= 0 {
		l.MaxContextTools = 256
	}
	if l.MaxBoosts <= 0 {
		l.MaxBoosts = 64
	}
	return l
}

// DefaultTopK is the number of rankings returned when top_k is absent.
const DefaultTopK = 10

// Error codes of APIError. A client branches on the code; the message is
// for people.
const (
	CodeInvalidJSON      = "invalid_json"       // not JSON, truncated, trailing data
	CodeUnknownField     = "unknown_field"      // a field the route does not take
	CodeInvalidField     = "invalid_field"      // wrong type, out of range, missing, not finite
	CodeBodyTooLarge     = "body_too_large"     // over Limits.MaxBodyBytes
	CodeLimitExceeded    = "limit_exceeded"     // too many candidates, too long a text
	CodeUnknownID        = "unknown_id"         // a capability or tool id the model or store does not have
	CodeWrongDimension   = "wrong_dimension"    // intent_embedding of the wrong length
	CodeUnauthorized     = "unauthorized"       // missing or wrong bearer token
	CodeNotReady         = "not_ready"          // no model loaded yet
	CodeNotFound         = "not_found"          // no such route
	CodeMethodNotAllowed = "method_not_allowed" // route exists, method does not
	CodeTimeout          = "timeout"            // the request's deadline passed
	CodeUnavailable      = "unavailable"        // a dependency (store, encoder, reload) failed
	CodeInternal         = "internal"           // a bug; logged
)

// APIError is the JSON body of every error response: {code, field, message}.
// Field names the offending request field as a JSON path
// ("candidate_ids[3]", "boosts[0].score") when one is to blame.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return e.Code + ": " + e.Message
}

func badField(code, field, format string, args ...any) *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: code, Field: field, Message: field + " " + fmt.Sprintf(format, args...)}
}

// RankRequest is the body of POST /rank.
type RankRequest struct {
	// Intent is the user's request as text; it is encoded by the server's
	// encoder unless IntentEmbedding is given, and feeds the lexical
	// evidence either way.
	Intent string `json:"intent,omitempty"`
	// IntentEmbedding, when given, is used instead of encoding Intent: the
	// model's dimension, finite; it is scaled to unit norm.
	IntentEmbedding []float32 `json:"intent_embedding,omitempty"`
	ContextTools    []string  `json:"context_tools,omitempty"`
	// CandidateIDs are the capabilities to rank; absent, the feature
	// store's ANN index over text embeddings proposes them.
	CandidateIDs []string `json:"candidate_ids,omitempty"`
	SessionID    string   `json:"session_id,omitempty"` // canary routing is sticky per session
	TopK         int      `json:"top_k,omitempty"`      // default DefaultTopK
	MinScore     *float64 `json:"min_score,omitempty"`  // drop final scores below
	Filters      *Filters `json:"filters,omitempty"`
	Boosts       []Boost  `json:"boosts,omitempty"`
}

// Filters are business rules applied to the candidates before scoring.
type Filters struct {
	ExcludeIDs []string `json:"exclude_ids,omitempty"` // never return these
	// RequireTools keeps only capabilities containing every listed tool,
	// directly or through member capabilities.
	RequireTools []string `json:"require_tools,omitempty"`
}

// Boost adds Score to the model score of every ranked capability listed in
// CapabilityIDs or whose id starts with IDPrefix. Capabilities have no tags;
// id lists and id prefixes (ids are often namespaced, "travel.") stand in
// for them. Boosts add up; rankings are re-sorted on the boosted score.
type Boost struct {
	CapabilityIDs []string `json:"capability_ids,omitempty"`
	IDPrefix      string   `json:"id_prefix,omitempty"`
	Score         float64  `json:"score"`
}

func (b *Boost) matches(id string, set map[string]bool) bool {
	return set[id] || b.IDPrefix != "" && strings.HasPrefix(id, b.IDPrefix)
}

// DecodeRankRequest reads and checks a /rank body: JSON with no unknown
// fields and nothing after it, within lim. What needs the model (the
// embedding's dimension, whether ids exist) is checked later. The error is
// always an *APIError with a 4xx status.
//
// The body is read whole and its usual shape decoded by decodeRankFast,
// three times faster than encoding/json on the 1,000-id, 1,024-float
// bodies of /rank. A body the fast path does not take, or whose request
// fails validation, is decoded again by encoding/json, which so decides
// every refusal: the errors are encoding/json's, as they always were.
func DecodeRankRequest(body io.Reader, lim Limits) (*RankRequest, error) {
	lim = lim.withDefaults()
	data, readErr := readBody(body)
	if readErr == nil {
		var r RankRequest
		if decodeRankFast(data, &r) && r.validate(lim) == nil {
			return &r, nil
		}
	}
	var r RankRequest
	if err := decodeJSON(replay(data, readErr), &r); err != nil {
		return nil, err
	}
	if err := r.validate(lim); err != nil {
		return nil, err
	}
	return &r, nil
}

// readBody reads all of body. Its first buffer holds a 1,024-d embedding
// and 1,000 candidate ids in one allocation where io.ReadAll's growth
// makes fifteen.
func readBody(body io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(32 << 10)
	_, err := buf.ReadFrom(body)
	return buf.Bytes(), err
}

// replay gives the bytes read and then the read's error, the stream the
// body gave, so the streaming decoder sees what it would have seen
// reading the body itself (a syntax error before the size limit is still
// a syntax error).
func replay(data []byte, err error) io.Reader {
	if err == nil {
		return bytes.NewReader(data)
	}
	return io.MultiReader(bytes.NewReader(data), errReader{err})
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func (r *RankRequest) validate(lim Limits) *APIError {
	if r.Intent == "" && r.IntentEmbedding == nil {
		return badField(CodeInvalidField, "intent", "is required (or intent_embedding)")
	}
	if err := checkText("intent", r.Intent, lim, false); err != nil {
		return err
	}
	if r.IntentEmbedding != nil {
		if len(r.IntentEmbedding) == 0 {
			return badField(CodeWrongDimension, "intent_embedding", "is empty")
		}
		for i, x := range r.IntentEmbedding {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return badField(CodeInvalidField, fmt.Sprintf("intent_embedding[%d]", i), "is %v, want a finite number", x)
			}
		}
	}
	if err := checkIDs("context_tools", r.ContextTools, lim.MaxContextTools, lim, false); err != nil {
		return err
	}
	if r.CandidateIDs != nil {
		if len(r.CandidateIDs) == 0 {
			return badField(CodeInvalidField, "candidate_ids", "is empty; omit it to rank the ANN index's candidates")
		}
		if err := checkIDs("candidate_ids", r.CandidateIDs, lim.MaxCandidates, lim, true); err != nil {
			return err
		}
	}
	if err := checkText("session_id", r.SessionID, lim, false); err != nil {
		return err
	}
	switch {
	case r.TopK < 0:
		return badField(CodeInvalidField, "top_k", "is %d, want ≥ 1 (absent: %d)", r.TopK, DefaultTopK)
	case r.TopK > lim.MaxCandidates:
		return &APIError{Status: http.StatusBadRequest, Code: CodeLimitExceeded, Field: "top_k",
			Message: fmt.Sprintf("top_k is %d, the limit is %d", r.TopK, lim.MaxCandidates)}
	}
	if r.MinScore != nil && (math.IsNaN(*r.MinScore) || math.IsInf(*r.MinScore, 0)) {
		return badField(CodeInvalidField, "min_score", "is not finite")
	}
	if f := r.Filters; f != nil {
		if err := checkIDs("filters.exclude_ids", f.ExcludeIDs, lim.MaxCandidates, lim, false); err != nil {
			return err
		}
		if err := checkIDs("filters.require_tools", f.RequireTools, lim.MaxContextTools, lim, false); err != nil {
			return err
		}
	}
	if len(r.Boosts) > lim.MaxBoosts {
		return &APIError{Status: http.StatusBadRequest, Code: CodeLimitExceeded, Field: "boosts",
			Message: fmt.Sprintf("boosts has %d rules, the limit is %d", len(r.Boosts), lim.MaxBoosts)}
	}
	for i, b := range r.Boosts {
		field := fmt.Sprintf("boosts[%d]", i)
		if len(b.CapabilityIDs) == 0 && b.IDPrefix == "" {
			return badField(CodeInvalidField, field, "needs capability_ids or id_prefix")
		}
		if err := checkIDs(field+".capability_ids", b.CapabilityIDs, lim.MaxCandidates, lim, false); err != nil {
			return err
		}
		if err := checkText(field+".id_prefix", b.IDPrefix, lim, false); err != nil {
			return err
		}
		if math.IsNaN(b.Score) || math.IsInf(b.Score, 0) {
			return badField(CodeInvalidField, field+".score", "is not finite")
		}
	}
	return nil
}

// checkText bounds a text field; JSON decoding already replaced invalid
// UTF-8, the check stays for callers building requests in Go.
func checkText(field, s string, lim Limits, required bool) *APIError {
	if textFine(s, lim, required) {
		return nil
	}
	switch {
	case s == "" && required:
		return badField(CodeInvalidField, field, "is empty")
	case len(s) > lim.MaxTextBytes:
		return &APIError{Status: http.StatusBadRequest, Code: CodeLimitExceeded, Field: field,
			Message: fmt.Sprintf("%s is %d bytes, the limit is %d", field, len(s), lim.MaxTextBytes)}
	case !utf8.ValidString(s):
		return badField(CodeInvalidField, field, "is not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return badField(CodeInvalidField, field, "contains a NUL byte")
	}
	return nil
}

// textFine is checkText's test without the error.
func textFine(s string, lim Limits, required bool) bool {
	return (s != "" || !required) && len(s) <= lim.MaxTextBytes && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// checkIDs bounds a list of ids; distinct says repeats are an error.
func checkIDs(field string, ids []string, max int, lim Limits, distinct bool) *APIError {
	if len(ids) > max {
		return &APIError{Status: http.StatusBadRequest, Code: CodeLimitExceeded, Field: field,
			Message: fmt.Sprintf("%s has %d ids, the limit is %d", field, len(ids), max)}
	}
	var seen map[string]struct{}
	if distinct {
		seen = make(map[string]struct{}, len(ids))
	}
	// The element's name is built only for an error: a thousand ids are
	// checked on every /rank.
	item := func(i int) string { return field + "[" + strconv.Itoa(i) + "]" }
	for i, id := range ids {
		if !textFine(id, lim, true) {
			return checkText(item(i), id, lim, true)
		}
		if distinct {
			// One map operation per id: a repeat does not grow the set.
			n := len(seen)
			if seen[id] = struct{}{}; len(seen) == n {
				return badField(CodeInvalidField, item(i), "repeats %q", id)
			}
		}
	}
	return nil
}

// DecodeFeedback reads and checks the shape of a /feedback body, a
// featurestore.Experience: JSON with no unknown fields, within lim; a
// missing timestamp becomes now. Whether its ids exist is checked against
// the store by the handler (featurestore.Config.CheckExperiences).
func DecodeFeedback(body io.Reader, lim Limits, now time.Time) (*featurestore.Experience, error) {
	lim = lim.withDefaults()
	var e featurestore.Experience
	if err := decodeJSON(body, &e); err != nil {
		return nil, err
	}
	if len(e.CandidateIDs) > lim.MaxCandidates {
		return nil, &APIError{Status: http.StatusBadRequest, Code: CodeLimitExceeded, Field: "candidate_ids",
			Message: fmt.Sprintf("candidate_ids has %d ids, the limit is %d", len(e.CandidateIDs), lim.MaxCandidates)}
	}
	if len(e.ContextTools) > lim.MaxContextTools {
		return nil, &APIError{Status: http.StatusBadRequest, Code: CodeLimitExceeded, Field: "context_tools",
			Message: fmt.Sprintf("context_tools has %d ids, the limit is %d", len(e.ContextTools), lim.MaxContextTools)}
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = now
	}
	return &e, nil
}

// feedbackError turns featurestore's validation errors into an APIError
// naming the first bad field and listing every reason.
func feedbackError(err error) *APIError {
	var ve featurestore.ValidationErrors
	if !errors.As(err, &ve) || len(ve) == 0 {
		return &APIError{Status: http.StatusBadRequest, Code: CodeInvalidField, Message: err.Error()}
	}
	code := CodeInvalidField
	if strings.HasPrefix(ve[0].Reason, "unknown ") {
		code = CodeUnknownID
	}
	if strings.Contains(ve[0].Reason, "longer than the limit") {
		code = CodeLimitExceeded
	}
	msgs := make([]string, len(ve))
	for i, e := range ve {
		msgs[i] = e.Field + " " + e.Reason
	}
	return &APIError{Status: http.StatusBadRequest, Code: code, Field: ve[0].Field, Message: strings.Join(msgs, "; ")}
}

// decodeJSON decodes exactly one JSON value into v, refusing unknown fields,
// and maps every failure to an APIError.
func decodeJSON(body io.Reader, v any) *APIError {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	switch _, err := dec.Token(); {
	case err == io.EOF:
		return nil
	case err == nil:
		return &APIError{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Message: "the body holds more than one JSON value"}
	default:
		if e := jsonError(err); e.Code != CodeInvalidJSON {
			return e
		}
		return &APIError{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Message: "trailing data after the JSON value"}
	}
}

func jsonError(err error) *APIError {
	var (
		maxErr   *http.MaxBytesError
		syntax   *json.SyntaxError
		typeErr  *json.UnmarshalTypeError
		parseErr *time.ParseError
	)
	bad := func(code, field, msg string) *APIError {
		return &APIError{Status: http.StatusBadRequest, Code: code, Field: field, Message: msg}
	}
	switch {
	case errors.As(err, &maxErr):
		return &APIError{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge,
			Message: fmt.Sprintf("the body is larger than %d bytes", maxErr.Limit)}
	case errors.Is(err, io.EOF):
		return bad(CodeInvalidJSON, "", "the body is empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return bad(CodeInvalidJSON, "", "the body ends in the middle of a JSON value")
	case errors.As(err, &syntax):
		return bad(CodeInvalidJSON, "", fmt.Sprintf("%v (at byte %d)", syntax, syntax.Offset))
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return bad(CodeInvalidJSON, "", fmt.Sprintf("the body is a JSON %s; want an object", typeErr.Value))
		}
		return bad(CodeInvalidField, typeErr.Field, fmt.Sprintf("%s is a JSON %s, want %s", typeErr.Field, typeErr.Value, jsonType(typeErr.Type.String())))
	case errors.As(err, &parseErr):
		// time.Time is the only parsed type in the request bodies.
		return bad(CodeInvalidField, "timestamp", "timestamp is not an RFC 3339 time: "+parseErr.Error())
	}
	msg := err.Error()
	if strings.Contains(msg, "Time.UnmarshalJSON") {
		return bad(CodeInvalidField, "timestamp", "timestamp is not an RFC 3339 time string")
	}
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		if n, err := strconv.Unquote(name); err == nil {
			name = n
		}
		return bad(CodeUnknownField, name, fmt.Sprintf("unknown field %q", name))
	}
	return bad(CodeInvalidJSON, "", strings.TrimPrefix(msg, "json: "))
}

// jsonType names a Go type the way a JSON client thinks of it.
func jsonType(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "float"):
		return "a number within float range"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case goType == "string", goType == "featurestore.Outcome":
		return "a string"
	case goType == "bool":
		return "a boolean"
	}
	return "an object"
}

// decodeRankFast decodes a /rank body into r exactly as encoding/json
// would, or returns false, leaving the body to encoding/json, when it holds
// anything outside the subset of JSON most bodies are written in: a key not
// spelt exactly, escaped or given twice, null, a number strconv refuses,
// malformed JSON. String values needing unquoting are unquoted by
// encoding/json itself (stringValue). On that subset encoding/json's result is plain: a string
// is its bytes, a number strconv's parse for the field's size
// (FuzzDecodeRankFast compares the two).
func decodeRankFast(data []byte, r *RankRequest) bool {
	s := &scanner{b: data}
	return s.object(func(key []byte) (uint, bool) {
		switch string(key) {
		case "intent":
			return 1 << 0, s.str(&r.Intent)
		case "intent_embedding":
			return 1 << 1, s.float32s(&r.IntentEmbedding)
		case "context_tools":
			return 1 << 2, s.strs(&r.ContextTools)
		case "candidate_ids":
			return 1 << 3, s.strs(&r.CandidateIDs)
		case "session_id":
			return 1 << 4, s.str(&r.SessionID)
		case "top_k":
			return 1 << 5, s.int(&r.TopK)
		case "min_score":
			r.MinScore = new(float64)
			return 1 << 6, s.float64(r.MinScore)
		case "filters":
			f := new(Filters)
			r.Filters = f
			return 1 << 7, s.object(func(key []byte) (uint, bool) {
				switch string(key) {
				case "exclude_ids":
					return 1 << 0, s.strs(&f.ExcludeIDs)
				case "require_tools":
					return 1 << 1, s.strs(&f.RequireTools)
				}
				return 0, false
			})
		case "boosts":
			r.Boosts = []Boost{}
			return 1 << 8, s.array(func() bool {
				var b Boost
				ok := s.object(func(key []byte) (uint, bool) {
					switch string(key) {
					case "capability_ids":
						return 1 << 0, s.strs(&b.CapabilityIDs)
					case "id_prefix":
						return 1 << 1, s.str(&b.IDPrefix)
					case "score":
						return 1 << 2, s.float64(&b.Score)
					}
					return 0, false
				})
				r.Boosts = append(r.Boosts, b)
				return ok
			})
		}
		return 0, false
	}) && s.end()
}

// scanner reads the JSON subset of decodeRankFast; each method returns
// false when the input leaves the subset.
type scanner struct {
	b []byte
	i int
}

// object reads an object whose values field reads; field returns a bit
// naming the key (a key seen twice is refused) and whether it read the
// value, false for a key it does not take.
func (s *scanner) object(field func(key []byte) (uint, bool)) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	var seen uint
	for {
		key, ok := s.plainString()
		if !ok || !s.next(':') {
			return false
		}
		bit, ok := field(key)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// array reads an array whose elements elem reads.
func (s *scanner) array(elem func() bool) bool {
	if !s.next('[') {
		return false
	}
	if s.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.next(']') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

func (s *scanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// next consumes c, after any white space, if it comes next.
func (s *scanner) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// plainString reads a string encoding/json hands over unchanged: no
// escapes, no control characters, valid UTF-8. It aliases s.b.
func (s *scanner) plainString() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	for j := s.i; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			v := s.b[s.i:j]
			s.i = j + 1
			return v, utf8.Valid(v)
		case c == '\\' || c < ' ':
			return nil, false
		}
	}
	return nil, false
}

func (s *scanner) str(v *string) bool {
	var ok bool
	*v, ok = s.stringValue()
	return ok
}

// stringValue reads a string value: its bytes when plain, else
// encoding/json's own unquoting of the token (escapes, invalid UTF-8), so
// the result is encoding/json's either way. Python's json.dumps escapes
// every non-ASCII character, so such intents are common.
func (s *scanner) stringValue() (string, bool) {
	start := s.i
	if b, ok := s.plainString(); ok {
		return string(b), true
	}
	s.i = start
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return "", false
	}
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '\\':
			j++ // the escaped byte does not end the string
		case c < ' ':
			return "", false // a syntax error, left to encoding/json to report
		case c == '"':
			var v string
			if json.Unmarshal(s.b[s.i:j+1], &v) != nil {
				return "", false
			}
			s.i = j + 1
			return v, true
		}
	}
	return "", false
}

// strs reads an array of plain strings; [] is an empty, non-nil slice as
// from encoding/json.
func (s *scanner) strs(v *[]string) bool {
	out := []string{}
	ok := s.array(func() bool {
		v, ok := s.stringValue()
		out = append(out, v)
		return ok
	})
	*v = out
	return ok
}

// float32s reads an array of numbers; [] is an empty, non-nil slice.
func (s *scanner) float32s(v *[]float32) bool {
	// Commas up to the first ']' are a capacity hint, nothing more.
	n := 0
	if end := bytes.IndexByte(s.b[s.i:], ']'); end > 0 {
		n = bytes.Count(s.b[s.i:s.i+end], []byte{','}) + 1
	}
	out := make([]float32, 0, n)
	ok := s.array(func() bool {
		t, ok := s.number()
		if !ok {
			return false
		}
		f, err := strconv.ParseFloat(string(t), 32)
		out = append(out, float32(f))
		return err == nil
	})
	*v = out
	return ok
}

func (s *scanner) float64(v *float64) bool {
	t, ok := s.number()
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(string(t), 64)
	*v = f
	return err == nil
}

func (s *scanner) int(v *int) bool {
	t, ok := s.number()
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(string(t), 10, 64)
	*v = int(n)
	return err == nil && int64(int(n)) == n
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() ([]byte, bool) {
	s.space()
	start := s.i
	s.skip('-')
	switch {
	case s.skip('0'):
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return nil, false
	}
	if s.skip('.') && !s.digits() {
		return nil, false
	}
	if s.skip('e') || s.skip('E') {
		if !s.skip('+') {
			s.skip('-')
		}
		if !s.digits() {
			return nil, false
		}
	}
	return s.b[start:s.i], true
}

// skip consumes c if it comes next.
func (s *scanner) skip(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// digits consumes digits and says whether there was one.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
