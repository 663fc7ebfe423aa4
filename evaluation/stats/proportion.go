package stats

import (
	"math"
)

// ProportionTest is the result of a two-proportion z-test.
type ProportionTest struct {
	Rate1, Rate2 float64 // observed success rates
	Diff         float64 // Rate1 − Rate2
	PooledSE     float64 // standard error under H0 (pooled rate); Z = Diff/PooledSE
	SE           float64 // unpooled (Wald) standard error, used by CI
	Z            float64
	PValue       float64
	CI           Interval // for Diff at level 1−α, unpooled
	Alternative  Alternative
	Alpha        float64
}

// TwoProportionZTest compares success1/n1 with success2/n2. The statistic
// uses the pooled standard error √(p̄(1−p̄)(1/n1+1/n2)), as statsmodels'
// proportions_ztest does; the interval uses the unpooled √(p1(1−p1)/n1 +
// p2(1−p2)/n2), because under the alternative the rates differ and
// pooling would misstate the spread of the difference.
func TwoProportionZTest(success1, n1, success2, n2 int, alt Alternative, alpha float64) (ProportionTest, error) {
	if err := checkCounts("arm 1", success1, n1); err != nil {
		return ProportionTest{}, err
	}
	if err := checkCounts("arm 2", success2, n2); err != nil {
		return ProportionTest{}, err
	}
	if err := alt.check(); err != nil {
		return ProportionTest{}, err
	}
	if err := checkAlpha(alpha); err != nil {
		return ProportionTest{}, err
	}
	f1, f2 := float64(n1), float64(n2)
	p1, p2 := float64(success1)/f1, float64(success2)/f2
	pooled := float64(success1+success2) / (f1 + f2)
	pooledSE := math.Sqrt(pooled * (1 - pooled) * (1/f1 + 1/f2))
	if pooledSE == 0 {
		return ProportionTest{}, &ZeroVarianceError{What: "the pooled success rate is 0 or 1 (no successes or no failures in either arm)"}
	}
	r := ProportionTest{
		Rate1: p1, Rate2: p2, Diff: p1 - p2,
		PooledSE:    pooledSE,
		SE:          math.Sqrt(p1*(1-p1)/f1 + p2*(1-p2)/f2),
		Alternative: alt, Alpha: alpha,
	}
	r.Z = r.Diff / pooledSE
	r.PValue = pValue(alt, r.Z, stdNormalSF)
	r.CI = interval(alt, r.Diff, r.SE, alpha, func(a float64) float64 { return -zQuantile(a) })
	return r, nil
}

func checkCounts(arm string, success, n int) error {
	if n <= 0 {
		return &InvalidArgError{Arg: "n of " + arm, Value: float64(n), Want: "> 0"}
	}
	if success < 0 || success > n {
		return &InvalidArgError{Arg: "successes of " + arm, Value: float64(success), Want: "in [0, n]"}
	}
	return nil
}
