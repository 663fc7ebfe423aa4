package stats

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// z975 and z95 are Φ⁻¹(0.975) and Φ⁻¹(0.95) from tables (to 16 digits).
const (
	z975 = 1.959963984540054
	z95  = 1.6448536269514722
	z80  = 0.8416212335729143
)

func TestTwoProportionZTestByHand(t *testing.T) {
	// 120/1000 vs 100/1000: pooled rate 220/2000 = 0.11.
	r, err := TwoProportionZTest(120, 1000, 100, 1000, TwoSided, 0.05)
	require.NoError(t, err)
	pooledSE := math.Sqrt(0.11 * 0.89 * 2 / 1000)   // √0.0001958
	se := math.Sqrt((0.12*0.88 + 0.10*0.90) / 1000) // √0.0001956
	assert.InDelta(t, 0.02, r.Diff, 1e-15)
	assert.InDelta(t, pooledSE, r.PooledSE, 1e-15)
	assert.InDelta(t, se, r.SE, 1e-15)
	assert.InDelta(t, 0.02/pooledSE, r.Z, 1e-12)
	assert.InDelta(t, 1.4293008, r.Z, 1e-7)
	assert.InDelta(t, 0.1529178, r.PValue, 1e-7) // 2·(1 − Φ(1.4293))
	assert.InDelta(t, 0.02-z975*se, r.CI.Lo, 1e-12)
	assert.InDelta(t, 0.02+z975*se, r.CI.Hi, 1e-12)

	g, err := TwoProportionZTest(120, 1000, 100, 1000, Greater, 0.05)
	require.NoError(t, err)
	assert.InDelta(t, r.PValue/2, g.PValue, 1e-15)
	assert.InDelta(t, 0.02-z95*se, g.CI.Lo, 1e-12)
	assert.True(t, math.IsInf(g.CI.Hi, 1))

	l, err := TwoProportionZTest(120, 1000, 100, 1000, Less, 0.05)
	require.NoError(t, err)
	assert.InDelta(t, 1-g.PValue, l.PValue, 1e-15)
	assert.True(t, math.IsInf(l.CI.Lo, -1))
	assert.InDelta(t, 0.02+z95*se, l.CI.Hi, 1e-12)

	// A tail p-value keeps its digits: z ≈ 9.1 has p ≈ 1e-19.
	tail, err := TwoProportionZTest(500, 1000, 300, 1000, TwoSided, 0.05)
	require.NoError(t, err)
	assert.Greater(t, tail.PValue, 0.0)
	assert.Less(t, tail.PValue, 1e-15)
}

func TestWelchByHand(t *testing.T) {
	// x: mean 2.5, s² = 5/3; y: mean 6, s² = 10. v1 = 5/12, v2 = 2,
	// SE² = 29/12, df = (29/12)² / ((5/12)²/3 + 2²/4) = 2523/457.
	x := []float64{1, 2, 3, 4}
	y := []float64{2, 4, 6, 8, 10}
	r, err := WelchTTest(x, y, TwoSided, 0.05)
	require.NoError(t, err)
	assert.InDelta(t, -3.5, r.Diff, 1e-15)
	assert.InDelta(t, math.Sqrt(29.0/12), r.SE, 1e-15)
	assert.InDelta(t, -3.5/math.Sqrt(29.0/12), r.T, 1e-14)
	assert.InDelta(t, 2523.0/457, r.DF, 1e-12)
	// The interval and the test agree: 0 is outside iff p < α.
	assert.Equal(t, r.PValue < 0.05, !r.CI.Contains(0))
	assert.InDelta(t, r.Diff, (r.CI.Lo+r.CI.Hi)/2, 1e-12)

	s, err := WelchTTestSummary(Summary{N: 4, Mean: 2.5, SD: math.Sqrt(5.0 / 3)}, Summary{N: 5, Mean: 6, SD: math.Sqrt(10)}, TwoSided, 0.05)
	require.NoError(t, err)
	assert.InDelta(t, r.T, s.T, 1e-14)
	assert.InDelta(t, r.PValue, s.PValue, 1e-14)

	// With large df the t-test is the z-test: df → ∞ gives Φ's quantiles.
	big := make([]float64, 200000)
	big2 := make([]float64, 200000)
	for i := range big {
		big[i] = float64(i % 7)
		big2[i] = float64(i%7) + 0.01
	}
	z, err := WelchTTest(big, big2, Greater, 0.05)
	require.NoError(t, err)
	assert.InDelta(t, z.Diff-z95*z.SE, z.CI.Lo, 1e-5*z.SE)

	// One-sided p-values split the two-sided one.
	g, err := WelchTTest(x, y, Greater, 0.05)
	require.NoError(t, err)
	l, err := WelchTTest(x, y, Less, 0.05)
	require.NoError(t, err)
	assert.InDelta(t, r.PValue, 2*l.PValue, 1e-14)
	assert.InDelta(t, 1, g.PValue+l.PValue, 1e-14)
	assert.True(t, math.IsInf(g.CI.Hi, 1) && math.IsInf(l.CI.Lo, -1))
}

func TestSampleSizeByHand(t *testing.T) {
	// 10% → 12%: h = 2·asin√0.12 − 2·asin√0.10 ≈ 0.0639821; the textbook
	// n = 2·((z975 + z80)/h)² ≈ 3834.6, and the second tail the exact
	// equation adds is ~1e-8 of power here, so it must agree to 0.01.
	h := 2*math.Asin(math.Sqrt(0.12)) - 2*math.Asin(math.Sqrt(0.10))
	r, err := RequiredSampleSize(0.10, 0.02, 0.05, 0.8)
	require.NoError(t, err)
	assert.InDelta(t, h, r.CohensH, 1e-15)
	textbook := 2 * math.Pow((z975+z80)/h, 2)
	assert.InDelta(t, textbook, r.Exact, 0.01)
	assert.InDelta(t, 3834.6, r.Exact, 0.05)
	assert.Equal(t, 3835, r.PerArm)

	// A decrease needs as many as the mirrored increase: 90% → 88%.
	d, err := RequiredSampleSize(0.90, -0.02, 0.05, 0.8)
	require.NoError(t, err)
	assert.InDelta(t, r.Exact, d.Exact, 1e-9)

	// Large effects: there the second tail matters and the textbook
	// formula overstates n; the exact n has power exactly 0.8.
	big, err := RequiredSampleSize(0.2, 0.6, 0.2, 0.5)
	require.NoError(t, err)
	zc := -zQuantile(0.1)
	tt := math.Abs(big.CohensH) * math.Sqrt(big.Exact/2)
	assert.InDelta(t, 0.5, stdNormalSF(zc-tt)+stdNormalSF(zc+tt), 1e-14)

	// MinDetectableEffect inverts RequiredSampleSize.
	m, err := MinDetectableEffect(0.10, r.Exact, 0.05, 0.8)
	require.NoError(t, err)
	assert.InDelta(t, 0.02, m, 1e-12)
	m, err = MinDetectableEffect(0.10, 1000, 0.05, 0.8)
	require.NoError(t, err)
	back, err := RequiredSampleSize(0.10, m, 0.05, 0.8)
	require.NoError(t, err)
	assert.InDelta(t, 1000, back.Exact, 1e-8)
	assert.Equal(t, 1000, back.PerArm)

	// Nothing up to a rate of 1 is detectable from 0.99 with 5 per arm.
	_, err = MinDetectableEffect(0.99, 5, 0.05, 0.8)
	var ia *InvalidArgError
	require.ErrorAs(t, err, &ia)
	assert.Equal(t, "n", ia.Arg)
}

func TestBadInput(t *testing.T) {
	type want struct {
		arg  string
		kind string // "arg", "few", "zero"
	}
	cases := []struct {
		name string
		err  error
		want want
	}{}
	add := func(name string, err error, w want) {
		cases = append(cases, struct {
			name string
			err  error
			want want
		}{name, err, w})
	}
	_, err := TwoProportionZTest(1, 0, 1, 10, TwoSided, 0.05)
	add("n1 = 0", err, want{"n of arm 1", "arg"})
	_, err = TwoProportionZTest(1, 10, 11, 10, TwoSided, 0.05)
	add("successes > n", err, want{"successes of arm 2", "arg"})
	_, err = TwoProportionZTest(-1, 10, 1, 10, TwoSided, 0.05)
	add("negative successes", err, want{"successes of arm 1", "arg"})
	_, err = TwoProportionZTest(1, 10, 1, 10, TwoSided, 1)
	add("alpha = 1", err, want{"alpha", "arg"})
	_, err = TwoProportionZTest(1, 10, 1, 10, Alternative(7), 0.05)
	add("bad alternative", err, want{"alternative", "arg"})
	_, err = TwoProportionZTest(0, 10, 0, 20, TwoSided, 0.05)
	add("no successes", err, want{"", "zero"})
	_, err = TwoProportionZTest(10, 10, 20, 20, TwoSided, 0.05)
	add("all successes", err, want{"", "zero"})
	_, err = WelchTTest([]float64{1}, []float64{1, 2}, TwoSided, 0.05)
	add("one observation", err, want{"sample 1", "few"})
	_, err = WelchTTest([]float64{1, 2}, nil, TwoSided, 0.05)
	add("empty", err, want{"sample 2", "few"})
	_, err = WelchTTest([]float64{3, 3, 3}, []float64{5, 5}, TwoSided, 0.05)
	add("constant samples", err, want{"", "zero"})
	_, err = WelchTTest([]float64{1, math.NaN()}, []float64{5, 6}, TwoSided, 0.05)
	add("NaN", err, want{"an observation of sample 1", "arg"})
	_, err = WelchTTest([]float64{1, 2}, []float64{5, 6}, TwoSided, math.NaN())
	add("alpha NaN", err, want{"alpha", "arg"})
	_, err = WelchTTestSummary(Summary{N: 3, SD: -1}, Summary{N: 3, SD: 1}, TwoSided, 0.05)
	add("negative SD", err, want{"SD of sample 1", "arg"})
	_, err = RequiredSampleSize(1.2, 0.01, 0.05, 0.8)
	add("baseline > 1", err, want{"baseline", "arg"})
	_, err = RequiredSampleSize(0.95, 0.1, 0.05, 0.8)
	add("baseline + mde > 1", err, want{"baseline + mde", "arg"})
	_, err = RequiredSampleSize(0.5, 0, 0.05, 0.8)
	add("mde = 0", err, want{"mde", "arg"})
	_, err = RequiredSampleSize(0.5, 0.1, 0, 0.8)
	add("alpha = 0", err, want{"alpha", "arg"})
	_, err = RequiredSampleSize(0.5, 0.1, 0.05, 1)
	add("power = 1", err, want{"power", "arg"})
	_, err = RequiredSampleSize(0.5, 0.1, 0.05, 0.04)
	add("power < alpha", err, want{"power", "arg"})
	_, err = MinDetectableEffect(0.5, 0, 0.05, 0.8)
	add("n = 0", err, want{"n", "arg"})
	_, err = MinDetectableEffect(-0.1, 10, 0.05, 0.8)
	add("negative baseline", err, want{"baseline", "arg"})
	_, err = CohensH(0.5, math.NaN())
	add("NaN rate", err, want{"p2", "arg"})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Error(t, c.err)
			assert.True(t, errors.Is(c.err, ErrInput), "%v must match ErrInput", c.err)
			switch c.want.kind {
			case "arg":
				var e *InvalidArgError
				require.ErrorAs(t, c.err, &e)
				assert.Equal(t, c.want.arg, e.Arg)
			case "few":
				var e *TooFewSamplesError
				require.ErrorAs(t, c.err, &e)
				assert.Equal(t, c.want.arg, e.Arg)
			case "zero":
				var e *ZeroVarianceError
				require.ErrorAs(t, c.err, &e)
			}
		})
	}
}
