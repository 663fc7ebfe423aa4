package metrics

import "slices"

// Gini is the Gini coefficient of non-negative counts, e.g. how often each
// catalog capability is recommended (never-recommended ones as zeros):
// Σ_i (2i − n − 1)·c_(i) / (n·Σc) over the counts sorted ascending, i from 1.
// 0 when all counts are equal, (n−1)/n when one item has them all; 0 for no
// counts or a zero total.
func Gini(counts []float64) float64 {
	c := slices.Clone(counts)
	slices.Sort(c)
	n := float64(len(c))
	var num, total float64
	for i, v := range c {
		num += (2*float64(i+1) - n - 1) * v
		total += v
	}
	if total == 0 {
		return 0
	}
	return num / (n * total)
}
