package shgat

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// gemm computes C = alpha·op(A)·op(B) + beta·C for row-major A, B, C where
// op(X) is X or Xᵀ, C is [m×n] and the inner dimension is k.
func gemm(transA, transB bool, m, n, k int, alpha float64, a, b []float64, beta float64, c []float64) {
	if m == 0 || n == 0 {
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	lda, ldb := k, n
	if transA {
		ta, lda = blas.Trans, m
	}
	if transB {
		tb, ldb = blas.Trans, k
	}
	if k == 0 {
		for i := range c[:m*n] {
			c[i] *= beta
		}
		return
	}
	blas64.Implementation().Dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, n)
}

// gather copies rows idx of x ([*×d]) into a new [len(idx)×d] matrix.
func gather(x []float64, idx []int, d int) []float64 {
	out := make([]float64, len(idx)*d)
	for i, r := range idx {
		copy(out[i*d:(i+1)*d], x[r*d:(r+1)*d])
	}
	return out
}

// scatterAdd adds the rows of y into rows idx of x.
func scatterAdd(x []float64, idx []int, y []float64, d int) {
	for i, r := range idx {
		row := x[r*d : (r+1)*d]
		for j, v := range y[i*d : (i+1)*d] {
			row[j] += v
		}
	}
}
