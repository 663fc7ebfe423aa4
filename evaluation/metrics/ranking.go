// Package metrics holds capflow's ranking metrics as plain functions of a
// ranked list and a relevant set. It imports nothing of capflow, so the
// training stage validates with exactly the code evaluation reports with.
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
	for i := range min(k, len(relevant)) {
		ideal += 1 / math.Log2(float64(i+2))
	}
	if ideal == 0 {
		return 0
	}
	return dcg / ideal
}
