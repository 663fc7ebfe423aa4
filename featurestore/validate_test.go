package featurestore

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testConfig = Config{TextDim: 4, MaxTextLen: 64}

func ptr[T any](v T) *T { return &v }

// validDataset is a small valid dataset: two tools, a level-0 capability
// per tool, a level-1 capability over both, and a level-2 one over that and
// a tool.
func validDataset() *Dataset {
	ts := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	return &Dataset{
		Tools: []Tool{
			{ID: "search", Name: "search", Description: "web search", InputSchema: json.RawMessage(`{"type":"object"}`)},
			{ID: "fetch", Name: "fetch", Description: "fetch a URL"},
		},
		Capabilities: []Capability{
			{ID: "top", Name: "Top", Members: []string{"web", "fetch"}},
			{ID: "web", Name: "Web", Members: []string{"find", "get"}, SuccessRate: ptr(0.5), AvgExecutionTimeMs: ptr(12.0)},
			{ID: "find", Name: "Find", Description: "find things", Members: []string{"search"}},
			{ID: "get", Name: "Get", Members: []string{"fetch"}},
		},
		Experiences: []Experience{{
			Intent: "find a page", IntentEmbedding: []float32{1, 0, 0, 0}, ContextTools: []string{"search"},
			CandidateIDs: []string{"get", "find"}, SelectedCapability: "find", Rank: 2, Outcome: OutcomeSuccess,
			ExecutionTimeMs: 3.5, UserFeedback: ptr(5), Timestamp: ts, SessionID: "s1",
		}},
		Queries: []Query{{ID: "q1", Intent: "fetch a page", ContextTools: []string{"fetch"}, Relevant: []string{"get"}, Timestamp: &ts}},
	}
}

func TestValidateValidComputesLevelsAndUTC(t *testing.T) {
	d := validDataset()
	require.NoError(t, testConfig.Validate(d))
	levels := map[string]int{}
	for _, c := range d.Capabilities {
		levels[c.ID] = c.Level
	}
	assert.Equal(t, map[string]int{"find": 0, "get": 0, "web": 1, "top": 2}, levels)
	assert.Equal(t, time.UTC, d.Experiences[0].Timestamp.Location())
	assert.Equal(t, time.UTC, d.Queries[0].Timestamp.Location())
}

func TestValidateCollapsesIdenticalDuplicates(t *testing.T) {
	d := validDataset()
	dupTool := d.Tools[0]
	dupTool.InputSchema = json.RawMessage(`{ "type" : "object" }`) // same JSON, other spacing
	d.Tools = append(d.Tools, dupTool)
	d.Capabilities = append(d.Capabilities, d.Capabilities[2])
	d.Queries = append(d.Queries, d.Queries[0])
	require.NoError(t, testConfig.Validate(d))
	assert.Len(t, d.Tools, 2)
	assert.Len(t, d.Capabilities, 4)
	assert.Len(t, d.Queries, 1)
}

// TestValidateRules breaks one rule per case and checks that exactly that
// problem is reported, naming the record and field.
func TestValidateRules(t *testing.T) {
	long := strings.Repeat("x", testConfig.MaxTextLen+1)
	cases := []struct {
		name   string
		break_ func(d *Dataset)
		kind   string
		id     string
		field  string
		reason string
	}{
		{"tool id empty", func(d *Dataset) { d.Tools = append(d.Tools, Tool{Name: "x"}) }, "tool", "", "id", "is required"},
		{"tool duplicate different", func(d *Dataset) { d.Tools = append(d.Tools, Tool{ID: "search", Name: "other"}) }, "tool", "search", "id", "repeated with different content"},
		{"tool name missing", func(d *Dataset) { d.Tools[0].Name = "" }, "tool", "search", "name", "is required"},
		{"tool description too long", func(d *Dataset) { d.Tools[0].Description = long }, "tool", "search", "description", "longer than the limit"},
		{"tool name bad utf8", func(d *Dataset) { d.Tools[0].Name = "a\xffb" }, "tool", "search", "name", "not valid UTF-8"},
		{"tool name NUL", func(d *Dataset) { d.Tools[0].Name = "a\x00b" }, "tool", "search", "name", "NUL"},
		{"tool schema not object", func(d *Dataset) { d.Tools[0].InputSchema = json.RawMessage(`[1]`) }, "tool", "search", "input_schema", "not a JSON object"},
		{"capability id empty", func(d *Dataset) {
			d.Capabilities = append(d.Capabilities, Capability{Name: "n", Members: []string{"search"}})
		}, "capability", "", "id", "is required"},
		{"capability duplicate different", func(d *Dataset) {
			d.Capabilities = append(d.Capabilities, Capability{ID: "get", Name: "Get", Members: []string{"search"}})
		}, "capability", "get", "id", "repeated with different content"},
		{"capability id is a tool id", func(d *Dataset) {
			d.Capabilities = append(d.Capabilities, Capability{ID: "fetch", Name: "F", Members: []string{"search"}})
		}, "capability", "fetch", "id", "also a tool id"},
		{"capability name too long", func(d *Dataset) { d.Capabilities[0].Name = long }, "capability", "top", "name", "longer than the limit"},
		{"capability no members", func(d *Dataset) { d.Capabilities[3].Members = nil }, "capability", "get", "members", "at least one member"},
		{"capability unknown member", func(d *Dataset) { d.Capabilities[2].Members = []string{"search", "nope"} }, "capability", "find", "members", `unknown member id "nope"`},
		{"capability member twice", func(d *Dataset) { d.Capabilities[2].Members = []string{"search", "search"} }, "capability", "find", "members", `lists "search" twice`},
		{"capability success rate", func(d *Dataset) { d.Capabilities[1].SuccessRate = ptr(1.5) }, "capability", "web", "success_rate", "want ≤ 1"},
		{"capability negative time", func(d *Dataset) { d.Capabilities[1].AvgExecutionTimeMs = ptr(-1.0) }, "capability", "web", "avg_execution_time_ms", "want ≥ 0"},
		{"capability NaN time", func(d *Dataset) { d.Capabilities[1].AvgExecutionTimeMs = ptr(math.NaN()) }, "capability", "web", "avg_execution_time_ms", "finite"},
		{"experience intent missing", func(d *Dataset) { d.Experiences[0].Intent = "" }, "experience", "#0", "intent", "is required"},
		{"experience intent too long", func(d *Dataset) { d.Experiences[0].Intent = long }, "experience", "#0", "intent", "longer than the limit"},
		{"experience embedding dim", func(d *Dataset) { d.Experiences[0].IntentEmbedding = []float32{1} }, "experience", "#0", "intent_embedding", "dimension 1, want 4"},
		{"experience embedding NaN", func(d *Dataset) {
			d.Experiences[0].IntentEmbedding = []float32{1, float32(math.NaN()), 0, 0}
		}, "experience", "#0", "intent_embedding", "element 1"},
		{"experience outcome", func(d *Dataset) { d.Experiences[0].Outcome = "meh" }, "experience", "#0", "outcome", `"meh"`},
		{"experience rank zero", func(d *Dataset) { d.Experiences[0].Rank = 0 }, "experience", "#0", "rank", "want 1..2"},
		{"experience rank wrong", func(d *Dataset) { d.Experiences[0].Rank = 1 }, "experience", "#0", "rank", "not selected_capability"},
		{"experience feedback", func(d *Dataset) { d.Experiences[0].UserFeedback = ptr(6) }, "experience", "#0", "user_feedback", "want 1..5"},
		{"experience negative time", func(d *Dataset) { d.Experiences[0].ExecutionTimeMs = -2 }, "experience", "#0", "execution_time_ms", "want ≥ 0"},
		{"experience infinite time", func(d *Dataset) { d.Experiences[0].ExecutionTimeMs = math.Inf(1) }, "experience", "#0", "execution_time_ms", "finite"},
		{"experience timestamp", func(d *Dataset) { d.Experiences[0].Timestamp = time.Time{} }, "experience", "#0", "timestamp", "is required"},
		{"experience session", func(d *Dataset) { d.Experiences[0].SessionID = "" }, "experience", "#0", "session_id", "is required"},
		{"experience unknown selected", func(d *Dataset) { d.Experiences[0].SelectedCapability = "nope" }, "experience", "#0", "selected_capability", `unknown capability id "nope"`},
		{"experience selected is a tool", func(d *Dataset) { d.Experiences[0].SelectedCapability = "search" }, "experience", "#0", "selected_capability", `unknown capability id "search"`},
		{"experience unknown candidate", func(d *Dataset) { d.Experiences[0].CandidateIDs = []string{"nope", "find"} }, "experience", "#0", "candidate_ids", `unknown capability id "nope"`},
		{"experience candidate twice", func(d *Dataset) { d.Experiences[0].CandidateIDs = []string{"find", "find"} }, "experience", "#0", "candidate_ids", "twice"},
		{"experience no candidates", func(d *Dataset) { d.Experiences[0].CandidateIDs = nil; d.Experiences[0].Rank = 1 }, "experience", "#0", "candidate_ids", "is empty"},
		{"experience unknown context tool", func(d *Dataset) { d.Experiences[0].ContextTools = []string{"web"} }, "experience", "#0", "context_tools", `unknown tool id "web"`},
		{"query id empty", func(d *Dataset) { d.Queries[0].ID = "" }, "query", "", "id", "is required"},
		{"query duplicate different", func(d *Dataset) {
			d.Queries = append(d.Queries, Query{ID: "q1", Intent: "x", Relevant: []string{"get"}})
		}, "query", "q1", "id", "repeated with different content"},
		{"query intent missing", func(d *Dataset) { d.Queries[0].Intent = "" }, "query", "q1", "intent", "is required"},
		{"query relevant empty", func(d *Dataset) { d.Queries[0].Relevant = nil }, "query", "q1", "relevant", "is empty"},
		{"query relevant unknown", func(d *Dataset) { d.Queries[0].Relevant = []string{"fetch"} }, "query", "q1", "relevant", `unknown capability id "fetch"`},
		{"query relevant twice", func(d *Dataset) { d.Queries[0].Relevant = []string{"get", "get"} }, "query", "q1", "relevant", "twice"},
		{"query unknown context tool", func(d *Dataset) { d.Queries[0].ContextTools = []string{"nope"} }, "query", "q1", "context_tools", `unknown tool id "nope"`},
		{"query unknown called tool", func(d *Dataset) { d.Queries[0].Calls = []string{"fetch", "nope"} }, "query", "q1", "calls", `unknown tool id "nope"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := validDataset()
			tc.break_(d)
			err := testConfig.Validate(d)
			var verrs ValidationErrors
			require.True(t, errors.As(err, &verrs), "want ValidationErrors, got %v", err)
			require.Len(t, verrs, 1, "want exactly one problem, got %v", err)
			e := verrs[0]
			assert.Equal(t, tc.kind, e.Kind)
			assert.Equal(t, tc.id, e.ID)
			assert.Equal(t, tc.field, e.Field)
			assert.Contains(t, e.Reason, tc.reason)
		})
	}
}

func TestValidateCycles(t *testing.T) {
	d := validDataset()
	// top -> web -> find -> top, and a self-loop on get.
	d.Capabilities[2].Members = []string{"search", "top"}
	d.Capabilities[3].Members = []string{"get"}
	err := testConfig.Validate(d)
	var verrs ValidationErrors
	require.ErrorAs(t, err, &verrs)
	var reasons []string
	for _, e := range verrs {
		assert.Equal(t, "members", e.Field)
		reasons = append(reasons, e.Reason)
	}
	assert.ElementsMatch(t, []string{"forms a cycle: top -> web -> find -> top", "forms a cycle: get -> get"}, reasons)
}

func TestValidateReportsEveryProblem(t *testing.T) {
	d := validDataset()
	d.Tools[0].Name = ""
	d.Capabilities[0].Members = []string{"nope"}
	d.Experiences[0].Outcome = "meh"
	d.Queries[0].Relevant = nil
	err := testConfig.Validate(d)
	var verrs ValidationErrors
	require.ErrorAs(t, err, &verrs)
	assert.Len(t, verrs, 4, "%v", err)
}

func TestValidateDefaultsConfig(t *testing.T) {
	d := validDataset()
	d.Experiences[0].IntentEmbedding = make([]float32, 1024)
	d.Tools[0].Description = strings.Repeat("x", 1000)
	require.NoError(t, Config{}.Validate(d))
}
