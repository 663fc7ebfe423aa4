package stats

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Alternative is the alternative hypothesis of a test.
type Alternative int

const (
	TwoSided Alternative = iota // arm 1 ≠ arm 2
	Greater                     // arm 1 > arm 2
	Less                        // arm 1 < arm 2
)

func (a Alternative) String() string {
	switch a {
	case TwoSided:
		return "two-sided"
	case Greater:
		return "greater"
	case Less:
		return "less"
	}
	return fmt.Sprintf("Alternative(%d)", int(a))
}

func (a Alternative) check() error {
	if a < TwoSided || a > Less {
		return &InvalidArgError{Arg: "alternative", Value: float64(a), Want: "TwoSided, Greater or Less"}
	}
	return nil
}

// Interval is a confidence interval; a one-sided interval has an infinite end.
type Interval struct {
	Lo, Hi float64
}

// Contains reports whether x is in the closed interval.
func (iv Interval) Contains(x float64) bool { return iv.Lo <= x && x <= iv.Hi }

// stdNormalSF is the standard normal survival function. gonum's
// Normal.Survival computes 1 − erf, which rounds tail p-values below ~1e-17
// to zero; erfc keeps them.
func stdNormalSF(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// zQuantile is Φ⁻¹(p).
func zQuantile(p float64) float64 { return distuv.UnitNormal.Quantile(p) }

// pValue is the p-value of stat under a symmetric null distribution with
// survival function sf.
func pValue(alt Alternative, stat float64, sf func(float64) float64) float64 {
	switch alt {
	case Greater:
		return sf(stat)
	case Less:
		return sf(-stat)
	}
	return math.Min(1, 2*sf(math.Abs(stat)))
}

// interval is the 1−α interval around est with standard error se; upper(a)
// is the null distribution's value exceeded with probability a.
func interval(alt Alternative, est, se, alpha float64, upper func(float64) float64) Interval {
	switch alt {
	case Greater:
		return Interval{Lo: est - upper(alpha)*se, Hi: math.Inf(1)}
	case Less:
		return Interval{Lo: math.Inf(-1), Hi: est + upper(alpha)*se}
	}
	h := upper(alpha/2) * se
	return Interval{Lo: est - h, Hi: est + h}
}
