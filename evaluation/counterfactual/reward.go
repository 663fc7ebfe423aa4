package counterfactual

import (
	"context"
	"fmt"
	"math"
)

// RewardModel predicts rewards for DR: q̂(x_i, a) for every candidate a of
// rounds[i], in the candidates' order. i is the round's index in the slice
// given to Evaluate, so a model can look up whatever else it knows about
// that context (the experience, its embedding).
type RewardModel interface {
	Predict(ctx context.Context, i int, r Round) ([]float64, error)
}

// MeanReward is the default reward model: each capability's mean logged
// reward when selected, shrunk towards the mean reward of all rounds,
//
//	q̂(a) = (Σ_{rounds selecting a} r + m·r̄) / (n_a + m)
//
// with prior strength m = Shrinkage; a capability never selected gets r̄.
// It ignores the context, so it is a weak model — DR needs no more than
// that to stay unbiased, and gains variance reduction in proportion to how
// much of the reward it explains.
type MeanReward struct {
	Mean   map[string]float64 // q̂ per selected capability
	Global float64            // r̄, for capabilities never selected
}

// FitMeanReward fits MeanReward on rounds with prior strength shrinkage ≥ 0.
func FitMeanReward(rounds []Round, shrinkage float64) (*MeanReward, error) {
	if len(rounds) == 0 {
		return nil, &InputError{Field: "rounds", Err: ErrEmpty}
	}
	if !(shrinkage >= 0) || math.IsInf(shrinkage, 0) {
		return nil, &ConfigError{Field: "shrinkage", Reason: fmt.Sprintf("must be finite and ≥ 0, got %v", shrinkage)}
	}
	sum := map[string]float64{}
	n := map[string]float64{}
	var total float64
	for i, r := range rounds {
		if err := r.check(fmt.Sprintf("rounds[%d]", i), false); err != nil {
			return nil, err
		}
		a := r.Selected()
		sum[a] += r.Reward
		n[a]++
		total += r.Reward
	}
	m := &MeanReward{Mean: make(map[string]float64, len(sum)), Global: total / float64(len(rounds))}
	for a, s := range sum {
		m.Mean[a] = (s + shrinkage*m.Global) / (n[a] + shrinkage)
	}
	return m, nil
}

// Predict implements RewardModel.
func (m *MeanReward) Predict(_ context.Context, _ int, r Round) ([]float64, error) {
	q := make([]float64, len(r.Candidates))
	for j, c := range r.Candidates {
		v, ok := m.Mean[c]
		if !ok {
			v = m.Global
		}
		q[j] = v
	}
	return q, nil
}

// crossFit predicts round i with the model fitted without i's fold
// (fold = i mod len(models)).
type crossFit struct{ models []*MeanReward }

func (c crossFit) Predict(ctx context.Context, i int, r Round) ([]float64, error) {
	return c.models[i%len(c.models)].Predict(ctx, i, r)
}

// fitCrossFit fits one MeanReward per fold on the rounds outside it.
func fitCrossFit(rounds []Round, folds int, shrinkage float64) (RewardModel, error) {
	if folds == 1 {
		m, err := FitMeanReward(rounds, shrinkage)
		return m, err
	}
	cf := crossFit{models: make([]*MeanReward, folds)}
	train := make([]Round, 0, len(rounds))
	for f := range folds {
		train = train[:0]
		for i, r := range rounds {
			if i%folds != f {
				train = append(train, r)
			}
		}
		m, err := FitMeanReward(train, shrinkage)
		if err != nil {
			return nil, fmt.Errorf("counterfactual: reward model for fold %d: %w", f, err)
		}
		cf.models[f] = m
	}
	return cf, nil
}
