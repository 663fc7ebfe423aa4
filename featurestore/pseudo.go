package featurestore

import (
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"time"
)

// PseudoOptions tunes PseudoExperiences. Zero fields take the defaults noted.
type PseudoOptions struct {
	Seed              int64
	NegativesPerQuery int           // failures sampled per query (default 4; negative: none)
	Start             time.Time     // timestamp of the first experience (default 2025-01-01T00:00:00Z)
	Interval          time.Duration // time between consecutive experiences (default 1 minute)
	SessionPrefix     string        // session id = prefix + query id (default "pseudo-")
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

// Session is the session id PseudoExperiences gives a query's experiences:
// SessionPrefix (default "pseudo-") + the query id. Splits by session split
// these, so this is how a query's side of such a split is found.
func (o PseudoOptions) Session(queryID string) string {
	return o.withDefaults().SessionPrefix + queryID
}

// PseudoExperiences derives training experiences from evaluation queries,
// for datasets (such as Seal-Tools) that have queries but no logged
// decisions. Derive them from the TRAIN split only (Seal-Tools: dev), never
// from the split reported on (test_in_domain): the relevance labels would
// leak into the model.
//
// For each query, in order, one session (SessionPrefix + query id):
//   - the negatives are NegativesPerQuery capabilities sampled without
//     replacement from those of caps not relevant to the query and of a
//     level some relevant capability has (so a sub-field competes with
//     sub-fields, not with whole domains); fewer when fewer exist;
//   - the candidate list is relevant ∪ negatives, shuffled;
//   - one experience per candidate, in list order: selected_capability =
//     the candidate, rank = its 1-based position, outcome success when it
//     is relevant and failure otherwise; intent and context_tools are the
//     query's, execution_time_ms 0 and user_feedback absent (unknown);
//   - timestamps run from Start, Interval apart, across all experiences.
//
// The sampling and shuffling of a query depend only on Seed and the query's
// id, so the result is a pure function of (queries, caps, opts) and one
// query's experiences do not change when others are added or removed.
// caps must carry their Level (as Validate, ReadDir and ReadSealTools leave
// them). Relevant ids not in caps are kept (Validate reports them).
func PseudoExperiences(queries []Query, caps []Capability, opts PseudoOptions) []Experience {
	opts = opts.withDefaults()
	level := make(map[string]int, len(caps))
	byLevel := map[int][]string{}
	for _, c := range caps {
		if _, dup := level[c.ID]; dup {
			continue
		}
		level[c.ID] = c.Level
		byLevel[c.Level] = append(byLevel[c.Level], c.ID)
	}

	var out []Experience
	at := opts.Start.UTC()
	for _, q := range queries {
		rng := rand.New(rand.NewPCG(uint64(opts.Seed), queryHash(q.ID)))
		var (
			candidates []string
			levels     []int
			relevant   = make(map[string]bool, len(q.Relevant))
		)
		for _, id := range q.Relevant {
			if relevant[id] {
				continue
			}
			relevant[id] = true
			candidates = append(candidates, id)
			if l, ok := level[id]; ok && !slices.Contains(levels, l) {
				levels = append(levels, l)
			}
		}
		slices.Sort(levels)
		var pool []string
		for _, l := range levels {
			for _, id := range byLevel[l] {
				if !relevant[id] {
					pool = append(pool, id)
				}
			}
		}
		// A partial Fisher–Yates shuffle picks the negatives.
		n := min(max(opts.NegativesPerQuery, 0), len(pool))
		for i := range n {
			j := i + rng.IntN(len(pool)-i)
			pool[i], pool[j] = pool[j], pool[i]
		}
		candidates = append(candidates, pool[:n]...)
		rng.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })

		session := opts.Session(q.ID)
		for i, id := range candidates {
			outcome := OutcomeFailure
			if relevant[id] {
				outcome = OutcomeSuccess
			}
			out = append(out, Experience{
				Intent:             q.Intent,
				ContextTools:       slices.Clone(q.ContextTools),
				CandidateIDs:       slices.Clone(candidates),
				SelectedCapability: id,
				Rank:               i + 1,
				Outcome:            outcome,
				Timestamp:          at,
				SessionID:          session,
			})
			at = at.Add(opts.Interval)
		}
	}
	return out
}

func queryHash(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}
