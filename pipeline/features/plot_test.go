package features

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
)

// topComponents agrees with gonum's full-SVD PCA on the leading variances
// and directions (up to sign).
func TestTopComponentsMatchesGonumPC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n, d := 300, 40
	x := mat.NewDense(n, d, nil)
	for i := range n {
		a, b := rng.NormFloat64()*5, rng.NormFloat64()*2
		for j := range d {
			x.Set(i, j, a*math.Sin(float64(j))+b*math.Cos(float64(3*j))+0.1*rng.NormFloat64()+float64(j))
		}
	}
	vecs, vars, total := topComponents(x, 2, 100)
	var pc stat.PC
	require.True(t, pc.PrincipalComponents(x, nil))
	want := pc.VarsTo(nil)
	var wantTotal float64
	for _, v := range want {
		wantTotal += v
	}
	assert.InEpsilon(t, wantTotal, total, 1e-9)
	var wv mat.Dense
	pc.VectorsTo(&wv)
	for j := range 2 {
		assert.InEpsilon(t, want[j], vars[j], 1e-6, "variance %d", j)
		dot := mat.Dot(vecs.ColView(j), wv.ColView(j))
		assert.InDelta(t, 1, math.Abs(dot), 1e-6, "direction %d", j)
	}
}
