package counterfactual

import (
	"fmt"
	"math"
)

// DefaultClip is the importance weight cap Evaluate uses unless told otherwise.
const DefaultClip = 10

// z95 is the standard normal quantile of a two-sided 95% interval.
const z95 = 1.959963984540054

// Estimate is one estimator's value of the target policy with its
// uncertainty and weight diagnostics.
type Estimate struct {
	Value  float64 `json:"value"`
	StdErr float64 `json:"std_err"` // normal-approximation standard error
	Low    float64 `json:"low"`     // Value − 1.96·StdErr
	High   float64 `json:"high"`    // Value + 1.96·StdErr
	N      int     `json:"n"`

	// Weight diagnostics; zero for estimates that use no weights.
	ESS       float64 `json:"ess"`        // Kish effective sample size (Σw)²/Σw² of the clipped weights
	Clipped   float64 `json:"clipped"`    // fraction of rounds whose weight was clipped
	MaxWeight float64 `json:"max_weight"` // largest weight before clipping
}

func (e *Estimate) interval() {
	e.Low, e.High = e.Value-z95*e.StdErr, e.Value+z95*e.StdErr
}

// weights are the clipped importance weights min(π/μ, clip) of the logged
// actions, with their diagnostics filled into est.
func weights(pi, mu []float64, clip float64, est *Estimate) ([]float64, error) {
	n := len(pi)
	switch {
	case n < 2:
		return nil, &InputError{Field: "pi", Err: ErrEmpty, Detail: fmt.Sprintf("%d rounds, need at least 2 for a standard error", n)}
	case len(mu) != n:
		return nil, &InputError{Field: "mu", Err: ErrLength, Detail: fmt.Sprintf("%d propensities for %d rounds", len(mu), n)}
	case !(clip > 0):
		return nil, &ConfigError{Field: "clip", Reason: fmt.Sprintf("must be positive (+Inf: no clipping), got %v", clip)}
	}
	w := make([]float64, n)
	var sum, sumSq float64
	clipped := 0
	for i := range n {
		if !(pi[i] >= 0 && pi[i] <= 1) {
			return nil, &InputError{Field: fmt.Sprintf("pi[%d]", i), Err: ErrRange, Detail: fmt.Sprintf("%v, want [0,1]", pi[i])}
		}
		if !(mu[i] > 0 && mu[i] <= 1) {
			return nil, &InputError{Field: fmt.Sprintf("mu[%d]", i), Err: ErrRange, Detail: fmt.Sprintf("%v, want (0,1]", mu[i])}
		}
		raw := pi[i] / mu[i]
		est.MaxWeight = math.Max(est.MaxWeight, raw)
		w[i] = raw
		if raw > clip {
			w[i] = clip
			clipped++
		}
		sum += w[i]
		sumSq += w[i] * w[i]
	}
	est.N = n
	est.Clipped = float64(clipped) / float64(n)
	if sumSq > 0 {
		est.ESS = sum * sum / sumSq
	}
	return w, nil
}

func checkSlice(name string, x []float64, n int) error {
	if len(x) != n {
		return &InputError{Field: name, Err: ErrLength, Detail: fmt.Sprintf("%d values for %d rounds", len(x), n)}
	}
	for i, v := range x {
		if !finite(v) {
			return &InputError{Field: fmt.Sprintf("%s[%d]", name, i), Err: ErrNonFinite, Detail: fmt.Sprint(v)}
		}
	}
	return nil
}

// meanSE is the mean of terms and its standard error sd/√n (n−1 in the sd).
func meanSE(terms []float64) (mean, se float64) {
	n := float64(len(terms))
	for _, t := range terms {
		mean += t
	}
	mean /= n
	var ss float64
	for _, t := range terms {
		ss += (t - mean) * (t - mean)
	}
	return mean, math.Sqrt(ss / (n - 1) / n)
}

// IPS is the inverse propensity score estimate (1/N)·Σ w_i r_i, with
// pi[i] = π(a_i|x_i) of the target policy, mu[i] = μ(a_i|x_i) of the logger
// and r[i] the reward of logged round i; weights are capped at clip
// (math.Inf(1) for none).
func IPS(pi, mu, r []float64, clip float64) (Estimate, error) {
	var est Estimate
	w, err := weights(pi, mu, clip, &est)
	if err != nil {
		return Estimate{}, err
	}
	if err := checkSlice("r", r, len(w)); err != nil {
		return Estimate{}, err
	}
	terms := make([]float64, len(w))
	for i := range w {
		terms[i] = w[i] * r[i]
	}
	est.Value, est.StdErr = meanSE(terms)
	est.interval()
	return est, nil
}

// SNIPS is the self-normalised IPS estimate Σ w_i r_i / Σ w_i, its standard
// error by the delta method. Arguments as for IPS. It returns ErrNoSupport
// when every weight is zero.
func SNIPS(pi, mu, r []float64, clip float64) (Estimate, error) {
	var est Estimate
	w, err := weights(pi, mu, clip, &est)
	if err != nil {
		return Estimate{}, err
	}
	if err := checkSlice("r", r, len(w)); err != nil {
		return Estimate{}, err
	}
	var sw, swr float64
	for i := range w {
		sw += w[i]
		swr += w[i] * r[i]
	}
	if sw == 0 {
		return Estimate{}, &InputError{Field: "pi", Err: ErrNoSupport, Detail: "every importance weight is 0"}
	}
	est.Value = swr / sw
	var ss float64
	for i := range w {
		d := w[i] * (r[i] - est.Value)
		ss += d * d
	}
	est.StdErr = math.Sqrt(ss) / sw
	est.interval()
	return est, nil
}

// DR is the doubly robust estimate
//
//	(1/N) Σ [qPi[i] + w_i·(r[i] − qA[i])]
//
// where qPi[i] = Σ_a π(a|x_i)·q̂(x_i,a) is the reward model's value of the
// target policy in round i and qA[i] = q̂(x_i,a_i) its prediction for the
// logged action; other arguments as for IPS. Clipping applies to the
// correction term only.
func DR(pi, mu, r, qPi, qA []float64, clip float64) (Estimate, error) {
	var est Estimate
	w, err := weights(pi, mu, clip, &est)
	if err != nil {
		return Estimate{}, err
	}
	for _, s := range []struct {
		name string
		x    []float64
	}{{"r", r}, {"qPi", qPi}, {"qA", qA}} {
		if err := checkSlice(s.name, s.x, len(w)); err != nil {
			return Estimate{}, err
		}
	}
	terms := make([]float64, len(w))
	for i := range w {
		terms[i] = qPi[i] + w[i]*(r[i]-qA[i])
	}
	est.Value, est.StdErr = meanSE(terms)
	est.interval()
	return est, nil
}

// DirectMethod is the reward model's own estimate (1/N)·Σ qPi[i]: low
// variance, but biased by whatever the model gets wrong.
func DirectMethod(qPi []float64) (Estimate, error) {
	if len(qPi) < 2 {
		return Estimate{}, &InputError{Field: "qPi", Err: ErrEmpty, Detail: fmt.Sprintf("%d rounds, need at least 2 for a standard error", len(qPi))}
	}
	if err := checkSlice("qPi", qPi, len(qPi)); err != nil {
		return Estimate{}, err
	}
	est := Estimate{N: len(qPi)}
	est.Value, est.StdErr = meanSE(qPi)
	est.interval()
	return est, nil
}
