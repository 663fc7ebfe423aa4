package shgat

import (
	"fmt"
	"math"
)

// Scorer is the request-time half of SHGAT: everything that does not depend
// on the request (message passing, the key projections W_k·e_c of every
// capability, the reliability factors) is computed once per model version, so
// one request costs an intent projection plus O(N·D) for N candidates.
//
// The same computation is exported to ONNX (Export) and must agree with it.
// Row-vector convention: x·W with W stored row-major [D×D].
//
//	x    = InputScale·intent                   unit embeddings → norm √D
//	u    = x·CtxQ                              context query
//	s_j  = u·t_j / √D  (masked)                one logit per context tool
//	α    = softmax(s) ⊙ mask                   all-masked → α = 0
//	p    = Σ_j α_j t_j                         attention-pooled context
//	x'   = x + σ(CtxGate)·p                    context mixed into the intent
//	q    = x'·Wq
//	raw  = q·k_c / (Heads·√HeadDim)            = mean over heads of q_h·k_ch/√d_h
//	     + Σ_f Evidence_f·ε_cf                 evidence features (BM25, tool-level similarity), 0 if absent
//	score= raw·r_c if raw ≥ 0 else raw/r_c     reliability factor r_c > 0
//
// Reliability divides a negative score rather than multiplying it, so that a
// reliable capability (r > 1) always moves up and an unreliable one (r < 1)
// always moves down; a plain product would reward unreliable capabilities
// whose raw score is negative.
type Scorer struct {
	Dim      int       // D: intent, tool representation and key width
	Heads    int       // K
	HeadDim  int       // d_h; Heads·HeadDim == Dim
	Wq       []float64 // [D×D] row-major
	CtxQ     []float64 // [D×D] row-major
	CtxGate  float64   // logit of the context mixing gate
	Scale    float64   // 1/(Heads·√HeadDim)
	CtxScale float64   // 1/√D
	// InputScale multiplies the intent (0 means 1). Encoders return unit
	// vectors; scaled dot-product attention assumes entries of unit
	// variance, i.e. norm √D, so the model scales every input by √D.
	InputScale float64
	// Evidence weighs each candidate's evidence features (F of them),
	// learned with the rest: the fusion of dense and lexical evidence stays
	// inside the exported model.
	Evidence []float64
}

func (s *Scorer) inputScale() float64 {
	if s.InputScale == 0 {
		return 1
	}
	return s.InputScale
}

// Request is one intent with the representations of its context tools and,
// optionally, the evidence features of each candidate.
type Request struct {
	Intent   []float64   // [D]
	Context  [][]float64 // C rows of [D]; may be empty
	Evidence []float64   // [N×F] for the candidates scored; nil: all 0
}

// Query returns q = (x + σ(g)·p)·Wq for one request.
func (s *Scorer) Query(r Request) ([]float64, error) {
	d := s.Dim
	if len(r.Intent) != d {
		return nil, &DimError{What: "intent", Got: len(r.Intent), Want: d}
	}
	x := make([]float64, d)
	for i, v := range r.Intent {
		x[i] = v * s.inputScale()
	}
	if len(r.Context) > 0 {
		for j, t := range r.Context {
			if len(t) != d {
				return nil, &DimError{What: fmt.Sprintf("context[%d]", j), Got: len(t), Want: d}
			}
		}
		u := vecMat(x, s.CtxQ, d, d)
		logits := make([]float64, len(r.Context))
		for j, t := range r.Context {
			logits[j] = dot(u, t) * s.CtxScale
		}
		alpha := softmax(logits)
		g := sigmoid(s.CtxGate)
		for j, t := range r.Context {
			w := g * alpha[j]
			for i := range x {
				x[i] += w * t[i]
			}
		}
	}
	return vecMat(x, s.Wq, d, d), nil
}

// Score scores one request against candidate keys ([N×D] row-major, the
// precomputed W_k·e_c) and their reliability factors.
func (s *Scorer) Score(r Request, keys []float64, reliability []float64) ([]float64, error) {
	q, err := s.Query(r)
	if err != nil {
		return nil, err
	}
	return s.ScoreKeys(q, keys, reliability, r.Evidence)
}

// evidence returns Σ_f Evidence_f·ε_jf for candidate j (0 when ev is nil).
func (s *Scorer) evidence(ev []float64, j int) float64 {
	if ev == nil {
		return 0
	}
	f := len(s.Evidence)
	return dot(s.Evidence, ev[j*f:(j+1)*f])
}

// ScoreKeys scores a projected query against candidate keys, with optional
// evidence features ([N×F], nil: 0).
func (s *Scorer) ScoreKeys(q, keys, reliability, evidence []float64) ([]float64, error) {
	d := s.Dim
	if len(keys)%d != 0 {
		return nil, &DimError{What: "candidate keys", Got: len(keys) % d, Want: 0}
	}
	n := len(keys) / d
	if len(reliability) != n {
		return nil, &DimError{What: "reliability", Got: len(reliability), Want: n}
	}
	if evidence != nil && len(evidence) != n*len(s.Evidence) {
		return nil, &DimError{What: "evidence", Got: len(evidence), Want: n * len(s.Evidence)}
	}
	out := make([]float64, n)
	for c := range n {
		raw := dot(q, keys[c*d:(c+1)*d]) * s.Scale
		raw += s.evidence(evidence, c)
		out[c] = Reliable(raw, reliability[c])
	}
	return out, nil
}

// Reliable applies a reliability factor r > 0 to a raw score.
func Reliable(raw, r float64) float64 {
	if raw >= 0 {
		return raw * r
	}
	return raw / r
}

// DimError says which input has the wrong size.
type DimError struct {
	What      string
	Got, Want int
}

func (e *DimError) Error() string {
	return fmt.Sprintf("shgat: %s has dimension %d, want %d", e.What, e.Got, e.Want)
}

func dot(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// vecMat returns x·W for W [rows×cols] row-major.
func vecMat(x, w []float64, rows, cols int) []float64 {
	out := make([]float64, cols)
	for i := range rows {
		xi := x[i]
		if xi == 0 {
			continue
		}
		row := w[i*cols : (i+1)*cols]
		for j, v := range row {
			out[j] += xi * v
		}
	}
	return out
}

func softmax(z []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = max(m, v)
	}
	out := make([]float64, len(z))
	var sum float64
	for i, v := range z {
		out[i] = math.Exp(v - m)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
