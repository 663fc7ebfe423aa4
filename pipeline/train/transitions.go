package train

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"time"

	"github.com/capflow/capflow/featurestore"
)

// Rewards turns an experience's outcome into a reward. The defaults are the
// design's: success 1, partial 0.5, failure 0, no penalty, no bonus.
//
//	r = outcome reward
//	  − TimePenalty · min(1, execution_time_ms / TimeBudgetMs)   (when TimePenalty > 0)
//	  + FeedbackBonus · (user_feedback − 3) / 2                  (when rated 1..5)
//
// so a slow capability loses up to TimePenalty and a rating moves the reward
// by at most ±FeedbackBonus.
type Rewards struct {
	Success, Partial, Failure float64
	TimePenalty               float64 // 0: off
	TimeBudgetMs              float64 // execution time that costs the full penalty (default 10,000)
	FeedbackBonus             float64 // 0: off
}

// DefaultRewards are the design's rewards.
func DefaultRewards() Rewards {
	return Rewards{Success: 1, Partial: 0.5, Failure: 0, TimeBudgetMs: 10_000}
}

// Reward of one experience.
func (r Rewards) Reward(e featurestore.Experience) float64 {
	var v float64
	switch e.Outcome {
	case featurestore.OutcomeSuccess:
		v = r.Success
	case featurestore.OutcomePartial:
		v = r.Partial
	default:
		v = r.Failure
	}
	if r.TimePenalty > 0 && r.TimeBudgetMs > 0 && e.ExecutionTimeMs > 0 {
		v -= r.TimePenalty * math.Min(1, e.ExecutionTimeMs/r.TimeBudgetMs)
	}
	if r.FeedbackBonus > 0 && e.UserFeedback != nil {
		v += r.FeedbackBonus * float64(*e.UserFeedback-3) / 2
	}
	return v
}

// Transition is one step of a session's trajectory: the experience (state =
// intent and context, action = the selected capability), its reward, and the
// next step of the same session (Next = -1 at the end: terminal).
type Transition struct {
	Experience featurestore.Experience
	Reward     float64
	Next       int // index into the same []Transition, or -1
	Session    string
}

// Terminal reports whether the transition ends its session.
func (t Transition) Terminal() bool { return t.Next < 0 }

// Transitions orders each session's logged experiences by time (ties keep
// input order) and links every experience to the next one of its session:
// a logged session is one trajectory of decisions actually taken. The
// result is grouped by session, sessions in order of first appearance.
// Pseudo-sessions have counterfactual alternatives, not a sequence: use
// PseudoTransitions for them.
func Transitions(exps []featurestore.Experience, r Rewards) []Transition {
	order := map[string]int{}
	var sessions [][]int
	for i, e := range exps {
		k, ok := order[e.SessionID]
		if !ok {
			k = len(sessions)
			order[e.SessionID] = k
			sessions = append(sessions, nil)
		}
		sessions[k] = append(sessions[k], i)
	}
	out := make([]Transition, 0, len(exps))
	for _, idx := range sessions {
		slices.SortStableFunc(idx, func(a, b int) int { return exps[a].Timestamp.Compare(exps[b].Timestamp) })
		for j, i := range idx {
			next := -1
			if j+1 < len(idx) {
				next = len(out) + 1
			}
			out = append(out, Transition{Experience: exps[i], Reward: r.Reward(exps[i]), Next: next, Session: exps[i].SessionID})
		}
	}
	return out
}

// PseudoTransitions turns pseudo-sessions into transitions. Next links the
// steps of one episode (featurestore.PseudoSession.Episodes) and nothing
// else: a sampled negative, or a relevant capability of a query without a
// plan, is terminal, so no target bootstraps from an unrelated candidate.
//
// An episode is a plan whose reward arrives when it completes: its last
// step gets the reward of its experience (r.Reward), earlier steps 0, and
// they earn their value through γ·V of the next step of the same plan. Their
// outcome stays success (each was the right call given the earlier ones), so
// the listwise loss still ranks them first and validation counts them as
// relevant.
//
// The result is grouped by session, sessions in order, and within a
// session episode after episode, each in step order. A session's first
// transition (its plan's first step, or a one-step episode) is made with
// the query's own context, which validation ranks with (see queries).
func PseudoTransitions(sessions []featurestore.PseudoSession, r Rewards) []Transition {
	var out []Transition
	for _, s := range sessions {
		for _, ep := range s.Episodes {
			for j, e := range ep {
				next, reward := -1, r.Reward(e)
				if j+1 < len(ep) {
					next, reward = len(out)+1, 0
				}
				out = append(out, Transition{Experience: e, Reward: reward, Next: next, Session: s.ID})
			}
		}
	}
	return out
}

// Split is a partition of transitions by session: no session has
// transitions on both sides.
type Split struct {
	Train, Valid []Transition
}

// SplitError says why a split cannot be made.
type SplitError struct{ Reason string }

func (e *SplitError) Error() string { return "train: split: " + e.Reason }

// SplitBySession puts a deterministic fraction of the sessions (by a hash of
// the session id and seed, so a session's side does not depend on the
// others) into Valid. Next indices are remapped within each side.
func SplitBySession(ts []Transition, validFraction float64, seed uint64) (Split, error) {
	if !(validFraction > 0 && validFraction < 1) {
		return Split{}, &SplitError{Reason: fmt.Sprintf("valid fraction must be in (0,1), got %v", validFraction)}
	}
	return partition(ts, func(session string, _ time.Time) bool { return heldOut(session, validFraction, seed) })
}

// heldOut is SplitBySession's rule: session goes to validation when a hash
// of (seed, session id), as a uniform number in [0, 1), is below the
// fraction.
func heldOut(session string, validFraction float64, seed uint64) bool {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d\x00%s", seed, session)
	return float64(mix(h.Sum64())>>11)/(1<<53) < validFraction
}

// Split methods, as the train stage logs them (ParamSplit).
const (
	SplitBySessionHash = "session"  // SplitBySession
	SplitByTime        = "temporal" // SplitTemporal at TemporalCutoff
)

// SplitTemporal puts the sessions that start at or after cutoff into Valid,
// the earlier ones into Train: validation is always in the training data's
// future.
func SplitTemporal(ts []Transition, cutoff time.Time) (Split, error) {
	return partition(ts, func(_ string, start time.Time) bool { return !start.Before(cutoff) })
}

// TemporalCutoff returns the start time that leaves about validFraction of
// the sessions (the latest-starting ones) on the validation side.
func TemporalCutoff(ts []Transition, validFraction float64) (time.Time, error) {
	if !(validFraction > 0 && validFraction < 1) {
		return time.Time{}, &SplitError{Reason: fmt.Sprintf("valid fraction must be in (0,1), got %v", validFraction)}
	}
	starts := slices.SortedFunc(func(yield func(time.Time) bool) {
		for _, t := range sessionStarts(ts) {
			if !yield(t) {
				return
			}
		}
	}, func(a, b time.Time) int { return a.Compare(b) })
	if len(starts) < 2 {
		return time.Time{}, &SplitError{Reason: fmt.Sprintf("%d sessions, need at least 2", len(starts))}
	}
	k := min(len(starts)-1, max(1, int(math.Round(float64(len(starts))*(1-validFraction)))))
	return starts[k], nil
}

// mix is splitmix64's finaliser: FNV-1a leaves the high bits of short,
// similar strings (s001, s002, …) correlated.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func sessionStarts(ts []Transition) map[string]time.Time {
	starts := map[string]time.Time{}
	for _, t := range ts {
		if s, ok := starts[t.Session]; !ok || t.Experience.Timestamp.Before(s) {
			starts[t.Session] = t.Experience.Timestamp
		}
	}
	return starts
}

func partition(ts []Transition, valid func(session string, start time.Time) bool) (Split, error) {
	starts := sessionStarts(ts)
	side := make(map[string]bool, len(starts))
	for s, at := range starts {
		side[s] = valid(s, at)
	}
	var sp Split
	remap := make([]int, len(ts))
	for i, t := range ts {
		if side[t.Session] {
			remap[i] = len(sp.Valid)
			sp.Valid = append(sp.Valid, t)
		} else {
			remap[i] = len(sp.Train)
			sp.Train = append(sp.Train, t)
		}
	}
	for _, part := range [][]Transition{sp.Train, sp.Valid} {
		for i := range part {
			if part[i].Next >= 0 {
				part[i].Next = remap[part[i].Next]
			}
		}
	}
	if len(sp.Train) == 0 || len(sp.Valid) == 0 {
		return sp, &SplitError{Reason: fmt.Sprintf("one side is empty (%d train, %d valid transitions)", len(sp.Train), len(sp.Valid))}
	}
	return sp, nil
}

// Sessions lists the distinct session ids of ts, sorted.
func Sessions(ts []Transition) []string {
	var out []string
	for s := range sessionStarts(ts) {
		out = append(out, s)
	}
	slices.SortFunc(out, cmp.Compare)
	return out
}
