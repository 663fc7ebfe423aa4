package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runReference runs scripts/stats_crosscheck.py on cases and decodes its
// answers into out.
func runReference(t *testing.T, cases map[string]any, out any) {
	t.Helper()
	testenv.CrossCheck(t, "stats_crosscheck.py", []string{"numpy", "scipy", "statsmodels"}, cases, out)
}

// rel asserts |got − want| ≤ tol·max(|got|, |want|); equal values pass, and
// a nil want stands for an infinite interval end.
// It returns the relative difference (0 for matching infinities).
func rel(t *testing.T, want *float64, got, tol float64, msg string, args ...any) float64 {
	t.Helper()
	if want == nil {
		assert.True(t, math.IsInf(got, 0), append([]any{"want ±Inf, got %v: " + msg, got}, args...)...)
		return 0
	}
	d := math.Abs(got - *want)
	if d == 0 {
		return 0
	}
	r := d / math.Max(math.Abs(got), math.Abs(*want))
	assert.True(t, r <= tol, append([]any{"got %.17g, want %.17g (rel diff %.3g > %g): " + msg, got, *want, r, tol}, args...)...)
	return r
}

var altNames = map[Alternative]string{TwoSided: "two-sided", Greater: "greater", Less: "less"}

// TestCrossCheckPython compares every function with scipy/statsmodels (see
// scripts/stats_crosscheck.py for what each answer is).
//
// Tolerances: 1e-9 relative for everything that is a closed form on both
// sides (z-test, its interval, Welch's t, df, p and interval, which gonum
// and scipy compute from the regularised incomplete beta function and its
// inverse). The sample size and detectable effect are roots of the power
// equation; ours is bisected to the last bit, statsmodels' is
// brentq_expanding's answer, so we compare the power each achieves to 1e-9
// (a closed form again) and the roots themselves to 1e-6 relative, the
// solver tolerance statsmodels can promise.
func TestCrossCheckPython(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 2))
	alphas := []float64{0.05, 0.01, 0.1}

	type zcase struct {
		C1, N1, C2, N2 int
	}
	zcases := []zcase{{120, 1000, 100, 1000}, {30, 250, 45, 260}, {0, 50, 5, 60}, {50, 50, 41, 60},
		{5123, 100000, 4987, 98000}, {500, 1000, 300, 1000}, {7, 9, 1, 12}}
	var zin []map[string]any
	var zgo []ProportionTest
	for _, c := range zcases {
		for _, alt := range []Alternative{TwoSided, Greater, Less} {
			alpha := alphas[len(zin)%len(alphas)]
			r, err := TwoProportionZTest(c.C1, c.N1, c.C2, c.N2, alt, alpha)
			require.NoError(t, err)
			zgo = append(zgo, r)
			zin = append(zin, map[string]any{"count1": c.C1, "nobs1": c.N1, "count2": c.C2, "nobs2": c.N2, "alternative": altNames[alt], "alpha": alpha})
		}
	}

	type wcase struct{ x, y []float64 }
	sample := func(n int, mu, sd float64) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = mu + sd*rng.NormFloat64()
		}
		return x
	}
	wcases := []wcase{
		{[]float64{1, 2, 3, 4}, []float64{2, 4, 6, 8, 10}},
		{sample(2, 0, 1), sample(3, 1, 5)},
		{sample(30, 0.2, 1), sample(45, 0, 3)},
		{sample(500, 10, 2), sample(80, 10.1, 0.5)},
		{sample(5000, 0, 1), sample(4000, 0.3, 1)}, // p ~ 1e-45: the tail
		{[]float64{3, 3, 3, 3}, sample(12, 2, 1)},  // one constant sample
	}
	var win, sin []map[string]any
	var wgo, sgo []TTest
	for i, c := range wcases {
		for _, alt := range []Alternative{TwoSided, Greater, Less} {
			alpha := alphas[(i+int(alt))%len(alphas)]
			r, err := WelchTTest(c.x, c.y, alt, alpha)
			require.NoError(t, err)
			wgo = append(wgo, r)
			win = append(win, map[string]any{"x": c.x, "y": c.y, "alternative": altNames[alt], "alpha": alpha})

			sx, err := Summarize(c.x)
			require.NoError(t, err)
			sy, err := Summarize(c.y)
			require.NoError(t, err)
			s, err := WelchTTestSummary(sx, sy, alt, alpha)
			require.NoError(t, err)
			sgo = append(sgo, s)
			sin = append(sin, map[string]any{"mean1": sx.Mean, "sd1": sx.SD, "n1": sx.N, "mean2": sy.Mean, "sd2": sy.SD, "n2": sy.N, "alternative": altNames[alt]})
		}
	}

	var pin []map[string]any
	var pgo []SampleSize
	for _, c := range []struct{ base, mde, alpha, power float64 }{
		{0.10, 0.02, 0.05, 0.8}, {0.01, 0.002, 0.05, 0.8}, {0.05, -0.01, 0.01, 0.9}, {0.3, 0.05, 0.05, 0.95},
		{0.5, -0.1, 0.1, 0.8}, {0.9, 0.05, 0.05, 0.8}, {0.2, 0.4, 0.1, 0.8}, {0.02, 0.001, 0.05, 0.8},
	} {
		r, err := RequiredSampleSize(c.base, c.mde, c.alpha, c.power)
		require.NoError(t, err)
		pgo = append(pgo, r)
		pin = append(pin, map[string]any{"baseline": c.base, "mde": c.mde, "alpha": c.alpha, "power": c.power, "n_go": r.Exact})
	}
	var mdeIn []map[string]any
	var mgo []float64
	for _, c := range []struct{ base, n, alpha, power float64 }{
		{0.10, 1000, 0.05, 0.8}, {0.01, 50000, 0.05, 0.8}, {0.5, 123.5, 0.01, 0.9}, {0.3, 10, 0.1, 0.5}, {0.97, 20000, 0.05, 0.8},
	} {
		m, err := MinDetectableEffect(c.base, c.n, c.alpha, c.power)
		require.NoError(t, err)
		mgo = append(mgo, m)
		mdeIn = append(mdeIn, map[string]any{"baseline": c.base, "n": c.n, "alpha": c.alpha, "power": c.power, "mde_go": m})
	}

	type ref struct {
		Z, T, DF, P float64
		Lo, Hi      *float64
	}
	var res struct {
		ZTest      []ref `json:"ztest"`
		Welch      []ref `json:"welch"`
		WelchStats []ref `json:"welch_stats"`
		Power      []struct {
			H         float64 `json:"h"`
			NObs1     float64 `json:"nobs1"`
			PowerAtGo float64 `json:"power_at_go"`
		} `json:"power"`
		MDE []struct {
			H         float64 `json:"h"`
			MDE       float64 `json:"mde"`
			PowerAtGo float64 `json:"power_at_go"`
			PowerAtSM float64 `json:"power_at_sm"`
		} `json:"mde"`
		Versions map[string]string `json:"versions"`
	}
	runReference(t, map[string]any{"ztest": zin, "welch": win, "welch_stats": sin, "power": pin, "mde": mdeIn}, &res)
	t.Logf("reference versions: %v", res.Versions)
	require.Len(t, res.ZTest, len(zgo))
	require.Len(t, res.Welch, len(wgo))
	require.Len(t, res.WelchStats, len(sgo))
	require.Len(t, res.Power, len(pgo))
	require.Len(t, res.MDE, len(mgo))

	worst := map[string]float64{}
	track := func(kind string, r float64) { worst[kind] = math.Max(worst[kind], r) }
	for i, g := range zgo {
		w := res.ZTest[i]
		track("z-test", rel(t, &w.Z, g.Z, 1e-9, "z-test %v z", zin[i]))
		track("z-test", rel(t, &w.P, g.PValue, 1e-9, "z-test %v p", zin[i]))
		track("z-test", rel(t, w.Lo, g.CI.Lo, 1e-9, "z-test %v CI lo", zin[i]))
		track("z-test", rel(t, w.Hi, g.CI.Hi, 1e-9, "z-test %v CI hi", zin[i]))
	}
	for i, g := range wgo {
		w := res.Welch[i]
		track("welch", rel(t, &w.T, g.T, 1e-9, "welch %d %v t", i, win[i]["alternative"]))
		track("welch", rel(t, &w.DF, g.DF, 1e-9, "welch %d df", i))
		track("welch", rel(t, &w.P, g.PValue, 1e-9, "welch %d %v p", i, win[i]["alternative"]))
		track("welch", rel(t, w.Lo, g.CI.Lo, 1e-9, "welch %d %v CI lo", i, win[i]["alternative"]))
		track("welch", rel(t, w.Hi, g.CI.Hi, 1e-9, "welch %d %v CI hi", i, win[i]["alternative"]))
	}
	for i, g := range sgo {
		w := res.WelchStats[i]
		track("welch from stats", rel(t, &w.T, g.T, 1e-9, "welch from stats %d t", i))
		track("welch from stats", rel(t, &w.P, g.PValue, 1e-9, "welch from stats %d p", i))
	}
	t.Logf("largest relative differences from scipy/statsmodels: %v", worst)
	for i, g := range pgo {
		w := res.Power[i]
		rel(t, &w.H, g.CohensH, 1e-12, "sample size %v h", pin[i])
		assert.InDelta(t, pin[i]["power"], w.PowerAtGo, 1e-9, "sample size %v: statsmodels' power at our n", pin[i])
		rel(t, &w.NObs1, g.Exact, 1e-8, "sample size %v n", pin[i])
		assert.Equal(t, int(math.Ceil(w.NObs1)), g.PerArm, "sample size %v per arm", pin[i])
		t.Logf("sample size %v: go %.10f statsmodels %.10f", pin[i], g.Exact, w.NObs1)
	}
	for i, g := range mgo {
		w := res.MDE[i]
		assert.InDelta(t, mdeIn[i]["power"], w.PowerAtGo, 1e-9, "mde %v: statsmodels' power at our mde", mdeIn[i])
		target := mdeIn[i]["power"].(float64)
		assert.LessOrEqual(t, math.Abs(w.PowerAtGo-target), math.Abs(w.PowerAtSM-target)+1e-12, "mde %v: ours must solve the equation at least as well", mdeIn[i])
		rel(t, &w.MDE, g, 1e-4, "mde %v", mdeIn[i])
		t.Logf("mde %v: go %.12f (power %.3g off) statsmodels %.12f (power %.3g off)", mdeIn[i], g, w.PowerAtGo-target, w.MDE, w.PowerAtSM-target)
	}
}
