package train

import (
	"sync"

	"github.com/capflow/capflow/models/evidence"
)

// Evidence memoises evidence features per intent text: a session's
// experiences share one intent, and so do their samples.
type Evidence struct {
	ix    *evidence.Index
	mu    sync.Mutex
	cache map[string][]float64
}

// NewEvidence wraps an index built over the graph's tools and capabilities
// in graph order.
func NewEvidence(ix *evidence.Index) *Evidence {
	return &Evidence{ix: ix, cache: map[string][]float64{}}
}

// Features returns every capability's features for an intent, [C×F]; the
// result is shared, do not modify it.
func (e *Evidence) Features(text string, emb []float64) ([]float64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f, ok := e.cache[text]; ok {
		return f, nil
	}
	x := make([]float32, len(emb))
	for i, v := range emb {
		x[i] = float32(v)
	}
	f, err := e.ix.Features(text, x, nil)
	if err != nil {
		return nil, err
	}
	e.cache[text] = f
	return f, nil
}
