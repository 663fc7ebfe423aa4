package node2vec

import (
	"context"
	"testing"
	"time"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sealToolsGraph is SealToolsGraph on the test data set.
func sealToolsGraph(t testing.TB) (*Graph, []Pair) {
	t.Helper()
	g, cands, err := SealToolsGraph(context.Background(), testenv.SealToolsDir(t))
	require.NoError(t, err)
	return g, cands
}

// TestLinkPredictionSealTools is the quality test. On this graph every
// tool has exactly one field, so the tool↔field graph alone is a forest and
// hiding any tool—field edge would isolate the tool; the co-call edges are
// what lets HoldOut hide 10% of the tool—field edges (408 of 4,076) while
// every node keeps an edge. Few of them point to the hidden field (about 9%
// of co-called pairs even share a top-level field), so the held-out edges
// are weakly determined by the graph and the AUC is modest; the training
// edges, which the graph does contain, are recovered almost perfectly.
//
// Observed (WalksPerNode 10): held-out AUC 0.602 for this test's seeds
// (Workers 1, Seed 1, hold-out seed 7); over hold-out seeds 7, 8, 9 × train
// seeds 1, 2 (two workers) it ranged 0.584–0.634 (mean ≈ 0.61, sd ≈ 0.016);
// the design config (40 walks) gave 0.59–0.62. Cosine AUC on training
// edges: 0.997. Floors: 0.55 held-out — 0.034 under the lowest of those
// runs (2 sd), yet 2.5 null standard deviations (√((n₊+n₋+1)/(12n₊n₋)) ≈
// 0.02) above chance, so an embedding that carries no signal fails it —
// and 0.95 for the training edges.
func TestLinkPredictionSealTools(t *testing.T) {
	if raceEnabled {
		// One goroutine (Workers 1) and ~20× slower under the detector: the
		// race-relevant code is covered by the small tests.
		t.Skip("single-goroutine quality test; run without -race")
	}
	g, cands := sealToolsGraph(t)
	require.Equal(t, 4076, len(cands))
	s, err := HoldOut(g, cands, 0.1, 7)
	require.NoError(t, err)
	require.Len(t, s.TestPos, 408)
	require.Len(t, s.TestNeg, 408)
	require.Equal(t, g.NumEdges()-408, s.Train.NumEdges())

	cfg := DefaultConfig()
	cfg.WalksPerNode = 10
	cfg.Workers = 1
	start := time.Now()
	emb, err := Train(context.Background(), s.Train, cfg)
	require.NoError(t, err)
	elapsed := time.Since(start)
	auc, err := LinkPredictionAUC(context.Background(), emb, s, 0)
	require.NoError(t, err)
	trainAUC := cosineAUC(t, emb, s.TrainPos, s.TrainNeg)
	t.Logf("Seal-Tools: %d nodes, %d edges; train %v; held-out Hadamard+LR AUC %.4f; training-edge cosine AUC %.4f",
		g.NumNodes(), g.NumEdges(), elapsed, auc, trainAUC)
	assert.Greater(t, auc, 0.55)
	assert.Greater(t, trainAUC, 0.95)
}

func cosineAUC(t *testing.T, e *Embeddings, pos, neg []Pair) float64 {
	t.Helper()
	var scores []float64
	var labels []bool
	for k, ps := range [][]Pair{pos, neg} {
		for _, p := range ps {
			a, _ := e.Vector(p.U)
			b, _ := e.Vector(p.V)
			scores = append(scores, cosine(a, b))
			labels = append(labels, k == 0)
		}
	}
	auc, err := AUC(scores, labels)
	require.NoError(t, err)
	return auc
}

// BenchmarkTrainSealTools times the design configuration on the Seal-Tools
// graph with all cores: go test -run - -bench TrainSealTools.
func BenchmarkTrainSealTools(b *testing.B) {
	g, _ := sealToolsGraph(b)
	cfg := DefaultConfig()
	for b.Loop() {
		if _, err := Train(context.Background(), g, cfg); err != nil {
			b.Fatal(err)
		}
	}
}
