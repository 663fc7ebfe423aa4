package counterfactual

import (
	"context"
	"fmt"
	"math"
)

// Config sets up Evaluate. Zero fields take the defaults noted.
type Config struct {
	Policy Policy  // the target policy (required: its zero value has no temperature)
	Clip   float64 // importance weight cap; 0: DefaultClip; math.Inf(1): none

	// Position supplies μ for rounds without a logged propensity; nil fits
	// one on all the rounds with FitPositionModel(…, Smoothing).
	Position  *PositionModel
	Smoothing float64 // pseudo-count per rank for the fitted position model; 0: 1

	// Reward is DR's reward model; nil uses MeanReward cross-fitted over
	// Folds folds (0: 2; 1: fitted on all rounds, in-sample) with prior
	// strength Shrinkage (0: 10).
	Reward    RewardModel
	Folds     int
	Shrinkage float64
}

func (c Config) withDefaults() (Config, error) {
	if err := c.Policy.Check(); err != nil {
		return c, err
	}
	if c.Clip == 0 {
		c.Clip = DefaultClip
	}
	if !(c.Clip > 0) {
		return c, &ConfigError{Field: "clip", Reason: fmt.Sprintf("must be positive (+Inf: no clipping), got %v", c.Clip)}
	}
	if c.Smoothing == 0 {
		c.Smoothing = 1
	}
	if c.Folds == 0 {
		c.Folds = 2
	}
	if c.Folds < 0 {
		return c, &ConfigError{Field: "folds", Reason: fmt.Sprintf("must be ≥ 1, got %d", c.Folds)}
	}
	if c.Shrinkage == 0 {
		c.Shrinkage = 10
	}
	return c, nil
}

// Report is the counterfactual evaluation of one target policy on one log.
type Report struct {
	N int `json:"n"`
	// Logged is the logging policy's own value: the mean logged reward.
	Logged Estimate `json:"logged"`
	IPS    Estimate `json:"ips"`
	SNIPS  Estimate `json:"snips"`
	DR     Estimate `json:"dr"`
	DM     Estimate `json:"dm"` // direct method: the reward model alone (biased by its error)

	// EstimatedPropensities counts the rounds whose μ came from the
	// position model rather than the log.
	EstimatedPropensities int            `json:"estimated_propensities"`
	Position              *PositionModel `json:"position,omitempty"` // the model used for those, if any
	Clip                  float64        `json:"clip"`
}

// Evaluate estimates the value of cfg.Policy, applied to each round's
// Scores, from the logged rounds.
func Evaluate(ctx context.Context, rounds []Round, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	n := len(rounds)
	if n < 2 {
		return nil, &InputError{Field: "rounds", Err: ErrEmpty, Detail: fmt.Sprintf("%d rounds, need at least 2", n)}
	}
	unlogged := 0
	for i, r := range rounds {
		if err := r.check(fmt.Sprintf("rounds[%d]", i), true); err != nil {
			return nil, err
		}
		if r.Propensity == 0 {
			unlogged++
		}
	}
	rep := &Report{N: n, EstimatedPropensities: unlogged, Clip: cfg.Clip}

	if unlogged > 0 {
		rep.Position = cfg.Position
		if rep.Position == nil {
			ranks, lengths := make([]int, n), make([]int, n)
			for i, r := range rounds {
				ranks[i], lengths[i] = r.Rank, len(r.Candidates)
			}
			if rep.Position, err = FitPositionModel(ranks, lengths, cfg.Smoothing); err != nil {
				return nil, fmt.Errorf("position model: %w", err)
			}
		}
	}

	reward := cfg.Reward
	if reward == nil {
		if cfg.Folds > n {
			return nil, &ConfigError{Field: "folds", Reason: fmt.Sprintf("%d folds for %d rounds", cfg.Folds, n)}
		}
		if reward, err = fitCrossFit(rounds, cfg.Folds, cfg.Shrinkage); err != nil {
			return nil, err
		}
	}

	pi, mu, r := make([]float64, n), make([]float64, n), make([]float64, n)
	qPi, qA := make([]float64, n), make([]float64, n)
	var probs []float64
	for i, rd := range rounds {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		field := fmt.Sprintf("rounds[%d]", i)
		if probs, err = cfg.Policy.Probabilities(rd.Scores, probs); err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		a := rd.Rank - 1
		pi[i], r[i] = probs[a], rd.Reward
		mu[i] = rd.Propensity
		if mu[i] == 0 {
			if mu[i], err = rep.Position.Propensity(rd.Rank, len(rd.Candidates)); err != nil {
				return nil, fmt.Errorf("%s: %w", field, err)
			}
			if mu[i] == 0 {
				return nil, &InputError{Field: field + ".rank", Err: ErrRange, Detail: "the position model gives the logged rank probability 0"}
			}
		}
		q, err := reward.Predict(ctx, i, rd)
		if err != nil {
			return nil, fmt.Errorf("counterfactual: %s: reward model: %w", field, err)
		}
		if len(q) != len(rd.Candidates) {
			return nil, &InputError{Field: field + " reward model", Err: ErrLength, Detail: fmt.Sprintf("%d predictions for %d candidates", len(q), len(rd.Candidates))}
		}
		for j, v := range q {
			if !finite(v) {
				return nil, &InputError{Field: fmt.Sprintf("%s reward model[%d]", field, j), Err: ErrNonFinite, Detail: fmt.Sprint(v)}
			}
			qPi[i] += probs[j] * v
		}
		qA[i] = q[a]
	}

	rep.Logged = Estimate{N: n}
	rep.Logged.Value, rep.Logged.StdErr = meanSE(r)
	rep.Logged.interval()
	if rep.IPS, err = IPS(pi, mu, r, cfg.Clip); err != nil {
		return nil, err
	}
	if rep.SNIPS, err = SNIPS(pi, mu, r, cfg.Clip); err != nil {
		return nil, err
	}
	if rep.DR, err = DR(pi, mu, r, qPi, qA, cfg.Clip); err != nil {
		return nil, err
	}
	if rep.DM, err = DirectMethod(qPi); err != nil {
		return nil, err
	}
	return rep, nil
}

// Metrics flattens the report for MLflow: prefix+"ips", prefix+"ips_se",
// prefix+"ips_ess", prefix+"ips_clipped", likewise for snips and dr, and
// prefix+"dm", prefix+"logged", prefix+"n". Non-finite values (an
// infinite max weight) are left out: MLflow refuses them.
func (rep *Report) Metrics(prefix string) map[string]float64 {
	m := map[string]float64{
		prefix + "n":         float64(rep.N),
		prefix + "logged":    rep.Logged.Value,
		prefix + "logged_se": rep.Logged.StdErr,
		prefix + "dm":        rep.DM.Value,
		prefix + "dm_se":     rep.DM.StdErr,
	}
	for _, e := range []struct {
		name string
		est  Estimate
	}{{"ips", rep.IPS}, {"snips", rep.SNIPS}, {"dr", rep.DR}} {
		m[prefix+e.name] = e.est.Value
		m[prefix+e.name+"_se"] = e.est.StdErr
		m[prefix+e.name+"_ess"] = e.est.ESS
		m[prefix+e.name+"_clipped"] = e.est.Clipped
		m[prefix+e.name+"_max_weight"] = e.est.MaxWeight
	}
	for k, v := range m {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			delete(m, k)
		}
	}
	return m
}
