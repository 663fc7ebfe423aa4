package valuenet

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/blas/blas64"
)

// TDError is δ = r + γ·V(s') − V(s), with V(s') taken as 0 when s' is
// terminal.
func (n *Net) TDError(r, v, vNext float64, terminal bool) float64 {
	if terminal {
		vNext = 0
	}
	return r + n.cfg.Gamma*vNext - v
}

// Episode trains on one trajectory online with semi-gradient TD(λ) and
// accumulating traces, and returns the TD error of every step.
//
// xs[t] are the state features and rewards[t] the reward received after
// step t. With len(xs) == len(rewards) the last step ends in a terminal
// state (V = 0); with len(xs) == len(rewards)+1 the trajectory was cut
// short and the last xs only bootstraps the last step's target (it is not
// trained on). The trace starts at zero, so trajectories do not leak into
// each other.
//
// Inputs are checked before any weight changes; if training diverges the
// weights are restored and a *DivergedError returned.
func (n *Net) Episode(xs [][]float64, rewards []float64) ([]float64, error) {
	if err := n.checkTrajectory(xs, rewards); err != nil {
		return nil, err
	}
	steps := len(rewards)
	saved := slices.Clone(n.params)
	diverged := func(t int, v float64) error {
		copy(n.params, saved)
		return &DivergedError{Step: t, Value: v}
	}
	decay := n.cfg.Gamma * n.cfg.Lambda
	z := make([]float64, len(n.params))
	cur, next := n.newWork(), n.newWork()
	deltas := make([]float64, steps)
	for t := range steps {
		// V(s_t) with the weights as the previous step left them.
		v := n.forward(xs[t], cur)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, diverged(t, v)
		}
		switch decay { // z ← γλ·z + ∇V(s_t)
		case 0:
			clear(z)
		case 1:
		default:
			blas64.Scal(decay, vec(z))
		}
		n.addGrad(cur, z)
		vNext := 0.0
		if t+1 < len(xs) {
			vNext = n.forward(xs[t+1], next)
		}
		delta := n.TDError(rewards[t], v, vNext, t+1 == len(xs))
		if math.IsNaN(delta) || math.IsInf(delta, 0) {
			return nil, diverged(t, delta)
		}
		blas64.Axpy(n.cfg.LR*delta, vec(z), vec(n.params)) // w ← w + α·δ·z
		deltas[t] = delta
	}
	for _, w := range n.params {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return nil, diverged(steps-1, w)
		}
	}
	return deltas, nil
}

// Targets returns the one-step TD targets r[t] + γ·V(s[t+1]) of a
// trajectory, for fitting fixed targets. values[t] = V(s[t]); with terminal
// len(values) == len(rewards) and the state after the last reward has
// V = 0, otherwise len(values) == len(rewards)+1 and the last value
// bootstraps.
func (n *Net) Targets(values, rewards []float64, terminal bool) ([]float64, error) {
	if err := checkValues(values, rewards, terminal); err != nil {
		return nil, err
	}
	out := make([]float64, len(rewards))
	for t, r := range rewards {
		out[t] = r + n.cfg.Gamma*after(values, t)
	}
	return out, nil
}

// LambdaReturns returns the offline λ-returns G^λ[t] of a trajectory
// (Sutton & Barto eq. 12.3, truncated at the end as in Targets), computed
// backwards as G^λ[t] = r[t] + γ·((1−λ)·V(s[t+1]) + λ·G^λ[t+1]). λ = 0
// gives Targets; λ = 1 the discounted Monte Carlo return (plus the
// discounted bootstrap when not terminal).
func (n *Net) LambdaReturns(values, rewards []float64, terminal bool) ([]float64, error) {
	if err := checkValues(values, rewards, terminal); err != nil {
		return nil, err
	}
	gamma, lambda := n.cfg.Gamma, n.cfg.Lambda
	out := make([]float64, len(rewards))
	g := after(values, len(rewards)-1)
	for t := len(rewards) - 1; t >= 0; t-- {
		g = rewards[t] + gamma*((1-lambda)*after(values, t)+lambda*g)
		out[t] = g
	}
	return out, nil
}

// after is V(s[t+1]): 0 past the end of a terminal trajectory's values.
func after(values []float64, t int) float64 {
	if t+1 < len(values) {
		return values[t+1]
	}
	return 0
}

func (n *Net) checkTrajectory(xs [][]float64, rewards []float64) error {
	if len(rewards) == 0 {
		return &InputError{Field: "rewards", Err: ErrEmpty, Detail: "a trajectory needs at least one step"}
	}
	if len(xs) != len(rewards) && len(xs) != len(rewards)+1 {
		return &InputError{Field: "xs", Err: ErrLength, Detail: fmt.Sprintf("%d states for %d rewards, want %d (terminal) or %d (bootstrap)", len(xs), len(rewards), len(rewards), len(rewards)+1)}
	}
	for t, x := range xs {
		if err := n.checkX(fmt.Sprintf("xs[%d]", t), x); err != nil {
			return err
		}
	}
	return finite("rewards", rewards)
}

func checkValues(values, rewards []float64, terminal bool) error {
	if len(rewards) == 0 {
		return &InputError{Field: "rewards", Err: ErrEmpty, Detail: "a trajectory needs at least one step"}
	}
	want := len(rewards)
	if !terminal {
		want++
	}
	if len(values) != want {
		return &InputError{Field: "values", Err: ErrLength, Detail: fmt.Sprintf("%d values for %d rewards (terminal %v), want %d", len(values), len(rewards), terminal, want)}
	}
	if err := finite("values", values); err != nil {
		return err
	}
	return finite("rewards", rewards)
}
