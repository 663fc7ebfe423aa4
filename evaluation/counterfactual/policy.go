package counterfactual

import (
	"fmt"
	"math"
)

// PolicyKind is how a Policy turns scores into probabilities.
type PolicyKind int

const (
	Softmax PolicyKind = iota // π ∝ exp(score/T)
	Greedy                    // all mass on the top score (ties share it)
)

func (k PolicyKind) String() string {
	switch k {
	case Softmax:
		return "softmax"
	case Greedy:
		return "greedy"
	}
	return fmt.Sprintf("PolicyKind(%d)", int(k))
}

// Policy is the target policy: a rule from the target model's scores of a
// round's candidates to a distribution over them. Epsilon mixes in the
// uniform distribution: π = (1−ε)·base + ε/n.
type Policy struct {
	Kind        PolicyKind
	Temperature float64 // Softmax only: T > 0; lower is greedier
	Epsilon     float64 // ∈ [0,1]
}

// SoftmaxPolicy is softmax over scores at temperature t, mixed with ε uniform.
func SoftmaxPolicy(t, epsilon float64) Policy {
	return Policy{Kind: Softmax, Temperature: t, Epsilon: epsilon}
}

// GreedyPolicy is top-1 with ε-uniform exploration (ε-greedy).
func GreedyPolicy(epsilon float64) Policy { return Policy{Kind: Greedy, Epsilon: epsilon} }

// Check validates p.
func (p Policy) Check() error {
	switch {
	case p.Kind != Softmax && p.Kind != Greedy:
		return &ConfigError{Field: "policy.kind", Reason: fmt.Sprintf("unknown %v", p.Kind)}
	case p.Kind == Softmax && (!(p.Temperature > 0) || math.IsInf(p.Temperature, 0)):
		return &ConfigError{Field: "policy.temperature", Reason: fmt.Sprintf("must be positive and finite, got %v", p.Temperature)}
	case !(p.Epsilon >= 0 && p.Epsilon <= 1):
		return &ConfigError{Field: "policy.epsilon", Reason: fmt.Sprintf("must be in [0,1], got %v", p.Epsilon)}
	}
	return nil
}

// Probabilities writes π over the candidates with the given scores into dst
// (grown as needed) and returns it.
func (p Policy) Probabilities(scores, dst []float64) ([]float64, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	n := len(scores)
	if n == 0 {
		return nil, &InputError{Field: "scores", Err: ErrEmpty}
	}
	top := math.Inf(-1)
	for j, s := range scores {
		if !finite(s) {
			return nil, &InputError{Field: fmt.Sprintf("scores[%d]", j), Err: ErrNonFinite, Detail: fmt.Sprint(s)}
		}
		top = math.Max(top, s)
	}
	if cap(dst) < n {
		dst = make([]float64, n)
	}
	dst = dst[:n]
	clear(dst)
	var sum float64
	for j, s := range scores {
		switch p.Kind {
		case Softmax:
			dst[j] = math.Exp((s - top) / p.Temperature) // shifted: the top term is 1, no overflow
		case Greedy:
			if s == top {
				dst[j] = 1
			}
		}
		sum += dst[j]
	}
	for j := range dst {
		dst[j] = (1-p.Epsilon)*dst[j]/sum + p.Epsilon/float64(n)
	}
	return dst, nil
}
