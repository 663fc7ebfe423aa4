package featurestore

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// planDataset: five tools, a level-0 capability per tool, seven more
// level-0 capabilities to sample negatives from, and two level-1 ones: "web"
// over find and get, "office" over sum and send.
func planDataset(t *testing.T) *Dataset {
	t.Helper()
	d := &Dataset{}
	for _, id := range []string{"search", "fetch", "summarize", "mail", "t5"} {
		d.Tools = append(d.Tools, Tool{ID: id, Name: id})
	}
	for _, c := range [][2]string{{"find", "search"}, {"get", "fetch"}, {"sum", "summarize"}, {"send", "mail"}} {
		d.Capabilities = append(d.Capabilities, Capability{ID: c[0], Name: c[0], Members: []string{c[1]}})
	}
	for i := range 7 {
		id := fmt.Sprintf("x%d", i)
		d.Capabilities = append(d.Capabilities, Capability{ID: id, Name: id, Members: []string{"t5"}})
	}
	d.Capabilities = append(d.Capabilities, Capability{ID: "web", Name: "web", Members: []string{"find", "get"}},
		Capability{ID: "office", Name: "office", Members: []string{"sum", "send"}})
	require.NoError(t, testConfig.Validate(d))
	return d
}

func TestPseudoSessionsMultiStep(t *testing.T) {
	d := planDataset(t)
	q := Query{ID: "q1", Intent: "look up, read, look up again, mail", ContextTools: []string{"t5"},
		Relevant: []string{"find", "get", "send"}, Calls: []string{"search", "fetch", "search", "mail"}}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	opts := PseudoOptions{Seed: 3, NegativesPerQuery: 6, Start: start}
	ss := PseudoSessions([]Query{q}, d.Capabilities, opts)
	require.Len(t, ss, 1)
	s := ss[0]
	assert.Equal(t, "pseudo-q1", s.ID)
	assert.Equal(t, "q1", s.QueryID)

	// The plan: one step per call, in call order, each with the tools of
	// the earlier calls (once each) after the query's context.
	require.Len(t, s.Episodes, 1+6, "the plan and one episode per negative")
	plan := s.Episodes[0]
	wantCaps := []string{"find", "get", "find", "send"}
	wantCtx := [][]string{{"t5"}, {"t5", "search"}, {"t5", "search", "fetch"}, {"t5", "search", "fetch"}}
	require.Len(t, plan, 4)
	stepOf := map[string]int{} // candidate list → step
	for i, e := range plan {
		assert.Equal(t, wantCaps[i], e.SelectedCapability, "step %d", i)
		assert.Equal(t, wantCtx[i], e.ContextTools, "step %d", i)
		assert.Equal(t, OutcomeSuccess, e.Outcome)
		assert.Equal(t, e.SelectedCapability, e.CandidateIDs[e.Rank-1])
		stepOf[fmt.Sprint(e.CandidateIDs)] = i
	}
	// Negatives: one-step failure episodes, each an alternative at a step
	// (round robin: negatives 0 and 4 at step 0, 1 and 5 at step 1, 2 at
	// step 2, 3 at step 3), with that step's context and candidate list.
	perStep := make([]int, 4)
	for _, ep := range s.Episodes[1:] {
		require.Len(t, ep, 1, "a negative is an episode of its own")
		e := ep[0]
		assert.Equal(t, OutcomeFailure, e.Outcome)
		assert.NotContains(t, q.Relevant, e.SelectedCapability)
		assert.NotContains(t, []string{"web", "office"}, e.SelectedCapability, "negatives share the relevant level")
		step, ok := stepOf[fmt.Sprint(e.CandidateIDs)]
		require.True(t, ok, "negative %s has no step's candidate list: %v", e.SelectedCapability, e.CandidateIDs)
		perStep[step]++
		assert.Equal(t, wantCtx[step], e.ContextTools)
		assert.Equal(t, e.SelectedCapability, e.CandidateIDs[e.Rank-1])
	}
	assert.Equal(t, []int{2, 2, 1, 1}, perStep)

	// Timestamps run in episode order; everything is valid for the dataset.
	exps := s.Experiences()
	for i, e := range exps {
		assert.Equal(t, start.Add(time.Duration(i)*time.Minute), e.Timestamp)
		assert.Equal(t, "pseudo-q1", e.SessionID)
		assert.Equal(t, q.Intent, e.Intent)
	}
	d.Experiences = exps
	require.NoError(t, testConfig.Validate(d))

	// Deterministic, and independent of the other queries.
	assert.Equal(t, ss, PseudoSessions([]Query{q}, d.Capabilities, opts))
	other := Query{ID: "q0", Intent: "sum", Relevant: []string{"sum"}, Calls: []string{"summarize"}}
	both := PseudoSessions([]Query{other, q}, d.Capabilities, opts)
	require.Len(t, both, 2)
	for _, ep := range both[1].Episodes {
		for i := range ep {
			ep[i].Timestamp = exps[0].Timestamp
		}
	}
	for _, ep := range s.Episodes {
		for i := range ep {
			ep[i].Timestamp = exps[0].Timestamp
		}
	}
	assert.Equal(t, s, both[1])
}

// A relevant capability may hold the called tool through its members.
func TestPseudoSessionsNestedCapability(t *testing.T) {
	d := planDataset(t)
	q := Query{ID: "q", Intent: "find and read", Relevant: []string{"web"}, Calls: []string{"search", "fetch"}}
	s := PseudoSessions([]Query{q}, d.Capabilities, PseudoOptions{Seed: 1})[0]
	require.Len(t, s.Episodes[0], 2)
	assert.Equal(t, "web", s.Episodes[0][0].SelectedCapability)
	assert.Equal(t, "web", s.Episodes[0][1].SelectedCapability)
	assert.Equal(t, []string{"search"}, s.Episodes[0][1].ContextTools)
	require.Len(t, s.Episodes, 2, "one negative: office, the only other level-1 capability")
	assert.Empty(t, s.Episodes[1][0].ContextTools, "negative 0 is an alternative at step 0")
	assert.Equal(t, "office", s.Episodes[1][0].SelectedCapability)
}

// Without a plan (no calls, calls that disagree with the labels, or
// SingleStep) a query gives one-step episodes only, exactly
// PseudoExperiences' experiences.
func TestPseudoSessionsSingleStep(t *testing.T) {
	d := planDataset(t)
	queries := []Query{
		{ID: "nocalls", Intent: "a", Relevant: []string{"find", "get"}},
		{ID: "stray", Intent: "b", Relevant: []string{"find", "get"}, Calls: []string{"search", "mail"}}, // mail is in no relevant capability
		{ID: "uncalled", Intent: "c", Relevant: []string{"find", "get"}, Calls: []string{"search"}},      // get is never called
		{ID: "planned", Intent: "d", ContextTools: []string{"t5"}, Relevant: []string{"find", "get"}, Calls: []string{"search", "fetch"}},
	}
	opts := PseudoOptions{Seed: 5, NegativesPerQuery: 2}
	check := func(ss []PseudoSession, planned bool) {
		t.Helper()
		for _, s := range ss {
			multi := s.QueryID == "planned" && planned
			for k, ep := range s.Episodes {
				if multi && k == 0 {
					assert.Len(t, ep, 2, "%s: the plan", s.QueryID)
					continue
				}
				require.Len(t, ep, 1, "%s episode %d", s.QueryID, k)
				if !multi {
					assert.Equal(t, s.Episodes[0][0].CandidateIDs, ep[0].CandidateIDs, "%s: one candidate list", s.QueryID)
					assert.Equal(t, ep[0].SelectedCapability, ep[0].CandidateIDs[k], "%s: one episode per candidate, in list order", s.QueryID)
				}
			}
		}
	}
	check(PseudoSessions(queries, d.Capabilities, opts), true)
	single := opts
	single.SingleStep = true
	ss := PseudoSessions(queries, d.Capabilities, single)
	check(ss, false)
	var flat []Experience
	for _, s := range ss {
		flat = append(flat, s.Experiences()...)
	}
	assert.Equal(t, flat, PseudoExperiences(queries, d.Capabilities, opts))
	for _, e := range flat {
		if e.SessionID == "pseudo-planned" {
			assert.Equal(t, []string{"t5"}, e.ContextTools, "single-step keeps the query's context only")
		}
	}
}
