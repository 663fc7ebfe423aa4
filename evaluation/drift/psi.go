package drift

import (
	"fmt"
	"math"
	"sort"
)

// Defaults of PSIConfig's zero fields.
const (
	DefaultBins         = 10
	DefaultPSIEpsilon   = 1e-4
	DefaultPSIThreshold = 0.2
)

// PSIConfig configures PSI; zero fields take the defaults.
type PSIConfig struct {
	Bins      int     // quantile bins of the reference; 0 means 10
	Epsilon   float64 // floor of a bin's fraction; 0 means 1e-4
	Threshold float64 // drift when PSI > Threshold; 0 means 0.2
}

// PSIResult is a population stability index.
type PSIResult struct {
	PSI          float64
	Drift        bool // PSI > Threshold
	Threshold    float64
	Edges        []float64 // interior bin edges (the reference quantiles, ties merged); len(Edges)+1 bins
	Reference    []float64 // fraction of the reference in each bin, after the Epsilon floor
	Current      []float64 // likewise for the current sample
	Contribution []float64 // each bin's term of PSI
}

// PSI compares the current distribution of a score with the reference one
// (see the package doc for the binning and the epsilon).
func PSI(reference, current []float64, cfg PSIConfig) (PSIResult, error) {
	if cfg.Bins == 0 {
		cfg.Bins = DefaultBins
	}
	if cfg.Epsilon == 0 {
		cfg.Epsilon = DefaultPSIEpsilon
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultPSIThreshold
	}
	switch {
	case cfg.Bins < 2:
		return PSIResult{}, &InputError{Arg: "config.Bins", Problem: fmt.Sprintf("is %d, want ≥ 2", cfg.Bins)}
	case !(cfg.Epsilon > 0 && cfg.Epsilon < 1):
		return PSIResult{}, &InputError{Arg: "config.Epsilon", Problem: fmt.Sprintf("is %v, want (0, 1)", cfg.Epsilon)}
	case !(cfg.Threshold > 0) || math.IsInf(cfg.Threshold, 0):
		return PSIResult{}, &InputError{Arg: "config.Threshold", Problem: fmt.Sprintf("is %v, want finite and > 0", cfg.Threshold)}
	case len(reference) == 0:
		return PSIResult{}, &InputError{Arg: "reference", Problem: "is empty"}
	case len(current) == 0:
		return PSIResult{}, &InputError{Arg: "current", Problem: "is empty"}
	}
	if err := checkFinite("reference", reference); err != nil {
		return PSIResult{}, err
	}
	if err := checkFinite("current", current); err != nil {
		return PSIResult{}, err
	}

	ref := sortedCopy(reference)
	var edges []float64
	for k := 1; k < cfg.Bins; k++ {
		e := linearQuantile(ref, float64(k)/float64(cfg.Bins))
		if len(edges) == 0 || e > edges[len(edges)-1] {
			edges = append(edges, e)
		}
	}
	r := PSIResult{Threshold: cfg.Threshold, Edges: edges}
	r.Reference = fractions(reference, edges, cfg.Epsilon)
	r.Current = fractions(current, edges, cfg.Epsilon)
	r.Contribution = make([]float64, len(r.Reference))
	for i, rf := range r.Reference {
		c := r.Current[i]
		r.Contribution[i] = (c - rf) * math.Log(c/rf)
		r.PSI += r.Contribution[i]
	}
	r.Drift = r.PSI > cfg.Threshold
	return r, nil
}

// linearQuantile is numpy's default quantile (Hyndman–Fan type 7) of a
// sorted sample. gonum's stat.Quantile offers types 1 and 4 only, and
// matching numpy keeps the bins the same as a notebook's.
func linearQuantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	// numpy's lerp, which interpolates from the nearer end.
	a, b, f := sorted[i], sorted[i+1], pos-float64(i)
	if f >= 0.5 {
		return b - (b-a)*(1-f)
	}
	return a + (b-a)*f
}

// fractions bins x into (−∞, e0], (e0, e1], …, (e_last, ∞) and returns the
// fraction in each bin, floored at eps.
func fractions(x, edges []float64, eps float64) []float64 {
	counts := make([]float64, len(edges)+1)
	for _, v := range x {
		counts[sort.SearchFloat64s(edges, v)]++ // first edge ≥ v
	}
	for i := range counts {
		counts[i] = max(counts[i]/float64(len(x)), eps)
	}
	return counts
}
