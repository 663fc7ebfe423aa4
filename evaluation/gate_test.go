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
	cosine := reportWithFirstHits(t, 200, 60)
	base := map[string]metrics.Report{"cosine": cosine}

	d, err := Gate(GateConfig{}, good, &same, base)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Improved || len(d.Checks) != 3 {
		t.Fatalf("a candidate within noise of Production and above cosine: %+v", d)
	}
	d, _ = Gate(GateConfig{}, bad, &good, base)
	if d.Improved || d.Checks[0].Passed {
		t.Fatalf("a clear MRR regression passed: %+v", d)
	}
	d, _ = Gate(GateConfig{}, good, nil, base)
	if !d.Improved || d.Checks[0].Detail != "no Production model" {
		t.Fatalf("without Production: %+v", d)
	}
	d, _ = Gate(GateConfig{}, cosine, nil, base)
	if d.Improved {
		t.Fatal("equal to the cosine baseline must not pass (strictly better)")
	}
	if _, err := Gate(GateConfig{NoRegression: []string{"hit_at_7"}}, good, &same, base); err == nil {
		t.Error("a cut-off that was not computed: no error")
	}
	if _, err := Gate(GateConfig{}, good, nil, nil); err == nil {
		t.Error("no baseline report: no error")
	}
}
