package stats

import (
	"math"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Summary is what Welch's t-test needs of a sample.
type Summary struct {
	N    int
	Mean float64
	SD   float64 // sample standard deviation, ddof = 1
}

// Summarize returns the summary of x. It needs two finite observations.
func Summarize(x []float64) (Summary, error) {
	return summarize("sample", x)
}

func summarize(arg string, x []float64) (Summary, error) {
	if len(x) < 2 {
		return Summary{}, &TooFewSamplesError{Arg: arg, Got: len(x), Want: 2}
	}
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Summary{}, &InvalidArgError{Arg: "an observation of " + arg, Value: v, Want: "finite"}
		}
	}
	mean, sd := stat.MeanStdDev(x, nil) // unbiased: divides by n − 1
	return Summary{N: len(x), Mean: mean, SD: sd}, nil
}

// TTest is the result of Welch's t-test.
type TTest struct {
	Mean1, Mean2 float64
	Diff         float64 // Mean1 − Mean2
	SE           float64 // √(s1²/n1 + s2²/n2)
	T            float64
	DF           float64 // Welch–Satterthwaite
	PValue       float64
	CI           Interval // for Diff at level 1−α
	Alternative  Alternative
	Alpha        float64
}

// WelchTTest runs Welch's unequal-variance t-test on two samples.
func WelchTTest(x, y []float64, alt Alternative, alpha float64) (TTest, error) {
	sx, err := summarize("sample 1", x)
	if err != nil {
		return TTest{}, err
	}
	sy, err := summarize("sample 2", y)
	if err != nil {
		return TTest{}, err
	}
	return WelchTTestSummary(sx, sy, alt, alpha)
}

// WelchTTestSummary runs Welch's t-test from summary statistics.
func WelchTTestSummary(x, y Summary, alt Alternative, alpha float64) (TTest, error) {
	for _, s := range []struct {
		arg string
		Summary
	}{{"sample 1", x}, {"sample 2", y}} {
		if s.N < 2 {
			return TTest{}, &TooFewSamplesError{Arg: s.arg, Got: s.N, Want: 2}
		}
		if math.IsNaN(s.Mean) || math.IsInf(s.Mean, 0) {
			return TTest{}, &InvalidArgError{Arg: "mean of " + s.arg, Value: s.Mean, Want: "finite"}
		}
		if !(s.SD >= 0) || math.IsInf(s.SD, 0) {
			return TTest{}, &InvalidArgError{Arg: "SD of " + s.arg, Value: s.SD, Want: "finite and ≥ 0"}
		}
	}
	if err := alt.check(); err != nil {
		return TTest{}, err
	}
	if err := checkAlpha(alpha); err != nil {
		return TTest{}, err
	}
	v1 := x.SD * x.SD / float64(x.N)
	v2 := y.SD * y.SD / float64(y.N)
	if v1+v2 == 0 {
		return TTest{}, &ZeroVarianceError{What: "both samples are constant"}
	}
	r := TTest{Mean1: x.Mean, Mean2: y.Mean, Diff: x.Mean - y.Mean, SE: math.Sqrt(v1 + v2), Alternative: alt, Alpha: alpha}
	r.DF = (v1 + v2) * (v1 + v2) / (v1*v1/float64(x.N-1) + v2*v2/float64(y.N-1))
	r.T = r.Diff / r.SE
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: r.DF}
	r.PValue = pValue(alt, r.T, t.Survival)
	r.CI = interval(alt, r.Diff, r.SE, alpha, func(a float64) float64 { return -t.Quantile(a) })
	return r, nil
}
