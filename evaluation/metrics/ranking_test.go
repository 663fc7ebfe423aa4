package metrics

import (
	"math"
	"testing"
)

func TestRankingByHand(t *testing.T) {
	ranked := []string{"a", "b", "c", "d", "e"}
	rel := map[string]bool{"b": true, "d": true}
	if got := ReciprocalRank(ranked, rel); got != 0.5 {
		t.Errorf("RR = %v, want 0.5", got)
	}
	if HitAt(ranked, rel, 1) != 0 || HitAt(ranked, rel, 2) != 1 {
		t.Error("Hit@k wrong")
	}
	// DCG@5 = 1/log2(3) + 1/log2(5); ideal = 1 + 1/log2(3).
	want := (1/math.Log2(3) + 1/math.Log2(5)) / (1 + 1/math.Log2(3))
	if got := NDCGAt(ranked, rel, 5); math.Abs(got-want) > 1e-15 {
		t.Errorf("nDCG@5 = %v, want %v", got, want)
	}
	if got := NDCGAt(ranked, rel, 1); got != 0 {
		t.Errorf("nDCG@1 = %v, want 0", got)
	}
	if ReciprocalRank(ranked, map[string]bool{"z": true}) != 0 || NDCGAt(ranked, nil, 3) != 0 {
		t.Error("nothing relevant must score 0")
	}
	if r := Rank([]float64{0.1, 0.5, 0.5, -1}); r[0] != 1 || r[1] != 2 || r[2] != 0 || r[3] != 3 {
		t.Errorf("Rank = %v", r)
	}
}

func TestAveragePrecisionByHand(t *testing.T) {
	ranked := []string{"a", "b", "c", "d", "e"}
	// Relevant at positions 2 and 4: (1/2 + 2/4) / 2.
	if got := AveragePrecision(ranked, map[string]bool{"b": true, "d": true}); got != 0.5 {
		t.Errorf("AP = %v, want 0.5", got)
	}
	// A relevant item never ranked counts in the denominator: (1/2 + 2/4) / 3.
	if got := AveragePrecision(ranked, map[string]bool{"b": true, "d": true, "z": true}); math.Abs(got-1.0/3) > 1e-15 {
		t.Errorf("AP with an unranked relevant item = %v, want 1/3", got)
	}
	// Positions 1, 3, 5: (1/1 + 2/3 + 3/5) / 3; false entries are not relevant.
	want := (1 + 2.0/3 + 3.0/5) / 3
	if got := AveragePrecision(ranked, map[string]bool{"a": true, "c": true, "e": true, "b": false}); math.Abs(got-want) > 1e-15 {
		t.Errorf("AP = %v, want %v", got, want)
	}
	if AveragePrecision(ranked, nil) != 0 || AveragePrecision(ranked, map[string]bool{"z": true}) != 0 {
		t.Error("AP must be 0 when nothing relevant is ranked")
	}
}

func TestNDCGIgnoresFalseEntries(t *testing.T) {
	ranked := []string{"a", "b", "c"}
	with := NDCGAt(ranked, map[string]bool{"b": true, "x": false, "y": false}, 0)
	without := NDCGAt(ranked, map[string]bool{"b": true}, 0)
	if with != without || with != 1/math.Log2(3) {
		t.Errorf("nDCG with false entries = %v, without = %v, want 1/log2(3)", with, without)
	}
}

func TestGradedNDCGByHand(t *testing.T) {
	l2 := math.Log2
	ranked := []string{"a", "b", "c", "d"}
	grades := map[string]float64{"a": 1, "c": 3, "d": 2, "b": 0}
	// Linear gains: DCG = 1/log2(2) + 3/log2(4) + 2/log2(5); ideal order 3, 2, 1.
	dcg := 1 + 3/l2(4) + 2/l2(5)
	ideal := 3 + 2/l2(3) + 1/l2(4)
	if got := GradedNDCGAt(ranked, grades, 0); math.Abs(got-dcg/ideal) > 1e-15 {
		t.Errorf("graded nDCG = %v, want %v", got, dcg/ideal)
	}
	if got, want := GradedNDCGAt(ranked, grades, 2), 1/(3+2/l2(3)); math.Abs(got-want) > 1e-15 {
		t.Errorf("graded nDCG@2 = %v, want %v", got, want)
	}
	// k beyond the list is the whole list.
	if GradedNDCGAt(ranked, grades, 99) != GradedNDCGAt(ranked, grades, 0) {
		t.Error("graded nDCG@99 must equal the whole list's")
	}
	// A relevant item that is not ranked still counts in the ideal DCG.
	if got, want := GradedNDCGAt([]string{"a", "b"}, map[string]float64{"a": 1, "z": 2}, 0), 1/(2+1/l2(3)); math.Abs(got-want) > 1e-15 {
		t.Errorf("graded nDCG with an unranked item = %v, want %v", got, want)
	}
	// With grades in {0, 1} it is the binary nDCG.
	bin := map[string]float64{"b": 1, "d": 1}
	if g, b := GradedNDCGAt(ranked, bin, 3), NDCGAt(ranked, map[string]bool{"b": true, "d": true}, 3); math.Abs(g-b) > 1e-15 {
		t.Errorf("graded %v != binary %v on 0/1 grades", g, b)
	}
	if GradedNDCGAt(ranked, map[string]float64{"a": 0}, 0) != 0 {
		t.Error("graded nDCG must be 0 when nothing is relevant")
	}
}

// TestGradedNDCGMatchesSklearnDocstring checks the example of sklearn's
// ndcg_score documentation: 0.69, 0.49, 0.35 and 1.0, which its doctests
// (pytest's NUMBER option) match within 10^-digits shown. The cross-check
// test compares with ndcg_score itself to 1e-9.
func TestGradedNDCGMatchesSklearnDocstring(t *testing.T) {
	items := []string{"i0", "i1", "i2", "i3", "i4"}
	grades := map[string]float64{"i0": 10, "i3": 1, "i4": 5}
	rankBy := func(scores []float64) []string {
		out := make([]string, len(scores))
		for r, j := range Rank(scores) {
			out[r] = items[j]
		}
		return out
	}
	for _, c := range []struct {
		scores []float64
		k      int
		want   float64
	}{
		{[]float64{.1, .2, .3, 4, 70}, 0, 0.69},
		{[]float64{.05, 1.1, 1., .5, .0}, 0, 0.49},
		{[]float64{.05, 1.1, 1., .5, .0}, 4, 0.35},
		{[]float64{10, 0, -1, 1, 5}, 4, 1},
	} {
		got := GradedNDCGAt(rankBy(c.scores), grades, c.k)
		if math.Abs(got-c.want) >= 0.01 {
			t.Errorf("scores %v k=%d: nDCG = %v, sklearn's docs say %v", c.scores, c.k, got, c.want)
		}
	}
}

func TestGiniByHand(t *testing.T) {
	for _, c := range []struct {
		counts []float64
		want   float64
	}{
		{[]float64{0, 0, 0, 4}, 0.75}, // (n-1)/n: one item has everything
		{[]float64{1, 1, 1, 1}, 0},
		{[]float64{3, 1, 2}, 2.0 / 9}, // Σ|ci-cj| over ordered pairs = 8; 8 / (2·9·2)
		{[]float64{0, 0}, 0},
		{nil, 0},
	} {
		if got := Gini(c.counts); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("Gini(%v) = %v, want %v", c.counts, got, c.want)
		}
	}
	counts := []float64{3, 1, 2}
	Gini(counts)
	if counts[0] != 3 || counts[1] != 1 {
		t.Error("Gini must not reorder its argument")
	}
}

func TestCompletenessAt(t *testing.T) {
	ranked := []string{"a", "b", "c", "d"}
	rel := map[string]bool{"a": true, "c": true}
	for k, want := range map[int]float64{1: 0, 2: 0, 3: 1, 10: 1} {
		if got := CompletenessAt(ranked, rel, k); got != want {
			t.Errorf("COMP@%d = %v, want %v", k, got, want)
		}
	}
	if got := CompletenessAt(ranked, map[string]bool{"z": true}, 4); got != 0 {
		t.Errorf("relevant item never ranked: %v", got)
	}
	if got := CompletenessAt(ranked, map[string]bool{}, 4); got != 0 {
		t.Errorf("nothing relevant: %v", got)
	}
}
