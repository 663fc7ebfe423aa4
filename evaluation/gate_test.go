package evaluation

import (
	"fmt"
	"testing"

	"github.com/capflow/capflow/evaluation/metrics"
)

// reportWithFirstHits builds a report over n queries where the relevant item
// is ranked first in hits of them and fourth in the others.
func reportWithFirstHits(t *testing.T, n, hits int) metrics.Report {
	t.Helper()
	var rks []metrics.Ranking
	for i := range n {
		rk := metrics.Ranking{QueryID: fmt.Sprintf("q%d", i), Candidates: []string{"a", "b", "c", "d", "e"},
			Relevant: map[string]float64{"a": 1}}
		if i < hits {
			rk.Scores = []float64{5, 4, 3, 2, 1}
		} else {
			rk.Scores = []float64{2, 5, 4, 3, 1}
		}
		rks = append(rks, rk)
	}
	rep, err := metrics.Compute(rks, metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestGate(t *testing.T) {
	good, same, bad := reportWithFirstHits(t, 200, 150), reportWithFirstHits(t, 200, 148), reportWithFirstHits(t, 200, 100)
	cosine, bm25 := reportWithFirstHits(t, 200, 60), reportWithFirstHits(t, 200, 120)
	base := map[string]metrics.Report{"cosine": cosine, "bm25": bm25}

	d, err := Gate(GateConfig{}, good, &same, base)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Improved || len(d.Checks) != 4 {
		t.Fatalf("a candidate within noise of Production and above cosine and BM25: %+v", d)
	}
	// Above cosine but below BM25 (the strongest classical baseline): refused,
	// by the BM25 check alone.
	d, err = Gate(GateConfig{}, bad, nil, base)
	if err != nil {
		t.Fatal(err)
	}
	if d.Improved || !d.Checks[2].Passed || d.Checks[3].Passed || d.Checks[3].Rule != "mrr above the bm25 baseline" {
		t.Fatalf("a candidate below BM25 passed or failed for another reason: %+v", d)
	}
	if d, _ = Gate(GateConfig{Baselines: []string{"cosine"}}, bad, nil, base); !d.Improved {
		t.Fatalf("with cosine as the only baseline, a candidate above it: %+v", d)
	}
	d, _ = Gate(GateConfig{}, bad, &good, base)
	if d.Improved || d.Checks[0].Passed {
		t.Fatalf("a clear MRR regression passed: %+v", d)
	}
	d, _ = Gate(GateConfig{}, good, nil, base)
	if !d.Improved || d.Checks[0].Detail != "no Production model" {
		t.Fatalf("without Production: %+v", d)
	}
	d, _ = Gate(GateConfig{}, bm25, nil, base)
	if d.Improved {
		t.Fatal("equal to the BM25 baseline must not pass (strictly better)")
	}
	if _, err := Gate(GateConfig{}, good, nil, map[string]metrics.Report{"cosine": cosine}); err == nil {
		t.Error("no bm25 report for the default gate: no error")
	}
	if _, err := Gate(GateConfig{NoRegression: []string{"hit_at_7"}}, good, &same, base); err == nil {
		t.Error("a cut-off that was not computed: no error")
	}
	if _, err := Gate(GateConfig{}, good, nil, nil); err == nil {
		t.Error("no baseline report: no error")
	}
}
