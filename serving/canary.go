package serving

import (
	"context"
	"errors"
	"hash/fnv"

	"github.com/capflow/capflow/models/ranker"
)

// canaryRoutes says whether session belongs to the canary's percent of
// sessions: a hash of the id, so a session always lands on the same side
// (for a given percent). The empty session goes to the primary.
func canaryRoutes(session string, percent float64) bool {
	if session == "" || percent <= 0 {
		return false
	}
	h := fnv.New32a()
	h.Write([]byte(session))
	return float64(h.Sum32()%10000) < percent*100
}

// ErrNoShadow is returned by ScoreShadow when no shadow model is loaded.
var ErrNoShadow = errors.New("serving: no shadow model loaded")

// ScoreShadow ranks q with the shadow model over the candidates of primary
// (the primary model's ranking of q, best first, as served) and records how
// far they agree: whether both put the same capability first, and the
// Spearman rank correlation of the two orders. Candidates the shadow model
// does not know are left out of the comparison. Call it off the request
// path, for requests Shadow sampled and the primary (not the canary)
// served; it returns the shadow's ranking.
func (m *Manager) ScoreShadow(ctx context.Context, q ranker.Query, primary []ranker.Scored) ([]ranker.Scored, error) {
	if m.shadow == nil {
		return nil, ErrNoShadow
	}
	h, release := m.shadow.acquire()
	if h == nil {
		return nil, ErrNoShadow
	}
	defer release()
	var common []ranker.Scored
	for _, s := range primary {
		if h.caps[s.ID] {
			common = append(common, s)
		}
	}
	if len(common) == 0 {
		return nil, nil
	}
	q.Candidates = make([]string, len(common))
	for i, s := range common {
		q.Candidates[i] = s.ID
	}
	got, err := h.model.Ranker.Rank(ctx, q)
	if err != nil {
		m.met.shadowErrors.Inc()
		m.log.Warn("shadow scoring failed", "version", h.model.Version, "err", err)
		return nil, err
	}
	m.CompareShadow(common, got)
	return got, nil
}

// CompareShadow records the agreement of a shadow ranking with the
// primary's, for callers that score the shadow model themselves (through
// Shadow): both must order the same candidates, best first.
func (m *Manager) CompareShadow(primary, shadow []ranker.Scored) {
	if len(primary) == 0 || len(shadow) == 0 {
		return
	}
	rho, ok := spearman(primary, shadow)
	m.met.recordShadow(primary[0].ID == shadow[0].ID, rho, ok)
}

// spearman is the rank correlation of two orders of the same ids, 1 - 6Σd²
// / (n(n²-1)) (no ties: they are orders); ok is false under two items.
func spearman(a, b []ranker.Scored) (float64, bool) {
	n := len(a)
	if n < 2 || len(b) != n {
		return 0, false
	}
	pos := make(map[string]int, n)
	for i, s := range b {
		pos[s.ID] = i
	}
	var d2 float64
	for i, s := range a {
		j, ok := pos[s.ID]
		if !ok {
			return 0, false
		}
		d := float64(i - j)
		d2 += d * d
	}
	nf := float64(n)
	return 1 - 6*d2/(nf*(nf*nf-1)), true
}
