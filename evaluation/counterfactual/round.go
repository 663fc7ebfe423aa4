package counterfactual

import (
	"fmt"
	"math"

	"github.com/capflow/capflow/featurestore"
)

// Round is one logged decision.
type Round struct {
	Candidates []string // the list shown, in rank order: Candidates[0] is rank 1
	Rank       int      // 1-based rank of the selected candidate
	Reward     float64
	// Propensity is the logging policy's probability of the selection,
	// μ(a|x) ∈ (0,1], when the logger recorded it; 0 means not recorded
	// (the position model then supplies it).
	Propensity float64
	// Scores are the target model's scores of Candidates, in the same
	// order; the caller fills them by scoring each logged context.
	Scores []float64
}

// Selected is the selected candidate, or "" when Rank is out of range.
func (r Round) Selected() string {
	if r.Rank < 1 || r.Rank > len(r.Candidates) {
		return ""
	}
	return r.Candidates[r.Rank-1]
}

// check validates the round's own fields; scores are optional here (the
// caller of check decides whether they are needed).
func (r Round) check(field string, needScores bool) error {
	n := len(r.Candidates)
	switch {
	case n == 0:
		return &InputError{Field: field + ".candidates", Err: ErrEmpty}
	case r.Rank < 1 || r.Rank > n:
		return &InputError{Field: field + ".rank", Err: ErrRange, Detail: fmt.Sprintf("%d, want 1..%d", r.Rank, n)}
	case !finite(r.Reward):
		return &InputError{Field: field + ".reward", Err: ErrNonFinite, Detail: fmt.Sprint(r.Reward)}
	case !(r.Propensity >= 0 && r.Propensity <= 1):
		return &InputError{Field: field + ".propensity", Err: ErrRange, Detail: fmt.Sprintf("%v, want (0,1] or 0 for not recorded", r.Propensity)}
	case needScores && len(r.Scores) != n:
		return &InputError{Field: field + ".scores", Err: ErrLength, Detail: fmt.Sprintf("%d scores for %d candidates", len(r.Scores), n)}
	}
	for j, s := range r.Scores {
		if !finite(s) {
			return &InputError{Field: fmt.Sprintf("%s.scores[%d]", field, j), Err: ErrNonFinite, Detail: fmt.Sprint(s)}
		}
	}
	return nil
}

// Rewards maps an experience's outcome to a reward.
type Rewards struct {
	Success, Partial, Failure float64
}

// DefaultRewards are the design's: success 1, partial 0.5, failure 0.
func DefaultRewards() Rewards { return Rewards{Success: 1, Partial: 0.5} }

// Reward of an outcome; ok is false for an unknown outcome.
func (rw Rewards) Reward(o featurestore.Outcome) (r float64, ok bool) {
	switch o {
	case featurestore.OutcomeSuccess:
		return rw.Success, true
	case featurestore.OutcomePartial:
		return rw.Partial, true
	case featurestore.OutcomeFailure:
		return rw.Failure, true
	}
	return 0, false
}

// FromExperiences turns logged experiences into rounds, one per experience
// in order, with no propensity (experiences do not record one) and no
// scores. It checks what the estimators rely on: a non-empty candidate
// list, a rank within it that points at the selected capability, and a
// known outcome.
func FromExperiences(exps []featurestore.Experience, rw Rewards) ([]Round, error) {
	if !finite(rw.Success) || !finite(rw.Partial) || !finite(rw.Failure) {
		return nil, &ConfigError{Field: "rewards", Reason: fmt.Sprintf("must be finite, got %+v", rw)}
	}
	rounds := make([]Round, len(exps))
	for i, e := range exps {
		field := fmt.Sprintf("exps[%d]", i)
		r, ok := rw.Reward(e.Outcome)
		if !ok {
			return nil, &InputError{Field: field + ".outcome", Err: ErrRange, Detail: fmt.Sprintf("%q", e.Outcome)}
		}
		rounds[i] = Round{Candidates: e.CandidateIDs, Rank: e.Rank, Reward: r}
		if err := rounds[i].check(field, false); err != nil {
			return nil, err
		}
		if got := e.CandidateIDs[e.Rank-1]; got != e.SelectedCapability {
			return nil, &InputError{Field: field + ".rank", Err: ErrRange,
				Detail: fmt.Sprintf("rank %d is %q, not the selected %q", e.Rank, got, e.SelectedCapability)}
		}
	}
	return rounds, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
