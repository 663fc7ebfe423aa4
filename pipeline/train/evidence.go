package train

import (
	"context"
	"fmt"
	"sync"

	"github.com/capflow/capflow/models/evidence"
	"github.com/capflow/capflow/models/textembed"
)

// Evidence memoises evidence features per intent text (a session's
// experiences share one intent, and so do their samples), keeping the
// columns the model was configured with (shgat.Config.Evidence). Intent
// parts (evidence.Parts) are encoded with the training encoder, the one
// serving uses, so the part features are the same everywhere.
type Evidence struct {
	ix    *evidence.Index
	enc   textembed.Encoder
	cols  []int
	mu    sync.Mutex
	cache map[string][]float64
	parts map[string][]float32 // part text → unit embedding
}

// NewEvidence wraps an index built over the graph's tools and capabilities
// in graph order; names are the model's evidence features, enc encodes the
// intents' parts.
func NewEvidence(ix *evidence.Index, enc textembed.Encoder, names []string) (*Evidence, error) {
	cols, err := evidence.Columns(names)
	if err != nil {
		return nil, err
	}
	return &Evidence{ix: ix, enc: enc, cols: cols, cache: map[string][]float64{}, parts: map[string][]float32{}}, nil
}

// Width is the number of features per capability.
func (e *Evidence) Width() int { return len(e.cols) }

// Prepare encodes the parts of texts that are not encoded yet, in batches:
// Features would encode them one intent at a time.
func (e *Evidence) Prepare(ctx context.Context, texts []string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var todo []string
	seen := map[string]bool{}
	for _, t := range texts {
		for _, p := range evidence.Parts(t) {
			if _, ok := e.parts[p]; !ok && !seen[p] {
				seen[p] = true
				todo = append(todo, p)
			}
		}
	}
	return e.encode(ctx, todo)
}

func (e *Evidence) encode(ctx context.Context, texts []string) error {
	if len(texts) == 0 {
		return nil
	}
	vecs, err := encodeBatched(ctx, e.enc, texts)
	if err != nil {
		return fmt.Errorf("train: encode intent parts: %w", err)
	}
	for i, v := range vecs {
		e.parts[texts[i]] = v
	}
	return nil
}

// Features returns every capability's features for an intent, [C×Width];
// the result is shared, do not modify it.
func (e *Evidence) Features(ctx context.Context, text string, emb []float64) ([]float64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f, ok := e.cache[text]; ok {
		return f, nil
	}
	q := evidence.Query{Text: text, Embedding: to32(emb)}
	var todo []string
	for _, p := range evidence.Parts(text) {
		if _, ok := e.parts[p]; !ok {
			todo = append(todo, p)
		}
	}
	if err := e.encode(ctx, todo); err != nil {
		return nil, err
	}
	for _, p := range evidence.Parts(text) {
		q.Parts = append(q.Parts, evidence.Part{Text: p, Embedding: e.parts[p]})
	}
	all, err := e.ix.Features(q, nil)
	if err != nil {
		return nil, err
	}
	n := e.ix.Len()
	f := make([]float64, n*len(e.cols))
	for c := range n {
		for k, col := range e.cols {
			f[c*len(e.cols)+k] = all[c*evidence.F+col]
		}
	}
	e.cache[text] = f
	return f, nil
}

func to32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
