package shgat

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/internal/testenv"
)

// TestSealToolsScale runs message passing and a training step's backward
// pass on the real Seal-Tools hypergraph (4,076 tools, 2,422 capabilities on
// two levels): sparse incidence keeps memory to the node states, where the
// reference implementation ran out of memory with dense incidence matrices.
func TestSealToolsScale(t *testing.T) {
	dir := testenv.SealToolsDir(t)
	d, err := featurestore.ReadSealTools(context.Background(), dir, featurestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGraph(d.Tools, d.Capabilities)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Tools) < 4000 || len(g.Caps) < 2400 || g.Levels() != 2 {
		t.Fatalf("graph %d tools, %d capabilities, %d levels", len(g.Tools), len(g.Caps), g.Levels())
	}
	const dim = 64 // the cost is dominated by D×D projections; 64 keeps the test quick
	m, err := New(Config{Dim: dim, Seed: 1}, g.Levels())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 3))
	f := Features{Tools: randVec(rng, len(g.Tools)*dim, 0.1), Caps: randVec(rng, len(g.Caps)*dim, 0.1)}
	var batch []Example
	all := make([]int, len(g.Caps))
	for i := range all {
		all[i] = i
	}
	for range 8 {
		batch = append(batch, Example{Intent: randVec(rng, dim, 0.1), Context: []int{rng.IntN(len(g.Tools))}, Candidates: all})
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	out, err := m.Forward(Input{Graph: g, Features: f, Batch: batch, Train: true})
	if err != nil {
		t.Fatal(err)
	}
	dS := make([][]float64, len(batch))
	for i := range dS {
		dS[i] = randVec(rng, len(all), 1)
	}
	grads, _, err := out.Backward(dS)
	if err != nil {
		t.Fatal(err)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	for _, v := range grads.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatal("non-finite gradient")
		}
	}
	t.Logf("forward+backward at D=%d: %v, %.0f MB allocated", dim, time.Since(start), float64(after.TotalAlloc-before.TotalAlloc)/1e6)
}
