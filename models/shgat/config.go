package shgat

import (
	"fmt"
	"math"
)

// Config sizes and regularises a model. Zero fields take defaults from
// WithDefaults.
type Config struct {
	Dim     int // D: width of every node embedding and of the intent
	Heads   int // K; 0 derives it from Dim (see WithDefaults)
	HeadDim int // d_h; Heads·HeadDim must equal Dim

	// InputScale multiplies every input embedding (node features and
	// intents); 0 means √Dim. Encoders return unit vectors, and scaled
	// dot-product scores assume entries of unit variance (norm √D): with
	// unit vectors the initial scores would be ~cos/(Heads·√HeadDim), too
	// flat for a softmax over thousands of candidates.
	InputScale float64

	LeakySlope float64 // LeakyReLU slope in the attention logits (0.2)
	GateInit   float64 // initial σ(γ) of every gated residual (0.2)
	CtxGate    float64 // initial σ of the context mixing gate (0.3)
	// Evidence names the per-candidate evidence features the scorer fuses
	// with its dense score (default DefaultEvidence); EvidenceInit are
	// their initial weights (nil: 0, a dense-only start). The features are
	// computed by the caller (models/evidence), the weights learned here.
	Evidence     []string
	EvidenceInit []float64
	// IntentParts scores an intent as the best of its parts: the whole
	// intent and each of its clauses (models/evidence.Parts) are scored as
	// rows of one batch, and each candidate keeps its highest score. The
	// caller does the max (train, models/ranker); the scorer and its ONNX
	// export score rows as always. A request that asks for three things
	// gets each matched on its own instead of the average of the three.
	IntentParts bool
	// KeyMemory, when not 0, gives each capability a learned key offset:
	// k_c = e_c·W_k + u_c, with u_c starting at 0 and decayed by L2. It must
	// be the graph's capability count. A shared W_k can only move every key
	// the same way; u_c learns, from the outcomes logged for c, how intents
	// that needed c are phrased (collaborative memory, as a learned tool
	// embedding), and stays 0 for capabilities never selected. The keys
	// are precomputed per model version, so serving pays nothing for it.
	KeyMemory int

	// Init is "identity" (default: square projections start at I plus
	// small noise, so the untrained model ranks like cosine similarity of
	// lightly smoothed embeddings) or "xavier" (Glorot uniform).
	Init      string
	InitNoise float64 // std of the noise added to identity init (0.01)
	Seed      uint64

	Dropout float64 // on messages m_t, training only
	L2      float64 // decay of projection matrices towards their init centre (I or 0), training only

	Reliability Reliability
}

// Reliability maps a capability's success rate to a score factor (design:
// 0.5 below 0.5, 1.2 above 0.9, else 1.0). An unknown success rate gets
// Neutral.
type Reliability struct {
	LowBelow, LowFactor   float64 // 0.5, 0.5
	HighAbove, HighFactor float64 // 0.9, 1.2
	Neutral               float64 // 1.0
}

// Factor returns the reliability factor for a success rate (nil: unknown).
func (r Reliability) Factor(successRate *float64) float64 {
	switch {
	case successRate == nil:
		return r.Neutral
	case *successRate < r.LowBelow:
		return r.LowFactor
	case *successRate > r.HighAbove:
		return r.HighFactor
	}
	return r.Neutral
}

// DefaultEvidence are the evidence features of models/evidence: BM25 of
// the intent against the capability's document and the best BM25 and
// cosine similarity against its member tools' own texts.
var DefaultEvidence = []string{
	"bm25_capability", "bm25_tool_max", "cos_tool_max",
	"bm25_capability_part_max", "bm25_tool_part_max", "cos_tool_part_max",
}

// DefaultHeadDim is the head width used when only Dim is given: 16 heads of
// 64 at 1024-d (the design), 6 of 64 for 384-d MiniLM.
const DefaultHeadDim = 64

// WithDefaults fills zero fields. Heads and HeadDim are derived from Dim:
// heads of 64 when 64 divides Dim, else the largest power of two that does
// (down to 1).
func (c Config) WithDefaults() Config {
	if c.Heads == 0 && c.HeadDim == 0 && c.Dim > 0 {
		hd := DefaultHeadDim
		for hd > 1 && c.Dim%hd != 0 {
			hd /= 2
		}
		c.HeadDim, c.Heads = hd, c.Dim/hd
	} else if c.Heads == 0 && c.HeadDim > 0 {
		c.Heads = c.Dim / c.HeadDim
	} else if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Dim / c.Heads
	}
	if c.InputScale == 0 && c.Dim > 0 {
		c.InputScale = math.Sqrt(float64(c.Dim))
	}
	if c.LeakySlope == 0 {
		c.LeakySlope = 0.2
	}
	if c.GateInit == 0 {
		c.GateInit = 0.2
	}
	if c.CtxGate == 0 {
		c.CtxGate = 0.3
	}
	if c.Init == "" {
		c.Init = "identity"
	}
	if c.InitNoise == 0 {
		c.InitNoise = 0.01
	}
	if len(c.Evidence) == 0 {
		c.Evidence = DefaultEvidence
	}
	if c.Reliability == (Reliability{}) {
		c.Reliability = Reliability{LowBelow: 0.5, LowFactor: 0.5, HighAbove: 0.9, HighFactor: 1.2, Neutral: 1}
	}
	return c
}

// ConfigError names the configuration field that is wrong.
type ConfigError struct {
	Field, Reason string
}

func (e *ConfigError) Error() string { return "shgat: config " + e.Field + ": " + e.Reason }

// Check validates a defaulted config.
func (c Config) Check() error {
	bad := func(f, format string, a ...any) error {
		return &ConfigError{Field: f, Reason: fmt.Sprintf(format, a...)}
	}
	switch {
	case c.Dim <= 0:
		return bad("dim", "must be positive, got %d", c.Dim)
	case c.Heads <= 0 || c.HeadDim <= 0 || c.Heads*c.HeadDim != c.Dim:
		return bad("heads", "heads (%d) × head_dim (%d) must equal dim (%d)", c.Heads, c.HeadDim, c.Dim)
	case !(c.InputScale > 0) || math.IsInf(c.InputScale, 0):
		return bad("input_scale", "must be positive and finite, got %v", c.InputScale)
	case !(c.LeakySlope >= 0 && c.LeakySlope < 1):
		return bad("leaky_slope", "must be in [0,1), got %v", c.LeakySlope)
	case !(c.GateInit > 0 && c.GateInit < 1):
		return bad("gate_init", "must be in (0,1), got %v", c.GateInit)
	case !(c.CtxGate > 0 && c.CtxGate < 1):
		return bad("ctx_gate", "must be in (0,1), got %v", c.CtxGate)
	case c.Init != "identity" && c.Init != "xavier":
		return bad("init", "must be identity or xavier, got %q", c.Init)
	case !(c.InitNoise >= 0) || math.IsInf(c.InitNoise, 0):
		return bad("init_noise", "must be ≥ 0, got %v", c.InitNoise)
	case c.KeyMemory < 0:
		return bad("key_memory", "must be ≥ 0, got %d", c.KeyMemory)
	case c.EvidenceInit != nil && len(c.EvidenceInit) != len(c.Evidence):
		return bad("evidence_init", "has %d weights for %d evidence features", len(c.EvidenceInit), len(c.Evidence))
	case !(c.Dropout >= 0 && c.Dropout < 1):
		return bad("dropout", "must be in [0,1), got %v", c.Dropout)
	case !(c.L2 >= 0) || math.IsInf(c.L2, 0):
		return bad("l2", "must be ≥ 0, got %v", c.L2)
	}
	for _, w := range c.EvidenceInit {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return bad("evidence_init", "must be finite, got %v", c.EvidenceInit)
		}
	}
	r := c.Reliability
	for _, f := range []float64{r.LowFactor, r.HighFactor, r.Neutral} {
		if !(f > 0) || math.IsInf(f, 0) {
			return bad("reliability", "factors must be positive and finite, got %+v", r)
		}
	}
	return nil
}

func logit(p float64) float64 { return math.Log(p / (1 - p)) }
