package drift

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

// rel asserts |got − want| ≤ tol·max(|got|, |want|); equal values pass.
func rel(t *testing.T, want, got, tol float64, msg string, args ...any) {
	t.Helper()
	d := math.Abs(got - want)
	scale := math.Max(math.Abs(got), math.Abs(want))
	assert.True(t, d <= tol*scale, append([]any{"got %.17g, want %.17g (rel diff %.3g > %g): " + msg, got, want, d / scale, tol}, args...)...)
}

// TestCrossCheckPython compares KS, the corrections and PSI with scipy,
// statsmodels and numpy (scripts/stats_crosscheck.py).
//
// Tolerances: KS statistics are exact on both sides (1e-15). Exact
// p-values are compared to 1e-9 relative: ours and scipy's are both exact
// but computed differently (scipy sums an alternating series for equal
// sizes, as we do, and runs a compiled lattice walk otherwise; ours walks
// probabilities), so they agree to rounding, also deep in the tail. Above
// MaxExactKS (or past the walk's budget) we use the Kolmogorov limit, compared with scipy's kstwobign
// at 1e-9; scipy's ks_2samp there (method "asymp") uses a finite-n
// distribution instead, so against it we only log the difference. The
// corrections and PSI are closed forms: 1e-12.
func TestCrossCheckPython(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	normal := func(n int, mu, sd float64) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = mu + sd*rng.NormFloat64()
		}
		return x
	}
	rounded := func(x []float64) []float64 { // ties
		for i := range x {
			x[i] = math.Round(x[i] * 4)
		}
		return x
	}
	type kscase struct{ x, y []float64 }
	kscases := []kscase{
		{[]float64{1, 2, 3, 4, 5}, []float64{2.5, 3.5, 6, 7, 8, 9}},
		{normal(50, 0, 1), normal(50, 0.5, 1)},
		{normal(40, 0, 1), normal(40, 2, 1)}, // equal sizes, far tail
		{normal(200, 0, 1), normal(317, 0.2, 1)},
		{normal(1000, 0, 1), normal(1200, 0, 1)},
		{normal(300, 0, 1), normal(280, 1.2, 1)}, // p ≈ 1e-30
		{rounded(normal(150, 0, 1)), rounded(normal(90, 0.1, 1.3))},
		{normal(7, 0, 1), normal(1500, 0, 2)},
		{normal(12000, 0, 1), normal(15000, 0.03, 1)}, // asymptotic
		{normal(11000, 0, 1), normal(10500, 0, 1)},    // asymptotic
		{normal(10000, 0, 1), normal(9001, 0.3, 1)},   // asymptotic: the exact walk would be too long
	}
	var ksIn []map[string]any
	var ksGo []KSResult
	for _, c := range kscases {
		r, err := KS2Sample(c.x, c.y)
		require.NoError(t, err)
		ksGo = append(ksGo, r)
		ksIn = append(ksIn, map[string]any{"x": c.x, "y": c.y})
	}

	var mtIn []map[string]any
	var mtGo [][]float64
	for _, p := range [][]float64{
		{0.01, 0.04, 0.03, 0.2},
		func() []float64 { // 60 p-values with ties, a few small
			p := make([]float64, 60)
			for i := range p {
				p[i] = math.Round(rng.Float64()*50) / 50
				if i%9 == 0 {
					p[i] = rng.Float64() * 1e-4
				}
			}
			return p
		}(),
		{1, 1, 0},
	} {
		for _, c := range []struct {
			corr Correction
			name string
		}{{BenjaminiHochberg, "fdr_bh"}, {Bonferroni, "bonferroni"}} {
			q, err := Adjust(p, c.corr)
			require.NoError(t, err)
			mtGo = append(mtGo, q)
			mtIn = append(mtIn, map[string]any{"p": p, "method": c.name})
		}
	}

	var psiIn []map[string]any
	var psiGo []PSIResult
	for _, c := range []struct {
		ref, cur []float64
		bins     int
		eps      float64
	}{
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, []float64{5, 6, 7, 8, 9, 10, 11, 12}, 4, 1e-4},
		{normal(2000, 0, 1), normal(1500, 0.3, 1.2), 10, 1e-4},
		{normal(500, 0, 1), normal(800, 0, 1), 20, 1e-6},
		{rounded(normal(1000, 0, 0.3)), rounded(normal(700, 0.2, 0.3)), 10, 1e-3}, // tied edges
		{normal(300, 0, 1), normal(200, 5, 1), 5, 1e-4},                           // empty bins
	} {
		r, err := PSI(c.ref, c.cur, PSIConfig{Bins: c.bins, Epsilon: c.eps})
		require.NoError(t, err)
		psiGo = append(psiGo, r)
		psiIn = append(psiIn, map[string]any{"ref": c.ref, "cur": c.cur, "bins": c.bins, "eps": c.eps})
	}

	var res struct {
		KS []struct {
			D          float64 `json:"d"`
			PAuto      float64 `json:"p_auto"`
			PExact     float64 `json:"p_exact"`
			PAsymp     float64 `json:"p_asymp"`
			PKSTwoBign float64 `json:"p_kstwobign"`
		} `json:"ks"`
		Multitest []struct {
			Corrected []float64 `json:"corrected"`
		} `json:"multitest"`
		PSI []struct {
			PSI     float64   `json:"psi"`
			Edges   []float64 `json:"edges"`
			RefFrac []float64 `json:"ref_frac"`
			CurFrac []float64 `json:"cur_frac"`
		} `json:"psi"`
		Versions map[string]string `json:"versions"`
	}
	runReference(t, map[string]any{"ks": ksIn, "multitest": mtIn, "psi": psiIn}, &res)
	t.Logf("reference versions: %v", res.Versions)
	require.Len(t, res.KS, len(ksGo))
	require.Len(t, res.Multitest, len(mtGo))
	require.Len(t, res.PSI, len(psiGo))

	worst := 0.0
	for i, g := range ksGo {
		w := res.KS[i]
		assert.InDelta(t, w.D, g.D, 1e-15, "ks %d (%d, %d) D", i, g.N1, g.N2)
		if g.Exact {
			rel(t, w.PAuto, g.PValue, 1e-9, "ks %d (%d, %d) exact p", i, g.N1, g.N2)
			worst = math.Max(worst, math.Abs(g.PValue-w.PAuto)/w.PAuto)
			t.Logf("ks %d (%d, %d): D %.6f p %.6g, scipy auto %.6g (asymp %.6g)", i, g.N1, g.N2, g.D, g.PValue, w.PAuto, w.PAsymp)
			continue
		}
		rel(t, w.PKSTwoBign, g.PValue, 1e-9, "ks %d (%d, %d) asymptotic p vs kstwobign", i, g.N1, g.N2)
		if max(g.N1, g.N2) <= MaxExactKS { // past the walk's budget: both must be negligible
			assert.Less(t, w.PAuto, 1e-12, "ks %d: scipy's exact p", i)
			assert.Less(t, g.PValue, 1e-12, "ks %d: our asymptotic p", i)
		}
		t.Logf("ks %d (%d, %d): D %.6f p %.6g (Kolmogorov limit), scipy auto %.6g, asymp %.6g (rel diff %.2g)",
			i, g.N1, g.N2, g.D, g.PValue, w.PAuto, w.PAsymp, math.Abs(g.PValue-w.PAsymp)/w.PAsymp)
	}
	t.Logf("exact KS p-values: largest relative difference from scipy %.3g", worst)
	for i, g := range mtGo {
		w := res.Multitest[i].Corrected
		require.Len(t, g, len(w))
		for k := range g {
			assert.InDelta(t, w[k], g[k], 1e-12*math.Max(w[k], 1e-300), "%v %d", mtIn[i]["method"], k)
		}
	}
	for i, g := range psiGo {
		w := res.PSI[i]
		rel(t, w.PSI, g.PSI, 1e-12, "psi %d", i)
		assert.InDeltaSlice(t, w.Edges, g.Edges, 0, "psi %d edges", i)
		assert.InDeltaSlice(t, w.RefFrac, g.Reference, 1e-15, "psi %d ref fractions", i)
		assert.InDeltaSlice(t, w.CurFrac, g.Current, 1e-15, "psi %d cur fractions", i)
		t.Logf("psi %d: %d bins, go %.12f numpy %.12f", i, len(g.Reference), g.PSI, w.PSI)
	}
}
