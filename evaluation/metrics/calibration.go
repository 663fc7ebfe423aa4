package metrics

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// DefaultBins is the ECE bin count when Options.Bins is 0.
const DefaultBins = 15

// ErrNoOptimum is wrapped by FitTemperature when the NLL has no minimum at a
// finite, positive temperature within its search range.
var ErrNoOptimum = errors.New("no temperature minimises the NLL")

// Softmax returns softmax(scores/t), computed after subtracting the largest
// score so that exp cannot overflow. t must be > 0.
func Softmax(scores []float64, t float64) []float64 {
	m := math.Inf(-1)
	for _, s := range scores {
		m = max(m, s)
	}
	out := make([]float64, len(scores))
	var sum float64
	for i, s := range scores {
		out[i] = math.Exp((s - m) / t)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// ECE is the expected calibration error over equal-width bins of [0, 1]:
// Σ_b (n_b/N)·|mean label_b − mean prob_b|. A probability p falls in the bin
// b with b/B < p ≤ (b+1)/B (0 in the first), edges i·(1/B): the binning of
// sklearn's calibration_curve(strategy="uniform"), so edge cases agree. 0 for
// no pairs, NaN when labels and probs differ in length; bins < 1 counts as
// DefaultBins.
func ECE(probs []float64, labels []bool, bins int) float64 {
	if len(labels) != len(probs) {
		return math.NaN()
	}
	b := newBinner(bins)
	for i, p := range probs {
		b.add(p, labels[i])
	}
	return b.ece()
}

// Brier is the mean of (p − label)². 0 for no pairs, NaN when labels and
// probs differ in length.
func Brier(probs []float64, labels []bool) float64 {
	if len(labels) != len(probs) {
		return math.NaN()
	}
	b := newBinner(1)
	for i, p := range probs {
		b.add(p, labels[i])
	}
	return b.brier()
}

// binner accumulates (probability, label) pairs for ECE and Brier, so that
// Compute need not hold every pair of a large evaluation.
type binner struct {
	inner         []float64 // numpy.linspace(0, 1, bins+1)[1:-1]
	n, sumP, sumY []float64
	total         int
	squares       float64
}

func newBinner(bins int) *binner {
	if bins < 1 {
		bins = DefaultBins
	}
	b := &binner{inner: make([]float64, bins-1), n: make([]float64, bins), sumP: make([]float64, bins), sumY: make([]float64, bins)}
	step := 1 / float64(bins)
	for i := range b.inner {
		b.inner[i] = float64(i+1) * step
	}
	return b
}

func (b *binner) add(p float64, label bool) {
	y := 0.0
	if label {
		y = 1
	}
	i := sort.SearchFloat64s(b.inner, p) // numpy.searchsorted, side="left"
	b.n[i]++
	b.sumP[i] += p
	b.sumY[i] += y
	b.total++
	b.squares += (p - y) * (p - y)
}

func (b *binner) ece() float64 {
	var ece float64
	for i, n := range b.n {
		if n > 0 {
			ece += n / float64(b.total) * math.Abs(b.sumY[i]/n-b.sumP[i]/n)
		}
	}
	return ece
}

func (b *binner) brier() float64 {
	if b.total == 0 {
		return 0
	}
	return b.squares / float64(b.total)
}

// Fit is the result of FitTemperature.
type Fit struct {
	Temperature float64
	NLL         float64 // mean over fitted queries of the query's mean −log p of its relevant candidates
	Queries     int     // queries with at least one relevant candidate (the others cannot be fitted)
	Iterations  int
}

// FitTemperature fits the temperature T of the per-query softmax(score/T) by
// minimising the NLL of the relevant candidates: each query contributes the
// mean −log p over its relevant candidates (the softmax cross-entropy with the
// target spread evenly over them, as the trainer's loss weights them), and
// queries count equally. Relevant items that are not candidates have no
// probability and are left out.
//
// The NLL is convex in β = 1/T (a log-sum-exp of functions linear in β) and
// its derivative, mean_q(E_p[s] − mean_r s_r), increases with β, so the root
// of the derivative is found by Newton's method on β, safeguarded by bisection
// (in log β) on a bracket of T from 1e-6 to 1e6 times the widest score range
// of a query. When the derivative does not change sign on that bracket the
// error wraps ErrNoOptimum: the scores separate the relevant candidates
// perfectly (T → 0), or do not favour them at all (T → ∞).
func FitTemperature(rankings []Ranking) (Fit, error) {
	if len(rankings) == 0 {
		return Fit{}, &InputError{Index: -1, Err: ErrEmpty, Reason: "no rankings to fit on"}
	}
	type query struct {
		scores  []float64
		relMean float64 // mean score of the relevant candidates
		nRel    int
	}
	var qs []query
	var width float64
	seen := make(map[string]bool, len(rankings))
	for i, r := range rankings {
		if err := r.validate(i, seen); err != nil {
			return Fit{}, err
		}
		q := query{scores: r.Scores}
		lo, hi := math.Inf(1), math.Inf(-1)
		for j, c := range r.Candidates {
			lo, hi = min(lo, r.Scores[j]), max(hi, r.Scores[j])
			if r.Relevant[c] > 0 {
				q.relMean += r.Scores[j]
				q.nRel++
			}
		}
		if q.nRel == 0 {
			continue
		}
		q.relMean /= float64(q.nRel)
		width = max(width, hi-lo)
		qs = append(qs, q)
	}
	if len(qs) == 0 {
		return Fit{}, fmt.Errorf("metrics: fit temperature: %w: no query has a relevant candidate", ErrNoOptimum)
	}
	if width == 0 {
		return Fit{}, fmt.Errorf("metrics: fit temperature: %w: every query's candidates score alike", ErrNoOptimum)
	}

	// grad returns dNLL/dβ and d²NLL/dβ² at β.
	grad := func(beta float64) (g, h float64) {
		for _, q := range qs {
			p := Softmax(q.scores, 1/beta)
			var mean, sq float64
			for j, s := range q.scores {
				mean += p[j] * s
			}
			for j, s := range q.scores {
				sq += p[j] * (s - mean) * (s - mean)
			}
			g += mean - q.relMean
			h += sq
		}
		return g / float64(len(qs)), h / float64(len(qs))
	}
	lo, hi := 1e-6/width, 1e6/width
	if g, _ := grad(lo); g >= 0 {
		return Fit{}, fmt.Errorf("metrics: fit temperature: %w: the NLL does not fall as T drops from %g (scores do not favour relevant candidates)", ErrNoOptimum, 1/lo)
	}
	if g, _ := grad(hi); g <= 0 {
		return Fit{}, fmt.Errorf("metrics: fit temperature: %w: the NLL still falls at T = %g (scores separate the relevant candidates perfectly)", ErrNoOptimum, 1/hi)
	}
	beta, it := 1/width, 0
	for it < 200 {
		it++
		g, h := grad(beta)
		if g == 0 {
			break
		}
		if g < 0 {
			lo = beta
		} else {
			hi = beta
		}
		next := beta - g/h
		if !(next > lo && next < hi) { // also catches h == 0 and NaN
			next = math.Sqrt(lo * hi)
		}
		done := math.Abs(next-beta) <= 4e-16*beta || hi-lo <= 4e-16*beta
		beta = next
		if done {
			break
		}
	}
	fit := Fit{Temperature: 1 / beta, Queries: len(qs), Iterations: it}
	for _, q := range qs {
		fit.NLL += queryNLL(q.scores, q.relMean, fit.Temperature)
	}
	fit.NLL /= float64(len(qs))
	return fit, nil
}

// queryNLL is the mean −log softmax(s/t) of a query's relevant candidates,
// log-sum-exp(s/t) − mean_r s_r/t, from the mean relevant score.
func queryNLL(scores []float64, relMean, t float64) float64 {
	m := math.Inf(-1)
	for _, s := range scores {
		m = max(m, s)
	}
	var sum float64
	for _, s := range scores {
		sum += math.Exp((s - m) / t)
	}
	return (m-relMean)/t + math.Log(sum)
}
