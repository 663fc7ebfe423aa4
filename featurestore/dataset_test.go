package featurestore

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testDatasetDir = "testdata/dataset"

func TestReadDirValid(t *testing.T) {
	d, err := ReadDir(context.Background(), testDatasetDir, Config{})
	require.NoError(t, err)
	require.Len(t, d.Tools, 3) // the blank line is skipped
	require.Len(t, d.Capabilities, 5)
	require.Len(t, d.Experiences, 2)
	require.Len(t, d.Queries, 2)

	levels := map[string]int{}
	for _, c := range d.Capabilities {
		levels[c.ID] = c.Level
	}
	assert.Equal(t, map[string]int{"web/find": 0, "web/get": 0, "text/summarize": 0, "web": 1, "research": 2}, levels)
	assert.JSONEq(t, `{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}`, string(d.Tools[0].InputSchema))
	assert.Equal(t, 0.9, *d.Capabilities[0].SuccessRate)

	e := d.Experiences[0]
	assert.Equal(t, time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC), e.Timestamp)
	assert.Equal(t, time.UTC, e.Timestamp.Location())
	assert.Equal(t, 4, *e.UserFeedback)
	assert.Nil(t, d.Experiences[1].ContextTools, "[] reads as nil")
	assert.Nil(t, d.Experiences[1].UserFeedback)
	assert.Nil(t, d.Queries[0].Timestamp)
	assert.Equal(t, []string{"fetch", "summarize"}, d.Queries[0].Calls, "calls keep their order")
	assert.Nil(t, d.Queries[1].Calls, "calls are optional")
}

func TestReadDirOptionalFilesAbsent(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join(testDatasetDir, ToolsFile), filepath.Join(dir, ToolsFile))
	copyFile(t, filepath.Join(testDatasetDir, CapabilitiesFile), filepath.Join(dir, CapabilitiesFile))
	d, err := ReadDir(context.Background(), dir, Config{})
	require.NoError(t, err)
	assert.Empty(t, d.Experiences)
	assert.Empty(t, d.Queries)
}

func TestReadDirRequiredFileAbsent(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join(testDatasetDir, ToolsFile), filepath.Join(dir, ToolsFile))
	_, err := ReadDir(context.Background(), dir, Config{})
	require.ErrorIs(t, err, fs.ErrNotExist)
}

// TestReadDirBadLines replaces or appends one line of the valid dataset per
// case and checks the one error reported: its file, line and reason.
func TestReadDirBadLines(t *testing.T) {
	cases := []struct {
		name   string
		file   string
		line   int // line to replace; 0 appends
		text   string
		atLine int
		field  string
		reason string
	}{
		{"bad JSON", ToolsFile, 2, `{"id":"fetch","name":"fetch",`, 2, "", "bad JSON"},
		{"not an object", ToolsFile, 0, `[1,2]`, 5, "", "cannot use JSON array"},
		{"two values on a line", ToolsFile, 0, `{"id":"x","name":"x"} {}`, 5, "", "more than one JSON value"},
		{"unknown field", ToolsFile, 0, `{"id":"x","name":"x","colour":"red"}`, 5, "", `unknown field "colour"`},
		{"wrong type", CapabilitiesFile, 0, `{"id":"c","name":"c","members":"search"}`, 6, "members", "cannot use JSON string"},
		{"duplicate tool id, different content", ToolsFile, 0, `{"id":"fetch","name":"fetch","description":"something else"}`, 5, "id", "repeated with different content"},
		{"duplicate capability id, different content", CapabilitiesFile, 0, `{"id":"web/get","name":"get","description":"Get pages","members":["search"]}`, 6, "id", "repeated with different content"},
		{"unknown member id", CapabilitiesFile, 2, `{"id":"web/get","name":"get","description":"Get pages","members":["fetch","curl"]}`, 2, "members", `unknown member id "curl"`},
		{"cycle", CapabilitiesFile, 1, `{"id":"web/find","name":"find","members":["search","research"]}`, 1, "members", "cycle: web/find -> research -> web -> web/find"},
		{"no members", CapabilitiesFile, 0, `{"id":"empty","name":"empty","members":[]}`, 6, "members", "at least one member"},
		{"success rate", CapabilitiesFile, 0, `{"id":"c","name":"c","members":["search"],"success_rate":2}`, 6, "success_rate", "want ≤ 1"},
		{"bad enum", ExperiencesFile, 2, `{"intent":"fetch","candidate_ids":["web/get"],"selected_capability":"web/get","rank":1,"outcome":"ok","execution_time_ms":1,"timestamp":"2026-03-01T11:01:00Z","session_id":"s1"}`, 2, "outcome", `"ok"`},
		{"bad timestamp", ExperiencesFile, 2, `{"intent":"fetch","candidate_ids":["web/get"],"selected_capability":"web/get","rank":1,"outcome":"success","execution_time_ms":1,"timestamp":"2026-03-01 11:01","session_id":"s1"}`, 2, "timestamp", "RFC 3339"},
		{"missing timestamp", ExperiencesFile, 2, `{"intent":"fetch","candidate_ids":["web/get"],"selected_capability":"web/get","rank":1,"outcome":"success","execution_time_ms":1,"session_id":"s1"}`, 2, "timestamp", "is required"},
		{"rank", ExperiencesFile, 0, `{"intent":"fetch","candidate_ids":["web/get"],"selected_capability":"web/get","rank":2,"outcome":"success","execution_time_ms":1,"timestamp":"2026-03-01T11:01:00Z","session_id":"s1"}`, 3, "rank", "want 1..1"},
		{"feedback", ExperiencesFile, 0, `{"intent":"fetch","candidate_ids":["web/get"],"selected_capability":"web/get","rank":1,"outcome":"success","execution_time_ms":1,"user_feedback":0,"timestamp":"2026-03-01T11:01:00Z","session_id":"s1"}`, 3, "user_feedback", "want 1..5"},
		{"experience unknown capability", ExperiencesFile, 0, `{"intent":"fetch","candidate_ids":["web/get"],"selected_capability":"web/put","rank":1,"outcome":"success","execution_time_ms":1,"timestamp":"2026-03-01T11:01:00Z","session_id":"s1"}`, 3, "selected_capability", `unknown capability id "web/put"`},
		{"query unknown relevant", QueriesFile, 1, `{"id":"q1","intent":"x","relevant":["search"]}`, 1, "relevant", `unknown capability id "search"`},
		{"query duplicate id", QueriesFile, 0, `{"id":"q2","intent":"other","relevant":["web/find"]}`, 3, "id", "repeated with different content"},
		{"query bad timestamp", QueriesFile, 0, `{"id":"q3","intent":"x","relevant":["web/find"],"timestamp":"yesterday"}`, 3, "timestamp", "RFC 3339"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDataset(t)
			path := filepath.Join(dir, tc.file)
			editLine(t, path, tc.line, tc.text)
			d, err := ReadDir(context.Background(), dir, Config{})
			assert.Nil(t, d, "no partial dataset")
			var verrs ValidationErrors
			require.True(t, errors.As(err, &verrs), "want ValidationErrors, got %v", err)
			require.Len(t, verrs, 1, "want one problem, got %v", err)
			e := verrs[0]
			assert.Equal(t, path, e.File)
			assert.Equal(t, tc.atLine, e.Line)
			assert.Equal(t, tc.field, e.Field)
			assert.Contains(t, e.Reason, tc.reason)
			assert.Contains(t, e.Error(), path+":")
		})
	}
}

func TestReadDirReportsEveryBadLineInOrder(t *testing.T) {
	dir := copyDataset(t)
	editLine(t, filepath.Join(dir, QueriesFile), 1, `{"id":"q1","intent":"x","relevant":[]}`)
	editLine(t, filepath.Join(dir, ToolsFile), 4, `{"id":"summarize","name":"summarize","oops":1}`)
	editLine(t, filepath.Join(dir, ToolsFile), 1, `nonsense`)
	_, err := ReadDir(context.Background(), dir, Config{})
	var verrs ValidationErrors
	require.ErrorAs(t, err, &verrs)
	var where []string
	for _, e := range verrs {
		where = append(where, filepath.Base(e.File)+":"+strconv.Itoa(e.Line))
	}
	// Tools 1 and 4 fail to parse, so capabilities naming them lose their
	// members too: those are reported, after the lines themselves.
	assert.Equal(t, "tools.jsonl:1", where[0])
	assert.Equal(t, "tools.jsonl:4", where[1])
	assert.Equal(t, "queries.jsonl:1", where[len(where)-1])
}

func TestReadDirLongLine(t *testing.T) {
	dir := copyDataset(t)
	long := `{"id":"x","name":"x","description":"` + strings.Repeat("a", maxLineBytes) + `"}`
	editLine(t, filepath.Join(dir, ToolsFile), 0, long)
	_, err := ReadDir(context.Background(), dir, Config{})
	var verrs ValidationErrors
	require.ErrorAs(t, err, &verrs)
	require.Len(t, verrs, 1)
	assert.Equal(t, 5, verrs[0].Line)
	assert.Contains(t, verrs[0].Reason, "longer than")
}

func TestWriteDirRoundTrip(t *testing.T) {
	ctx := context.Background()
	want, err := ReadDir(ctx, testDatasetDir, Config{})
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "out")
	require.NoError(t, WriteDir(ctx, dir, want))
	got, err := ReadDir(ctx, dir, Config{})
	require.NoError(t, err)
	assert.Equal(t, want, got)

	// Writing again over it changes nothing and leaves no temporary files.
	require.NoError(t, WriteDir(ctx, dir, got))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{ToolsFile, CapabilitiesFile, ExperiencesFile, QueriesFile}, names)
	again, err := ReadDir(ctx, dir, Config{})
	require.NoError(t, err)
	assert.Equal(t, want, again)
}

func TestWriteDirReplacesStaleFiles(t *testing.T) {
	ctx := context.Background()
	dir := copyDataset(t)
	d := validDataset()
	require.NoError(t, testConfig.Validate(d))
	d.Experiences = nil
	d.Queries = nil
	require.NoError(t, WriteDir(ctx, dir, d))
	got, err := ReadDir(ctx, dir, testConfig)
	require.NoError(t, err)
	assert.Empty(t, got.Experiences, "the old experiences.jsonl is replaced, not left behind")
	assert.Empty(t, got.Queries)
	assert.Equal(t, d.Tools, got.Tools)
}

func TestWriteDirCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := copyDataset(t)
	before, err := os.ReadFile(filepath.Join(dir, ToolsFile))
	require.NoError(t, err)
	require.ErrorIs(t, WriteDir(ctx, dir, validDataset()), context.Canceled)
	after, err := os.ReadFile(filepath.Join(dir, ToolsFile))
	require.NoError(t, err)
	assert.Equal(t, before, after, "a failed export leaves the old files")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 4, "no temporary files left")
}

func copyDataset(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{ToolsFile, CapabilitiesFile, ExperiencesFile, QueriesFile} {
		copyFile(t, filepath.Join(testDatasetDir, name), filepath.Join(dir, name))
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o644))
}

// editLine replaces line n (1-based) of path with text, or appends text when
// n is 0.
func editLine(t *testing.T, path string, n int, text string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if n == 0 {
		lines = append(lines, text)
	} else {
		require.LessOrEqual(t, n, len(lines))
		lines[n-1] = text
	}
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
}
