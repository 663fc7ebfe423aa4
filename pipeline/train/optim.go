package train

import "math"

// Adam is the Adam optimiser (Kingma & Ba) over one flat parameter vector,
// with the bias-corrected moments of the paper.
type Adam struct {
	LR, Beta1, Beta2, Eps float64
	Step                  int       // completed steps
	M, V                  []float64 // first and second moments
}

// NewAdam returns Adam for n parameters (betas 0.9/0.999, eps 1e-8).
func NewAdam(n int, lr float64) *Adam {
	return &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, M: make([]float64, n), V: make([]float64, n)}
}

// Update applies one step with learning rate lr to params given grads.
func (a *Adam) Update(params, grads []float64, lr float64) {
	a.Step++
	c1 := 1 - math.Pow(a.Beta1, float64(a.Step))
	c2 := 1 - math.Pow(a.Beta2, float64(a.Step))
	for i, g := range grads {
		a.M[i] = a.Beta1*a.M[i] + (1-a.Beta1)*g
		a.V[i] = a.Beta2*a.V[i] + (1-a.Beta2)*g*g
		params[i] -= lr * (a.M[i] / c1) / (math.Sqrt(a.V[i]/c2) + a.Eps)
	}
}

// CosineLR is cosine annealing without restarts (SGDR's schedule):
// lr(t) = η_min + (η_max − η_min)·(1 + cos(π·t/T_max))/2 for t ≤ T_max, then η_min.
func CosineLR(base, etaMin float64, tMax, t int) float64 {
	if tMax <= 0 || t >= tMax {
		return etaMin
	}
	return etaMin + (base-etaMin)*(1+math.Cos(math.Pi*float64(t)/float64(tMax)))/2
}

// ClipNorm scales g so its L2 norm is at most maxNorm (≤ 0: no clipping) and
// returns the norm before clipping.
func ClipNorm(g []float64, maxNorm float64) float64 {
	var s float64
	for _, v := range g {
		s += v * v
	}
	n := math.Sqrt(s)
	if maxNorm > 0 && n > maxNorm {
		f := maxNorm / n
		for i := range g {
			g[i] *= f
		}
	}
	return n
}
