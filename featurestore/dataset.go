package featurestore

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The interchange format is a folder of JSON Lines files, one record per
// line (see docs/featurestore.md). tools.jsonl and capabilities.jsonl are
// required; experiences.jsonl and queries.jsonl may be absent.
const (
	ToolsFile        = "tools.jsonl"
	CapabilitiesFile = "capabilities.jsonl"
	ExperiencesFile  = "experiences.jsonl"
	QueriesFile      = "queries.jsonl"
)

// maxLineBytes bounds one JSON line; longer lines are reported, not read.
const maxLineBytes = 16 << 20

// ReadDir reads a dataset in the interchange format from dir and validates
// it (Config.Validate). Files are read line by line, never whole. Every bad
// line is reported, as a ValidationErrors of *RecordError with File and
// Line set, and then no dataset is returned: bad JSON, fields the format
// does not have (decoding is strict, so a misspelt field is an error rather
// than silently dropped), a timestamp that is not RFC 3339, and everything
// Validate checks. Blank lines are skipped. A missing required file is an
// error wrapping fs.ErrNotExist.
func ReadDir(ctx context.Context, dir string, cfg Config) (*Dataset, error) {
	var (
		d    Dataset
		errs ValidationErrors
		// lines[kind][i] is the line of the i-th record of that kind.
		lines = map[string][]int{}
		skip  = unreadable{tools: map[string]bool{}, caps: map[string]bool{}}
	)
	files := []struct {
		name     string
		kind     string
		required bool
		decode   func(dec *json.Decoder) error
	}{
		{ToolsFile, kindTool, true, func(dec *json.Decoder) error { return decodeInto(dec, &d.Tools) }},
		{CapabilitiesFile, kindCapability, true, func(dec *json.Decoder) error { return decodeInto(dec, &d.Capabilities) }},
		{ExperiencesFile, kindExperience, false, func(dec *json.Decoder) error { return decodeInto(dec, &d.Experiences) }},
		{QueriesFile, kindQuery, false, func(dec *json.Decoder) error { return decodeInto(dec, &d.Queries) }},
	}
	paths := map[string]string{}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		paths[f.kind] = path
		fileErrs, err := readLines(ctx, path, f.kind, func(line int, data []byte) error {
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := f.decode(dec); err != nil {
				if id := recoverID(data); id != "" && f.kind == kindTool {
					skip.tools[id] = true
				} else if id != "" && f.kind == kindCapability {
					skip.caps[id] = true
				}
				return err
			}
			lines[f.kind] = append(lines[f.kind], line)
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) && !f.required {
			continue
		}
		if err != nil {
			return nil, err
		}
		errs = append(errs, fileErrs...)
	}
	for i := range d.Experiences {
		normalizeExperience(&d.Experiences[i])
	}

	for _, ie := range cfg.validate(&d, skip) {
		e := ie.err
		e.File = paths[e.Kind]
		if ls := lines[e.Kind]; ie.index < len(ls) {
			e.Line = ls[ie.index]
			if e.Kind == kindExperience {
				e.ID = "" // the "#index" name is redundant beside file:line
			}
		}
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		order := map[string]int{kindTool: 0, kindCapability: 1, kindExperience: 2, kindQuery: 3}
		slices.SortStableFunc(errs, func(a, b *RecordError) int {
			return cmp.Or(cmp.Compare(order[a.Kind], order[b.Kind]), cmp.Compare(a.Line, b.Line))
		})
		return nil, errs
	}
	return &d, nil
}

// decodeInto decodes exactly one JSON value from dec and appends it to s.
func decodeInto[T any](dec *json.Decoder, s *[]T) error {
	var v T
	if err := dec.Decode(&v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one JSON value on the line")
	}
	*s = append(*s, v)
	return nil
}

// recoverID returns the top-level "id" of a line that failed to decode, if
// it can be read before whatever is wrong with the line.
func recoverID(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return ""
		}
		if key == "id" {
			if id, err := dec.Token(); err == nil {
				s, _ := id.(string)
				return s
			}
			return ""
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

// normalizeExperience makes empty lists nil so that "[]" and a missing list
// read the same.
func normalizeExperience(e *Experience) {
	if len(e.ContextTools) == 0 {
		e.ContextTools = nil
	}
	if len(e.CandidateIDs) == 0 {
		e.CandidateIDs = nil
	}
}

// readLines calls fn for each non-blank line of path, turning fn's errors
// into RecordErrors at that line. The returned error is for failures that
// stop the reading (the file cannot be opened or read, ctx is done).
func readLines(ctx context.Context, path, kind string, fn func(line int, data []byte) error) (ValidationErrors, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("featurestore: read dataset: %w", err)
	}
	defer f.Close()
	var errs ValidationErrors
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		if line%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		data := bytes.TrimSpace(sc.Bytes())
		if len(data) == 0 {
			continue
		}
		if err := fn(line, data); err != nil {
			field, reason := jsonReason(err)
			errs = append(errs, &RecordError{File: path, Line: line, Kind: kind, Field: field, Reason: reason})
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			errs = append(errs, &RecordError{File: path, Line: line + 1, Kind: kind,
				Reason: fmt.Sprintf("line is longer than %d bytes; the rest of the file was not read", maxLineBytes)})
			return errs, nil
		}
		return nil, fmt.Errorf("featurestore: read %s: %w", path, err)
	}
	return errs, nil
}

// jsonReason turns a decoding error into the field it concerns (if known)
// and a short reason.
func jsonReason(err error) (field, reason string) {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tim *time.ParseError
	switch {
	case errors.As(err, &syn):
		return "", fmt.Sprintf("bad JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		if typ.Field != "" {
			return typ.Field, fmt.Sprintf("cannot use JSON %s as %s", typ.Value, typ.Type)
		}
		return "", fmt.Sprintf("bad record: cannot use JSON %s as %s", typ.Value, typ.Type)
	case errors.As(err, &tim):
		// Only timestamps are times in the format.
		return "timestamp", "is not an RFC 3339 timestamp: " + tim.Error()
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "", "bad JSON: unexpected end of line"
	}
	// Unknown fields and trailing data: the message says which.
	return "", strings.TrimPrefix(err.Error(), "json: ")
}

// WriteDir writes d to dir in the interchange format, creating dir if
// needed. All four files are written (empty ones too, so no stale file from
// an earlier export survives); each is written to a temporary file, synced,
// and renamed into place only after all four were written, so a failure
// leaves the old files untouched. d is written as is; run Validate first if
// it may be invalid.
func WriteDir(ctx context.Context, dir string, d *Dataset) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("featurestore: write dataset: %w", err)
	}
	type file struct {
		name  string
		write func(enc *json.Encoder) error
	}
	files := []file{
		{ToolsFile, func(enc *json.Encoder) error { return encodeAll(ctx, enc, d.Tools, nil) }},
		{CapabilitiesFile, func(enc *json.Encoder) error { return encodeAll(ctx, enc, d.Capabilities, nil) }},
		{ExperiencesFile, func(enc *json.Encoder) error {
			return encodeAll(ctx, enc, d.Experiences, func(e Experience) any {
				// The format lists are [] rather than null; times are UTC.
				if e.ContextTools == nil {
					e.ContextTools = []string{}
				}
				if e.CandidateIDs == nil {
					e.CandidateIDs = []string{}
				}
				e.Timestamp = e.Timestamp.UTC()
				return e
			})
		}},
		{QueriesFile, func(enc *json.Encoder) error {
			return encodeAll(ctx, enc, d.Queries, func(q Query) any {
				if q.Timestamp != nil {
					t := q.Timestamp.UTC()
					q.Timestamp = &t
				}
				return q
			})
		}},
	}
	var temps []string
	defer func() {
		for _, t := range temps {
			os.Remove(t) // no-op once renamed
		}
	}()
	for _, f := range files {
		tmp, err := writeTemp(dir, f.name, f.write)
		if tmp != "" {
			temps = append(temps, tmp)
		}
		if err != nil {
			return fmt.Errorf("featurestore: write %s: %w", filepath.Join(dir, f.name), err)
		}
	}
	for i, f := range files {
		if err := os.Rename(temps[i], filepath.Join(dir, f.name)); err != nil {
			return fmt.Errorf("featurestore: write dataset: %w", err)
		}
	}
	return syncDir(dir)
}

func writeTemp(dir, name string, write func(enc *json.Encoder) error) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(f, 256<<10)
	enc := json.NewEncoder(w) // Encode ends each record with "\n"
	enc.SetEscapeHTML(false)
	err = write(enc)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return f.Name(), err
}

// encodeAll writes one line per item, through conv when it is not nil.
func encodeAll[T any](ctx context.Context, enc *json.Encoder, items []T, conv func(T) any) error {
	for i, it := range items {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var v any = it
		if conv != nil {
			v = conv(it)
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}

// syncDir makes the renames durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("featurestore: write dataset: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("featurestore: write dataset: sync %s: %w", dir, err)
	}
	return nil
}
