package featurestore

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sealToolsDir finds the real Seal-Tools data: $CAPFLOW_SEALTOOLS_DIR, else
// ../../shared/datasets/seal-tools from this package. Absent, the test skips
// locally and fails under CI.
func sealToolsDir(t *testing.T) string { return testenv.SealToolsDir(t) }

func TestReadSealTools(t *testing.T) {
	d, err := ReadSealTools(context.Background(), sealToolsDir(t), Config{})
	require.NoError(t, err)

	assert.Len(t, d.Tools, 4076)
	perLevel := map[int]int{}
	caps := map[string]Capability{}
	for _, c := range d.Capabilities {
		perLevel[c.Level]++
		caps[c.ID] = c
	}
	assert.Equal(t, map[int]int{0: 2276, 1: 146}, perLevel)
	var dev, test int
	for _, q := range d.Queries {
		switch {
		case strings.HasPrefix(q.ID, SealToolsDevPrefix):
			dev++
		case strings.HasPrefix(q.ID, SealToolsTestPrefix):
			test++
		}
	}
	assert.Equal(t, 700, dev)
	assert.Equal(t, 700, test)
	assert.Len(t, d.Queries, 1400)

	// The first line of tool.jsonl, as the adapter maps it.
	tool := d.Tools[0]
	assert.Equal(t, "analyzeEvidence", tool.ID)
	assert.Equal(t, "analyzeEvidence", tool.Name)
	assert.Equal(t, "Analyze the chemical evidence collected from a crime scene", tool.Description)
	var schema struct {
		Type       string                     `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	}
	require.NoError(t, json.Unmarshal(tool.InputSchema, &schema))
	assert.Equal(t, "object", schema.Type)
	assert.Len(t, schema.Properties, 3)
	assert.Equal(t, []string{"evidence_type", "method", "sample"}, schema.Required)

	leaf := caps["Chemical Engineering/Forensic engineering"]
	assert.Equal(t, "Forensic engineering", leaf.Name)
	assert.Contains(t, leaf.Members, "analyzeEvidence")
	assert.True(t, strings.HasPrefix(leaf.Description, "Chemical Engineering / Forensic engineering tools: analyzeEvidence, analyzeSubstance"), leaf.Description)
	top := caps["Chemical Engineering"]
	assert.Equal(t, 1, top.Level)
	assert.Contains(t, top.Members, "Chemical Engineering/Forensic engineering")

	// A sub-field holding a "/" is split at the first one.
	ab := caps["Advertising/A/B testing"]
	assert.Equal(t, "A/B testing", ab.Name)
	assert.Contains(t, caps["Advertising"].Members, ab.ID)

	// dev-easy-0 calls getHealthWorkforce only.
	var q Query
	for _, x := range d.Queries {
		if x.ID == "dev-easy-0" {
			q = x
		}
	}
	require.Equal(t, "dev-easy-0", q.ID)
	assert.Equal(t, "Retrieve information about the number of nurses in a specific country.", q.Intent)
	require.Len(t, q.Relevant, 1)
	for _, tl := range d.Tools {
		if tl.ID == "getHealthWorkforce" {
			assert.Contains(t, caps[q.Relevant[0]].Members, tl.ID)
		}
	}
}

// TestReadSealToolsRoundTrip writes the adapted dataset in the interchange
// format and reads it back unchanged.
func TestReadSealToolsRoundTrip(t *testing.T) {
	ctx := context.Background()
	d, err := ReadSealTools(ctx, sealToolsDir(t), Config{})
	require.NoError(t, err)
	out := t.TempDir()
	require.NoError(t, WriteDir(ctx, out, d))
	got, err := ReadDir(ctx, out, Config{})
	require.NoError(t, err)
	assert.Equal(t, d, got)
}

func TestReadSealToolsPseudoExperiencesValidate(t *testing.T) {
	d, err := ReadSealTools(context.Background(), sealToolsDir(t), Config{})
	require.NoError(t, err)
	var devQueries []Query
	for _, q := range d.Queries {
		if strings.HasPrefix(q.ID, SealToolsDevPrefix) {
			devQueries = append(devQueries, q)
		}
	}
	d.Experiences = PseudoExperiences(devQueries, d.Capabilities, PseudoOptions{Seed: 1})
	require.NoError(t, Config{}.Validate(d))
	assert.Greater(t, len(d.Experiences), 700*4)
}

// TestReadSealToolsPseudoSessions: every dev query has a plan (its calls
// fall in its relevant fields), 500 of them more than one step; the
// sessions' experiences are valid for the dataset.
func TestReadSealToolsPseudoSessions(t *testing.T) {
	d, err := ReadSealTools(context.Background(), sealToolsDir(t), Config{})
	require.NoError(t, err)
	var devQueries []Query
	for _, q := range d.Queries {
		if strings.HasPrefix(q.ID, SealToolsDevPrefix) {
			devQueries = append(devQueries, q)
		}
	}
	ss := PseudoSessions(devQueries, d.Capabilities, PseudoOptions{Seed: 1})
	require.Len(t, ss, 700)
	steps := map[int]int{}
	var maxContext int
	d.Experiences = nil
	for i, s := range ss {
		plan := s.Episodes[0]
		require.Len(t, plan, len(devQueries[i].Calls), "query %s: one step per call", s.QueryID)
		steps[len(plan)]++
		maxContext = max(maxContext, len(plan[len(plan)-1].ContextTools))
		assert.Len(t, s.Episodes, 1+4, "query %s: the plan and four negatives", s.QueryID)
		d.Experiences = append(d.Experiences, s.Experiences()...)
	}
	assert.Equal(t, map[int]int{1: 200, 2: 8, 3: 394, 4: 87, 5: 8, 6: 3}, steps)
	assert.Equal(t, 5, maxContext, "the last step of a six-call plan has five tools in context")
	require.NoError(t, Config{}.Validate(d))
}

func writeSealTools(t *testing.T, tools, dev, test string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range map[string]string{SealToolsToolFile: tools, SealToolsDevFile: dev, SealToolsTestFile: test} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	return dir
}

func TestReadSealToolsSmall(t *testing.T) {
	tools := `{"api_name":"a1","api_description":"A one","field":"A/X","parameters":{"p":{"type":"str"}},"required":["p"],"responses":{}}
{"api_name":"a2","api_description":"A two","field":"A/Y","parameters":{},"required":[]}
{"api_name":"a3","api_description":"A three","field":"A/X","parameters":{},"required":[]}
{"api_name":"b1","api_description":"B one","field":"B/Z/W","parameters":{},"required":[]}
`
	dev := `{"id":"dev-0","query":"do A","calling":[{"api":"a3"},{"api":"a2"},{"api":"a1"}]}` + "\n"
	test := `{"id":"test_in_domain-0","query":"do B","calling":[{"api":"b1"}]}` + "\n"
	d, err := ReadSealTools(context.Background(), writeSealTools(t, tools, dev, test), Config{})
	require.NoError(t, err)

	var ids []string
	for _, c := range d.Capabilities {
		ids = append(ids, c.ID)
	}
	assert.Equal(t, []string{"A/X", "A", "A/Y", "B/Z/W", "B"}, ids)
	assert.Equal(t, Capability{ID: "A/X", Name: "X", Description: "A / X tools: a1, a3", Members: []string{"a1", "a3"}}, d.Capabilities[0])
	assert.Equal(t, Capability{ID: "A", Name: "A", Description: "A: X, Y", Members: []string{"A/X", "A/Y"}, Level: 1}, d.Capabilities[1])
	assert.Equal(t, "Z/W", d.Capabilities[3].Name)
	assert.JSONEq(t, `{"type":"object","properties":{"p":{"type":"str"}},"required":["p"]}`, string(d.Tools[0].InputSchema))
	assert.Equal(t, []Query{
		{ID: "dev-0", Intent: "do A", Relevant: []string{"A/X", "A/Y"}, Calls: []string{"a3", "a2", "a1"}},
		{ID: "test_in_domain-0", Intent: "do B", Relevant: []string{"B/Z/W"}, Calls: []string{"b1"}},
	}, d.Queries)
}

func TestReadSealToolsBadInput(t *testing.T) {
	tools := `{"api_name":"a1","api_description":"A one","field":"A/X","parameters":{},"required":[]}
{"api_name":"a2","api_description":"no sub-field","field":"A","parameters":{},"required":[]}
{"api_name":"a3",
`
	dev := `{"id":"dev-0","query":"do A","calling":[{"api":"nope"}]}` + "\n"
	_, err := ReadSealTools(context.Background(), writeSealTools(t, tools, dev, ""), Config{})
	var verrs ValidationErrors
	require.ErrorAs(t, err, &verrs)
	require.Len(t, verrs, 3, "%v", err)
	assert.Equal(t, 2, verrs[0].Line)
	assert.Contains(t, verrs[0].Reason, `"Top/Sub"`)
	assert.Equal(t, 3, verrs[1].Line)
	assert.Contains(t, verrs[1].Reason, "unexpected end")
	assert.Equal(t, filepath.Base(verrs[2].File), SealToolsDevFile)
	assert.Contains(t, verrs[2].Reason, `unknown api "nope"`)
}

// A Top named like a tool is rejected, not merged.
func TestReadSealToolsTopCollidesWithTool(t *testing.T) {
	tools := `{"api_name":"A","api_description":"tool named A","field":"A/X","parameters":{},"required":[]}` + "\n"
	_, err := ReadSealTools(context.Background(), writeSealTools(t, tools, "", ""), Config{})
	var verrs ValidationErrors
	require.ErrorAs(t, err, &verrs)
	assert.Contains(t, err.Error(), "also a tool id")
}

func TestPseudoExperiences(t *testing.T) {
	d := validDataset()
	d.Capabilities = append(d.Capabilities,
		Capability{ID: "c1", Name: "c1", Members: []string{"search"}},
		Capability{ID: "c2", Name: "c2", Members: []string{"fetch"}},
		Capability{ID: "c3", Name: "c3", Members: []string{"fetch", "search"}},
	)
	d.Experiences = nil
	require.NoError(t, testConfig.Validate(d))
	queries := []Query{
		{ID: "q1", Intent: "one", Relevant: []string{"get"}},
		{ID: "q2", Intent: "two", ContextTools: []string{"search"}, Relevant: []string{"find", "c1"}},
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	opts := PseudoOptions{Seed: 7, NegativesPerQuery: 2, Start: start}
	exps := PseudoExperiences(queries, d.Capabilities, opts)
	require.Len(t, exps, 3+4)

	level := map[string]int{}
	for _, c := range d.Capabilities {
		level[c.ID] = c.Level
	}
	for i, e := range exps {
		q := queries[0]
		if i >= 3 {
			q = queries[1]
		}
		assert.Equal(t, "pseudo-"+q.ID, e.SessionID)
		assert.Equal(t, q.Intent, e.Intent)
		assert.Equal(t, start.Add(time.Duration(i)*time.Minute), e.Timestamp)
		assert.Equal(t, e.SelectedCapability, e.CandidateIDs[e.Rank-1])
		if slices.Contains(q.Relevant, e.SelectedCapability) {
			assert.Equal(t, OutcomeSuccess, e.Outcome)
		} else {
			assert.Equal(t, OutcomeFailure, e.Outcome)
			assert.Equal(t, 0, level[e.SelectedCapability], "negatives share the relevant level")
		}
	}
	// One experience per candidate, ranks 1..n.
	for i := range 3 {
		assert.Equal(t, i+1, exps[i].Rank)
	}

	// The experiences are valid for the dataset.
	d.Experiences = exps
	require.NoError(t, testConfig.Validate(d))

	// Deterministic with the seed; another seed gives another sample/order.
	assert.Equal(t, exps, PseudoExperiences(queries, d.Capabilities, opts))
	differs := false
	for seed := int64(8); seed < 20 && !differs; seed++ {
		o := opts
		o.Seed = seed
		differs = !assert.ObjectsAreEqual(exps, PseudoExperiences(queries, d.Capabilities, o))
	}
	assert.True(t, differs, "other seeds all gave the same experiences")

	// A query's experiences do not depend on the other queries.
	alone := PseudoExperiences(queries[1:], d.Capabilities, opts)
	for i := range alone {
		alone[i].Timestamp = exps[3+i].Timestamp
	}
	assert.Equal(t, exps[3:], alone)
}
