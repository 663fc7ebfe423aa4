package hybrid

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCombineReferenceValues(t *testing.T) {
	tests := []struct {
		name        string
		text, graph []float32
		want        []float64
	}{
		{
			// normalize(3,4,0,0) = (0.6,0.8,0,0); lift(0,2) = (0,2,0,0) → (0,1,0,0).
			// 0.3·(0.6,0.8) + 0.7·(0,1) = (0.18, 0.94); ‖·‖ = √0.916 = 0.9570788891.
			name: "overlapping", text: []float32{3, 4, 0, 0}, graph: []float32{0, 2},
			want: []float64{0.18 / 0.9570788891, 0.94 / 0.9570788891, 0, 0},
		},
		{
			// (0.3,0,0.7,0)/√0.58.
			name: "disjoint", text: []float32{5, 0, 0, 0}, graph: []float32{0, 0, 3},
			want: []float64{0.3939192986, 0, 0.9191450300, 0},
		},
		{
			// A zero graph vector contributes nothing: hybrid = normalize(text).
			name: "isolated node", text: []float32{3, 4, 0}, graph: []float32{0, 0},
			want: []float64{0.6, 0.8, 0},
		},
		{
			// A zero text vector contributes nothing: hybrid = normalize(lift(graph)).
			name: "empty text", text: []float32{0, 0, 0}, graph: []float32{0, -7},
			want: []float64{0, -1, 0},
		},
		{
			name: "both zero stays zero", text: []float32{0, 0, 0}, graph: []float32{0, 0},
			want: []float64{0, 0, 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Default().Combine(tc.text, tc.graph)
			require.NoError(t, err)
			require.Len(t, got, len(tc.want))
			for i := range got {
				assert.InDelta(t, tc.want[i], float64(got[i]), 1e-6, "element %d", i)
			}
		})
	}
}

func TestCombineNilLiftIsZeroPad(t *testing.T) {
	c := Combiner{TextWeight: 1, GraphWeight: 1}
	got, err := c.Combine([]float32{1, 0}, []float32{0, 1})
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float32{1 / math.Sqrt2, 1 / math.Sqrt2}, got, 1e-6)
}

func TestCombineScaleInvariantInWeights(t *testing.T) {
	text := []float32{1, 2, 3, 4, 5}
	graph := []float32{-1, 0.5}
	a, err := Combiner{TextWeight: 0.3, GraphWeight: 0.7}.Combine(text, graph)
	require.NoError(t, err)
	b, err := Combiner{TextWeight: 3, GraphWeight: 7}.Combine(text, graph)
	require.NoError(t, err)
	assert.InDeltaSlice(t, a, b, 1e-6)
	// And the output is a unit vector.
	var s float64
	for _, x := range a {
		s += float64(x) * float64(x)
	}
	assert.InDelta(t, 1, math.Sqrt(s), 1e-6)
}

func TestCombineWeightErrors(t *testing.T) {
	for _, c := range []Combiner{
		{TextWeight: -0.1, GraphWeight: 1},
		{TextWeight: 1, GraphWeight: math.NaN()},
		{TextWeight: math.Inf(1), GraphWeight: 1},
		{},
	} {
		_, err := c.Combine([]float32{1}, []float32{1})
		var we *WeightError
		require.True(t, errors.As(err, &we), "%+v: got %v", c, err)
	}
	assert.NoError(t, Combiner{TextWeight: 0, GraphWeight: 1}.Check())
}

func TestCombineDimensionErrors(t *testing.T) {
	lift, err := Orthonormal(1, 2, 4)
	require.NoError(t, err)
	cases := []struct {
		name        string
		c           Combiner
		text, graph []float32
	}{
		{"empty text", Default(), nil, []float32{1}},
		{"graph longer than text", Default(), []float32{1, 2}, []float32{1, 2, 3}},
		{"lift source mismatch", Combiner{1, 1, lift}, []float32{1, 2, 3, 4}, []float32{1, 2, 3}},
		{"lift target mismatch", Combiner{1, 1, lift}, []float32{1, 2, 3}, []float32{1, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Combine(tc.text, tc.graph)
			var de *DimensionError
			require.True(t, errors.As(err, &de), "got %v", err)
		})
	}
}

func TestCombineNaNPropagates(t *testing.T) {
	// Non-finite inputs are not hidden: validation must see them.
	got, err := Default().Combine([]float32{float32(math.NaN()), 1}, []float32{1})
	require.NoError(t, err)
	assert.True(t, math.IsNaN(float64(got[0])))
}

func TestOrthonormalPreservesInnerProducts(t *testing.T) {
	const from, to = 64, 1024
	lift, err := Orthonormal(42, from, to)
	require.NoError(t, err)
	f, tt := lift.Dims()
	require.Equal(t, [2]int{from, to}, [2]int{f, tt})

	x := make([]float64, from)
	y := make([]float64, from)
	for i := range from {
		x[i] = math.Sin(float64(i) + 1)
		y[i] = math.Cos(3 * float64(i))
	}
	lx := make([]float64, to)
	ly := make([]float64, to)
	require.NoError(t, lift.Lift(lx, x))
	require.NoError(t, lift.Lift(ly, y))
	assert.InDelta(t, dot(x, y), dot(lx, ly), 1e-5)
	assert.InDelta(t, dot(x, x), dot(lx, lx), 1e-5)
	assert.InDelta(t, dot(y, y), dot(ly, ly), 1e-5)

	// Columns are orthonormal: lifting basis vectors gives an orthonormal set.
	cols := make([][]float64, from)
	for j := range from {
		e := make([]float64, from)
		e[j] = 1
		cols[j] = make([]float64, to)
		require.NoError(t, lift.Lift(cols[j], e))
	}
	var worst float64
	for i := range from {
		for j := range from {
			want := 0.0
			if i == j {
				want = 1
			}
			worst = math.Max(worst, math.Abs(dot(cols[i], cols[j])-want))
		}
	}
	assert.Less(t, worst, 1e-10, "max |QᵀQ - I|")
	// It is not zero padding in disguise: the first column spreads out.
	var tail float64
	for i := from; i < to; i++ {
		tail += cols[0][i] * cols[0][i]
	}
	assert.Greater(t, tail, 0.5)
}

func TestOrthonormalDeterministic(t *testing.T) {
	a, err := Orthonormal(7, 3, 10)
	require.NoError(t, err)
	b, err := Orthonormal(7, 3, 10)
	require.NoError(t, err)
	c, err := Orthonormal(8, 3, 10)
	require.NoError(t, err)
	x := []float64{1, -2, 0.5}
	la, lb, lc := make([]float64, 10), make([]float64, 10), make([]float64, 10)
	require.NoError(t, a.Lift(la, x))
	require.NoError(t, b.Lift(lb, x))
	require.NoError(t, c.Lift(lc, x))
	assert.Equal(t, la, lb)
	assert.NotEqual(t, la, lc)
}

func TestOrthonormalBadDims(t *testing.T) {
	for _, d := range [][2]int{{0, 4}, {5, 4}, {-1, 3}} {
		_, err := Orthonormal(1, d[0], d[1])
		var de *DimensionError
		assert.True(t, errors.As(err, &de), "%v: %v", d, err)
	}
}

func TestCombineWithOrthonormalLift(t *testing.T) {
	lift, err := Orthonormal(3, 2, 6)
	require.NoError(t, err)
	c := Combiner{TextWeight: 0.3, GraphWeight: 0.7, Lift: lift}
	text := []float32{1, 0, 0, 0, 0, 0}
	graph := []float32{0, 5}
	got, err := c.Combine(text, graph)
	require.NoError(t, err)
	// Reference: lifted unit graph vector g = Q·(0,1); hybrid = (0.3e₁ + 0.7g)/‖·‖.
	g := make([]float64, 6)
	require.NoError(t, lift.Lift(g, []float64{0, 1}))
	want := make([]float64, 6)
	for i := range want {
		want[i] = 0.7 * g[i]
	}
	want[0] += 0.3
	n := math.Sqrt(dot(want, want))
	for i := range want {
		assert.InDelta(t, want[i]/n, float64(got[i]), 1e-6)
	}
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
