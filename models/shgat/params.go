package shgat

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// StepParams are one message-passing step's parameters.
type StepParams struct {
	Child  []float64 // W_child [D×D]: projects sources
	Parent []float64 // W_parent [D×D]: projects targets
	Attn   []float64 // a [Heads×HeadDim]: one attention vector per head
	Gate   []float64 // γ [D]: gated residual logits
}

// Params holds every trainable value in one flat slice (Data), with named
// views into it, so optimisers, checkpoints and gradient checks treat the
// model as one vector. Gradients use the same type.
type Params struct {
	Data  []float64
	Steps []StepParams
	Wq    []float64 // [D×D] intent (query) projection
	Wk    []float64 // [D×D] capability (key) projection
	CtxQ  []float64 // [D×D] context attention query projection
	CtxG  []float64 // [1] context mixing gate logit
	Evid  []float64 // [F] weights of the evidence features
	Mem   []float64 // [KeyMemory×D] learned capability key offsets u_c; empty without KeyMemory
}

// Group is a named parameter group.
type Group struct {
	Name   string
	Data   []float64
	Matrix bool // a projection matrix: decayed by L2
}

// NewParams returns zeroed parameters laid out for cfg and a number of
// capability levels.
func NewParams(cfg Config, levels int) *Params {
	d, n := cfg.Dim, StepCount(levels)
	size := n*(2*d*d+cfg.Heads*cfg.HeadDim+d) + 3*d*d + 1 + len(cfg.Evidence) + cfg.KeyMemory*d
	p := &Params{Data: make([]float64, size)}
	off := 0
	take := func(k int) []float64 { s := p.Data[off : off+k : off+k]; off += k; return s }
	p.Steps = make([]StepParams, n)
	for i := range p.Steps {
		p.Steps[i] = StepParams{Child: take(d * d), Parent: take(d * d), Attn: take(cfg.Heads * cfg.HeadDim), Gate: take(d)}
	}
	p.Wq, p.Wk, p.CtxQ, p.CtxG, p.Evid = take(d*d), take(d*d), take(d*d), take(1), take(len(cfg.Evidence))
	p.Mem = take(cfg.KeyMemory * d)
	return p
}

// Groups lists the parameter groups in layout order.
func (p *Params) Groups() []Group {
	var gs []Group
	for i, s := range p.Steps {
		gs = append(gs,
			Group{fmt.Sprintf("step%d.child", i), s.Child, true},
			Group{fmt.Sprintf("step%d.parent", i), s.Parent, true},
			Group{fmt.Sprintf("step%d.attn", i), s.Attn, false},
			Group{fmt.Sprintf("step%d.gate", i), s.Gate, false})
	}
	gs = append(gs, Group{"wq", p.Wq, true}, Group{"wk", p.Wk, true}, Group{"ctx_q", p.CtxQ, true}, Group{"ctx_gate", p.CtxG, false}, Group{"evidence", p.Evid, false})
	if len(p.Mem) > 0 {
		// Not a square projection: addL2 decays it towards 0 by itself.
		gs = append(gs, Group{"key_memory", p.Mem, false})
	}
	return gs
}

// init fills p deterministically from cfg.Seed.
func (p *Params) init(cfg Config) {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5c1a7_5ca1ab1e))
	d := cfg.Dim
	square := func(w []float64) {
		if cfg.Init == "xavier" {
			lim := math.Sqrt(6.0 / float64(2*d))
			for i := range w {
				w[i] = (2*rng.Float64() - 1) * lim
			}
			return
		}
		for i := range w {
			w[i] = rng.NormFloat64() * cfg.InitNoise
		}
		for i := range d {
			w[i*d+i] += 1
		}
	}
	for _, s := range p.Steps {
		square(s.Child)
		square(s.Parent)
		// Small attention vectors: attention starts close to a plain mean
		// over members and sharpens as it learns.
		for i := range s.Attn {
			s.Attn[i] = rng.NormFloat64() * 0.1 / math.Sqrt(float64(cfg.HeadDim))
		}
		g := logit(cfg.GateInit)
		for i := range s.Gate {
			s.Gate[i] = g
		}
	}
	square(p.Wq)
	square(p.Wk)
	square(p.CtxQ)
	p.CtxG[0] = logit(cfg.CtxGate)
	copy(p.Evid, cfg.EvidenceInit)
}

// Clone returns a deep copy.
func (p *Params) Clone(cfg Config) *Params {
	q := NewParams(cfg, len(p.Steps)/2)
	copy(q.Data, p.Data)
	return q
}

// addL2 adds the gradient of (λ/2)·Σ‖W − W₀‖² over the projection matrices
// to g and returns the penalty. W₀ is the centre of the initialisation: I
// for identity init (decay pulls the model back towards cosine similarity
// of the embeddings, the prior that generalises to unseen capabilities), 0
// for xavier.
func (p *Params) addL2(g *Params, lambda float64, cfg Config) float64 {
	if lambda == 0 {
		return 0
	}
	d := cfg.Dim
	var pen float64
	gg := g.Groups()
	for i, grp := range p.Groups() {
		if !grp.Matrix {
			continue
		}
		for j, w := range grp.Data {
			if cfg.Init == "identity" && j%(d+1) == 0 {
				w--
			}
			pen += w * w
			gg[i].Data[j] += lambda * w
		}
	}
	for j, w := range p.Mem {
		pen += w * w
		g.Mem[j] += lambda * w
	}
	return lambda / 2 * pen
}
