package features

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/graph/network"
	"gonum.org/v1/gonum/graph/simple"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/internal/testenv"
)

func gTools(ids ...string) []featurestore.Tool {
	ts := make([]featurestore.Tool, len(ids))
	for i, id := range ids {
		ts[i] = featurestore.Tool{ID: id, Name: id}
	}
	return ts
}

func gCap(id string, members ...string) featurestore.Capability {
	return featurestore.Capability{ID: id, Name: id, Members: members}
}

var gAsOf = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestGraphFeaturesToolCountNested(t *testing.T) {
	ts := gTools("t1", "t2", "t3", "t4")
	caps := []featurestore.Capability{
		gCap("n3", "n2", "n1", "t4"), // listed before its members on purpose
		gCap("n1", "t1", "t2"),
		gCap("n2", "n1", "t2", "t3"), // t2 twice: direct and through n1
		gCap("lone", "t4"),
	}
	got, err := GraphFeatures(ts, caps, nil, gAsOf, GraphOptions{})
	require.NoError(t, err)
	want := map[string]int{"n1": 2, "n2": 3, "n3": 4, "lone": 1}
	for id, n := range want {
		assert.Equal(t, n, got[id].ToolCount, id)
	}
}

func TestGraphFeaturesClustering(t *testing.T) {
	// Overlap graph: a triangle a–b–c (sharing t2, t1, t3) with x hanging off
	// c (sharing t4), and y isolated.
	ts := gTools("t1", "t2", "t3", "t4", "t5", "t6")
	caps := []featurestore.Capability{
		gCap("a", "t1", "t2"),
		gCap("b", "t2", "t3"),
		gCap("c", "t1", "t3", "t4"),
		gCap("x", "t4", "t5"),
		gCap("y", "t6"),
	}
	got, err := GraphFeatures(ts, caps, nil, gAsOf, GraphOptions{})
	require.NoError(t, err)
	want := map[string]float64{"a": 1, "b": 1, "c": 1.0 / 3, "x": 0, "y": 0}
	for id, c := range want {
		assert.InDelta(t, c, got[id].ClusteringCoefficient, 1e-15, id)
	}
}

func TestGraphFeaturesPageRankStar(t *testing.T) {
	ts := gTools("t1", "t2", "t3")
	caps := []featurestore.Capability{
		gCap("hub", "t1", "t2", "t3"),
		gCap("l1", "t1"), gCap("l2", "t2"), gCap("l3", "t3"),
	}
	got, err := GraphFeatures(ts, caps, nil, gAsOf, GraphOptions{})
	require.NoError(t, err)
	// Closed form: every leaf sends all its rank to the hub, so
	// r_hub = (1−d)/4 + d·(1 − r_hub) = (0.0375 + 0.85)/1.85, and the three
	// leaves share the rest.
	hub := (0.15/4 + 0.85) / 1.85
	assert.InDelta(t, hub, got["hub"].PageRank, 1e-9)
	for _, id := range []string{"l1", "l2", "l3"} {
		assert.InDelta(t, (1-hub)/3, got[id].PageRank, 1e-9, id)
	}
	assert.InDelta(t, 1, sumRank(got), 1e-12)
}

func TestGraphFeaturesPageRankChain(t *testing.T) {
	ts := gTools("t1", "t2", "t3")
	caps := []featurestore.Capability{
		gCap("a", "t1"), gCap("b", "t1", "t2"), gCap("c", "t2", "t3"), gCap("d", "t3"),
	}
	got, err := GraphFeatures(ts, caps, nil, gAsOf, GraphOptions{})
	require.NoError(t, err)
	assert.InDelta(t, got["a"].PageRank, got["d"].PageRank, 1e-9)
	assert.InDelta(t, got["b"].PageRank, got["c"].PageRank, 1e-9)
	assert.Greater(t, got["b"].PageRank, got["a"].PageRank)
	assert.InDelta(t, 1, sumRank(got), 1e-12)
}

// TestGraphFeaturesPageRankMatchesGonum checks the power iteration against
// gonum's weighted PageRank on a graph with unequal weights and a dangling
// node.
func TestGraphFeaturesPageRankMatchesGonum(t *testing.T) {
	ts := gTools("t1", "t2", "t3", "t4", "t5", "t6", "t7")
	caps := []featurestore.Capability{
		gCap("a", "t1", "t2", "t3"),
		gCap("b", "t2", "t3", "t4"),
		gCap("c", "t4", "t5"),
		gCap("d", "a", "t5"),
		gCap("e", "t6"),
		gCap("f", "t7", "t1"),
	}
	got, err := GraphFeatures(ts, caps, nil, gAsOf, GraphOptions{})
	require.NoError(t, err)
	want := gonumRanks(t, ts, caps)
	for i, c := range caps {
		assert.InDelta(t, want[int64(i)], got[c.ID].PageRank, 1e-8, c.ID)
	}
}

// gonumRanks builds the overlap projection independently (all pairs, set
// intersection) as a gonum directed graph with both directions and ranks it.
func gonumRanks(t *testing.T, ts []featurestore.Tool, caps []featurestore.Capability) map[int64]float64 {
	t.Helper()
	capIdx := map[string]int{}
	for i, c := range caps {
		capIdx[c.ID] = i
	}
	toolIdx := map[string]int{}
	for i, tl := range ts {
		toolIdx[tl.ID] = i
	}
	sets, err := transitiveTools(caps, capIdx, toolIdx)
	require.NoError(t, err)
	g := simple.NewWeightedDirectedGraph(0, 0)
	for i := range caps {
		g.AddNode(simple.Node(i))
	}
	for i := range caps {
		in := map[int]bool{}
		for _, x := range sets[i] {
			in[x] = true
		}
		for j := range caps {
			if i == j {
				continue
			}
			var w float64
			for _, x := range sets[j] {
				if in[x] {
					w++
				}
			}
			if w > 0 {
				g.SetWeightedEdge(g.NewWeightedEdge(simple.Node(i), simple.Node(j), w))
			}
		}
	}
	return network.PageRankSparse(g, 0.85, 1e-12)
}

func sumRank(m map[string]CapabilityStats) float64 {
	var s float64
	for _, v := range m {
		s += v.PageRank
	}
	return s
}

func TestGraphFeaturesUsage(t *testing.T) {
	ts := gTools("t1", "t2", "t3")
	sr, ms := 0.95, 40.0
	used := gCap("used", "t1")
	catalog := gCap("catalog", "t2")
	catalog.SuccessRate, catalog.AvgExecutionTimeMs = &sr, &ms
	caps := []featurestore.Capability{used, catalog, gCap("unknown", "t3")}
	exp := func(ago time.Duration, o featurestore.Outcome, ms float64) featurestore.Experience {
		return featurestore.Experience{SelectedCapability: "used", Outcome: o, ExecutionTimeMs: ms, Timestamp: gAsOf.Add(-ago)}
	}
	day := 24 * time.Hour
	exps := []featurestore.Experience{
		exp(-time.Second, featurestore.OutcomeFailure, 1000), // after asOf: ignored everywhere
		exp(0, featurestore.OutcomeFailure, 1000),            // at asOf: ignored (half-open window)
		exp(time.Nanosecond, featurestore.OutcomeSuccess, 10),
		exp(day, featurestore.OutcomeSuccess, 20), // lower edge of 1d: counted
		exp(day+time.Nanosecond, featurestore.OutcomePartial, 30),
		exp(7*day, featurestore.OutcomeFailure, 40),
		exp(30*day, featurestore.OutcomePartial, 50),
		exp(30*day+time.Nanosecond, featurestore.OutcomeFailure, 60), // outside 30d, still in the rates
	}
	got, err := GraphFeatures(ts, caps, exps, gAsOf, GraphOptions{})
	require.NoError(t, err)
	u := got["used"]
	assert.Equal(t, 2, u.UsageCount1d)
	assert.Equal(t, 4, u.UsageCount7d)
	assert.Equal(t, 5, u.UsageCount30d)
	assert.InDelta(t, (1+1+0.5+0+0.5+0)/6.0, u.SuccessRate, 1e-15)
	assert.InDelta(t, (10+20+30+40+50+60)/6.0, u.AvgExecutionTimeMs, 1e-12)

	assert.Equal(t, 0.95, got["catalog"].SuccessRate)
	assert.Equal(t, 40.0, got["catalog"].AvgExecutionTimeMs)
	assert.Equal(t, DefaultPriorSuccessRate, got["unknown"].SuccessRate)
	assert.Equal(t, 0.0, got["unknown"].AvgExecutionTimeMs)
	assert.Zero(t, got["unknown"].UsageCount30d)

	got, err = GraphFeatures(ts, caps, exps, gAsOf, GraphOptions{PriorSuccessRate: 0.6})
	require.NoError(t, err)
	assert.Equal(t, 0.6, got["unknown"].SuccessRate)
}

func TestGraphFeaturesCoUsage(t *testing.T) {
	// a–b and b–c overlap; a and c never do, until a session uses both.
	ts := gTools("t1", "t2")
	caps := []featurestore.Capability{gCap("a", "t1"), gCap("b", "t1", "t2"), gCap("c", "t2")}
	exps := []featurestore.Experience{
		{SelectedCapability: "a", Outcome: featurestore.OutcomeSuccess, SessionID: "s", Timestamp: gAsOf.Add(-time.Hour)},
		{SelectedCapability: "c", Outcome: featurestore.OutcomeSuccess, SessionID: "s", Timestamp: gAsOf.Add(-time.Hour)},
		{SelectedCapability: "c", Outcome: featurestore.OutcomeSuccess, SessionID: "s", Timestamp: gAsOf.Add(-time.Hour)},
	}
	off, err := GraphFeatures(ts, caps, exps, gAsOf, GraphOptions{})
	require.NoError(t, err)
	assert.Equal(t, 0.0, off["b"].ClusteringCoefficient)
	on, err := GraphFeatures(ts, caps, exps, gAsOf, GraphOptions{CoUsageWeight: 1})
	require.NoError(t, err)
	for _, id := range []string{"a", "b", "c"} {
		assert.Equal(t, 1.0, on[id].ClusteringCoefficient, id)
		assert.InDelta(t, 1.0/3, on[id].PageRank, 1e-9, id) // triangle of weight-1 edges
	}
	// A session at or after asOf adds no edge.
	for i := range exps {
		exps[i].Timestamp = gAsOf
	}
	late, err := GraphFeatures(ts, caps, exps, gAsOf, GraphOptions{CoUsageWeight: 1})
	require.NoError(t, err)
	for id, s := range off {
		assert.Equal(t, s.PageRank, late[id].PageRank, id)
		assert.Equal(t, s.ClusteringCoefficient, late[id].ClusteringCoefficient, id)
	}
}

func TestGraphFeaturesErrors(t *testing.T) {
	ts := gTools("t1")
	ok := []featurestore.Capability{gCap("a", "t1")}
	good := featurestore.Experience{SelectedCapability: "a", Outcome: featurestore.OutcomeSuccess}
	cases := map[string]struct {
		tools []featurestore.Tool
		caps  []featurestore.Capability
		exps  []featurestore.Experience
		opts  GraphOptions
	}{
		"duplicate tool":     {tools: gTools("t1", "t1"), caps: ok},
		"duplicate cap":      {tools: ts, caps: []featurestore.Capability{gCap("a", "t1"), gCap("a", "t1")}},
		"cap is tool":        {tools: ts, caps: []featurestore.Capability{gCap("t1", "t1")}},
		"unknown member":     {tools: ts, caps: []featurestore.Capability{gCap("a", "zz")}},
		"cycle":              {tools: ts, caps: []featurestore.Capability{gCap("a", "b"), gCap("b", "a")}},
		"unknown selected":   {tools: ts, caps: ok, exps: []featurestore.Experience{{SelectedCapability: "zz", Outcome: featurestore.OutcomeSuccess}}},
		"bad outcome":        {tools: ts, caps: ok, exps: []featurestore.Experience{{SelectedCapability: "a", Outcome: "meh"}}},
		"NaN time":           {tools: ts, caps: ok, exps: []featurestore.Experience{{SelectedCapability: "a", Outcome: featurestore.OutcomeSuccess, ExecutionTimeMs: math.NaN()}}},
		"damping 1":          {tools: ts, caps: ok, exps: []featurestore.Experience{good}, opts: GraphOptions{Damping: 1}},
		"NaN tol":            {tools: ts, caps: ok, opts: GraphOptions{Tol: math.NaN()}},
		"negative co-usage":  {tools: ts, caps: ok, opts: GraphOptions{CoUsageWeight: -1}},
		"prior above 1":      {tools: ts, caps: ok, opts: GraphOptions{PriorSuccessRate: 2}},
		"no convergence":     {tools: gTools("t1", "t2"), caps: []featurestore.Capability{gCap("a", "t1"), gCap("b", "t1", "t2"), gCap("c", "t2")}, opts: GraphOptions{MaxIter: 1, Tol: 1e-300}},
		"negative max iters": {tools: ts, caps: ok, opts: GraphOptions{MaxIter: -1}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := GraphFeatures(c.tools, c.caps, c.exps, gAsOf, c.opts)
			var ge *GraphInputError
			require.True(t, errors.As(err, &ge), "got %v", err)
			t.Log(err)
		})
	}
}

func TestGraphFeaturesDeterministic(t *testing.T) {
	ts := gTools("t1", "t2", "t3", "t4", "t5")
	caps := []featurestore.Capability{
		gCap("a", "t1", "t2"), gCap("b", "t2", "t3"), gCap("c", "t3", "t4", "t1"),
		gCap("d", "a", "c"), gCap("e", "t5"),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ids := []string{"a", "b", "c", "d", "e"}
	var exps []featurestore.Experience
	for i := range 200 {
		exps = append(exps, featurestore.Experience{
			SelectedCapability: ids[rng.IntN(len(ids))],
			Outcome:            []featurestore.Outcome{featurestore.OutcomeSuccess, featurestore.OutcomePartial, featurestore.OutcomeFailure}[rng.IntN(3)],
			ExecutionTimeMs:    rng.Float64() * 100,
			SessionID:          string(rune('A' + i%17)),
			Timestamp:          gAsOf.Add(-time.Duration(rng.IntN(40*24)) * time.Hour),
		})
	}
	opts := GraphOptions{CoUsageWeight: 0.5}
	first, err := GraphFeatures(ts, caps, exps, gAsOf, opts)
	require.NoError(t, err)
	for range 5 {
		got, err := GraphFeatures(ts, caps, exps, gAsOf, opts)
		require.NoError(t, err)
		require.True(t, reflect.DeepEqual(first, got))
	}
	// Reordering the experiences moves only floating-point sums of the
	// usage means, not the graph.
	rng.Shuffle(len(exps), func(i, j int) { exps[i], exps[j] = exps[j], exps[i] })
	got, err := GraphFeatures(ts, caps, exps, gAsOf, opts)
	require.NoError(t, err)
	for id, s := range first {
		assert.Equal(t, s.PageRank, got[id].PageRank, id)
		assert.Equal(t, s.ClusteringCoefficient, got[id].ClusteringCoefficient, id)
		assert.InDelta(t, s.AvgExecutionTimeMs, got[id].AvgExecutionTimeMs, 1e-9, id)
	}
}

func TestCapabilityStatsFill(t *testing.T) {
	s := CapabilityStats{ToolCount: 3, PageRank: 0.1, ClusteringCoefficient: 0.2, AvgExecutionTimeMs: 5, SuccessRate: 0.8, UsageCount1d: 1, UsageCount7d: 2, UsageCount30d: 3}
	f := featurestore.CapabilityFeatures{CapabilityID: "x", FeatureVersion: "v"}
	s.Fill(&f)
	assert.Equal(t, featurestore.CapabilityFeatures{CapabilityID: "x", FeatureVersion: "v", ToolCount: 3, PageRank: 0.1,
		ClusteringCoefficient: 0.2, AvgExecutionTimeMs: 5, SuccessRate: 0.8, UsageCount1d: 1, UsageCount7d: 2, UsageCount30d: 3}, f)
}

func TestGraphFeaturesSealTools(t *testing.T) {
	ctx := context.Background()
	d, err := featurestore.ReadSealTools(ctx, testenv.SealToolsDir(t), featurestore.Config{})
	require.NoError(t, err)
	start := time.Now()
	got, err := GraphFeatures(d.Tools, d.Capabilities, d.Experiences, gAsOf, GraphOptions{})
	elapsed := time.Since(start)
	require.NoError(t, err)
	require.Len(t, got, len(d.Capabilities))

	var sum float64
	var level0Tools, maxCount, clustered int
	best, bestID := 0.0, ""
	for _, c := range d.Capabilities {
		s := got[c.ID]
		for name, v := range map[string]float64{"pagerank": s.PageRank, "clustering": s.ClusteringCoefficient, "success": s.SuccessRate, "time": s.AvgExecutionTimeMs} {
			require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "%s %s = %v", c.ID, name, v)
		}
		require.Positive(t, s.PageRank, c.ID)
		require.Positive(t, s.ToolCount, c.ID)
		sum += s.PageRank
		if c.Level == 0 {
			level0Tools += s.ToolCount
		}
		maxCount = max(maxCount, s.ToolCount)
		if s.ClusteringCoefficient > 0 {
			clustered++
		}
		if s.PageRank > best {
			best, bestID = s.PageRank, c.ID
		}
	}
	assert.InDelta(t, 1, sum, 1e-9)
	// Each Seal-Tools tool lies in exactly one sub-field.
	assert.Equal(t, len(d.Tools), level0Tools)
	t.Logf("Seal-Tools: %d tools, %d capabilities in %v; max tool_count %d; top PageRank %s = %.4g (uniform %.4g); %d capabilities with clustering > 0",
		len(d.Tools), len(d.Capabilities), elapsed, maxCount, bestID, best, 1/float64(len(d.Capabilities)), clustered)
}
