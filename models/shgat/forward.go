package shgat

import (
	"math"
	"math/rand/v2"
)

// Example is one training or evaluation request: an intent, the tools in
// context (tool indices into Graph.Tools) and the candidates to score
// (capability indices into Graph.Caps).
type Example struct {
	Intent     []float64
	Context    []int
	Candidates []int
	Evidence   []float64 // [len(Candidates)×F] evidence features (models/evidence); nil: 0
}

// Input is one forward pass: message passing over Graph from Features, then
// scoring of every example in Batch (which may be empty).
type Input struct {
	Graph       *Graph
	Features    Features
	Reliability []float64 // factor per capability; nil: all 1
	Batch       []Example
	Train       bool       // dropout on messages
	Rand        *rand.Rand // dropout masks; needed when Train and Dropout > 0
}

// Output holds the scores and representations of a forward pass, and what
// Backward needs.
type Output struct {
	Scores [][]float64 // per example, per candidate
	Reps   *Reps

	m     *Model
	in    Input
	steps []stepTape
	ex    []exampleTape
	x     []float64 // node states after message passing [M×D]
	xq    []float64 // context-mixed intents x' [B×D]
	q     []float64 // queries [B×D]
}

// stepTape is what one message-passing step keeps for its backward pass.
type stepTape struct {
	step
	uniq  []int     // distinct source nodes
	pos   []int     // per edge: row of its source in uniq
	xs    []float64 // source states [U×D]
	xt    []float64 // target states before the step [T×D]
	ys    []float64 // xs·W_child
	yt    []float64 // xt·W_parent
	alpha []float64 // [E×Heads]
	agg   []float64 // pre-ELU messages [T×D]
	msg   []float64 // messages after ELU and dropout [T×D]
	drop  []float64 // dropout scale [T×D], nil when off
}

// exampleTape is one example's context attention.
type exampleTape struct {
	alpha []float64 // over its context tools
	pool  []float64 // p [D]
	u     []float64 // x·CtxQ [D]
}

// Forward runs message passing and scores the batch.
func (m *Model) Forward(in Input) (*Output, error) {
	if err := m.checkInput(in); err != nil {
		return nil, err
	}
	steps, err := in.Graph.schedule(m.Levels)
	if err != nil {
		return nil, err
	}
	d, g := m.Config.Dim, in.Graph
	nt := len(g.Tools)
	x := make([]float64, g.Nodes()*d)
	copy(x, in.Features.Tools)
	copy(x[nt*d:], in.Features.Caps)
	for i := range x {
		x[i] *= m.Config.InputScale
	}

	// The last step (capabilities → tools) only changes tool states, which
	// a batch reads only through context tools: a batch without context
	// skips it (a third of a training step's cost on Seal-Tools).
	toolsNeeded := len(in.Batch) == 0
	for _, ex := range in.Batch {
		toolsNeeded = toolsNeeded || len(ex.Context) > 0
	}
	toolStep := StepCount(m.Levels) - 1
	o := &Output{m: m, in: in, x: x}
	for _, s := range steps {
		if s.param == toolStep && !toolsNeeded {
			continue
		}
		o.steps = append(o.steps, m.stepForward(s, x, in))
	}
	caps := x[nt*d:]
	keys := make([]float64, len(g.Caps)*d)
	gemm(false, false, len(g.Caps), d, d, 1, caps, m.Params.Wk, 0, keys)
	for i, u := range m.Params.Mem { // checkInput: KeyMemory = len(g.Caps)
		keys[i] += u
	}
	o.Reps = &Reps{Dim: d, Caps: caps, Keys: keys}
	if toolsNeeded {
		o.Reps.Tools = x[:nt*d]
	}
	o.score()
	return o, nil
}

func (m *Model) stepForward(s step, x []float64, in Input) stepTape {
	c := m.Config
	d, hd := c.Dim, c.HeadDim
	p := m.Params.Steps[s.param]
	t := stepTape{step: s}
	row := map[int]int{}
	t.pos = make([]int, len(s.src))
	for e, n := range s.src {
		r, ok := row[n]
		if !ok {
			r = len(t.uniq)
			row[n] = r
			t.uniq = append(t.uniq, n)
		}
		t.pos[e] = r
	}
	nu, ntg := len(t.uniq), len(s.targets)
	t.xs, t.xt = gather(x, t.uniq, d), gather(x, s.targets, d)
	t.ys, t.yt = make([]float64, nu*d), make([]float64, ntg*d)
	gemm(false, false, nu, d, d, 1, t.xs, p.Child, 0, t.ys)
	gemm(false, false, ntg, d, d, 1, t.xt, p.Parent, 0, t.yt)

	t.alpha = make([]float64, len(s.src)*c.Heads)
	t.agg, t.msg = make([]float64, ntg*d), make([]float64, ntg*d)
	if in.Train && c.Dropout > 0 {
		t.drop = make([]float64, ntg*d)
		keep := 1 - c.Dropout
		for i := range t.drop {
			if in.Rand.Float64() < keep {
				t.drop[i] = 1 / keep
			}
		}
	}
	gates := make([]float64, d)
	for k := range d {
		gates[k] = sigmoid(p.Gate[k])
	}
	var logits []float64
	for i := range ntg {
		lo, hi := s.ptr[i], s.ptr[i+1]
		for h := range c.Heads {
			a := p.Attn[h*hd : (h+1)*hd]
			yt := t.yt[i*d+h*hd : i*d+(h+1)*hd]
			logits = logits[:0]
			mx := math.Inf(-1)
			for e := lo; e < hi; e++ {
				ys := t.ys[t.pos[e]*d+h*hd : t.pos[e]*d+(h+1)*hd]
				var l float64
				for k, av := range a {
					l += av * leaky(ys[k]+yt[k], c.LeakySlope)
				}
				logits = append(logits, l)
				mx = max(mx, l)
			}
			var sum float64
			for j := range logits {
				logits[j] = math.Exp(logits[j] - mx)
				sum += logits[j]
			}
			agg := t.agg[i*d+h*hd : i*d+(h+1)*hd]
			for j, e := 0, lo; e < hi; j, e = j+1, e+1 {
				al := logits[j] / sum
				t.alpha[e*c.Heads+h] = al
				ys := t.ys[t.pos[e]*d+h*hd : t.pos[e]*d+(h+1)*hd]
				for k, v := range ys {
					agg[k] += al * v
				}
			}
		}
		for k := i * d; k < (i+1)*d; k++ {
			t.msg[k] = elu(t.agg[k])
			if t.drop != nil {
				t.msg[k] *= t.drop[k]
			}
		}
		// Gated residual update of the target's state.
		n := s.targets[i]
		xr := x[n*d : (n+1)*d]
		for k, gk := range gates {
			xr[k] = (1-gk)*t.xt[i*d+k] + gk*t.msg[i*d+k]
		}
	}
	return t
}

// score runs the request-time scorer on every example, batched.
func (o *Output) score() {
	m, in := o.m, o.in
	b := len(in.Batch)
	if b == 0 {
		return
	}
	c := m.Config
	d := c.Dim
	sc := m.Scorer()
	xs := o.scaledIntents()
	u := make([]float64, b*d)
	gemm(false, false, b, d, d, 1, xs, m.Params.CtxQ, 0, u)
	gate := sigmoid(m.Params.CtxG[0])
	o.xq = append([]float64(nil), xs...)
	o.ex = make([]exampleTape, b)
	for i, ex := range in.Batch {
		et := exampleTape{u: u[i*d : (i+1)*d]}
		if len(ex.Context) > 0 {
			logits := make([]float64, len(ex.Context))
			for j, t := range ex.Context {
				logits[j] = dot(et.u, o.x[t*d:(t+1)*d]) * sc.CtxScale
			}
			et.alpha = softmax(logits)
			et.pool = make([]float64, d)
			for j, t := range ex.Context {
				for k, v := range o.x[t*d : (t+1)*d] {
					et.pool[k] += et.alpha[j] * v
				}
			}
			xq := o.xq[i*d : (i+1)*d]
			for k, v := range et.pool {
				xq[k] += gate * v
			}
		}
		o.ex[i] = et
	}
	o.q = make([]float64, b*d)
	gemm(false, false, b, d, d, 1, o.xq, m.Params.Wq, 0, o.q)
	o.Scores = make([][]float64, b)
	for i, ex := range in.Batch {
		q := o.q[i*d : (i+1)*d]
		s := make([]float64, len(ex.Candidates))
		for j, cand := range ex.Candidates {
			raw := dot(q, o.Reps.Keys[cand*d:(cand+1)*d]) * sc.Scale
			raw += sc.evidence(ex.Evidence, j)
			s[j] = Reliable(raw, o.reliability(cand))
		}
		o.Scores[i] = s
	}
}

// scaledIntents returns the batch's intents times InputScale, [B×D].
func (o *Output) scaledIntents() []float64 {
	d, s := o.m.Config.Dim, o.m.Config.InputScale
	xs := make([]float64, len(o.in.Batch)*d)
	for i, ex := range o.in.Batch {
		for k, v := range ex.Intent {
			xs[i*d+k] = v * s
		}
	}
	return xs
}

func (o *Output) reliability(c int) float64 {
	if o.in.Reliability == nil {
		return 1
	}
	return o.in.Reliability[c]
}

func leaky(x, slope float64) float64 {
	if x >= 0 {
		return x
	}
	return slope * x
}

func elu(x float64) float64 {
	if x > 0 {
		return x
	}
	return math.Expm1(x)
}
