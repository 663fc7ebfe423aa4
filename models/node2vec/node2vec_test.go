package node2vec

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/capflow/capflow/featurestore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustBuild(t *testing.T, edges [][3]any, isolated ...string) *Graph {
	t.Helper()
	b := NewBuilder()
	for _, e := range edges {
		require.NoError(t, b.AddEdge(e[0].(string), e[1].(string), e[2].(float64)))
	}
	for _, id := range isolated {
		b.AddNode(id)
	}
	return b.Build()
}

func TestFromCatalog(t *testing.T) {
	tools := []featurestore.Tool{{ID: "t1"}, {ID: "t2"}, {ID: "t3"}}
	caps := []featurestore.Capability{
		{ID: "c1", Members: []string{"t1", "t2"}},
		{ID: "c2", Members: []string{"c1", "t2"}, Level: 1},
	}
	g, err := FromCatalog(tools, caps, CatalogOptions{ToolWeight: 2, ContainmentWeight: 3})
	require.NoError(t, err)
	assert.Equal(t, 5, g.NumNodes())
	assert.Equal(t, 4, g.NumEdges())
	for _, c := range []struct {
		u, v string
		w    float64
	}{{"c1", "t1", 2}, {"t2", "c1", 2}, {"c2", "c1", 3}, {"c2", "t2", 2}} {
		w, ok := g.Weight(c.u, c.v)
		assert.True(t, ok, "%s–%s", c.u, c.v)
		assert.Equal(t, c.w, w, "%s–%s", c.u, c.v)
	}
	_, ok := g.Weight("t1", "t2")
	assert.False(t, ok)
	assert.Equal(t, 0, g.Degree("t3"), "a tool in no capability is an isolated node")

	g, err = FromCatalog(tools, caps, CatalogOptions{})
	require.NoError(t, err)
	w, _ := g.Weight("c2", "c1")
	assert.Equal(t, 1.0, w, "default weight")

	_, err = FromCatalog(tools, []featurestore.Capability{{ID: "c", Members: []string{"nope"}}}, CatalogOptions{})
	var ge *GraphError
	require.ErrorAs(t, err, &ge)
	assert.Equal(t, "nope", ge.V)
	_, err = FromCatalog(tools, caps, CatalogOptions{ToolWeight: -1})
	require.ErrorAs(t, err, &ge)
}

func TestBuilder(t *testing.T) {
	b := NewBuilder()
	var ge *GraphError
	require.ErrorAs(t, b.AddEdge("a", "a", 1), &ge)
	for _, w := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		require.ErrorAs(t, b.AddEdge("a", "b", w), &ge, "weight %v", w)
	}
	require.NoError(t, b.AddEdge("a", "d", 1))
	require.NoError(t, b.AddEdge("a", "c", 1))
	require.NoError(t, b.AddEdge("b", "a", 1))
	require.NoError(t, b.AddEdge("a", "b", 0.5))
	g := b.Build()
	ns, ws := g.Neighbors("a")
	assert.Equal(t, []string{"d", "c", "b"}, ns, "rows sorted by node index (insertion order)")
	assert.Equal(t, []float64{1, 1, 1.5}, ws, "a repeated edge adds its weights")
	assert.Equal(t, 3, g.NumEdges())
}

// transitionGraph: the walk has come from t to v; v's neighbours are t
// (weight 1, bias 1/p), a (2, a neighbour of t: bias 1), b (3, bias 1/q)
// and c (0.5, bias 1/q).
func transitionGraph(t *testing.T) *Graph {
	return mustBuild(t, [][3]any{
		{"t", "v", 1.0}, {"v", "a", 2.0}, {"t", "a", 1.0}, {"v", "b", 3.0}, {"v", "c", 0.5}, {"b", "c", 1.0},
	})
}

// chiSquare of observed counts against expected probabilities.
func chiSquare(obs []int, prob []float64) float64 {
	var n int
	for _, o := range obs {
		n += o
	}
	var x float64
	for i, o := range obs {
		e := prob[i] * float64(n)
		x += (float64(o) - e) * (float64(o) - e) / e
	}
	return x
}

// chi2Crit3 is the 0.999 quantile of χ² with 3 degrees of freedom: the
// seeded test fails by chance with probability 0.001, and a wrong law with
// 200,000 draws lands far beyond it.
const chi2Crit3 = 16.266

func TestSecondOrderTransitions(t *testing.T) {
	g := transitionGraph(t)
	at := newAliasTables(g)
	id := func(s string) int32 { i, _ := g.Index(s); return int32(i) }
	targets := []string{"t", "a", "b", "c"}
	w := []float64{1, 2, 3, 0.5}
	for _, pq := range [][2]float64{{1, 1}, {0.5, 2}, {4, 0.25}, {2, 0.5}, {0.25, 4}} {
		p, q := pq[0], pq[1]
		t.Run(fmt.Sprintf("p=%v,q=%v", p, q), func(t *testing.T) {
			alpha := []float64{1 / p, 1, 1 / q, 1 / q}
			want := make([]float64, 4)
			var z float64
			for i := range want {
				want[i] = w[i] * alpha[i]
				z += want[i]
			}
			for i := range want {
				want[i] /= z
			}
			wk := newWalker(g, &at, p, q)
			wk.pcg.Seed(11, 13)
			obs := make([]int, 4)
			const draws = 200000
			for range draws {
				x := g.ids[wk.next(id("t"), id("v"))]
				for k, s := range targets {
					if s == x {
						obs[k]++
					}
				}
			}
			x2 := chiSquare(obs, want)
			t.Logf("want %.4f, got %v, χ² %.2f", want, obs, x2)
			assert.Less(t, x2, chi2Crit3)
			assert.Equal(t, draws, obs[0]+obs[1]+obs[2]+obs[3], "only neighbours of v")
		})
	}
	// A wrong law is caught: the first-order law under p = 0.5, q = 2.
	wk := newWalker(g, &at, 0.5, 2)
	wk.pcg.Seed(11, 13)
	obs := make([]int, 4)
	for range 200000 {
		x := g.ids[wk.next(id("t"), id("v"))]
		for k, s := range targets {
			if s == x {
				obs[k]++
			}
		}
	}
	assert.Greater(t, chiSquare(obs, []float64{1 / 6.5, 2 / 6.5, 3 / 6.5, 0.5 / 6.5}), 1000.0)
}

func TestFirstOrderWeighted(t *testing.T) {
	g := transitionGraph(t)
	at := newAliasTables(g)
	wk := newWalker(g, &at, 1, 1)
	wk.pcg.Seed(3, 5)
	v, _ := g.Index("v")
	ns, _ := g.Neighbors("v")
	obs := make([]int, len(ns))
	for range 200000 {
		x := g.ids[wk.firstOrder(int32(v))]
		for k, s := range ns {
			if s == x {
				obs[k]++
			}
		}
	}
	var want []float64
	for _, s := range ns {
		w, _ := g.Weight("v", s)
		want = append(want, w/6.5)
	}
	assert.Less(t, chiSquare(obs, want), chi2Crit3, "%v", obs)
}

func TestWalks(t *testing.T) {
	g := mustBuild(t, [][3]any{{"a", "b", 1.0}, {"b", "c", 2.0}, {"c", "a", 1.0}, {"c", "d", 1.0}}, "lonely")
	cfg := DefaultConfig()
	cfg.WalksPerNode, cfg.WalkLength, cfg.P, cfg.Q = 3, 7, 0.5, 2
	for _, workers := range []int{1, 3} {
		c, err := walks(context.Background(), g, cfg, workers)
		require.NoError(t, err)
		require.Len(t, c.lens, 4*3, "no walk from the isolated node")
		starts := map[string]int{}
		for i := range c.lens {
			w := c.walk(i)
			require.Len(t, w, 7)
			starts[g.ids[w[0]]]++
			for k := 1; k < len(w); k++ {
				_, ok := g.Weight(g.ids[w[k-1]], g.ids[w[k]])
				require.True(t, ok, "step %d of walk %v is not an edge", k, w)
			}
		}
		assert.Equal(t, map[string]int{"a": 3, "b": 3, "c": 3, "d": 3}, starts)
	}
	// The corpus does not depend on the number of workers.
	c1, err := walks(context.Background(), g, cfg, 1)
	require.NoError(t, err)
	c3, err := walks(context.Background(), g, cfg, 3)
	require.NoError(t, err)
	assert.Equal(t, c1.nodes, c3.nodes)
}

func TestNoiseSampler(t *testing.T) {
	counts := []float64{16, 0, 1, 81}
	s := newNoise(counts)
	rng := rand.New(rand.NewPCG(1, 2))
	obs := make([]int, 4)
	for range 200000 {
		obs[s.sample(rng)]++
	}
	assert.Zero(t, obs[1], "a node never walked is never noise")
	z := 8.0 + 1 + 27 // counts^0.75
	assert.Less(t, chiSquare([]int{obs[0], obs[2], obs[3]}, []float64{8 / z, 1 / z, 27 / z}), 13.816 /* χ²₂ 0.999 */, "%v", obs)
}

// barbell: two 6-cliques joined by one bridge edge.
func barbell(t *testing.T) *Graph {
	var edges [][3]any
	for _, side := range []string{"L", "R"} {
		for i := range 6 {
			for j := i + 1; j < 6; j++ {
				edges = append(edges, [3]any{fmt.Sprint(side, i), fmt.Sprint(side, j), 1.0})
			}
		}
	}
	edges = append(edges, [3]any{"L0", "R0", 1.0})
	return mustBuild(t, edges, "lonely")
}

func cosine(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return d / math.Sqrt(na*nb)
}

// assertCommunities checks that the embedding separates the barbell's two
// cliques: every within-clique cosine mean exceeds the across mean.
func assertCommunities(t *testing.T, e *Embeddings) {
	t.Helper()
	var in, across float64
	var nIn, nAcross int
	for i := range 6 {
		for j := range 6 {
			for _, s := range [][2]string{{"L", "L"}, {"R", "R"}, {"L", "R"}} {
				a, ok := e.Vector(fmt.Sprint(s[0], i))
				require.True(t, ok)
				b, _ := e.Vector(fmt.Sprint(s[1], j))
				if s[0] == s[1] {
					if i != j {
						in += cosine(a, b)
						nIn++
					}
				} else {
					across += cosine(a, b)
					nAcross++
				}
			}
		}
	}
	in, across = in/float64(nIn), across/float64(nAcross)
	t.Logf("mean cosine within %.3f, across %.3f", in, across)
	assert.Greater(t, in, across+0.3)
}

func smallConfig() Config {
	cfg := DefaultConfig()
	cfg.Dimensions, cfg.WalksPerNode, cfg.Workers, cfg.Epochs = 16, 40, 1, 3
	return cfg
}

func TestTrainDeterministic(t *testing.T) {
	g := barbell(t)
	cfg := smallConfig()
	e1, err := Train(context.Background(), g, cfg)
	require.NoError(t, err)
	e2, err := Train(context.Background(), g, cfg)
	require.NoError(t, err)
	assert.Equal(t, e1.data, e2.data, "Workers = 1 and one seed: bit-for-bit equal")
	assert.Equal(t, 16, e1.Dim())
	assert.Equal(t, g.IDs(), e1.IDs())
	assertCommunities(t, e1)

	cfg.Seed++
	e3, err := Train(context.Background(), g, cfg)
	require.NoError(t, err)
	assert.NotEqual(t, e1.data, e3.data, "another seed, other vectors")

	_, ok := e1.Vector("nope")
	assert.False(t, ok)
}

// TestTrainHogwild runs the lock-free parallel path. Its shared-matrix
// updates are the documented benign race, so under -race it skips; `go test`
// without -race (the default `make test`) runs it.
func TestTrainHogwild(t *testing.T) {
	if raceEnabled {
		t.Skip("Hogwild updates race by design; run without -race")
	}
	cfg := smallConfig()
	cfg.Workers = 4
	e, err := Train(context.Background(), barbell(t), cfg)
	require.NoError(t, err)
	for _, v := range e.data {
		require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0))
	}
	assertCommunities(t, e)
}

func TestIsolatedNodes(t *testing.T) {
	e, err := Train(context.Background(), barbell(t), smallConfig())
	require.NoError(t, err)
	v, ok := e.Vector("lonely")
	require.True(t, ok)
	assert.Equal(t, make([]float32, 16), v, "isolated: the zero vector")
	for _, x := range e.data {
		require.False(t, math.IsNaN(float64(x)))
	}

	// A graph of isolated nodes only, and an empty graph.
	b := NewBuilder()
	b.AddNode("x")
	b.AddNode("y")
	e, err = Train(context.Background(), b.Build(), smallConfig())
	require.NoError(t, err)
	v, ok = e.Vector("y")
	require.True(t, ok)
	assert.Equal(t, make([]float32, 16), v)
	e, err = Train(context.Background(), NewBuilder().Build(), smallConfig())
	require.NoError(t, err)
	assert.Empty(t, e.IDs())
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	d := DefaultConfig()
	assert.Equal(t, []any{64, 15, 40, 5, 1.0, 1.0, 5, 1, 0.025},
		[]any{d.Dimensions, d.WalkLength, d.WalksPerNode, d.Window, d.P, d.Q, d.Negative, d.Epochs, d.LearningRate})
	for _, c := range []struct {
		field string
		edit  func(*Config)
	}{
		{"Dimensions", func(c *Config) { c.Dimensions = 0 }},
		{"WalkLength", func(c *Config) { c.WalkLength = 1 }},
		{"WalksPerNode", func(c *Config) { c.WalksPerNode = 0 }},
		{"Window", func(c *Config) { c.Window = 0 }},
		{"P", func(c *Config) { c.P = 0 }},
		{"Q", func(c *Config) { c.Q = math.NaN() }},
		{"Q", func(c *Config) { c.Q = math.Inf(1) }},
		{"Negative", func(c *Config) { c.Negative = 0 }},
		{"Epochs", func(c *Config) { c.Epochs = 0 }},
		{"Workers", func(c *Config) { c.Workers = -2 }},
		{"LearningRate", func(c *Config) { c.LearningRate = -0.1 }},
	} {
		cfg := DefaultConfig()
		c.edit(&cfg)
		_, err := Train(context.Background(), barbell(t), cfg)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, c.field)
		assert.Equal(t, c.field, ce.Field)
		assert.Contains(t, err.Error(), c.field)
	}
}

func TestTrainCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Train(ctx, barbell(t), smallConfig())
	require.ErrorIs(t, err, context.Canceled)

	// Cancelled mid-run: a ring big enough to train for seconds stops soon.
	b := NewBuilder()
	for i := range 20000 {
		require.NoError(t, b.AddEdge(fmt.Sprint(i), fmt.Sprint((i+1)%20000), 1))
	}
	g := b.Build()
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	cfg := DefaultConfig()
	cfg.Epochs = 50
	start := time.Now()
	_, err = Train(ctx, g, cfg)
	require.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 2*time.Second)
}

func TestAUC(t *testing.T) {
	// The classic hand case (e.g. scikit-learn's roc_auc_score docs): of the
	// 4 positive–negative pairs, 3 are ordered right.
	auc, err := AUC([]float64{0.1, 0.4, 0.35, 0.8}, []bool{false, false, true, true})
	require.NoError(t, err)
	assert.InDelta(t, 0.75, auc, 1e-12)
	auc, err = AUC([]float64{0.5, 0.5, 0.2, 0.9}, []bool{true, false, false, true})
	require.NoError(t, err)
	assert.InDelta(t, 0.875, auc, 1e-12, "a tie counts one half: (1 + 0.5 + 1 + 1)/4")
	auc, err = AUC([]float64{3, 2, 1}, []bool{false, true, true})
	require.NoError(t, err)
	assert.Zero(t, auc)
	_, err = AUC([]float64{1, 2}, []bool{true, true})
	require.Error(t, err)
	_, err = AUC([]float64{1}, []bool{true, false})
	require.Error(t, err)
}

func TestFitLogistic(t *testing.T) {
	// Overlapping 2-D classes: the optimum is finite and unique for L2 > 0.
	rng := rand.New(rand.NewPCG(5, 6))
	var x [][]float64
	var y []bool
	for i := range 400 {
		pos := i%2 == 0
		mu := -1.0
		if pos {
			mu = 1
		}
		x = append(x, []float64{mu + 1.5*rng.NormFloat64(), 3 + rng.NormFloat64()})
		y = append(y, pos)
	}
	const l2 = 0.01
	m, err := FitLogistic(context.Background(), x, y, LogisticConfig{L2: l2, Iterations: 5000})
	require.NoError(t, err)
	// Optimality (the reference): the gradient of the penalized mean
	// log-loss vanishes at the fitted (w, b), recomputed here in raw units.
	gw := make([]float64, 2)
	var gb float64
	for i, row := range x {
		r := m.Score(row)
		if y[i] {
			r--
		}
		for j := range row {
			gw[j] += r * (row[j] - m.mean[j]) / m.std[j]
		}
		gb += r
	}
	n := float64(len(x))
	for j := range gw {
		assert.InDelta(t, 0, gw[j]/n+l2*m.W[j], 1e-8, "∂/∂w%d", j)
	}
	assert.InDelta(t, 0, gb/n, 1e-8, "∂/∂b")
	assert.Greater(t, m.W[0], 0.5, "the informative feature")
	assert.Less(t, math.Abs(m.W[1]), 0.2, "the noise feature")
	assert.Greater(t, m.Score([]float64{2, 3}), 0.5)
	assert.Less(t, m.Score([]float64{-2, 3}), 0.5)

	_, err = FitLogistic(context.Background(), nil, nil, LogisticConfig{})
	require.Error(t, err)
	_, err = FitLogistic(context.Background(), [][]float64{{1}, {math.NaN()}}, []bool{true, false}, LogisticConfig{})
	require.Error(t, err)
}

func TestHoldOut(t *testing.T) {
	// A star of tools around caps, plus tool–tool edges so some tool–cap
	// edges can go.
	var edges [][3]any
	var cands []Pair
	for i := range 40 {
		tool, c := fmt.Sprint("t", i), fmt.Sprint("c", i%8)
		edges = append(edges, [3]any{tool, c, 1.0})
		cands = append(cands, Pair{tool, c})
		if i%2 == 0 {
			edges = append(edges, [3]any{tool, fmt.Sprint("t", i+1), 1.0})
		}
	}
	g := mustBuild(t, edges)
	s, err := HoldOut(g, cands, 0.25, 1)
	require.NoError(t, err)
	assert.Len(t, s.TestPos, 10)
	assert.Len(t, s.TrainPos, 30)
	assert.Len(t, s.TestNeg, 10)
	assert.Len(t, s.TrainNeg, 30)
	assert.Equal(t, g.NumEdges()-10, s.Train.NumEdges())
	for _, p := range s.TestPos {
		_, ok := s.Train.Weight(p.U, p.V)
		assert.False(t, ok, "held-out edge %v is hidden", p)
	}
	for _, id := range g.IDs() {
		assert.Positive(t, s.Train.Degree(id), "%s keeps an edge", id)
	}
	seen := map[Pair]bool{}
	for _, p := range append(s.TestNeg, s.TrainNeg...) {
		_, ok := g.Weight(p.U, p.V)
		assert.False(t, ok, "negative %v is a non-edge", p)
		assert.False(t, seen[p], "negative %v twice", p)
		seen[p] = true
		assert.Equal(t, "t", p.U[:1])
		assert.Equal(t, "c", p.V[:1])
	}
	_, err = HoldOut(g, cands, 1, 1)
	require.Error(t, err)
	_, err = HoldOut(g, []Pair{{"t0", "t5"}}, 0.5, 1)
	var ge *GraphError
	require.True(t, errors.As(err, &ge))
}

func TestNewEmbeddings(t *testing.T) {
	e, err := NewEmbeddings([]string{"a", "b"}, 2, []float32{1, 2, 3, 4})
	require.NoError(t, err)
	v, ok := e.Vector("b")
	require.True(t, ok)
	assert.Equal(t, []float32{3, 4}, v)
	_, ok = e.Vector("c")
	assert.False(t, ok)

	_, err = NewEmbeddings([]string{"a", "b"}, 2, []float32{1, 2, 3})
	assert.ErrorContains(t, err, "need 4 values, got 3")
	_, err = NewEmbeddings([]string{"a", "a"}, 1, []float32{1, 2})
	assert.ErrorContains(t, err, `"a" twice`)
	_, err = NewEmbeddings([]string{"a"}, 0, nil)
	assert.Error(t, err)
}
