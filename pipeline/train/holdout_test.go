package train

import (
	"errors"
	"fmt"
	"testing"

	"github.com/capflow/capflow/featurestore"
)

// TrainedOn reads a train run's params back into the queries it fitted: the
// pseudo-prefixed ones its split did not hold out, all of them under a
// temporal split, none for logged experiences, and "unknown" without the
// params.
func TestTrainedOnFromRunParams(t *testing.T) {
	var qs []featurestore.Query
	for i := range 100 {
		qs = append(qs, featurestore.Query{ID: fmt.Sprintf("dev-%d", i)}, featurestore.Query{ID: fmt.Sprintf("test_in_domain-%d", i)})
	}
	var dev []featurestore.Query
	for _, q := range qs {
		if q.ID[:4] == "dev-" {
			dev = append(dev, q)
		}
	}
	params := map[string]string{ParamPseudoPrefix: "dev-", ParamSplit: SplitBySessionHash, ParamValidFraction: "0.2", ParamSplitSeed: "3"}
	trained, known, err := TrainedOn(params, qs)
	if err != nil || !known {
		t.Fatalf("session split: known %v, err %v", known, err)
	}
	held, err := HeldOutQueries(dev, Source{ValidFraction: 0.2, SplitSeed: 3})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, q := range trained {
		seen[q.ID]++
	}
	for _, q := range held {
		seen[q.ID] += 10
	}
	if len(seen) != len(dev) {
		t.Fatalf("trained %d + held out %d cover %d ids, want the %d dev queries", len(trained), len(held), len(seen), len(dev))
	}
	for id, n := range seen {
		if n != 1 && n != 10 {
			t.Fatalf("%s: trained and held out at once, or twice (%d)", id, n)
		}
	}

	params[ParamSplit] = SplitByTime
	if trained, _, _ = TrainedOn(params, qs); len(trained) != len(dev) {
		t.Errorf("temporal split: %d trained, want every dev query (%d)", len(trained), len(dev))
	}
	if trained, known, _ = TrainedOn(map[string]string{ParamPseudoPrefix: ""}, qs); !known || len(trained) != 0 {
		t.Errorf("logged experiences: known %v, %d trained", known, len(trained))
	}
	if _, known, _ = TrainedOn(map[string]string{"lr": "0.001"}, qs); known {
		t.Error("a run without the params: known")
	}
	var se *SplitError
	params = map[string]string{ParamPseudoPrefix: "dev-", ParamSplit: SplitBySessionHash, ParamValidFraction: "x", ParamSplitSeed: "3"}
	if _, _, err := TrainedOn(params, qs); !errors.As(err, &se) {
		t.Errorf("unreadable fraction: %v, want a *SplitError", err)
	}
}
