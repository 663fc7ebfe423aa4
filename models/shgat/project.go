package shgat

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// Projection is a catalog in the form the exported scorer takes
// (ExportScorer): the scorer's two D×D projections folded into the rows.
//
//	raw_c = x'·Wq·k_c·Scale        = x'·k'_c   with k'_c = Scale·Wq·k_c
//	s_j   = x·CtxQ·t_j·CtxScale    = x·κ_j     with κ_j  = CtxScale·CtxQ·t_j
//
// Both depend only on the model version, so they are computed once, when a
// model is loaded, and a request then reads N key rows and C context rows
// and no D×D matrix: at D = 1,024 the two matrices are 8 MB that every
// request would otherwise stream through the cache.
type Projection struct {
	Dim        int
	Candidates []float32 // [C×D]: k'_c for each catalog capability, in catalog order
	Context    []float32 // [T×D]: κ_j for each catalog tool, in catalog order
}

// Project computes the projection of a catalog this scorer's model built.
func (s *Scorer) Project(cat *Catalog) (*Projection, error) {
	if cat.Dim != s.Dim {
		return nil, &DimError{What: "catalog", Got: cat.Dim, Want: s.Dim}
	}
	keys, err := s.ProjectKeys(cat.Keys)
	if err != nil {
		return nil, err
	}
	ctx, err := s.ProjectContext(cat.Tools)
	if err != nil {
		return nil, err
	}
	return &Projection{Dim: s.Dim, Candidates: keys, Context: ctx}, nil
}

// ProjectKeys maps capability keys [N×D] to the scorer's candidates input:
// row c becomes Scale·Wq·k_c.
func (s *Scorer) ProjectKeys(keys []float32) ([]float32, error) {
	return s.project("Wq", s.Wq, s.Scale, keys)
}

// ProjectContext maps tool representations [T×D] to the scorer's
// context_keys input: row j becomes CtxScale·CtxQ·t_j.
func (s *Scorer) ProjectContext(tools []float32) ([]float32, error) {
	return s.project("CtxQ", s.CtxQ, s.CtxScale, tools)
}

// project returns scale·rows·Wᵀ, rows [n×D] row-major: row i of the result
// is scale·W·rowᵢ.
func (s *Scorer) project(name string, w []float64, scale float64, rows []float32) ([]float32, error) {
	d := s.Dim
	if len(w) != d*d {
		return nil, &ScorerError{Field: name, Reason: fmt.Sprintf("has %d values, want Dim·Dim = %d", len(w), d*d)}
	}
	if len(rows)%d != 0 {
		return nil, &DimError{What: "rows to project", Got: len(rows) % d, Want: 0}
	}
	w32, err := scaled32(name, w, scale)
	if err != nil {
		return nil, err
	}
	n := len(rows) / d
	out := make([]float32, len(rows))
	if n == 0 {
		return out, nil
	}
	blas32.Gemm(blas.NoTrans, blas.Trans, 1,
		blas32.General{Rows: n, Cols: d, Stride: d, Data: rows},
		blas32.General{Rows: d, Cols: d, Stride: d, Data: w32},
		0, blas32.General{Rows: n, Cols: d, Stride: d, Data: out})
	return out, nil
}
