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
	InputContextKeys = "context_keys" // [batch, context, D], the tools' attention keys (Projection.Context)
	InputContextMask = "context_mask" // [batch, context], 1 = real tool, 0 = padding
	InputCandidates  = "candidates"   // [candidates, D], the keys in query space (Projection.Candidates)
	InputReliability = "reliability"  // [candidates], factor r_c > 0
	OutputScores     = "scores"       // [batch, candidates]
)

// maskedLogit is added to the logit of a padding slot: far below any real
// logit, yet finite in float32, so softmax never sees −Inf − (−Inf).
const maskedLogit = 1e9

const scorerDoc = `capflow SHGAT request-time scorer (models/shgat Scorer), row-vector convention.
Inputs (float32): intent [batch,D]; context [batch,context,D] (tool representations t_j);
context_keys [batch,context,D] (attention keys κ_j = CtxQ·t_j/√D); context_mask [batch,context] (1 = real tool, 0 = padding);
candidates [candidates,D] (capability keys in query space k'_c = Wq·k_c/(Heads·√HeadDim), k_c = W_k·e_c);
reliability [candidates] (r_c > 0); evidence [batch,candidates,F] (evidence features per candidate, 0 when none).
Output: scores [batch,candidates].
  x     = InputScale·intent
  s_j   = x·κ_j + (mask_j − 1)·1e9
  α     = softmax_j(s) ⊙ mask                      all padding → α = 0
  x'    = x + σ(CtxGate)·Σ_j α_j t_j
  raw_c = x'·k'_c + evidence_c·w_e                 w_e the F evidence weights
  score = raw·r if raw ≥ 0 else raw/r
The D×D projections are folded into the keys once per model version (shgat.Scorer.Project), so a request reads
no D×D weight matrix.`

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
	dd := s.Dim * s.Dim
	for _, w := range []struct {
		name  string
		v     []float64
		scale float64
	}{{"Wq", s.Wq, s.Scale}, {"CtxQ", s.CtxQ, s.CtxScale}} {
		if len(w.v) != dd {
			return &ScorerError{Field: w.name, Reason: fmt.Sprintf("has %d values, want Dim·Dim = %d", len(w.v), dd)}
		}
		// The graph does not hold them (Project folds them into the
		// catalog), but a scorer they make unusable is not exported.
		if _, err := scaled32(w.name, w.v, w.scale); err != nil {
			return err
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
	d := int64(s.Dim)

	g := onnxgraph.New("shgat_scorer")
	g.Doc(scorerDoc)
	x := g.Input(InputIntent, onnxgraph.Float, "batch", d)
	tools := g.Input(InputContext, onnxgraph.Float, "batch", "context", d)
	ctxKeys := g.Input(InputContextKeys, onnxgraph.Float, "batch", "context", d)
	mask := g.Input(InputContextMask, onnxgraph.Float, "batch", "context")
	keys := g.Input(InputCandidates, onnxgraph.Float, "candidates", d)
	rel := g.Input(InputReliability, onnxgraph.Float, "candidates")
	nf := int64(len(s.Evidence))
	ev := g.Input(InputEvidence, onnxgraph.Float, "batch", "candidates", nf)
	ew := g.Initializer("evidence_weights", []int64{nf}, to32(s.Evidence))
	g.Output(OutputScores, onnxgraph.Float, "batch", "candidates")
	op := func(name string, inputs ...string) string { return g.Op(name, inputs) }

	// Context attention, kept as [B,C,1] so the mask and the weights
	// broadcast over D without reshapes.
	xs := x
	if s.inputScale() != 1 {
		xs = op("Mul", x, g.FloatScalar(float32(s.inputScale())))
	}
	axis2 := g.IntVector(2)
	logits := op("MatMul", ctxKeys, op("Unsqueeze", xs, axis2)) // [B,C,D]·[B,D,1] → [B,C,1]
	m := op("Unsqueeze", mask, axis2)                           // [B,C,1]
	penalty := op("Mul", op("Sub", m, g.FloatScalar(1)), g.FloatScalar(maskedLogit))
	soft := g.Op("Softmax", []string{op("Add", logits, penalty)}, onnxgraph.AttrInt("axis", 1))
	alpha := op("Mul", soft, m)
	pooled := g.Op("ReduceSum", []string{op("Mul", tools, alpha), g.IntVector(1)}, onnxgraph.AttrInt("keepdims", 0)) // [B,D]
	xq := op("Add", xs, op("Mul", pooled, g.FloatScalar(float32(sigmoid(s.CtxGate)))))

	raw := g.Op("Gemm", []string{xq, keys}, onnxgraph.AttrInt("transB", 1)) // [B,N]
	raw = op("Add", raw, op("MatMul", ev, ew))                              // [B,N,F]·[F] → [B,N]
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
