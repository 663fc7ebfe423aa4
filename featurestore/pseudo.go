package featurestore

import (
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"time"
)

// PseudoOptions tunes PseudoSessions and PseudoExperiences. Zero fields take
// the defaults noted.
type PseudoOptions struct {
	Seed              int64
	NegativesPerQuery int           // failures sampled per query (default 4; negative: none)
	Start             time.Time     // timestamp of the first experience (default 2025-01-01T00:00:00Z)
	Interval          time.Duration // time between consecutive experiences (default 1 minute)
	SessionPrefix     string        // session id = prefix + query id (default "pseudo-")
	// SingleStep makes PseudoSessions ignore Query.Calls: every candidate
	// is a one-step episode, as PseudoExperiences derives them (to compare
	// training with and without multi-step sessions).
	SingleStep bool
}

func (o PseudoOptions) withDefaults() PseudoOptions {
	if o.NegativesPerQuery == 0 {
		o.NegativesPerQuery = 4
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.Interval == 0 {
		o.Interval = time.Minute
	}
	if o.SessionPrefix == "" {
		o.SessionPrefix = "pseudo-"
	}
	return o
}

// Session is the session id a query's pseudo-experiences get:
// SessionPrefix (default "pseudo-") + the query id. Splits by session split
// these, so this is how a query's side of such a split is found.
func (o PseudoOptions) Session(queryID string) string {
	return o.withDefaults().SessionPrefix + queryID
}

// PseudoSession is the pseudo-session of one query. Episodes are its
// trajectories: within an episode each experience is the decision that
// follows the previous one in the same plan. Experiences of different
// episodes are alternatives that never followed one another, so a learner
// must not bootstrap from one into another (a sampled negative is not "the
// next state" of anything).
type PseudoSession struct {
	ID       string         // SessionPrefix + query id: every experience's SessionID
	QueryID  string         // the query it was derived from
	Episodes [][]Experience // the plan first, when the query has one
}

// Experiences lists the session's experiences, episode after episode
// (which is their time order).
func (s PseudoSession) Experiences() []Experience {
	var out []Experience
	for _, ep := range s.Episodes {
		out = append(out, ep...)
	}
	return out
}

// PseudoSessions derives training sessions from evaluation queries, for
// datasets (such as Seal-Tools) that have queries but no logged decisions.
// Derive them from the TRAIN split only (Seal-Tools: dev), never from the
// split reported on (test_in_domain): the relevance labels would leak into
// the model.
//
// For each query, in order, one session (SessionPrefix + query id). The
// negatives are NegativesPerQuery capabilities sampled without replacement
// from those of caps not relevant to the query and of a level some relevant
// capability has (so a sub-field competes with sub-fields, not with whole
// domains); fewer when fewer exist. Every experience has the query's intent,
// execution_time_ms 0 and no user_feedback (unknown).
//
// A query with a plan (below) gives a multi-step session:
//   - the plan is one episode, one step per call: step t selects the
//     capability of call t, with the query's context_tools followed by the
//     tools of calls 0..t-1 (each once) as context_tools, outcome success
//     (each call is the right decision given the earlier ones; a learner
//     decides when the plan's reward arrives);
//   - negative k is an alternative at step k mod T (T calls): same context,
//     outcome failure, and an episode of its own (a wrong capability ends
//     the attempt; nothing follows it);
//   - step t's candidate list is its capability and its negatives,
//     shuffled; rank is the selected capability's 1-based position in it.
//
// The plan of a query is its Calls, each mapped to the first Relevant
// capability that holds the called tool (as a member, or through member
// capabilities). A query has none (and gives a single-step session) when
// it has no calls, a call falls in no relevant capability, a relevant
// capability is never called, or SingleStep is set. A single-step session
// has one candidate list, relevant ∪ negatives shuffled, and one one-step
// episode per candidate, in list order: success when relevant, failure
// otherwise, with the query's context_tools.
//
// Timestamps run from Start, Interval apart, across all experiences in
// episode order. The sampling and shuffling of a query depend only on Seed
// and the query's id, so the result is a pure function of (queries, caps,
// opts) and one query's session does not change when others are added or
// removed. caps must carry their Level (as Validate, ReadDir and
// ReadSealTools leave them). Relevant ids not in caps are kept (Validate
// reports them).
func PseudoSessions(queries []Query, caps []Capability, opts PseudoOptions) []PseudoSession {
	opts = opts.withDefaults()
	cat := newPseudoCatalog(caps)
	out := make([]PseudoSession, 0, len(queries))
	at := opts.Start.UTC()
	for _, q := range queries {
		rng := rand.New(rand.NewPCG(uint64(opts.Seed), queryHash(q.ID)))
		relevant, negatives := cat.sample(q, rng, opts.NegativesPerQuery)
		s := PseudoSession{ID: opts.SessionPrefix + q.ID, QueryID: q.ID}
		emit := func(ctxTools, candidates []string, sel string, outcome Outcome) Experience {
			e := Experience{
				Intent:             q.Intent,
				ContextTools:       slices.Clone(ctxTools),
				CandidateIDs:       slices.Clone(candidates),
				SelectedCapability: sel,
				Rank:               slices.Index(candidates, sel) + 1,
				Outcome:            outcome,
				Timestamp:          at,
				SessionID:          s.ID,
			}
			at = at.Add(opts.Interval)
			return e
		}

		plan, ok := cat.plan(q, relevant)
		if opts.SingleStep || !ok {
			candidates := append(slices.Clone(relevant), negatives...)
			rng.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
			for _, id := range candidates {
				outcome := OutcomeFailure
				if slices.Contains(relevant, id) {
					outcome = OutcomeSuccess
				}
				s.Episodes = append(s.Episodes, []Experience{emit(q.ContextTools, candidates, id, outcome)})
			}
			out = append(out, s)
			continue
		}

		steps := len(plan)
		lists := make([][]string, steps)
		contexts := make([][]string, steps)
		ctxTools := slices.Clone(q.ContextTools)
		for t := range steps {
			lists[t] = []string{plan[t]}
			for k := t; k < len(negatives); k += steps {
				lists[t] = append(lists[t], negatives[k])
			}
			rng.Shuffle(len(lists[t]), func(i, j int) { lists[t][i], lists[t][j] = lists[t][j], lists[t][i] })
			contexts[t] = slices.Clone(ctxTools)
			if tool := q.Calls[t]; !slices.Contains(ctxTools, tool) {
				ctxTools = append(ctxTools, tool)
			}
		}
		steps0 := make([]Experience, steps)
		for t := range steps {
			steps0[t] = emit(contexts[t], lists[t], plan[t], OutcomeSuccess)
		}
		s.Episodes = append(s.Episodes, steps0)
		for t := range steps {
			for _, id := range lists[t] {
				if id != plan[t] {
					s.Episodes = append(s.Episodes, []Experience{emit(contexts[t], lists[t], id, OutcomeFailure)})
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// PseudoExperiences derives training experiences from evaluation queries
// as single-step sessions: PseudoSessions with SingleStep set, its
// experiences in order. See PseudoSessions for how and from which split.
//
// A learner that chains the experiences of one session as consecutive
// decisions bootstraps from unrelated candidates: keep PseudoSessions'
// episodes when learning values.
func PseudoExperiences(queries []Query, caps []Capability, opts PseudoOptions) []Experience {
	opts.SingleStep = true
	var out []Experience
	for _, s := range PseudoSessions(queries, caps, opts) {
		out = append(out, s.Experiences()...)
	}
	return out
}

// pseudoCatalog is what pseudo-session derivation needs of the
// capabilities.
type pseudoCatalog struct {
	level   map[string]int
	byLevel map[int][]string
	members map[string][]string
}

func newPseudoCatalog(caps []Capability) *pseudoCatalog {
	c := &pseudoCatalog{level: make(map[string]int, len(caps)), byLevel: map[int][]string{}, members: make(map[string][]string, len(caps))}
	for _, cp := range caps {
		if _, dup := c.level[cp.ID]; dup {
			continue
		}
		c.level[cp.ID] = cp.Level
		c.byLevel[cp.Level] = append(c.byLevel[cp.Level], cp.ID)
		c.members[cp.ID] = cp.Members
	}
	return c
}

// sample returns the query's distinct relevant capabilities, in order, and
// its negatives.
func (c *pseudoCatalog) sample(q Query, rng *rand.Rand, n int) (relevant, negatives []string) {
	var levels []int
	for _, id := range q.Relevant {
		if slices.Contains(relevant, id) {
			continue
		}
		relevant = append(relevant, id)
		if l, ok := c.level[id]; ok && !slices.Contains(levels, l) {
			levels = append(levels, l)
		}
	}
	slices.Sort(levels)
	var pool []string
	for _, l := range levels {
		for _, id := range c.byLevel[l] {
			if !slices.Contains(relevant, id) {
				pool = append(pool, id)
			}
		}
	}
	// A partial Fisher–Yates shuffle picks the negatives.
	n = min(max(n, 0), len(pool))
	for i := range n {
		j := i + rng.IntN(len(pool)-i)
		pool[i], pool[j] = pool[j], pool[i]
	}
	return relevant, pool[:n]
}

// plan maps each of q's calls to the first relevant capability holding the
// called tool; ok is false when q has no calls, a call falls in no relevant
// capability or a relevant capability is never called (the calls and the
// labels disagree, so the order of the calls says nothing about them).
func (c *pseudoCatalog) plan(q Query, relevant []string) (plan []string, ok bool) {
	if len(q.Calls) == 0 {
		return nil, false
	}
	called := make(map[string]bool, len(relevant))
	for _, tool := range q.Calls {
		i := slices.IndexFunc(relevant, func(id string) bool { return c.holds(id, tool, map[string]bool{}) })
		if i < 0 {
			return nil, false
		}
		plan = append(plan, relevant[i])
		called[relevant[i]] = true
	}
	return plan, len(called) == len(relevant)
}

// holds reports whether capability id has tool as a member, directly or
// through member capabilities; seen guards against cycles in an
// unvalidated catalog.
func (c *pseudoCatalog) holds(id, tool string, seen map[string]bool) bool {
	if seen[id] {
		return false
	}
	seen[id] = true
	for _, m := range c.members[id] {
		if m == tool {
			return true
		}
		if _, isCap := c.level[m]; isCap && c.holds(m, tool, seen) {
			return true
		}
	}
	return false
}

func queryHash(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}
