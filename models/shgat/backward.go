package shgat

import (
	"fmt"
	"math"
)

// Backward returns the gradient of a loss with respect to every parameter,
// given dScores = ∂loss/∂Scores (same shape as Scores). When the pass was a
// training pass and Config.L2 > 0, the gradient of (L2/2)·Σ‖W − W₀‖² over
// the projection matrices is included and the penalty returned (W₀ = I for
// identity init, 0 for xavier).
func (o *Output) Backward(dScores [][]float64) (grads *Params, penalty float64, err error) {
	if len(dScores) != len(o.Scores) {
		return nil, 0, &InputError{Field: "d_scores", Reason: fmt.Sprintf("has %d rows, want %d", len(dScores), len(o.Scores))}
	}
	for i, r := range dScores {
		if len(r) != len(o.Scores[i]) {
			return nil, 0, &InputError{Field: fmt.Sprintf("d_scores[%d]", i), Reason: fmt.Sprintf("has %d values, want %d", len(r), len(o.Scores[i]))}
		}
		if err := finite(fmt.Sprintf("d_scores[%d]", i), r); err != nil {
			return nil, 0, err
		}
	}
	m := o.m
	grads = NewParams(m.Config, m.Levels)
	dx := make([]float64, len(o.x))
	o.scoreBackward(dScores, grads, dx)
	for i := len(o.steps) - 1; i >= 0; i-- {
		m.stepBackward(&o.steps[i], grads, dx)
	}
	if o.in.Train {
		penalty = m.Params.addL2(grads, m.Config.L2, m.Config)
	}
	return grads, penalty, nil
}

// scoreBackward propagates dScores into the scorer's parameters and into dx
// (the gradient of the node states after message passing).
func (o *Output) scoreBackward(dScores [][]float64, g *Params, dx []float64) {
	m, in := o.m, o.in
	b := len(in.Batch)
	if b == 0 {
		return
	}
	c := m.Config
	d := c.Dim
	nt := len(in.Graph.Tools)
	sc := m.Scorer()
	keys := o.Reps.Keys
	dkeys := make([]float64, len(keys))
	dq := make([]float64, b*d)
	for i, ex := range in.Batch {
		q := o.q[i*d : (i+1)*d]
		dqi := dq[i*d : (i+1)*d]
		for j, cand := range ex.Candidates {
			k := keys[cand*d : (cand+1)*d]
			r := o.reliability(cand)
			raw := dot(q, k) * sc.Scale
			raw += sc.evidence(ex.Evidence, j)
			dr := dScores[i][j]
			if raw >= 0 {
				dr *= r
			} else {
				dr /= r
			}
			if dr == 0 {
				continue
			}
			if ex.Evidence != nil {
				f := len(g.Evid)
				for k, e := range ex.Evidence[j*f : (j+1)*f] {
					g.Evid[k] += dr * e
				}
			}
			dr *= sc.Scale
			dk := dkeys[cand*d : (cand+1)*d]
			for t := range d {
				dqi[t] += dr * k[t]
				dk[t] += dr * q[t]
			}
		}
	}
	// q = x'·Wq
	gemm(true, false, d, d, b, 1, o.xq, dq, 1, g.Wq)
	dxq := make([]float64, b*d)
	gemm(false, true, b, d, d, 1, dq, m.Params.Wq, 0, dxq)

	// x' = x + σ(γ)·p, p = Σ α_j t_j, α = softmax(u·t_j/√D), u = x·CtxQ
	gate := sigmoid(m.Params.CtxG[0])
	xs := o.scaledIntents()
	du := make([]float64, b*d)
	for i, ex := range in.Batch {
		et := o.ex[i]
		if len(ex.Context) == 0 {
			continue
		}
		dxi := dxq[i*d : (i+1)*d]
		g.CtxG[0] += dot(dxi, et.pool) * gate * (1 - gate)
		dal := make([]float64, len(ex.Context))
		for j, t := range ex.Context {
			tr := o.x[t*d : (t+1)*d]
			dal[j] = gate * dot(dxi, tr)
			dt := dx[t*d : (t+1)*d]
			for k := range d {
				dt[k] += gate * et.alpha[j] * dxi[k]
			}
		}
		var s float64
		for j := range dal {
			s += et.alpha[j] * dal[j]
		}
		dui := du[i*d : (i+1)*d]
		for j, t := range ex.Context {
			dl := et.alpha[j] * (dal[j] - s) * sc.CtxScale
			tr := o.x[t*d : (t+1)*d]
			dt := dx[t*d : (t+1)*d]
			for k := range d {
				dui[k] += dl * tr[k]
				dt[k] += dl * et.u[k]
			}
		}
	}
	gemm(true, false, d, d, b, 1, xs, du, 1, g.CtxQ)

	// keys = caps·Wk
	nc := len(in.Graph.Caps)
	caps := o.x[nt*d:]
	gemm(true, false, d, d, nc, 1, caps, dkeys, 1, g.Wk)
	for i, v := range dkeys[:len(g.Mem)] {
		g.Mem[i] += v
	}
	gemm(false, true, nc, d, d, 1, dkeys, m.Params.Wk, 1, dx[nt*d:])
}

// stepBackward propagates dx (gradient of the states after the step) to
// the states before it, accumulating the step's parameter gradients.
func (m *Model) stepBackward(t *stepTape, g *Params, dx []float64) {
	c := m.Config
	d, hd := c.Dim, c.HeadDim
	p, gp := m.Params.Steps[t.param], g.Steps[t.param]
	ntg := len(t.targets)
	gates := make([]float64, d)
	for k := range d {
		gates[k] = sigmoid(p.Gate[k])
	}
	dys := make([]float64, len(t.ys))
	dyt := make([]float64, len(t.yt))
	dxt := make([]float64, ntg*d)
	dagg := make([]float64, d)
	var dal []float64
	for i, n := range t.targets {
		dout := dx[n*d : (n+1)*d]
		for k := range d {
			gk := gates[k]
			dm := gk * dout[k]
			gp.Gate[k] += dout[k] * (t.msg[i*d+k] - t.xt[i*d+k]) * gk * (1 - gk)
			dxt[i*d+k] = (1 - gk) * dout[k]
			if t.drop != nil {
				dm *= t.drop[i*d+k]
			}
			a := t.agg[i*d+k]
			if a <= 0 {
				dm *= math.Exp(a)
			}
			dagg[k] = dm
		}
		lo, hi := t.ptr[i], t.ptr[i+1]
		for h := range c.Heads {
			da := dagg[h*hd : (h+1)*hd]
			dal = dal[:0]
			var s float64
			for e := lo; e < hi; e++ {
				r := t.pos[e] * d
				ys := t.ys[r+h*hd : r+(h+1)*hd]
				dysH := dys[r+h*hd : r+(h+1)*hd]
				al := t.alpha[e*c.Heads+h]
				v := dot(da, ys)
				for k, w := range da {
					dysH[k] += al * w
				}
				dal = append(dal, v)
				s += al * v
			}
			a := p.Attn[h*hd : (h+1)*hd]
			ga := gp.Attn[h*hd : (h+1)*hd]
			yt := t.yt[i*d+h*hd : i*d+(h+1)*hd]
			dytH := dyt[i*d+h*hd : i*d+(h+1)*hd]
			for j, e := 0, lo; e < hi; j, e = j+1, e+1 {
				al := t.alpha[e*c.Heads+h]
				dl := al * (dal[j] - s)
				if dl == 0 {
					continue
				}
				r := t.pos[e] * d
				ys := t.ys[r+h*hd : r+(h+1)*hd]
				dysH := dys[r+h*hd : r+(h+1)*hd]
				for k := range hd {
					z := ys[k] + yt[k]
					slope := 1.0
					if z < 0 {
						slope = c.LeakySlope
					}
					ga[k] += dl * slope * z
					dz := dl * a[k] * slope
					dysH[k] += dz
					dytH[k] += dz
				}
			}
		}
	}
	// ys = xs·W_child, yt = xt·W_parent
	nu := len(t.uniq)
	gemm(true, false, d, d, nu, 1, t.xs, dys, 1, gp.Child)
	gemm(true, false, d, d, ntg, 1, t.xt, dyt, 1, gp.Parent)
	dxs := make([]float64, nu*d)
	gemm(false, true, nu, d, d, 1, dys, p.Child, 0, dxs)
	gemm(false, true, ntg, d, d, 1, dyt, p.Parent, 1, dxt)
	for i, n := range t.targets {
		copy(dx[n*d:(n+1)*d], dxt[i*d:(i+1)*d])
	}
	scatterAdd(dx, t.uniq, dxs, d)
}
