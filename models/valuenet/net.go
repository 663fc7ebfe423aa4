package valuenet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// Net is the value function. All weights live in one flat vector (layer by
// layer: weight [out×in] row-major, then bias), so a gradient and an
// eligibility trace are flat vectors of the same layout.
type Net struct {
	cfg    Config
	params []float64
	layers []layer
}

// layer holds views into Net.params and the offsets of those views, which
// locate the layer's part of a gradient.
type layer struct {
	in, out    int
	w, b       []float64 // b is nil with NoBias
	wOff, bOff int
}

// New builds a net initialised deterministically from cfg.Seed.
func New(cfg Config) (*Net, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	cfg.Hidden = slices.Clone(cfg.Hidden)
	n := newShape(cfg)
	n.init()
	return n, nil
}

// newShape allocates a zero net for a checked config.
func newShape(cfg Config) *Net {
	sizes := append(append([]int{cfg.InputDim}, cfg.Hidden...), 1)
	total, _ := cfg.numParams()
	n := &Net{cfg: cfg, params: make([]float64, total)}
	off := 0
	for i := range len(sizes) - 1 {
		l := layer{in: sizes[i], out: sizes[i+1], wOff: off}
		l.w = n.params[off : off+l.in*l.out : off+l.in*l.out]
		off += l.in * l.out
		if !cfg.NoBias {
			l.bOff = off
			l.b = n.params[off : off+l.out : off+l.out]
			off += l.out
		}
		n.layers = append(n.layers, l)
	}
	return n
}

// init draws the weights: He normal for ReLU layers, Xavier uniform for the
// output layer (or zero with ZeroOutput), zero biases.
func (n *Net) init() {
	rng := rand.New(rand.NewPCG(n.cfg.Seed, 0x7d_1a3b_da))
	last := len(n.layers) - 1
	for i, l := range n.layers {
		switch {
		case i < last:
			std := math.Sqrt(2 / float64(l.in))
			for j := range l.w {
				l.w[j] = rng.NormFloat64() * std
			}
		case !n.cfg.ZeroOutput:
			lim := math.Sqrt(6 / float64(l.in+l.out))
			for j := range l.w {
				l.w[j] = (2*rng.Float64() - 1) * lim
			}
		}
	}
}

// Config returns the net's configuration.
func (n *Net) Config() Config {
	c := n.cfg
	c.Hidden = slices.Clone(c.Hidden)
	return c
}

// NumParams is the length of Params and of a gradient.
func (n *Net) NumParams() int { return len(n.params) }

// Params returns a copy of the weights in gradient layout: per layer the
// weight [out×in] row-major, then the bias (absent with NoBias).
func (n *Net) Params() []float64 { return slices.Clone(n.params) }

// Value returns V(x).
func (n *Net) Value(x []float64) (float64, error) {
	if err := n.checkX("x", x); err != nil {
		return 0, err
	}
	return n.forward(x, n.newWork()), nil
}

// ValueBatch returns V of every row, one matrix product per layer.
func (n *Net) ValueBatch(xs [][]float64) ([]float64, error) {
	for i, x := range xs {
		if err := n.checkX(fmt.Sprintf("xs[%d]", i), x); err != nil {
			return nil, err
		}
	}
	rows := len(xs)
	if rows == 0 {
		return []float64{}, nil
	}
	a := make([]float64, 0, rows*n.cfg.InputDim)
	for _, x := range xs {
		a = append(a, x...)
	}
	last := len(n.layers) - 1
	for i, l := range n.layers {
		z := make([]float64, rows*l.out)
		if l.b != nil {
			for r := range rows {
				copy(z[r*l.out:], l.b)
			}
		}
		// Z = A·Wᵀ + b with A [rows×in] and W [out×in].
		blas64.Gemm(blas.NoTrans, blas.Trans, 1, general(a, rows, l.in), general(l.w, l.out, l.in), 1, general(z, rows, l.out))
		if i < last {
			relu(z, z)
		}
		a = z
	}
	return a, nil
}

// Grad returns V(x) and ∇V(x) with respect to the weights, in Params'
// layout.
func (n *Net) Grad(x []float64) (float64, []float64, error) {
	if err := n.checkX("x", x); err != nil {
		return 0, nil, err
	}
	w := n.newWork()
	v := n.forward(x, w)
	g := make([]float64, len(n.params))
	n.addGrad(w, g)
	return v, g, nil
}

// work holds one forward pass's activations and the backward pass's
// deltas; one per goroutine.
type work struct {
	pre   [][]float64 // pre-activation of each layer
	act   [][]float64 // input of each layer: act[0] = x, act[i] = ReLU(pre[i-1])
	delta [][]float64 // ∂V/∂pre of each layer
}

func (n *Net) newWork() *work {
	w := &work{}
	for _, l := range n.layers {
		w.pre = append(w.pre, make([]float64, l.out))
		w.act = append(w.act, make([]float64, l.in))
		w.delta = append(w.delta, make([]float64, l.out))
	}
	return w
}

// forward computes V(x), keeping the activations in w for addGrad.
func (n *Net) forward(x []float64, w *work) float64 {
	copy(w.act[0], x)
	last := len(n.layers) - 1
	for i, l := range n.layers {
		z := w.pre[i]
		if l.b != nil {
			copy(z, l.b)
		} else {
			clear(z)
		}
		blas64.Gemv(blas.NoTrans, 1, general(l.w, l.out, l.in), vec(w.act[i]), 1, vec(z))
		if i < last {
			relu(w.act[i+1], z)
		}
	}
	return w.pre[last][0]
}

// addGrad adds ∇V of the last forward pass to g. Adding rather than
// writing lets Episode fold the gradient straight into the trace.
func (n *Net) addGrad(w *work, g []float64) {
	last := len(n.layers) - 1
	w.delta[last][0] = 1
	for i := last; i >= 0; i-- {
		l, d := n.layers[i], w.delta[i]
		// ∂V/∂W = δ·aᵀ, ∂V/∂b = δ.
		blas64.Ger(1, vec(d), vec(w.act[i]), general(g[l.wOff:l.wOff+l.out*l.in], l.out, l.in))
		if l.b != nil {
			gb := g[l.bOff : l.bOff+l.out]
			for j, v := range d {
				gb[j] += v
			}
		}
		if i == 0 {
			break
		}
		// δ_{i-1} = (Wᵀ·δ_i) ⊙ ReLU'(pre_{i-1}); ReLU'(0) taken as 0.
		prev := w.delta[i-1]
		blas64.Gemv(blas.Trans, 1, general(l.w, l.out, l.in), vec(d), 0, vec(prev))
		for j, z := range w.pre[i-1] {
			if z <= 0 {
				prev[j] = 0
			}
		}
	}
}

// checkX rejects a feature vector of the wrong width or with non-finite
// values.
func (n *Net) checkX(field string, x []float64) error {
	if len(x) != n.cfg.InputDim {
		return &InputError{Field: field, Err: ErrWidth, Detail: fmt.Sprintf("%d values, want %d", len(x), n.cfg.InputDim)}
	}
	return finite(field, x)
}

func finite(field string, xs []float64) error {
	for i, v := range xs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return &InputError{Field: field, Err: ErrNonFinite, Detail: fmt.Sprintf("value %d is %v", i, v)}
		}
	}
	return nil
}

func relu(dst, src []float64) {
	for i, v := range src {
		dst[i] = max(v, 0)
	}
}

func vec(x []float64) blas64.Vector { return blas64.Vector{N: len(x), Data: x, Inc: 1} }

func general(a []float64, rows, cols int) blas64.General {
	return blas64.General{Rows: rows, Cols: cols, Data: a, Stride: cols}
}
