package shgat

import (
	"fmt"
	"math"
	"strconv"

	"github.com/capflow/capflow/models/onnxgraph"
)

// Names of the exported scorer's inputs and output: the serving contract.
// All are float32; "batch", "context" and "candidates" are dynamic axes and
// D is fixed by the model.
const (
	InputIntent      = "intent"       // [batch, D]
	InputEvidence    = "evidence"     // [batch, candidates, F]
	InputContext     = "context"      // [batch, context, D]
	InputContextMask = "context_mask" // [batch, context], 1 = real tool, 0 = padding
	InputCandidates  = "candidates"   // [candidates, D], the keys W_k·e_c
	InputReliability = "reliability"  // [candidates], factor r_c > 0
	OutputScores     = "scores"       // [batch, candidates]
)

// maskedLogit is added to the logit of a padding slot: far below any real
// logit, yet finite in float32, so softmax never sees −Inf − (−Inf).
const maskedLogit = 1e9

const scorerDoc = `capflow SHGAT request-time scorer (models/shgat Scorer), row-vector convention.
Inputs (float32): intent [batch,D]; context [batch,context,D]; context_mask [batch,context] (1 = real tool, 0 = padding);
candidates [candidates,D] (capability keys W_k·e_c); reliability [candidates] (r_c > 0);
evidence [batch,candidates,F] (evidence features per candidate, 0 when none). Output: scores [batch,candidates].
  x     = InputScale·intent
  s_j   = x·ctx_q·t_j + (mask_j − 1)·1e9          ctx_q = CtxQ/√D
  α     = softmax_j(s) ⊙ mask                      all padding → α = 0
  x'    = x + σ(CtxGate)·Σ_j α_j t_j
  raw_c = x'·w_q·k_c + evidence_c·w_e              w_q = Wq/(Heads·√HeadDim), w_e the F evidence weights
  score = raw·r if raw ≥ 0 else raw/r`

// ScorerError says why a Scorer cannot be exported.
type ScorerError struct {
	Field, Reason string
}

func (e *ScorerError) Error() string {
	if e.Field == "" {
		return "shgat: invalid scorer: " + e.Reason
	}
	return fmt.Sprintf("shgat: invalid scorer: %s %s", e.Field, e.Reason)
}

// checkScorer reports the first inconsistency of s as a *ScorerError.
func checkScorer(s *Scorer) error {
	if s == nil {
		return &ScorerError{Reason: "is nil"}
	}
	switch {
	case s.Dim <= 0:
		return &ScorerError{Field: "Dim", Reason: fmt.Sprintf("is %d, must be positive", s.Dim)}
	case s.Heads <= 0:
		return &ScorerError{Field: "Heads", Reason: fmt.Sprintf("is %d, must be positive", s.Heads)}
	case s.HeadDim <= 0:
		return &ScorerError{Field: "HeadDim", Reason: fmt.Sprintf("is %d, must be positive", s.HeadDim)}
	case len(s.Evidence) == 0:
		return &ScorerError{Field: "Evidence", Reason: "has no weights (one per evidence feature, at least one)"}
	case s.InputScale < 0:
		return &ScorerError{Field: "InputScale", Reason: fmt.Sprintf("is %v, must be positive (0 means 1)", s.InputScale)}
	case s.Heads*s.HeadDim != s.Dim:
		return &ScorerError{Field: "Heads·HeadDim", Reason: fmt.Sprintf("is %d·%d = %d, want Dim = %d", s.Heads, s.HeadDim, s.Heads*s.HeadDim, s.Dim)}
	}
	dd := s.Dim * s.Dim
	for _, w := range []struct {
		name string
		v    []float64
	}{{"Wq", s.Wq}, {"CtxQ", s.CtxQ}} {
		if len(w.v) != dd {
			return &ScorerError{Field: w.name, Reason: fmt.Sprintf("has %d values, want Dim·Dim = %d", len(w.v), dd)}
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"CtxGate", s.CtxGate}, {"Scale", s.Scale}, {"CtxScale", s.CtxScale}, {"InputScale", s.InputScale}} {
		if !finite32(f.v) {
			return &ScorerError{Field: f.name, Reason: fmt.Sprintf("is %v, not a finite float32", f.v)}
		}
	}
	for i, w := range s.Evidence {
		if !finite32(w) {
			return &ScorerError{Field: fmt.Sprintf("Evidence[%d]", i), Reason: fmt.Sprintf("is %v, not a finite float32", w)}
		}
	}
	return nil
}

// finite32 reports whether v is finite and stays finite as a float32.
func finite32(v float64) bool { return !math.IsNaN(v) && math.Abs(v) <= math.MaxFloat32 }

// scaled32 returns w·scale as float32, or a *ScorerError naming the first
// value that is not finite (before or after the conversion).
func scaled32(name string, w []float64, scale float64) ([]float32, error) {
	out := make([]float32, len(w))
	for i, v := range w {
		x := v * scale
		if !finite32(v) || !finite32(x) {
			return nil, &ScorerError{Field: fmt.Sprintf("%s[%d]", name, i), Reason: fmt.Sprintf("is %v (scaled %v), not a finite float32", v, x)}
		}
		out[i] = float32(x)
	}
	return out, nil
}

// ExportScorer builds the ONNX model (opset 17) that computes s.Score for a
// batch of requests, with the inputs and output named by the Input* and
// OutputScores constants. It returns a *ScorerError if s is inconsistent.
//
// The graph is kept to what the request path needs: the constant scales are
// folded into the two D×D weights (ctx_q = CtxQ·CtxScale·InputScale, w_q = Wq·Scale) and
// σ(CtxGate) into a scalar, and the candidate keys are consumed by one Gemm
// with transB, so the [N,D] tensor is never transposed or copied.
//
// Context padding: context_mask 0 adds −1e9 to a logit and zeroes its
// attention weight after the softmax, so a row whose mask is all zero pools
// nothing (x' = x), as a Request with no Context does.
func ExportScorer(s *Scorer) (*onnxgraph.Model, error) {
	if err := checkScorer(s); err != nil {
		return nil, err
	}
	ctxQ, err := scaled32("CtxQ", s.CtxQ, s.CtxScale*s.inputScale())
	if err != nil {
		return nil, err
	}
	wQ, err := scaled32("Wq", s.Wq, s.Scale)
	if err != nil {
		return nil, err
	}
	d := int64(s.Dim)

	g := onnxgraph.New("shgat_scorer")
	g.Doc(scorerDoc)
	x := g.Input(InputIntent, onnxgraph.Float, "batch", d)
	tools := g.Input(InputContext, onnxgraph.Float, "batch", "context", d)
	mask := g.Input(InputContextMask, onnxgraph.Float, "batch", "context")
	keys := g.Input(InputCandidates, onnxgraph.Float, "candidates", d)
	rel := g.Input(InputReliability, onnxgraph.Float, "candidates")
	nf := int64(len(s.Evidence))
	ev := g.Input(InputEvidence, onnxgraph.Float, "batch", "candidates", nf)
	ew := g.Initializer("evidence_weights", []int64{nf}, to32(s.Evidence))
	g.Output(OutputScores, onnxgraph.Float, "batch", "candidates")
	ctxQName := g.Initializer("ctx_q", []int64{d, d}, ctxQ)
	wQName := g.Initializer("w_q", []int64{d, d}, wQ)
	op := func(name string, inputs ...string) string { return g.Op(name, inputs) }

	// Context attention, kept as [B,C,1] so the mask and the weights
	// broadcast over D without reshapes.
	axis2 := g.IntVector(2)
	u := op("Unsqueeze", op("MatMul", x, ctxQName), axis2) // [B,D,1]
	logits := op("MatMul", tools, u)                       // [B,C,1]
	m := op("Unsqueeze", mask, axis2)                      // [B,C,1]
	penalty := op("Mul", op("Sub", m, g.FloatScalar(1)), g.FloatScalar(maskedLogit))
	soft := g.Op("Softmax", []string{op("Add", logits, penalty)}, onnxgraph.AttrInt("axis", 1))
	alpha := op("Mul", soft, m)
	pooled := g.Op("ReduceSum", []string{op("Mul", tools, alpha), g.IntVector(1)}, onnxgraph.AttrInt("keepdims", 0)) // [B,D]
	xs := x
	if s.inputScale() != 1 {
		xs = op("Mul", x, g.FloatScalar(float32(s.inputScale())))
	}
	xq := op("Add", xs, op("Mul", pooled, g.FloatScalar(float32(sigmoid(s.CtxGate)))))

	q := op("MatMul", xq, wQName)                                          // [B,D]
	raw := g.Op("Gemm", []string{q, keys}, onnxgraph.AttrInt("transB", 1)) // [B,N]
	raw = op("Add", raw, op("MatMul", ev, ew))                             // [B,N,F]·[F] → [B,N]
	nonNeg := op("GreaterOrEqual", raw, g.FloatScalar(0))
	g.Node("Where", []string{nonNeg, op("Mul", raw, rel), op("Div", raw, rel)}, []string{OutputScores})

	return &onnxgraph.Model{
		Graph:    g,
		Opset:    17,
		Producer: "capflow",
		Doc:      "capflow SHGAT scorer",
		Metadata: map[string]string{
			"capflow.model":    "shgat-scorer",
			"capflow.dim":      strconv.Itoa(s.Dim),
			"capflow.heads":    strconv.Itoa(s.Heads),
			"capflow.head_dim": strconv.Itoa(s.HeadDim),
		},
	}, nil
}
