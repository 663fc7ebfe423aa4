// Package storetest is the contract test suite every featurestore.Store
// backend runs: the same subtests, the same expectations, so the embedded and
// PostgreSQL backends cannot drift apart.
//
// A backend's test calls Run with a small Config (e.g. TextDim 8, GraphDim 4,
// HybridDim 8) and a constructor that returns a fresh, empty store for each
// subtest. The suite closes each store it gets (Close must be safe to call
// again, so the constructor may register its own Close too).
//
// Behaviour the suite fixes beyond the interface's comments:
//   - ExperiencesBetween(from, to) returns from ≤ timestamp < to, ordered
//     by timestamp; ExperiencesBySession orders by timestamp; an unknown
//     session has no experiences and is no error.
//   - UsageCounts(now) counts the experiences with now-N·24h ≤ timestamp <
//     now (N = 1, 7, 30); the tests keep clear of the exact bounds.
//   - Timestamps come back in UTC; capability members, query relevant
//     lists and query calls keep their order (calls may repeat a tool).
//   - WriteDataset upserts by id; a capability rewritten with another level
//     changes the levels of stored capabilities that hold it.
//   - An experience identical to a stored one is not stored again by
//     WriteDataset (that is what makes a re-import a no-op); the IDs the store
//     assigns are positive and distinct.
//   - CapabilityFeatures, IntentFeatures and Embedding report a missing row
//     as a *featurestore.NotFoundError.
//   - NearestCapabilities is exact at the suite's sizes, in both spaces
//     (an index, if any, must find the true neighbours of a dozen rows),
//     sees rows written after earlier searches, and reports a bad query
//     (space, dimension, NaN, zero vector) as a *featurestore.RecordError
//     of kind "ann query" whose ID is the space.
//   - A bad feature row, intent-features row or cached embedding is a
//     *featurestore.RecordError (alone or inside featurestore.ValidationErrors)
//     naming the record, and nothing of that call is written; so is a feature
//     row for an unknown capability. WriteDataset and AppendExperiences report
//     bad records the same way.
//   - Tools, Capabilities and Queries may come back in any order.
package storetest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
)

// Run runs the whole contract against stores made by newStore.
func Run(t *testing.T, cfg featurestore.Config, newStore func(t *testing.T) featurestore.Store) {
	s := &suite{cfg: cfg.WithDefaults(), newStore: newStore}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"WriteDatasetRoundTrip", s.writeDatasetRoundTrip},
		{"WriteDatasetIdempotent", s.writeDatasetIdempotent},
		{"WriteDatasetUpserts", s.writeDatasetUpserts},
		{"WriteDatasetRelevels", s.writeDatasetRelevels},
		{"WriteDatasetAllOrNothing", s.writeDatasetAllOrNothing},
		{"CapabilitiesByID", s.capabilitiesByID},
		{"FeaturesRoundTrip", s.featuresRoundTrip},
		{"FeaturesOverwrite", s.featuresOverwrite},
		{"FeaturesBadRows", s.featuresBadRows},
		{"FeaturesNotFound", s.featuresNotFound},
		{"NearestExact", s.nearestExact},
		{"NearestKLargerThanRows", s.nearestKLarger},
		{"NearestBadQuery", s.nearestBadQuery},
		{"IntentFeatures", s.intentFeatures},
		{"EmbeddingCache", s.embeddingCache},
		{"AppendExperiences", s.appendExperiences},
		{"AppendExperiencesAllOrNothing", s.appendAllOrNothing},
		{"ExperiencesBetweenBounds", s.experiencesBetween},
		{"ExperiencesBySession", s.experiencesBySession},
		{"TimestampsUTC", s.timestampsUTC},
		{"UsageCounts", s.usageCounts},
		{"CloseTwice", s.closeTwice},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	cfg      featurestore.Config
	newStore func(t *testing.T) featurestore.Store
}

// open returns a fresh store, closed when the subtest ends.
func (s *suite) open(t *testing.T) featurestore.Store {
	t.Helper()
	st := s.newStore(t)
	require.NotNil(t, st)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// Every time the suite writes is whole seconds in UTC+05:30 or UTC, well
// inside any backend's range; base is the anchor.
var (
	base    = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	kolkata = time.FixedZone("IST", 5*3600+1800)
	allFrom = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	allTo   = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
)

func f64(x float64) *float64 { return &x }
func intp(x int) *int        { return &x }

// fixture is a small dataset with capabilities at levels 0, 1 and 2.
// Each call returns fresh slices: WriteDataset normalises in place.
func (s *suite) fixture() *featurestore.Dataset {
	qts := base.Add(-time.Hour).In(kolkata)
	return &featurestore.Dataset{
		Tools: []featurestore.Tool{
			{ID: "t.search", Name: "search", Description: "web search", InputSchema: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}}}`)},
			{ID: "t.fetch", Name: "fetch", Description: "fetch a URL"},
			{ID: "t.summarize", Name: "summarize", Description: "summarise text"},
			{ID: "t.mail", Name: "mail", Description: "send mail"},
		},
		Capabilities: []featurestore.Capability{
			// Listed parents first: the store must not depend on order.
			{ID: "cap.report", Name: "report", Description: "research and mail a report", Members: []string{"cap.research", "t.mail"}},
			{ID: "cap.research", Name: "research", Members: []string{"cap.lookup", "t.summarize"}, SuccessRate: f64(0.75), AvgExecutionTimeMs: f64(1200)},
			{ID: "cap.lookup", Name: "lookup", Description: "search then fetch", Members: []string{"t.search", "t.fetch"}, SuccessRate: f64(0.9)},
			{ID: "cap.mail", Name: "mail", Members: []string{"t.mail"}},
		},
		Experiences: []featurestore.Experience{
			s.exp("find papers", "cap.lookup", []string{"cap.lookup", "cap.research"}, base, "sess-1"),
			s.exp("write a report", "cap.research", []string{"cap.lookup", "cap.research"}, base.Add(time.Minute), "sess-1"),
			s.exp("mail it", "cap.mail", []string{"cap.mail"}, base.Add(time.Hour).In(kolkata), "sess-2"),
		},
		Queries: []featurestore.Query{
			{ID: "q1", Intent: "research a topic", ContextTools: []string{"t.search"}, Relevant: []string{"cap.research", "cap.lookup"},
				Calls: []string{"t.search", "t.fetch", "t.summarize", "t.fetch"}, Timestamp: &qts},
			{ID: "q2", Intent: "send a report", Relevant: []string{"cap.report"}},
		},
	}
}

var wantLevels = map[string]int{"cap.lookup": 0, "cap.mail": 0, "cap.research": 1, "cap.report": 2}

// exp is a valid experience selecting sel at its position in cands.
func (s *suite) exp(intent, sel string, cands []string, ts time.Time, session string) featurestore.Experience {
	return featurestore.Experience{
		Intent:             intent,
		IntentEmbedding:    vec(s.cfg.TextDim, int64(len(intent))),
		ContextTools:       []string{"t.search"},
		CandidateIDs:       cands,
		SelectedCapability: sel,
		Rank:               slices.Index(cands, sel) + 1,
		Outcome:            featurestore.OutcomeSuccess,
		ExecutionTimeMs:    250.5,
		UserFeedback:       intp(4),
		Timestamp:          ts,
		SessionID:          session,
	}
}

// vec is a deterministic pseudo-random vector.
func vec(dim int, seed int64) []float32 {
	r := rand.New(rand.NewPCG(uint64(seed), 42))
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func (s *suite) write(t *testing.T, st featurestore.Store, d *featurestore.Dataset) {
	t.Helper()
	require.NoError(t, st.WriteDataset(context.Background(), d))
}

// snapshot is everything WriteDataset writes, normalised for comparison.
type snapshot struct {
	Tools        []featurestore.Tool
	Capabilities []featurestore.Capability
	Experiences  []featurestore.Experience
	Queries      []featurestore.Query
}

func take(t *testing.T, st featurestore.Store) snapshot {
	t.Helper()
	ctx := context.Background()
	tools, err := st.Tools(ctx)
	require.NoError(t, err)
	caps, err := st.Capabilities(ctx)
	require.NoError(t, err)
	exps, err := st.ExperiencesBetween(ctx, allFrom, allTo)
	require.NoError(t, err)
	queries, err := st.Queries(ctx)
	require.NoError(t, err)
	return snapshot{Tools: normTools(tools), Capabilities: normCaps(caps), Experiences: normExps(t, exps, true), Queries: normQueries(queries)}
}

// expected is d as the store should return it.
func expected(t *testing.T, d *featurestore.Dataset) snapshot {
	t.Helper()
	return snapshot{Tools: normTools(d.Tools), Capabilities: normCaps(d.Capabilities), Experiences: normExps(t, d.Experiences, false), Queries: normQueries(d.Queries)}
}

func normTools(in []featurestore.Tool) []featurestore.Tool {
	out := slices.Clone(in)
	for i := range out {
		// Compare schemas as JSON values: a backend may reformat them.
		if len(out[i].InputSchema) > 0 {
			var v any
			if json.Unmarshal(out[i].InputSchema, &v) == nil {
				out[i].InputSchema, _ = json.Marshal(v)
			}
		} else {
			out[i].InputSchema = nil
		}
	}
	slices.SortFunc(out, func(a, b featurestore.Tool) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func normCaps(in []featurestore.Capability) []featurestore.Capability {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b featurestore.Capability) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func normQueries(in []featurestore.Query) []featurestore.Query {
	out := slices.Clone(in)
	for i := range out {
		out[i].ContextTools = emptyNil(out[i].ContextTools)
		if ts := out[i].Timestamp; ts != nil {
			u := ts.UTC()
			out[i].Timestamp = &u
		}
	}
	slices.SortFunc(out, func(a, b featurestore.Query) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// normExps drops store-assigned ids (checking them when stored) and puts
// the experiences in timestamp order. Stored timestamps must already be UTC.
func normExps(t *testing.T, in []featurestore.Experience, stored bool) []featurestore.Experience {
	t.Helper()
	out := slices.Clone(in)
	ids := map[int64]bool{}
	for i := range out {
		e := &out[i]
		if stored {
			assert.Positive(t, e.ID, "experience %q: store-assigned id", e.Intent)
			assert.False(t, ids[e.ID], "experience id %d repeated", e.ID)
			ids[e.ID] = true
			assert.Equal(t, time.UTC, e.Timestamp.Location(), "experience %q: timestamp not in UTC", e.Intent)
		}
		e.ID = 0
		e.Timestamp = e.Timestamp.UTC()
		e.ContextTools = emptyNil(e.ContextTools)
		if len(e.IntentEmbedding) == 0 {
			e.IntentEmbedding = nil
		}
	}
	slices.SortStableFunc(out, func(a, b featurestore.Experience) int {
		return cmp.Or(a.Timestamp.Compare(b.Timestamp), cmp.Compare(a.SessionID, b.SessionID), cmp.Compare(a.Intent, b.Intent))
	})
	return out
}

func emptyNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// recordErrors returns the *RecordErrors in err, alone or as
// ValidationErrors.
func recordErrors(err error) []*featurestore.RecordError {
	var verrs featurestore.ValidationErrors
	if errors.As(err, &verrs) {
		return verrs
	}
	var rerr *featurestore.RecordError
	if errors.As(err, &rerr) {
		return []*featurestore.RecordError{rerr}
	}
	return nil
}

// requireRecordError checks that err names a record of kind with id.
func requireRecordError(t *testing.T, err error, kind, id string) {
	t.Helper()
	require.Error(t, err)
	rerrs := recordErrors(err)
	require.NotEmpty(t, rerrs, "want a *featurestore.RecordError, got %T: %v", err, err)
	for _, r := range rerrs {
		if r.Kind == kind && r.ID == id {
			return
		}
	}
	t.Fatalf("no record error names %s %q: %v", kind, id, err)
}

func requireNotFound(t *testing.T, err error, kind, id string) {
	t.Helper()
	var nf *featurestore.NotFoundError
	require.ErrorAs(t, err, &nf)
	assert.True(t, featurestore.IsNotFound(err))
	assert.Equal(t, kind, nf.Kind)
	assert.Equal(t, id, nf.ID)
}

func (s *suite) closeTwice(t *testing.T) {
	st := s.newStore(t)
	s.write(t, st, s.fixture())
	require.NoError(t, st.Close())
	assert.NotPanics(t, func() { _ = st.Close() })
}

// f32eq compares vectors exactly: float32s must survive storage bit for bit.
func f32eq(t *testing.T, want, got []float32, msgAndArgs ...any) {
	t.Helper()
	require.Len(t, got, len(want), msgAndArgs...)
	for i := range want {
		if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
			t.Fatalf("element %d: got %v, want %v %v", i, got[i], want[i], msgAndArgs)
		}
	}
}
