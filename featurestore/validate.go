package featurestore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// Validate checks d as a whole and computes every capability's Level. It
// returns ValidationErrors listing every problem, or nil.
//
// Besides checking, Validate normalises d in place, also when it returns an
// error: records repeated with identical content are collapsed to their
// first occurrence (so re-importing overlapping files is harmless),
// timestamps are converted to UTC, and each capability's Level is set (0
// when all members are tools, else 1 + the highest member capability level).
//
// The rules:
//   - tool, capability and query ids are non-empty and unique within their
//     kind (a repeat with different content is an error); a tool and a
//     capability may not share an id, since members name either.
//   - a capability has at least one member, each member is a tool or
//     capability id of d, listed once; capabilities form no cycle.
//   - names, descriptions and intents are valid UTF-8 without NUL bytes and
//     at most c.MaxTextLen bytes; tool and capability names are required,
//     descriptions are not; an input_schema, when given, is a JSON object.
//   - success_rate is in [0, 1]; avg_execution_time_ms is finite and ≥ 0.
//   - an experience's outcome is success, failure or partial; candidate_ids
//     are distinct capability ids; rank is the 1-based position of
//     selected_capability in candidate_ids; user_feedback is absent or
//     1..5; execution_time_ms is finite and ≥ 0; timestamp and session_id
//     are set; context_tools are tool ids; an intent embedding, when
//     present, has c.TextDim finite elements. Experiences have no id, so
//     their errors name them "#i", i being the 0-based index in
//     d.Experiences.
//   - a query's relevant list is non-empty and holds distinct capability
//     ids; its context_tools and calls are tool ids.
//
// Zero fields of c take their defaults (Config.WithDefaults).
func (c Config) Validate(d *Dataset) error {
	errs := c.validate(d, unreadable{})
	if len(errs) == 0 {
		return nil
	}
	out := make(ValidationErrors, len(errs))
	for i, e := range errs {
		out[i] = e.err
	}
	return out
}

// indexedError is a RecordError together with the index of the offending
// record in its (uncollapsed) slice of the dataset, so the file reader can
// map it back to a line.
type indexedError struct {
	index int
	err   *RecordError
}

const (
	kindTool       = "tool"
	kindCapability = "capability"
	kindExperience = "experience"
	kindQuery      = "query"
)

// unreadable names the tools and capabilities whose lines could not be
// decoded (but whose id could be recovered): references to them are not
// reported again as unknown ids, the bad line itself already is.
type unreadable struct {
	tools, caps map[string]bool
}

// validate does Validate's work, keeping each error's record index.
func (c Config) validate(d *Dataset, skip unreadable) []indexedError {
	c = c.WithDefaults()
	v := validator{cfg: c, skip: skip}

	toolKeep := v.checkTools(d.Tools)
	capKeep := v.checkCapabilities(d.Capabilities)
	v.checkIDClashes(d.Capabilities, capKeep)
	d.Tools = keep(d.Tools, toolKeep)
	capIndex := keptIndexes(capKeep)
	d.Capabilities = keep(d.Capabilities, capKeep)
	v.checkMembers(d.Capabilities, capIndex)
	v.computeLevels(d.Capabilities, capIndex)
	v.checkExperiences(d.Experiences)
	queryKeep := v.checkQueries(d.Queries)
	d.Queries = keep(d.Queries, queryKeep)
	return v.errs
}

type validator struct {
	cfg   Config
	errs  []indexedError
	tools map[string]bool
	caps  map[string]bool
	skip  unreadable
	// stored answers for ids outside the dataset (CheckExperiences).
	storedTool, storedCap func(id string) bool
}

func (v *validator) isTool(id string) bool {
	return v.tools[id] || v.skip.tools[id] || v.storedTool != nil && v.storedTool(id)
}

func (v *validator) isCap(id string) bool {
	return v.caps[id] || v.skip.caps[id] || v.storedCap != nil && v.storedCap(id)
}

// CheckExperiences applies Validate's experience rules to experiences
// appended to a store outside a dataset import: isTool and isCapability say
// whether an id is stored. Timestamps are converted to UTC in place. Errors
// name experiences "#i", their index in exps.
func (c Config) CheckExperiences(exps []Experience, isTool, isCapability func(id string) bool) error {
	v := validator{cfg: c.WithDefaults(), storedTool: isTool, storedCap: isCapability}
	v.checkExperiences(exps)
	if len(v.errs) == 0 {
		return nil
	}
	out := make(ValidationErrors, len(v.errs))
	for i, e := range v.errs {
		out[i] = e.err
	}
	return out
}

func (v *validator) add(index int, kind, id, field, reason string) {
	v.errs = append(v.errs, indexedError{index: index, err: &RecordError{Kind: kind, ID: id, Field: field, Reason: reason}})
}

func (v *validator) addErr(index int, e *RecordError) {
	if e != nil {
		v.errs = append(v.errs, indexedError{index: index, err: e})
	}
}

// checkText checks a free-text field; required says whether it may be empty.
func (v *validator) checkText(index int, kind, id, field, s string, required bool) {
	switch {
	case s == "" && required:
		v.add(index, kind, id, field, "is required")
	case len(s) > v.cfg.MaxTextLen:
		v.add(index, kind, id, field, fmt.Sprintf("is %d bytes, longer than the limit of %d", len(s), v.cfg.MaxTextLen))
	case !utf8.ValidString(s):
		v.add(index, kind, id, field, "is not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		v.add(index, kind, id, field, "contains a NUL byte")
	}
}

// checkID checks an id; ids follow the text rules and are required.
func (v *validator) checkID(index int, kind, id string) bool {
	n := len(v.errs)
	v.checkText(index, kind, id, "id", id, true)
	return len(v.errs) == n
}

// checkNumber checks an optional non-negative finite number; max < 0 means
// unbounded.
func (v *validator) checkNumber(index int, kind, id, field string, x float64, max float64) {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		v.add(index, kind, id, field, fmt.Sprintf("is %v, want a finite number", x))
	case x < 0:
		v.add(index, kind, id, field, fmt.Sprintf("is %v, want ≥ 0", x))
	case max >= 0 && x > max:
		v.add(index, kind, id, field, fmt.Sprintf("is %v, want ≤ %v", x, max))
	}
}

// dedup tracks first occurrences by id and reports repeats: identical ones
// are dropped (keep[i] = false), different ones are errors.
type dedup[T any] struct {
	first map[string]int
}

func (d *dedup[T]) seen(v *validator, items []T, i int, kind, id string, equal func(a, b T) bool) bool {
	if j, ok := d.first[id]; ok {
		if !equal(items[j], items[i]) {
			v.add(i, kind, id, "id", "is repeated with different content")
		}
		return true
	}
	d.first[id] = i
	return false
}

func (v *validator) checkTools(tools []Tool) []bool {
	keepIt := make([]bool, len(tools))
	v.tools = make(map[string]bool, len(tools))
	seen := dedup[Tool]{first: map[string]int{}}
	for i, t := range tools {
		if !v.checkID(i, kindTool, t.ID) {
			continue
		}
		if seen.seen(v, tools, i, kindTool, t.ID, toolsEqual) {
			continue
		}
		keepIt[i] = true
		v.tools[t.ID] = true
		v.checkText(i, kindTool, t.ID, "name", t.Name, true)
		v.checkText(i, kindTool, t.ID, "description", t.Description, false)
		if len(t.InputSchema) > 0 {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(t.InputSchema, &obj); err != nil || obj == nil {
				v.add(i, kindTool, t.ID, "input_schema", "is not a JSON object")
			}
		}
	}
	return keepIt
}

func (v *validator) checkCapabilities(caps []Capability) []bool {
	keepIt := make([]bool, len(caps))
	v.caps = make(map[string]bool, len(caps))
	seen := dedup[Capability]{first: map[string]int{}}
	for i, c := range caps {
		if !v.checkID(i, kindCapability, c.ID) {
			continue
		}
		if seen.seen(v, caps, i, kindCapability, c.ID, capabilitiesEqual) {
			continue
		}
		keepIt[i] = true
		v.caps[c.ID] = true
		v.checkText(i, kindCapability, c.ID, "name", c.Name, true)
		v.checkText(i, kindCapability, c.ID, "description", c.Description, false)
		if c.SuccessRate != nil {
			v.checkNumber(i, kindCapability, c.ID, "success_rate", *c.SuccessRate, 1)
		}
		if c.AvgExecutionTimeMs != nil {
			v.checkNumber(i, kindCapability, c.ID, "avg_execution_time_ms", *c.AvgExecutionTimeMs, -1)
		}
	}
	return keepIt
}

// checkIDClashes rejects a capability whose id is also a tool's: a member
// id must name exactly one thing.
func (v *validator) checkIDClashes(caps []Capability, capKeep []bool) {
	for i, c := range caps {
		if capKeep[i] && v.tools[c.ID] {
			v.add(i, kindCapability, c.ID, "id", "is also a tool id")
		}
	}
}

// checkMembers checks the (collapsed) capabilities' member lists; index maps
// a position in caps to the record index in the original slice.
func (v *validator) checkMembers(caps []Capability, index []int) {
	for i, c := range caps {
		if len(c.Members) == 0 {
			v.add(index[i], kindCapability, c.ID, "members", "is empty; a capability needs at least one member")
			continue
		}
		listed := make(map[string]bool, len(c.Members))
		for _, m := range c.Members {
			switch {
			case listed[m]:
				v.add(index[i], kindCapability, c.ID, "members", fmt.Sprintf("lists %q twice", m))
			case !v.isTool(m) && !v.isCap(m):
				v.add(index[i], kindCapability, c.ID, "members", fmt.Sprintf("unknown member id %q (neither a tool nor a capability)", m))
			}
			listed[m] = true
		}
	}
}

// computeLevels sets each capability's Level and reports every cycle once,
// naming its path. Members that are unknown are ignored here (checkMembers
// reports them).
func (v *validator) computeLevels(caps []Capability, index []int) {
	pos := make(map[string]int, len(caps))
	for i, c := range caps {
		pos[c.ID] = i
	}
	const (
		unvisited = iota
		onPath
		done
	)
	state := make([]int, len(caps))
	var path []int
	var visit func(i int)
	visit = func(i int) {
		state[i] = onPath
		path = append(path, i)
		level := 0
		for _, m := range caps[i].Members {
			j, ok := pos[m]
			if !ok || v.tools[m] {
				continue
			}
			switch state[j] {
			case onPath:
				start := slices.Index(path, j)
				ids := make([]string, 0, len(path)-start+1)
				for _, k := range path[start:] {
					ids = append(ids, caps[k].ID)
				}
				ids = append(ids, caps[j].ID)
				v.add(index[j], kindCapability, caps[j].ID, "members", "forms a cycle: "+strings.Join(ids, " -> "))
				continue
			case unvisited:
				visit(j)
			}
			level = max(level, caps[j].Level+1)
		}
		caps[i].Level = level
		path = path[:len(path)-1]
		state[i] = done
	}
	for i := range caps {
		if state[i] == unvisited {
			visit(i)
		}
	}
}

func (v *validator) checkExperiences(exps []Experience) {
	for i := range exps {
		e := &exps[i]
		id := fmt.Sprintf("#%d", i)
		v.checkText(i, kindExperience, id, "intent", e.Intent, true)
		v.addErr(i, checkVector(kindExperience, id, "intent_embedding", e.IntentEmbedding, v.cfg.TextDim, true))
		v.checkToolRefs(i, kindExperience, id, "context_tools", e.ContextTools)
		if len(e.CandidateIDs) == 0 {
			v.add(i, kindExperience, id, "candidate_ids", "is empty")
		}
		listed := make(map[string]bool, len(e.CandidateIDs))
		for _, c := range e.CandidateIDs {
			switch {
			case listed[c]:
				v.add(i, kindExperience, id, "candidate_ids", fmt.Sprintf("lists %q twice", c))
			case !v.isCap(c):
				v.add(i, kindExperience, id, "candidate_ids", fmt.Sprintf("unknown capability id %q", c))
			}
			listed[c] = true
		}
		switch {
		case e.SelectedCapability == "":
			v.add(i, kindExperience, id, "selected_capability", "is required")
		case !v.isCap(e.SelectedCapability):
			v.add(i, kindExperience, id, "selected_capability", fmt.Sprintf("unknown capability id %q", e.SelectedCapability))
		case len(e.CandidateIDs) == 0:
			// reported above; rank cannot be checked
		case e.Rank < 1 || e.Rank > len(e.CandidateIDs):
			v.add(i, kindExperience, id, "rank", fmt.Sprintf("is %d, want 1..%d (the 1-based position of selected_capability in candidate_ids)", e.Rank, len(e.CandidateIDs)))
		case e.CandidateIDs[e.Rank-1] != e.SelectedCapability:
			v.add(i, kindExperience, id, "rank", fmt.Sprintf("is %d but candidate_ids[%d] is %q, not selected_capability %q", e.Rank, e.Rank-1, e.CandidateIDs[e.Rank-1], e.SelectedCapability))
		}
		if !e.Outcome.Valid() {
			v.add(i, kindExperience, id, "outcome", fmt.Sprintf("is %q, want success, failure or partial", e.Outcome))
		}
		v.checkNumber(i, kindExperience, id, "execution_time_ms", e.ExecutionTimeMs, -1)
		if f := e.UserFeedback; f != nil && (*f < 1 || *f > 5) {
			v.add(i, kindExperience, id, "user_feedback", fmt.Sprintf("is %d, want 1..5", *f))
		}
		if e.Timestamp.IsZero() {
			v.add(i, kindExperience, id, "timestamp", "is required")
		}
		e.Timestamp = e.Timestamp.UTC()
		v.checkText(i, kindExperience, id, "session_id", e.SessionID, true)
	}
}

func (v *validator) checkQueries(queries []Query) []bool {
	keepIt := make([]bool, len(queries))
	seen := dedup[Query]{first: map[string]int{}}
	for i := range queries {
		q := &queries[i]
		if q.Timestamp != nil {
			t := q.Timestamp.UTC()
			q.Timestamp = &t
		}
		if !v.checkID(i, kindQuery, q.ID) {
			continue
		}
		if seen.seen(v, queries, i, kindQuery, q.ID, queriesEqual) {
			continue
		}
		keepIt[i] = true
		v.checkText(i, kindQuery, q.ID, "intent", q.Intent, true)
		v.checkToolRefs(i, kindQuery, q.ID, "context_tools", q.ContextTools)
		v.checkToolRefs(i, kindQuery, q.ID, "calls", q.Calls)
		if len(q.Relevant) == 0 {
			v.add(i, kindQuery, q.ID, "relevant", "is empty")
		}
		listed := make(map[string]bool, len(q.Relevant))
		for _, r := range q.Relevant {
			switch {
			case listed[r]:
				v.add(i, kindQuery, q.ID, "relevant", fmt.Sprintf("lists %q twice", r))
			case !v.isCap(r):
				v.add(i, kindQuery, q.ID, "relevant", fmt.Sprintf("unknown capability id %q", r))
			}
			listed[r] = true
		}
	}
	return keepIt
}

func (v *validator) checkToolRefs(index int, kind, id, field string, tools []string) {
	for _, t := range tools {
		if !v.isTool(t) {
			v.add(index, kind, id, field, fmt.Sprintf("unknown tool id %q", t))
		}
	}
}

func keep[T any](items []T, keepIt []bool) []T {
	out := items[:0:0]
	for i, it := range items {
		if keepIt[i] {
			out = append(out, it)
		}
	}
	if len(out) == len(items) {
		return items
	}
	return out
}

func keptIndexes(keepIt []bool) []int {
	var idx []int
	for i, k := range keepIt {
		if k {
			idx = append(idx, i)
		}
	}
	return idx
}

func toolsEqual(a, b Tool) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Description == b.Description && jsonEqual(a.InputSchema, b.InputSchema)
}

// jsonEqual compares two JSON texts ignoring insignificant whitespace.
func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

func capabilitiesEqual(a, b Capability) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Description == b.Description &&
		slices.Equal(a.Members, b.Members) &&
		floatPtrEqual(a.SuccessRate, b.SuccessRate) && floatPtrEqual(a.AvgExecutionTimeMs, b.AvgExecutionTimeMs)
}

func queriesEqual(a, b Query) bool {
	tsEqual := (a.Timestamp == nil) == (b.Timestamp == nil) && (a.Timestamp == nil || a.Timestamp.Equal(*b.Timestamp))
	return a.ID == b.ID && a.Intent == b.Intent && slices.Equal(a.ContextTools, b.ContextTools) &&
		slices.Equal(a.Relevant, b.Relevant) && slices.Equal(a.Calls, b.Calls) && tsEqual
}

func floatPtrEqual(a, b *float64) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}
