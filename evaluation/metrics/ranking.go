package metrics

import (
	"math"
	"sort"
)

// Rank returns the indices of scores from highest to lowest score; ties keep
// index order, so a ranking is reproducible.
func Rank(scores []float64) []int {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
	return idx
}

// ReciprocalRank is 1/(1-based position of the first relevant item), 0 when
// none is ranked.
func ReciprocalRank[T comparable](ranked []T, relevant map[T]bool) float64 {
	for i, id := range ranked {
		if relevant[id] {
			return 1 / float64(i+1)
		}
	}
	return 0
}

// HitAt is 1 when a relevant item is among the first k, else 0.
func HitAt[T comparable](ranked []T, relevant map[T]bool, k int) float64 {
	for i := 0; i < k && i < len(ranked); i++ {
		if relevant[ranked[i]] {
			return 1
		}
	}
	return 0
}

// CompletenessAt (COMP@k, COLT, CIKM 2024) is 1 when every relevant item is
// among the first k, else 0; 0 when nothing is relevant. A query that needs
// four capabilities is answered only when all four are offered.
func CompletenessAt[T comparable](ranked []T, relevant map[T]bool, k int) float64 {
	need := countTrue(relevant)
	if need == 0 {
		return 0
	}
	found := 0
	for i := 0; i < k && i < len(ranked); i++ {
		if relevant[ranked[i]] {
			found++
		}
	}
	if found == need {
		return 1
	}
	return 0
}

// NDCGAt is the binary-gain nDCG@k: DCG = Σ_{i≤k} rel_i/log2(i+1), divided
// by the DCG of an ideal ranking of min(k, |relevant|) relevant items. k ≤ 0
// means the whole list. 0 when nothing is relevant.
func NDCGAt[T comparable](ranked []T, relevant map[T]bool, k int) float64 {
	if k <= 0 || k > len(ranked) {
		k = len(ranked)
	}
	var dcg, ideal float64
	for i := range k {
		if relevant[ranked[i]] {
			dcg += 1 / math.Log2(float64(i+2))
		}
	}
	for i := range min(k, countTrue(relevant)) {
		ideal += 1 / math.Log2(float64(i+2))
	}
	if ideal == 0 {
		return 0
	}
	return dcg / ideal
}

// GradedNDCGAt is nDCG@k with linear gains, as sklearn's ndcg_score:
// DCG = Σ_{i≤k} grade_i/log2(i+1), divided by the DCG of the k highest grades
// (all of grades, ranked or not). Grades ≤ 0 are not relevant. k ≤ 0 means the
// whole list. 0 when nothing is relevant.
func GradedNDCGAt[T comparable](ranked []T, grades map[T]float64, k int) float64 {
	if k <= 0 || k > len(ranked) {
		k = len(ranked)
	}
	var dcg, ideal float64
	for i := range k {
		if g := grades[ranked[i]]; g > 0 {
			dcg += g / math.Log2(float64(i+2))
		}
	}
	best := make([]float64, 0, len(grades))
	for _, g := range grades {
		if g > 0 {
			best = append(best, g)
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(best)))
	for i := range min(k, len(best)) {
		ideal += best[i] / math.Log2(float64(i+2))
	}
	if ideal == 0 {
		return 0
	}
	return dcg / ideal
}

// AveragePrecision is the mean, over all relevant items, of the precision at
// each one's position; a relevant item that is not ranked adds 0 (trec_eval's
// convention: the denominator is every relevant item). 0 when nothing is
// relevant.
func AveragePrecision[T comparable](ranked []T, relevant map[T]bool) float64 {
	n := countTrue(relevant)
	if n == 0 {
		return 0
	}
	var sum float64
	var hits int
	for i, id := range ranked {
		if relevant[id] {
			hits++
			sum += float64(hits) / float64(i+1)
		}
	}
	return sum / float64(n)
}

// countTrue counts the relevant items of a set that may hold false entries.
func countTrue[T comparable](set map[T]bool) int {
	n := 0
	for _, ok := range set {
		if ok {
			n++
		}
	}
	return n
}
