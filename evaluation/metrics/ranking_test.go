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
