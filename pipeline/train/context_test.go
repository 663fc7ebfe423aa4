package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/models/shgat"
)

// multiStepData builds pseudo-sessions over a small catalog: 12 level-0
// capabilities of 3 tools each under 3 level-1 ones; every query calls one
// tool of each of 3 distinct level-0 capabilities, in order, and its intent
// is a noisy random map of their mean embedding. singleStep derives the
// sessions without the calls.
func multiStepData(t *testing.T, d, nQueries int, singleStep bool) *Data {
	t.Helper()
	rng := rand.New(rand.NewPCG(9, 2))
	var tools []featurestore.Tool
	for i := range 36 {
		tools = append(tools, featurestore.Tool{ID: fmt.Sprintf("t%d", i)})
	}
	var caps []featurestore.Capability
	for c := range 12 {
		caps = append(caps, featurestore.Capability{ID: fmt.Sprintf("c%d", c), Members: []string{
			fmt.Sprintf("t%d", 3*c), fmt.Sprintf("t%d", 3*c+1), fmt.Sprintf("t%d", 3*c+2)}})
	}
	for p := range 3 {
		caps = append(caps, featurestore.Capability{ID: fmt.Sprintf("p%d", p), Level: 1, Members: []string{
			fmt.Sprintf("c%d", 4*p), fmt.Sprintf("c%d", 4*p+1), fmt.Sprintf("c%d", 4*p+2), fmt.Sprintf("c%d", 4*p+3)}})
	}
	g, err := shgat.NewGraph(tools, caps)
	if err != nil {
		t.Fatal(err)
	}
	randUnit := func() []float64 {
		v := make([]float64, d)
		for k := range v {
			v[k] = rng.NormFloat64()
		}
		return unit(v)
	}
	feats := shgat.Features{Tools: make([]float64, len(tools)*d), Caps: make([]float64, len(caps)*d)}
	for i := range tools {
		copy(feats.Tools[i*d:], randUnit())
	}
	for c := range caps {
		copy(feats.Caps[c*d:], randUnit())
	}
	var queries []featurestore.Query
	vecs := map[string][]float64{}
	for q := range nQueries {
		picked := rng.Perm(12)[:3]
		x := make([]float64, d)
		query := featurestore.Query{ID: fmt.Sprintf("q%03d", q), Intent: fmt.Sprintf("query %d", q)}
		for _, c := range picked {
			query.Relevant = append(query.Relevant, caps[c].ID)
			query.Calls = append(query.Calls, caps[c].Members[rng.IntN(3)])
			for k := range d {
				x[k] += feats.Caps[c*d+k] + 0.3*rng.NormFloat64()
			}
		}
		queries = append(queries, query)
		vecs[query.Intent] = unit(x)
	}
	sessions := featurestore.PseudoSessions(queries, caps, featurestore.PseudoOptions{Seed: 1, SingleStep: singleStep})
	intents := map[string][]float64{}
	for _, s := range sessions {
		for _, e := range s.Experiences() {
			intents[featurestore.IntentHash(e.Intent, e.ContextTools)] = vecs[e.Intent]
		}
	}
	sp, err := SplitBySession(PseudoTransitions(sessions, DefaultRewards()), 0.25, 3)
	if err != nil {
		t.Fatal(err)
	}
	data := &Data{Graph: g, Features: feats, Pool: PoolOfLevels(g, []int{0})}
	if data.Train, err = Resolve(context.Background(), g, sp.Train, intents, nil, nil); err != nil {
		t.Fatal(err)
	}
	if data.Valid, err = Resolve(context.Background(), g, sp.Valid, intents, nil, nil); err != nil {
		t.Fatal(err)
	}
	return data
}

// TestContextAttentionTrains: on multi-step sessions the training samples
// carry context tools and a few steps move the context parameters (ctx_q,
// the attention query over context tools, needs two tools or more: a
// softmax over one is constant; ctx_gate needs one). On single-step sessions
// they get no gradient at all and stay bit-identical, which is what made the
// context attention dead weight before. Validation ranks each query as
// evaluation does: without context, all of its capabilities relevant.
func TestContextAttentionTrains(t *testing.T) {
	for _, single := range []bool{false, true} {
		t.Run(fmt.Sprintf("single=%v", single), func(t *testing.T) {
			data := multiStepData(t, 8, 60, single)
			withContext := map[int]int{}
			for _, s := range data.Train {
				withContext[len(s.Context)]++
			}
			for _, q := range queries(data.Valid) {
				if len(q.context) != 0 || len(q.relevant) != 3 {
					t.Fatalf("validation query with %d context tools and %d relevant capabilities, want 0 and 3", len(q.context), len(q.relevant))
				}
			}
			cfg := smallConfig()
			cfg.Model.L2 = 0 // no decay: only the data's gradient moves a parameter
			tr, err := NewTrainer(cfg, data)
			if err != nil {
				t.Fatal(err)
			}
			groups := func() map[string][]float64 {
				out := map[string][]float64{}
				for _, g := range tr.Model().Params.Groups() {
					if g.Name == "ctx_q" || g.Name == "ctx_gate" {
						out[g.Name] = slices.Clone(g.Data)
					}
				}
				return out
			}
			before := groups()
			if err := tr.trainValue(); err != nil {
				t.Fatal(err)
			}
			for range 5 {
				if _, err := tr.trainStep(); err != nil {
					t.Fatal(err)
				}
			}
			after := groups()
			for name, b := range before {
				var moved float64
				for i := range b {
					moved = math.Max(moved, math.Abs(after[name][i]-b[i]))
				}
				t.Logf("%s moved by up to %.3g; training samples by context size %v", name, moved, withContext)
				if single && (moved != 0 || len(withContext) != 1) {
					t.Errorf("single-step: %s moved by %g, samples by context size %v: want no context and no change", name, moved, withContext)
				}
				if !single && (moved == 0 || withContext[2] == 0) {
					t.Errorf("multi-step: %s did not move (samples by context size %v)", name, withContext)
				}
			}
		})
	}
}
