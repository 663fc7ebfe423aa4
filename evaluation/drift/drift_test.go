package drift

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/floats"
)

func TestKSByHand(t *testing.T) {
	// F1 − F2 peaks at 5: F1 = 1, F2 = 2/6. Of the C(11, 5) = 462
	// equally likely splits of the pooled ranks, 50 give D ≥ 2/3.
	r, err := KS2Sample([]float64{1, 2, 3, 4, 5}, []float64{2.5, 3.5, 6, 7, 8, 9})
	require.NoError(t, err)
	assert.InDelta(t, 2.0/3, r.D, 1e-15)
	assert.InDelta(t, 50.0/462, r.PValue, 1e-15)
	assert.True(t, r.Exact)

	// Ties: both samples at the same points give D = 0, p = 1.
	r, err = KS2Sample([]float64{1, 1, 2, 3}, []float64{3, 2, 1, 1})
	require.NoError(t, err)
	assert.Zero(t, r.D)
	assert.Equal(t, 1.0, r.PValue)

	// Disjoint samples of 3 and 3: only 2 of the C(6, 3) = 20 splits.
	r, err = KS2Sample([]float64{1, 2, 3}, []float64{4, 5, 6})
	require.NoError(t, err)
	assert.Equal(t, 1.0, r.D)
	assert.InDelta(t, 2.0/20, r.PValue, 1e-15)
}

// TestKSExactByEnumeration checks the exact p-value against the permutation
// distribution of D, counted over every split of n1+n2 distinct values.
func TestKSExactByEnumeration(t *testing.T) {
	for _, sz := range [][2]int{{1, 1}, {1, 4}, {2, 3}, {3, 3}, {4, 6}, {5, 5}, {3, 9}, {6, 8}, {7, 7}, {4, 11}} {
		n1, n2 := sz[0], sz[1]
		n := n1 + n2
		counts := map[int64]int{} // h → number of splits with that statistic
		total := 0
		for mask := 0; mask < 1<<n; mask++ {
			if popcount(mask) != n1 {
				continue
			}
			var x, y []float64
			for i := range n {
				if mask&(1<<i) != 0 {
					x = append(x, float64(i))
				} else {
					y = append(y, float64(i))
				}
			}
			r := ksSorted(x, y)
			g := gcd(int64(n1), int64(n2))
			counts[int64(math.Round(r.D*float64(int64(n1)/g*int64(n2))))]++
			total++
		}
		g := gcd(int64(n1), int64(n2))
		for h := range counts {
			if h == 0 {
				continue
			}
			atLeast := 0
			for h2, c := range counts {
				if h2 >= h {
					atLeast += c
				}
			}
			want := float64(atLeast) / float64(total)
			got := ksExactPValue(int64(n1), int64(n2), g, h)
			assert.InDelta(t, want, got, 1e-13, "n1=%d n2=%d h=%d", n1, n2, h)
			if n1 != n2 { // the band walk must also do the square case
				continue
			}
			assert.InDelta(t, want, ksOutsideBand(int64(n1), int64(n2), g, h), 1e-13, "band, n=%d h=%d", n1, h)
		}
	}
}

func popcount(x int) (c int) {
	for ; x != 0; x &= x - 1 {
		c++
	}
	return c
}

func TestKolmogorovSF(t *testing.T) {
	// Values of scipy.special.kolmogorov 1.17.1; the two series meet at λ = 1.
	for _, c := range []struct{ lambda, q float64 }{
		{0.3, 0.9999906941986655}, {0.5, 0.9639452436648751}, {0.9, 0.3927307079406543},
		{1, 0.26999967167735456}, {1.36, 0.049485876755377876}, {2, 0.0006709252557796953},
	} {
		assert.InDelta(t, c.q, kolmogorovSF(c.lambda), 1e-15, "λ = %v", c.lambda)
	}
	below, above := kolmogorovSF(math.Nextafter(1, 0)), kolmogorovSF(1)
	assert.InDelta(t, below, above, 1e-15)
}

func TestAdjustByHand(t *testing.T) {
	p := []float64{0.01, 0.04, 0.03, 0.2}
	// Sorted: 0.01, 0.03, 0.04, 0.2 → ×4/rank: 0.04, 0.06, 0.0533, 0.2 →
	// running minimum from the largest: 0.04, 0.0533, 0.0533, 0.2.
	bh, err := Adjust(p, BenjaminiHochberg)
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{0.04, 0.16 / 3, 0.16 / 3, 0.2}, bh, 1e-15)
	bf, err := Adjust(p, Bonferroni)
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{0.04, 0.16, 0.12, 0.8}, bf, 1e-15)
	bf, err = Adjust([]float64{0.5, 0.3}, Bonferroni)
	require.NoError(t, err)
	assert.Equal(t, []float64{1, 0.6}, bf)

	_, err = Adjust([]float64{0.1, 1.5}, BenjaminiHochberg)
	assert.ErrorIs(t, err, ErrInput)
	_, err = Adjust(p, Correction(9))
	assert.ErrorIs(t, err, ErrInput)
}

func TestPSIByHand(t *testing.T) {
	ref := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	cur := []float64{5, 6, 7, 8, 9, 10, 11, 12}
	// Quartiles of ref (numpy linear): 3.25, 5.5, 7.75. ref: 3, 2, 2, 3 of
	// 10; cur: 0 (→ ε), 1, 2, 5 of 8.
	r, err := PSI(ref, cur, PSIConfig{Bins: 4})
	require.NoError(t, err)
	assert.Equal(t, []float64{3.25, 5.5, 7.75}, r.Edges)
	assert.Equal(t, []float64{0.3, 0.2, 0.2, 0.3}, r.Reference)
	assert.Equal(t, []float64{1e-4, 0.125, 0.25, 0.625}, r.Current)
	want := (1e-4-0.3)*math.Log(1e-4/0.3) + (0.125-0.2)*math.Log(0.125/0.2) +
		(0.25-0.2)*math.Log(0.25/0.2) + (0.625-0.3)*math.Log(0.625/0.3)
	assert.InDelta(t, want, r.PSI, 1e-15)
	assert.InDelta(t, 2.6860570651985145, r.PSI, 1e-12)
	assert.True(t, r.Drift)

	// Same sample: PSI 0. A value on an edge falls in the lower bin.
	s, err := PSI(ref, ref, PSIConfig{})
	require.NoError(t, err)
	assert.Zero(t, s.PSI)
	assert.False(t, s.Drift)
	assert.Len(t, s.Edges, 9)

	// Ties merge edges: a reference that is mostly one score has few bins.
	tied := []float64{0, 0, 0, 0, 0, 0, 0, 0, 1, 2}
	s, err = PSI(tied, tied, PSIConfig{})
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{0, 0.2, 1.1}, s.Edges, 1e-15)
}

// gauss draws n vectors of dimension d, coordinate k shifted by shift[k].
func gauss(rng *rand.Rand, n, d int, shift map[int]float64) [][]float64 {
	out := make([][]float64, n)
	for i := range out {
		v := make([]float64, d)
		for k := range v {
			v[k] = rng.NormFloat64() + shift[k]
		}
		out[i] = v
	}
	return out
}

// TestEmbeddingsFindShiftNotNoise checks both modes find a shift in two
// of 24 dimensions, and flag samples from one distribution no more often
// than the level allows: a check at α = 0.01 may flag a null pair by
// chance, so it runs 30 independent null pairs and accepts at most 2
// flagged (for a 1% rate, P(≥ 3 of 30) ≈ 0.003), rather than one pair it
// happens to pass. Each pair has its own reference: a shared one that is
// atypical along some direction would flag every pair together.
func TestEmbeddingsFindShiftNotNoise(t *testing.T) {
	ctx := context.Background()
	const dim, nulls = 24, 30
	rng := rand.New(rand.NewPCG(11, 17))
	ref := gauss(rng, 600, dim, nil)
	type pair struct{ ref, cur [][]float64 }
	same := make([]pair, nulls)
	for i := range same {
		same[i] = pair{gauss(rng, 600, dim, nil), gauss(rng, 450, dim, nil)}
	}
	// A projection on a random direction u sees a shift s as s·u, about
	// |s|/√dim: here |s| = 1.28 shows as ~0.26 standard deviations.
	shifted := gauss(rng, 450, dim, map[int]float64{3: 1.0, 17: -0.8})

	for _, cfg := range []EmbeddingConfig{
		{Mode: PerDimension},
		{Mode: PerDimension, Correction: Bonferroni},
		{Mode: RandomProjection, Seed: 5},
		{Mode: RandomProjection, Seed: 6, Projections: 8, Correction: Bonferroni, Alpha: 0.05},
	} {
		name := cfg.Mode.String() + "/" + cfg.Correction.String()
		t.Run(name, func(t *testing.T) {
			flagged := 0
			for _, s := range same {
				r, err := Embeddings(ctx, s.ref, s.cur, cfg)
				require.NoError(t, err)
				if r.Drift() {
					flagged++
				}
			}
			t.Logf("%d of %d null pairs flagged", flagged, nulls)
			assert.LessOrEqual(t, flagged, 2, "samples of one distribution flagged too often")

			r, err := Embeddings(ctx, ref, shifted, cfg)
			require.NoError(t, err)
			require.True(t, r.Drift(), "shift not found: corrected %v", r.Corrected)
			if cfg.Mode == PerDimension {
				assert.Equal(t, []int{3, 17}, r.Drifted)
				assert.Len(t, r.Tests, dim)
				return
			}
			want := cfg.Projections
			if want == 0 {
				want = DefaultProjections
			}
			require.Len(t, r.Tests, want)
			require.Len(t, r.Directions, want)
			for _, d := range r.Directions {
				assert.InDelta(t, 1, floats.Norm(d, 2), 1e-12)
			}
			// The flagged projections are the ones that see the shift.
			for _, k := range r.Drifted {
				d := r.Directions[k]
				assert.Greater(t, math.Abs(1.0*d[3]-0.8*d[17]), 0.05, "projection %d flagged but nearly orthogonal to the shift", k)
			}
		})
	}

	// The directions are a function of the seed.
	a, err := Embeddings(ctx, ref, same[0].cur, EmbeddingConfig{Mode: RandomProjection, Seed: 9})
	require.NoError(t, err)
	b, err := Embeddings(ctx, ref, same[0].cur, EmbeddingConfig{Mode: RandomProjection, Seed: 9})
	require.NoError(t, err)
	assert.Equal(t, a.Directions, b.Directions)
	assert.Equal(t, a.Corrected, b.Corrected)
}

func TestPSIFindsShiftNotNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	draw := func(n int, mu float64) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = 1 / (1 + math.Exp(-(rng.NormFloat64() + mu))) // a score in (0, 1)
		}
		return x
	}
	ref := draw(5000, 0)
	same, err := PSI(ref, draw(3000, 0), PSIConfig{})
	require.NoError(t, err)
	assert.Less(t, same.PSI, 0.02)
	assert.False(t, same.Drift)
	moved, err := PSI(ref, draw(3000, 0.8), PSIConfig{})
	require.NoError(t, err)
	assert.Greater(t, moved.PSI, 0.2)
	assert.True(t, moved.Drift)
}

func TestDriftBadInput(t *testing.T) {
	ctx := context.Background()
	ok := [][]float64{{1, 2}, {3, 4}}
	cases := map[string]error{}
	_, cases["KS empty"] = KS2Sample(nil, []float64{1})
	_, cases["KS NaN"] = KS2Sample([]float64{1, math.NaN()}, []float64{1})
	_, cases["no reference vectors"] = Embeddings(ctx, nil, ok, EmbeddingConfig{})
	_, cases["ragged"] = Embeddings(ctx, ok, [][]float64{{1, 2}, {3}}, EmbeddingConfig{})
	_, cases["dimension 0"] = Embeddings(ctx, [][]float64{{}}, ok, EmbeddingConfig{})
	_, cases["alpha"] = Embeddings(ctx, ok, ok, EmbeddingConfig{Alpha: 2})
	_, cases["projections"] = Embeddings(ctx, ok, ok, EmbeddingConfig{Mode: RandomProjection, Projections: -1})
	_, cases["mode"] = Embeddings(ctx, ok, ok, EmbeddingConfig{Mode: Mode(5)})
	_, cases["correction"] = Embeddings(ctx, ok, ok, EmbeddingConfig{Correction: Correction(5)})
	_, cases["PSI bins"] = PSI([]float64{1}, []float64{1}, PSIConfig{Bins: 1})
	_, cases["PSI epsilon"] = PSI([]float64{1}, []float64{1}, PSIConfig{Epsilon: -1})
	_, cases["PSI empty"] = PSI(nil, []float64{1}, PSIConfig{})
	_, cases["PSI Inf"] = PSI([]float64{1}, []float64{math.Inf(1)}, PSIConfig{})
	for name, err := range cases {
		var ie *InputError
		assert.True(t, errors.As(err, &ie) && errors.Is(err, ErrInput), "%s: %v", name, err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := Embeddings(cancelled, ok, ok, EmbeddingConfig{})
	assert.ErrorIs(t, err, context.Canceled)
}
