package shgat

import (
	"fmt"
	"math"
)

// Model is a SHGAT scorer: configuration, the number of capability levels it
// was built for, and its parameters.
type Model struct {
	Config Config
	Levels int
	Params *Params
}

// New returns a model initialised deterministically from cfg.Seed for
// catalogs with up to levels capability levels.
func New(cfg Config, levels int) (*Model, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if levels < 1 {
		return nil, &ConfigError{Field: "levels", Reason: fmt.Sprintf("must be ≥ 1, got %d", levels)}
	}
	p := NewParams(cfg, levels)
	p.init(cfg)
	return &Model{Config: cfg, Levels: levels, Params: p}, nil
}

// Features are the input node embeddings, row-major.
type Features struct {
	Tools []float64 // [len(Graph.Tools) × D]
	Caps  []float64 // [len(Graph.Caps) × D]
}

// Reps are the node representations after message passing and the
// capability keys W_k·e_c: what a model version precomputes once for
// serving.
type Reps struct {
	Dim   int
	Tools []float64 // [T×D]; nil after a forward pass whose batch has no context tools
	Caps  []float64 // [C×D]
	Keys  []float64 // [C×D]
}

// Scorer returns the request-time scorer of the model's current parameters.
func (m *Model) Scorer() *Scorer {
	c := m.Config
	return &Scorer{
		Dim: c.Dim, Heads: c.Heads, HeadDim: c.HeadDim,
		Wq: append([]float64(nil), m.Params.Wq...), CtxQ: append([]float64(nil), m.Params.CtxQ...),
		CtxGate: m.Params.CtxG[0],
		Scale:   1 / (float64(c.Heads) * math.Sqrt(float64(c.HeadDim))), CtxScale: 1 / math.Sqrt(float64(c.Dim)),
		InputScale: c.InputScale,
		Evidence:   append([]float64(nil), m.Params.Evid...),
	}
}

// ReliabilityFactors maps success rates (nil: unknown) to factors.
func (m *Model) ReliabilityFactors(successRates []*float64) []float64 {
	out := make([]float64, len(successRates))
	for i, s := range successRates {
		out[i] = m.Config.Reliability.Factor(s)
	}
	return out
}

// Represent runs message passing in inference mode and returns the
// representations and keys of every node.
func (m *Model) Represent(g *Graph, f Features) (*Reps, error) {
	out, err := m.Forward(Input{Graph: g, Features: f})
	if err != nil {
		return nil, err
	}
	return out.Reps, nil
}

// InputError says what is wrong with a forward pass's input.
type InputError struct {
	Field, Reason string
}

func (e *InputError) Error() string { return "shgat: input " + e.Field + ": " + e.Reason }

func (m *Model) checkInput(in Input) error {
	d := m.Config.Dim
	bad := func(f, format string, a ...any) error {
		return &InputError{Field: f, Reason: fmt.Sprintf(format, a...)}
	}
	g := in.Graph
	if g == nil {
		return bad("graph", "missing")
	}
	if len(in.Features.Tools) != len(g.Tools)*d {
		return bad("features.tools", "has %d values, want %d tools × %d", len(in.Features.Tools), len(g.Tools), d)
	}
	if len(in.Features.Caps) != len(g.Caps)*d {
		return bad("features.caps", "has %d values, want %d capabilities × %d", len(in.Features.Caps), len(g.Caps), d)
	}
	if err := finite("features.tools", in.Features.Tools); err != nil {
		return err
	}
	if err := finite("features.caps", in.Features.Caps); err != nil {
		return err
	}
	if in.Reliability != nil {
		if len(in.Reliability) != len(g.Caps) {
			return bad("reliability", "has %d values, want one per capability (%d)", len(in.Reliability), len(g.Caps))
		}
		for i, r := range in.Reliability {
			if !(r > 0) || math.IsInf(r, 0) {
				return bad("reliability", "capability %q has factor %v, want positive and finite", g.Caps[i], r)
			}
		}
	}
	if in.Train && m.Config.Dropout > 0 && in.Rand == nil {
		return bad("rand", "training with dropout needs a random source")
	}
	if k := m.Config.KeyMemory; k != 0 && k != len(g.Caps) {
		return bad("graph", "has %d capabilities, the model's key memory %d", len(g.Caps), k)
	}
	for b, ex := range in.Batch {
		if len(ex.Intent) != d {
			return bad(fmt.Sprintf("batch[%d].intent", b), "has dimension %d, want %d", len(ex.Intent), d)
		}
		if err := finite(fmt.Sprintf("batch[%d].intent", b), ex.Intent); err != nil {
			return err
		}
		for _, t := range ex.Context {
			if t < 0 || t >= len(g.Tools) {
				return bad(fmt.Sprintf("batch[%d].context", b), "tool index %d out of range [0,%d)", t, len(g.Tools))
			}
		}
		if f := len(m.Config.Evidence); ex.Evidence != nil && len(ex.Evidence) != len(ex.Candidates)*f {
			return bad(fmt.Sprintf("batch[%d].evidence", b), "has %d values, want %d features × %d candidates", len(ex.Evidence), f, len(ex.Candidates))
		}
		if err := finite(fmt.Sprintf("batch[%d].evidence", b), ex.Evidence); err != nil {
			return err
		}
		if len(ex.Candidates) == 0 {
			return bad(fmt.Sprintf("batch[%d].candidates", b), "empty")
		}
		for _, c := range ex.Candidates {
			if c < 0 || c >= len(g.Caps) {
				return bad(fmt.Sprintf("batch[%d].candidates", b), "capability index %d out of range [0,%d)", c, len(g.Caps))
			}
		}
	}
	return nil
}

func finite(field string, xs []float64) error {
	for i, v := range xs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return &InputError{Field: field, Reason: fmt.Sprintf("value %d is %v", i, v)}
		}
	}
	return nil
}
