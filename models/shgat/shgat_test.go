package shgat

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/capflow/capflow/featurestore"
)

// testCatalog is small but has every shape message passing must handle: a
// tool in two capabilities, a tool in none, a level-1 capability with a tool
// and two capabilities as members, a level-2 capability over a level-0 one.
// Every downward step has a target with two parents: with one source the
// attention is constant and its parameters get no gradient.
func testCatalog() ([]featurestore.Tool, []featurestore.Capability) {
	var tools []featurestore.Tool
	for i := range 8 {
		tools = append(tools, featurestore.Tool{ID: fmt.Sprintf("t%d", i)})
	}
	caps := []featurestore.Capability{
		{ID: "c0", Members: []string{"t0", "t1"}},
		{ID: "c1", Members: []string{"t1", "t2", "t3"}},
		{ID: "c2", Members: []string{"t4"}},
		{ID: "c3", Members: []string{"c0", "c1", "t5"}},
		{ID: "c4", Members: []string{"c3", "c2"}},
		{ID: "c5", Members: []string{"c2", "t0"}},
		{ID: "c6", Members: []string{"c3", "t6"}},
	}
	return tools, caps
}

func randVec(rng *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64() * scale
	}
	return v
}

type fixture struct {
	m  *Model
	in Input
	w  [][]float64 // loss weights: L = Σ w·scores
}

func newFixture(t *testing.T, cfg Config, train bool) *fixture {
	t.Helper()
	tools, caps := testCatalog()
	g, err := NewGraph(tools, caps)
	if err != nil {
		t.Fatal(err)
	}
	if g.Levels() != 3 {
		t.Fatalf("levels = %d, want 3", g.Levels())
	}
	if cfg.Evidence == nil {
		cfg.Evidence = DefaultEvidence[:3] // the batch below carries three features
	}
	if cfg.KeyMemory < 0 { // -1: one offset per capability of the catalog
		cfg.KeyMemory = len(g.Caps)
	}
	m, err := New(cfg, g.Levels())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	d := m.Config.Dim
	in := Input{
		Graph:       g,
		Features:    Features{Tools: randVec(rng, len(g.Tools)*d, 1), Caps: randVec(rng, len(g.Caps)*d, 1)},
		Reliability: []float64{1, 0.5, 1.2, 1, 0.5, 1.2, 1},
		Train:       train,
		Batch: []Example{
			{Intent: randVec(rng, d, 1), Context: []int{0, 4}, Candidates: []int{0, 1, 2, 3, 4, 5, 6}},
			{Intent: randVec(rng, d, 1), Candidates: []int{3, 1}, Evidence: []float64{0.7, 2.1, -0.3, 1.5, 0.2, 0.9}},
			{Intent: randVec(rng, d, 1), Context: []int{6, 7}, Candidates: []int{5, 4, 2}},
		},
	}
	f := &fixture{m: m, in: in}
	for _, ex := range in.Batch {
		f.w = append(f.w, randVec(rng, len(ex.Candidates), 1))
	}
	return f
}

// loss runs a forward pass with a fresh dropout stream (the same masks every
// call) and returns Σ w·scores plus the L2 penalty when training.
func (f *fixture) loss(t *testing.T) (float64, *Output) {
	t.Helper()
	in := f.in
	if in.Train {
		in.Rand = rand.New(rand.NewPCG(1, 2))
	}
	out, err := f.m.Forward(in)
	if err != nil {
		t.Fatal(err)
	}
	var l float64
	for i, s := range out.Scores {
		l += dot(f.w[i], s)
	}
	if in.Train {
		var pen float64
		d := f.m.Config.Dim
		for _, g := range f.m.Params.Groups() {
			if g.Matrix {
				for j, w := range g.Data {
					if f.m.Config.Init == "identity" && j%(d+1) == 0 {
						w-- // identity init decays towards I
					}
					pen += w * w
				}
			}
		}
		l += f.m.Config.L2 / 2 * pen
	}
	return l, out
}

// TestGradients checks the hand-written backward pass against finite
// differences (five-point stencil, truncation error O(h⁴)), per parameter
// group, in float64.
func TestGradients(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		train bool
	}{
		{"xavier", Config{Dim: 8, Heads: 2, Init: "xavier", Seed: 3, EvidenceInit: []float64{0.8, 0.1, -0.4}}, false},
		{"identity", Config{Dim: 12, Heads: 3, Seed: 4, InitNoise: 0.3}, false},
		{"train-dropout-l2", Config{Dim: 8, Heads: 4, Init: "xavier", Seed: 5, Dropout: 0.3, L2: 0.01, EvidenceInit: []float64{-0.5, 0.3, 0.2}}, true},
		{"train-l2-to-identity", Config{Dim: 8, Heads: 2, Seed: 6, InitNoise: 0.2, L2: 0.05}, true},
		{"train-key-memory", Config{Dim: 8, Heads: 2, Seed: 8, InitNoise: 0.2, L2: 0.05, KeyMemory: -1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.cfg, tc.train)
			_, out := f.loss(t)
			grads, _, err := out.Backward(f.w)
			if err != nil {
				t.Fatal(err)
			}
			const h = 1e-4
			rng := rand.New(rand.NewPCG(9, 9))
			gg := grads.Groups()
			for gi, grp := range f.m.Params.Groups() {
				idx := rng.Perm(len(grp.Data))
				if len(idx) > 25 {
					idx = idx[:25]
				}
				var worst float64
				nonzero := 0
				for _, j := range idx {
					old := grp.Data[j]
					at := func(x float64) float64 { grp.Data[j] = x; l, _ := f.loss(t); return l }
					num := (-at(old+2*h) + 8*at(old+h) - 8*at(old-h) + at(old-2*h)) / (12 * h)
					grp.Data[j] = old
					ana := gg[gi].Data[j]
					if ana != 0 {
						nonzero++
					}
					// A coordinate whose gradient is zero up to rounding (a
					// LeakyReLU coordinate with the same sign for all of a
					// target's sources gets exactly none) is compared in
					// absolute terms: the finite-difference noise floor here
					// is ~1e-11.
					diff := math.Abs(num - ana)
					rel := diff / math.Max(math.Abs(num)+math.Abs(ana), 1e-300)
					if math.Abs(num)+math.Abs(ana) > 1e-6 {
						worst = max(worst, rel)
					}
					if rel > 1e-4 && diff > 1e-9 {
						t.Errorf("%s[%d]: analytic %.10g, numeric %.10g, relative error %.2g", grp.Name, j, ana, num, rel)
					}
				}
				if nonzero == 0 {
					t.Errorf("%s: every checked gradient is zero: the group is dead", grp.Name)
				}
				t.Logf("%-14s worst relative error %.2g over %d coordinates (of gradients above 1e-6)", grp.Name, worst, len(idx))
			}
		})
	}
}

// TestForwardMatchesScorer: the batched training scorer and the
// request-time Scorer compute the same scores.
func TestForwardMatchesScorer(t *testing.T) {
	f := newFixture(t, Config{Dim: 8, Heads: 2, Init: "xavier", Seed: 3, EvidenceInit: []float64{0.6, 1, 2}}, false)
	_, out := f.loss(t)
	sc := f.m.Scorer()
	d := f.m.Config.Dim
	for i, ex := range f.in.Batch {
		req := Request{Intent: ex.Intent}
		for _, tIdx := range ex.Context {
			req.Context = append(req.Context, out.Reps.Tools[tIdx*d:(tIdx+1)*d])
		}
		req.Evidence = ex.Evidence
		keys := gather(out.Reps.Keys, ex.Candidates, d)
		rel := make([]float64, len(ex.Candidates))
		for j, c := range ex.Candidates {
			rel[j] = f.in.Reliability[c]
		}
		got, err := sc.Score(req, keys, rel)
		if err != nil {
			t.Fatal(err)
		}
		for j := range got {
			if math.Abs(got[j]-out.Scores[i][j]) > 1e-12 {
				t.Fatalf("example %d candidate %d: scorer %v, forward %v", i, j, got[j], out.Scores[i][j])
			}
		}
	}
}

func TestDeterministicInit(t *testing.T) {
	a, _ := New(Config{Dim: 16, Seed: 11}, 2)
	b, _ := New(Config{Dim: 16, Seed: 11}, 2)
	c, _ := New(Config{Dim: 16, Seed: 12}, 2)
	for i := range a.Params.Data {
		if a.Params.Data[i] != b.Params.Data[i] {
			t.Fatalf("same seed, different parameter %d", i)
		}
	}
	same := true
	for i := range a.Params.Data {
		same = same && a.Params.Data[i] == c.Params.Data[i]
	}
	if same {
		t.Fatal("different seeds gave identical parameters")
	}
}

func TestDerivedHeads(t *testing.T) {
	for _, tc := range []struct{ dim, heads, hd int }{{1024, 16, 64}, {384, 6, 64}, {96, 3, 32}, {100, 25, 4}, {7, 7, 1}} {
		c := Config{Dim: tc.dim}.WithDefaults()
		if c.Heads != tc.heads || c.HeadDim != tc.hd {
			t.Errorf("dim %d: %d×%d, want %d×%d", tc.dim, c.Heads, c.HeadDim, tc.heads, tc.hd)
		}
	}
}

func TestBadInput(t *testing.T) {
	f := newFixture(t, Config{Dim: 8, Heads: 2, Seed: 1}, false)
	cases := map[string]func(in *Input){
		"features.tools":  func(in *Input) { in.Features.Tools = in.Features.Tools[:5] },
		"features.caps":   func(in *Input) { in.Features.Caps = append([]float64{math.NaN()}, in.Features.Caps[1:]...) },
		"reliability":     func(in *Input) { in.Reliability = []float64{1, 1, 1, 1, 1, 0} },
		"batch[1].intent": func(in *Input) { in.Batch = append([]Example{in.Batch[0]}, Example{Intent: []float64{1}}) },
		"batch[0].context": func(in *Input) {
			in.Batch = []Example{{Intent: in.Batch[0].Intent, Context: []int{99}, Candidates: []int{0}}}
		},
		"batch[0].candidates": func(in *Input) { in.Batch = []Example{{Intent: in.Batch[0].Intent, Candidates: []int{-1}}} },
		"graph":               func(in *Input) { in.Graph = nil },
	}
	for field, mutate := range cases {
		in := f.in
		in.Batch = append([]Example(nil), f.in.Batch...)
		mutate(&in)
		_, err := f.m.Forward(in)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != field {
			t.Errorf("%s: got %v, want an InputError on that field", field, err)
		}
	}
	if _, err := New(Config{Dim: 10, Heads: 3}, 1); err == nil {
		t.Error("heads not dividing dim: no error")
	}
	_, out := f.loss(t)
	if _, _, err := out.Backward([][]float64{{1}}); err == nil {
		t.Error("wrong d_scores shape: no error")
	}
}

func TestGraphErrors(t *testing.T) {
	tools := []featurestore.Tool{{ID: "a"}}
	for name, caps := range map[string][]featurestore.Capability{
		"unknown member": {{ID: "c", Members: []string{"zz"}}},
		"cycle":          {{ID: "c", Members: []string{"d"}}, {ID: "d", Members: []string{"c"}}},
		"no members":     {{ID: "c"}},
		"duplicate":      {{ID: "c", Members: []string{"a"}}, {ID: "c", Members: []string{"a"}}},
	} {
		var ge *GraphError
		if _, err := NewGraph(tools, caps); !errors.As(err, &ge) {
			t.Errorf("%s: got %v, want a GraphError", name, err)
		}
	}
	tools2, caps2 := testCatalog()
	g, _ := NewGraph(tools2, caps2)
	m, _ := New(Config{Dim: 4, Heads: 1}, 2)
	if _, err := m.Represent(g, Features{Tools: make([]float64, len(g.Tools)*4), Caps: make([]float64, len(g.Caps)*4)}); err == nil {
		t.Error("graph deeper than the model: no error")
	}
}
