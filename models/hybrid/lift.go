package hybrid

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// Lift maps a graph vector x into dst, whose length is the text dimension.
// It writes every element of dst.
type Lift interface {
	Lift(dst, x []float64) error
}

// ZeroPad lifts x by copying it into the first len(x) coordinates of dst and
// zeroing the rest. It preserves norms and inner products, but the graph
// coordinates share the first text coordinates, so the two parts are not
// orthogonal; Orthonormal spreads them over the whole space instead.
type ZeroPad struct{}

// Lift implements Lift.
func (ZeroPad) Lift(dst, x []float64) error {
	if len(x) > len(dst) {
		return &DimensionError{What: "graph vector (zero pad)", Got: len(x), Want: len(dst)}
	}
	copy(dst, x)
	for i := len(x); i < len(dst); i++ {
		dst[i] = 0
	}
	return nil
}

// OrthonormalLift is the linear map x ↦ Qx by a fixed to×from matrix Q with
// orthonormal columns (QᵀQ = I), so norms and inner products of graph vectors
// are preserved exactly (up to rounding).
type OrthonormalLift struct {
	q *mat.Dense // to×from, read-only after construction
}

// Orthonormal returns the lift from dimension from to dimension to given by
// the first from columns of the Q factor of a QR decomposition of a to×from
// matrix of standard normal entries drawn from a PCG generator seeded with
// seed. Column signs are fixed so that R has a positive diagonal, which makes
// Q unique for the drawn matrix and hence a function of (seed, from, to).
func Orthonormal(seed uint64, from, to int) (*OrthonormalLift, error) {
	if from < 1 || to < from {
		return nil, &DimensionError{What: "orthonormal lift source", Got: from, Want: to}
	}
	rng := rand.New(rand.NewPCG(seed, 0x68796272696420)) // second word: "hybrid "
	a := mat.NewDense(to, from, nil)
	for i := range to {
		for j := range from {
			a.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(a)
	var full, r mat.Dense
	qr.QTo(&full)
	qr.RTo(&r)
	q := mat.DenseCopyOf(full.Slice(0, to, 0, from))
	for j := range from {
		if r.At(j, j) == 0 {
			// Probability zero for Gaussian entries; refuse rather than
			// return a rank-deficient map.
			return nil, fmt.Errorf("hybrid: orthonormal lift seed %d: rank-deficient draw", seed)
		}
		if r.At(j, j) < 0 {
			for i := range to {
				q.Set(i, j, -q.At(i, j))
			}
		}
	}
	return &OrthonormalLift{q: q}, nil
}

// Dims returns the source and target dimensions.
func (l *OrthonormalLift) Dims() (from, to int) {
	to, from = l.q.Dims()
	return from, to
}

// Lift implements Lift.
func (l *OrthonormalLift) Lift(dst, x []float64) error {
	to, from := l.q.Dims()
	if len(x) != from {
		return &DimensionError{What: "graph vector (orthonormal lift)", Got: len(x), Want: from}
	}
	if len(dst) != to {
		return &DimensionError{What: "text dimension (orthonormal lift)", Got: len(dst), Want: to}
	}
	mat.NewVecDense(to, dst).MulVec(l.q, mat.NewVecDense(from, x))
	return nil
}
