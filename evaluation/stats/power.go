package stats

import (
	"math"
)

// CohensH is the arcsine effect size between rates p1 and p2,
// 2·asin√p2 − 2·asin√p1 (statsmodels' proportion_effectsize(p2, p1)).
func CohensH(p1, p2 float64) (float64, error) {
	if err := checkRate("p1", p1); err != nil {
		return 0, err
	}
	if err := checkRate("p2", p2); err != nil {
		return 0, err
	}
	return 2*math.Asin(math.Sqrt(p2)) - 2*math.Asin(math.Sqrt(p1)), nil
}

// SampleSize is the answer of RequiredSampleSize.
type SampleSize struct {
	PerArm   int     // observations needed in each arm: ⌈Exact⌉
	Exact    float64 // the real solution of the power equation
	CohensH  float64
	Baseline float64
	MDE      float64
}

// RequiredSampleSize is the number of observations per arm a two-sided
// z-test at level alpha needs to detect a change of the rate from baseline
// to baseline+mde (mde absolute, either sign) with the given power, by
// Cohen's h and the normal approximation (see the package doc).
func RequiredSampleSize(baseline, mde, alpha, power float64) (SampleSize, error) {
	if err := checkRate("baseline", baseline); err != nil {
		return SampleSize{}, err
	}
	if err := checkRate("baseline + mde", baseline+mde); err != nil {
		return SampleSize{}, err
	}
	if err := checkAlpha(alpha); err != nil {
		return SampleSize{}, err
	}
	if err := checkPowerAlpha(power, alpha); err != nil {
		return SampleSize{}, err
	}
	h, _ := CohensH(baseline, baseline+mde)
	if h == 0 {
		return SampleSize{}, &InvalidArgError{Arg: "mde", Value: mde, Want: "≠ 0"}
	}
	t := solveNoncentrality(alpha, power)
	n := 2 * t * t / (h * h)
	return SampleSize{PerArm: int(math.Ceil(n)), Exact: n, CohensH: h, Baseline: baseline, MDE: mde}, nil
}

// MinDetectableEffect is the smallest absolute increase of the rate over
// baseline that a two-sided z-test at level alpha detects with the given
// power and n observations per arm: the inverse of RequiredSampleSize. The
// smallest detectable decrease from baseline p is MinDetectableEffect at
// 1 − p, because Cohen's h is symmetric under p → 1 − p. The error is an
// *InvalidArgError on "n" when no rate up to 1 is detectable.
func MinDetectableEffect(baseline, n, alpha, power float64) (float64, error) {
	if err := checkRate("baseline", baseline); err != nil {
		return 0, err
	}
	if !(n > 0) || math.IsInf(n, 0) {
		return 0, &InvalidArgError{Arg: "n", Value: n, Want: "finite and > 0"}
	}
	if err := checkAlpha(alpha); err != nil {
		return 0, err
	}
	if err := checkPowerAlpha(power, alpha); err != nil {
		return 0, err
	}
	h := solveNoncentrality(alpha, power) * math.Sqrt(2/n)
	phi := math.Asin(math.Sqrt(baseline)) + h/2
	if phi > math.Pi/2 {
		return 0, &InvalidArgError{Arg: "n", Value: n, Want: "large enough that some rate ≤ 1 is detectable from this baseline"}
	}
	s := math.Sin(phi)
	return s*s - baseline, nil
}

// solveNoncentrality returns the t > 0 with Φ(t − z) + Φ(−t − z) = power,
// z = Φ⁻¹(1 − α/2): the value of |h|·√(n/2) that gives the power. The
// left side increases in t, and t0 = z + Φ⁻¹(power) already reaches the
// power with its first term alone, so bisection on [0, t0] finds it to the
// last bit.
func solveNoncentrality(alpha, power float64) float64 {
	z := -zQuantile(alpha / 2)
	f := func(t float64) float64 { return stdNormalSF(z-t) + stdNormalSF(z+t) - power }
	lo, hi := 0.0, z+zQuantile(power) // hi > 0 and f(0) = α − power < 0, by checkPowerAlpha
	for range 200 {
		mid := lo + (hi-lo)/2
		if mid <= lo || mid >= hi {
			break
		}
		if f(mid) < 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// checkPowerAlpha also needs power > α: a two-sided test has power α at
// zero effect, so a lower target needs no data at all.
func checkPowerAlpha(power, alpha float64) error {
	if err := checkPower(power); err != nil {
		return err
	}
	if power <= alpha {
		return &InvalidArgError{Arg: "power", Value: power, Want: "> alpha"}
	}
	return nil
}
