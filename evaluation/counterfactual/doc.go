// Package counterfactual estimates a new ranking policy's success rate from
// logs of another (design §3.3): off-policy evaluation by inverse propensity
// scoring (IPS), self-normalised IPS (SNIPS) and doubly robust (DR)
// estimates, with weight clipping, effective sample sizes and normal
// standard errors.
//
// # Logged data
//
// A Round is one logged decision: the candidates shown, in rank order, the
// 1-based rank of the one selected, its reward, optionally the logging
// policy's probability of that selection, and the target model's scores of
// the candidates (the caller fills those). FromExperiences builds rounds from
// featurestore experiences with Rewards (success 1, partial 0.5, failure 0
// by default; success 1 and the rest 0 makes the value a success rate).
//
// # Propensities of the logging policy
//
// When the logger recorded μ(a|x), Round.Propensity carries it. Otherwise
// PositionModel supplies it: a position-based selection model in which the
// chance of selecting the item at rank k of a list of n items is
//
//	μ(k | n) = θ_k / Σ_{j≤n} θ_j        k = 1..n
//
// so μ depends on the context only through the order the logger showed.
// FitPositionModel finds θ by maximum a posteriori estimation from the
// logged (rank, list length) pairs, with a Gamma(1+α, α) prior on each θ_k,
// by the minorise-maximise iteration of Hunter (2004) / Caron & Doucet (2012):
//
//	θ_k ← (c_k + α) / (Σ_{rounds i with n_i ≥ k} 1/S_i + α)     S_i = Σ_{j≤n_i} θ_j
//
// where c_k counts selections at rank k, each sweep followed by rescaling to
// Σθ = K, the longest list (the prior's optimum for given ratios; without it
// MM creeps along the scale). When every list has the same length n this
// is additive smoothing of the selected-rank frequencies,
// μ(k) = (c_k + α)/(N + nα); with mixed lengths it generalises that (a rank
// only long lists reach is not penalised for the short lists that could not
// show it). α = 0 is the plain maximum likelihood estimate.
//
// The model is right when the logged choice depends on the context only
// through the shown order (the ranker orders, the user picks by position);
// if the logger's choice also depended on content the ranker did not use to
// order, the estimated propensities, and so IPS, SNIPS and (unless q̂ is
// right) DR, are biased — record the logger's propensities when you can.
//
// # Target policy
//
// Policy turns the target model's scores s of a round's candidates into an
// action distribution:
//
//	Softmax:  π(a) = (1−ε)·exp(s_a/T) / Σ_b exp(s_b/T) + ε/n
//	Greedy:   π(a) = (1−ε)·[s_a is the top score]/#top + ε/n
//
// Ties at the top share the greedy mass. The estimators only need μ > 0 for
// the logged actions, so ε = 0 is allowed; ε > 0 gives every logged round a
// nonzero weight (a deterministic top-1 policy weighs only the rounds where
// the logger happened to pick its top choice), raising the effective sample
// size. What is estimated is then the value of the ε-smoothed policy, which
// differs from pure top-1 by at most ε times the reward range.
//
// # Estimators
//
// With, for each logged round i, π_i = π(a_i|x_i), μ_i = μ(a_i|x_i), reward
// r_i and importance weight w_i = min(π_i/μ_i, clip):
//
//	IPS   = (1/N) Σ w_i r_i                       SE = sd(w r)/√N
//	SNIPS = Σ w_i r_i / Σ w_i                     SE = √(Σ w_i²(r_i − SNIPS)²) / Σ w_i   (delta method)
//	DR    = (1/N) Σ [Σ_a π(a|x_i) q̂(x_i,a) + w_i (r_i − q̂(x_i,a_i))]     SE = sd(terms)/√N
//	DM    = (1/N) Σ Σ_a π(a|x_i) q̂(x_i,a)         (direct method; biased by q̂'s error,
//	                                               which its SE, sd/√N, does not include)
//
// Confidence intervals are value ± 1.96·SE. Clipping (default at 10) trades
// bias for variance: a clipped weight under-counts its round, so the report
// gives the fraction of rounds clipped, the largest unclipped weight, and the
// Kish effective sample size (Σw)²/Σw² of the clipped weights. DR clips only
// the correction term. IPS and DR are unbiased when no weight is clipped and
// the propensities are right; DR stays unbiased whatever q̂ is, and the
// better q̂ predicts reward, the lower its variance. SNIPS has an O(1/N)
// bias and usually a lower variance than IPS.
//
// The estimators are plain functions of slices (IPS, SNIPS, DR,
// DirectMethod); Evaluate runs them all over rounds. Its default reward model
// is MeanReward (the selected capability's mean logged reward, shrunk
// towards the overall mean), cross-fitted over folds: the rounds of fold f
// are predicted by a model fitted on the other folds, so q̂ never saw the
// reward it corrects and DR keeps its unbiasedness. A caller's RewardModel
// is used as given and should be fitted on other data.
//
// Bad input returns *InputError (wrapping ErrEmpty, ErrLength, ErrRange,
// ErrNonFinite or ErrNoSupport for errors.Is) or *ConfigError; nothing
// panics.
package counterfactual
