package drift

import (
	"fmt"
	"slices"
)

// Correction is a multiple-testing correction of p-values.
type Correction int

const (
	// BenjaminiHochberg controls the false discovery rate (statsmodels
	// multipletests method "fdr_bh"). It is the zero value: a drift check
	// runs one test per dimension, and with hundreds of them Bonferroni
	// misses drift spread thinly over many dimensions.
	BenjaminiHochberg Correction = iota
	// Bonferroni controls the family-wise error rate: p·k, capped at 1.
	Bonferroni
)

func (c Correction) String() string {
	switch c {
	case BenjaminiHochberg:
		return "benjamini-hochberg"
	case Bonferroni:
		return "bonferroni"
	}
	return fmt.Sprintf("Correction(%d)", int(c))
}

// Adjust returns the corrected p-values of p, in p's order.
func Adjust(p []float64, c Correction) ([]float64, error) {
	for i, v := range p {
		if !(v >= 0 && v <= 1) {
			return nil, &InputError{Arg: "p-values", Problem: fmt.Sprintf("has %v at %d, want [0, 1]", v, i)}
		}
	}
	k := float64(len(p))
	out := make([]float64, len(p))
	switch c {
	case Bonferroni:
		for i, v := range p {
			out[i] = min(1, v*k)
		}
	case BenjaminiHochberg:
		// q_(i) = min over j ≥ i of p_(j)·k/j, in ascending order of p.
		order := make([]int, len(p))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int {
			switch {
			case p[a] < p[b]:
				return -1
			case p[a] > p[b]:
				return 1
			}
			return 0
		})
		q := 1.0
		for r := len(order) - 1; r >= 0; r-- {
			i := order[r]
			q = min(q, p[i]*k/float64(r+1))
			out[i] = q
		}
	default:
		return nil, &InputError{Arg: "correction", Problem: fmt.Sprintf("is unknown (%d)", int(c))}
	}
	return out, nil
}
