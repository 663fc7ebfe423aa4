package counterfactual

import (
	"fmt"
	"math"
)

// PositionModel is a position-based model of the logging policy: the item
// at rank k of an n-item list is selected with probability
// θ_k / Σ_{j≤n} θ_j. Theta[k-1] is θ_k; only ratios matter.
type PositionModel struct {
	Theta []float64
}

// The fit stops when no θ_k moves by more than this relative amount, or
// after maxIter sweeps (the iteration is monotone; it converges in tens of
// sweeps on realistic logs).
const (
	fitTol     = 1e-12
	fitMaxIter = 10_000
)

// FitPositionModel fits θ to logged selections: ranks[i] is the 1-based
// rank selected in round i and lengths[i] that round's list length.
// smoothing α ≥ 0 is a pseudo-count per rank (a Gamma(1+α, α) prior on each
// θ_k, pulling towards equal θ); α = 0 is maximum likelihood. See the
// package documentation for the iteration.
func FitPositionModel(ranks, lengths []int, smoothing float64) (*PositionModel, error) {
	switch {
	case len(ranks) == 0:
		return nil, &InputError{Field: "ranks", Err: ErrEmpty}
	case len(lengths) != len(ranks):
		return nil, &InputError{Field: "lengths", Err: ErrLength, Detail: fmt.Sprintf("%d lengths for %d ranks", len(lengths), len(ranks))}
	case !(smoothing >= 0) || math.IsInf(smoothing, 0):
		return nil, &ConfigError{Field: "smoothing", Reason: fmt.Sprintf("must be finite and ≥ 0, got %v", smoothing)}
	}
	maxLen := 0
	for i, n := range lengths {
		if n < 1 {
			return nil, &InputError{Field: fmt.Sprintf("lengths[%d]", i), Err: ErrRange, Detail: fmt.Sprintf("%d, want ≥ 1", n)}
		}
		if ranks[i] < 1 || ranks[i] > n {
			return nil, &InputError{Field: fmt.Sprintf("ranks[%d]", i), Err: ErrRange, Detail: fmt.Sprintf("%d, want 1..%d", ranks[i], n)}
		}
		maxLen = max(maxLen, n)
	}
	// Rounds enter only through the selection counts per rank and the
	// number of lists per length.
	count := make([]float64, maxLen+1) // count[k]: selections at rank k
	lists := make([]float64, maxLen+1) // lists[n]: rounds with n items
	for i, n := range lengths {
		count[ranks[i]]++
		lists[n]++
	}
	theta := make([]float64, maxLen+1) // theta[0] unused
	for k := 1; k <= maxLen; k++ {
		theta[k] = 1
	}
	next := make([]float64, maxLen+1)
	prefix := make([]float64, maxLen+1) // prefix[n] = Σ_{j≤n} θ_j
	for range fitMaxIter {
		for k := 1; k <= maxLen; k++ {
			prefix[k] = prefix[k-1] + theta[k]
		}
		// denom for rank k = Σ_{n≥k} lists[n]/S_n, accumulated from the top.
		var denom, sum float64
		for k := maxLen; k >= 1; k-- {
			if lists[k] > 0 { // then prefix[k] > 0: each such list had a selection
				denom += lists[k] / prefix[k]
			}
			next[k] = (count[k] + smoothing) / (denom + smoothing)
			sum += next[k]
		}
		if sum == 0 {
			break
		}
		// The likelihood ignores scale, and given the ratios the prior is
		// maximised at Σθ = K (summing the fixed-point equations gives it:
		// Σ_k θ_k·D_k is the number of rounds). Rescaling there is an exact
		// ascent step along the direction MM alone only crawls along.
		var moved float64
		for k := 1; k <= maxLen; k++ {
			v := next[k] * float64(maxLen) / sum
			moved = math.Max(moved, math.Abs(v-theta[k])/math.Max(theta[k], math.SmallestNonzeroFloat64))
			theta[k] = v
		}
		if moved < fitTol {
			break
		}
	}
	return &PositionModel{Theta: theta[1:]}, nil
}

// Propensity is the probability that the logger selects rank (1-based) of
// an n-item list.
func (m *PositionModel) Propensity(rank, n int) (float64, error) {
	if err := m.check(n); err != nil {
		return 0, err
	}
	if rank < 1 || rank > n {
		return 0, &InputError{Field: "rank", Err: ErrRange, Detail: fmt.Sprintf("%d, want 1..%d", rank, n)}
	}
	var s float64
	for _, t := range m.Theta[:n] {
		s += t
	}
	return m.Theta[rank-1] / s, nil
}

// Distribution is the selection probability of every rank of an n-item list.
func (m *PositionModel) Distribution(n int) ([]float64, error) {
	if err := m.check(n); err != nil {
		return nil, err
	}
	p := make([]float64, n)
	var s float64
	for k, t := range m.Theta[:n] {
		p[k] = t
		s += t
	}
	for k := range p {
		p[k] /= s
	}
	return p, nil
}

func (m *PositionModel) check(n int) error {
	if m == nil || len(m.Theta) == 0 {
		return &InputError{Field: "position model", Err: ErrEmpty}
	}
	if n < 1 || n > len(m.Theta) {
		return &InputError{Field: "list length", Err: ErrRange,
			Detail: fmt.Sprintf("%d, the model knows lists of 1..%d items", n, len(m.Theta))}
	}
	var s float64
	for k, t := range m.Theta[:n] {
		if !(t >= 0) || math.IsInf(t, 0) {
			return &InputError{Field: fmt.Sprintf("theta[%d]", k), Err: ErrRange, Detail: fmt.Sprintf("%v, want finite ≥ 0", t)}
		}
		s += t
	}
	if !(s > 0) || math.IsInf(s, 0) {
		return &InputError{Field: "theta", Err: ErrRange, Detail: fmt.Sprintf("the first %d sum to %v", n, s)}
	}
	return nil
}
