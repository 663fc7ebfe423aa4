package serving

import (
	"log/slog"
	"sync"
	"sync/atomic"
)

// holder counts the references to one loaded model: one for the slot that
// serves it and one per request between Acquire and release. The ranker is
// closed when the count reaches zero, so a swapped-out model finishes its
// in-flight requests first.
type holder struct {
	model  *Model
	caps   map[string]bool // the model's capability ids
	refs   atomic.Int64
	closed atomic.Bool // for tests: the ranker has been closed
	log    *slog.Logger
}

func newHolder(m *Model, log *slog.Logger) *holder {
	h := &holder{model: m, caps: map[string]bool{}, log: log}
	for _, id := range m.Ranker.Capabilities() {
		h.caps[id] = true
	}
	h.refs.Store(1) // the slot's reference
	return h
}

// tryAcquire takes a reference unless the count already reached zero (the
// model is closing).
func (h *holder) tryAcquire() bool {
	for {
		n := h.refs.Load()
		if n <= 0 {
			return false
		}
		if h.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (h *holder) release() {
	if h.refs.Add(-1) != 0 {
		return
	}
	h.closed.Store(true)
	if err := h.model.Ranker.Close(); err != nil {
		h.log.Warn("closing a retired model", "version", h.model.Version, "err", err)
	}
}

// acquire returns the slot's model with a reference taken and a release
// function (safe to call more than once), or nil when the slot is empty.
func (s *slot) acquire() (*holder, func()) {
	for {
		h := s.cur.Load()
		if h == nil {
			return nil, nil
		}
		// Failing means h was swapped out and drained between the load and
		// now; the slot holds its successor.
		if h.tryAcquire() {
			var once sync.Once
			return h, func() { once.Do(h.release) }
		}
	}
}
