package train

import (
	"context"
	"fmt"
	"sync"

	"github.com/capflow/capflow/models/evidence"
	"github.com/capflow/capflow/models/textembed"
)

// Parts encodes and memoises the parts (evidence.Parts) of intents with the
// training encoder, the one serving uses, so part features and part scores
// are the same everywhere. Safe for concurrent use.
type Parts struct {
	enc textembed.Encoder
	mu  sync.Mutex
	emb map[string][]float32 // part text → unit embedding
}

// NewParts encodes parts with enc.
func NewParts(enc textembed.Encoder) *Parts {
	return &Parts{enc: enc, emb: map[string][]float32{}}
}

// Prepare encodes, in batches, the parts of texts not encoded yet; Of would
// encode them one intent at a time.
func (p *Parts) Prepare(ctx context.Context, texts []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []string
	for _, t := range texts {
		parts = append(parts, evidence.Parts(t)...)
	}
	return p.encode(ctx, parts)
}

// encode encodes the parts not encoded yet, once each.
func (p *Parts) encode(ctx context.Context, parts []string) error {
	var todo []string
	seen := map[string]bool{}
	for _, s := range parts {
		if _, ok := p.emb[s]; !ok && !seen[s] {
			seen[s] = true
			todo = append(todo, s)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	vecs, err := encodeBatched(ctx, p.enc, todo)
	if err != nil {
		return fmt.Errorf("train: encode intent parts: %w", err)
	}
	for i, v := range vecs {
		p.emb[todo[i]] = v
	}
	return nil
}

// Of returns the parts of an intent with their embeddings; an intent of one
// part gets nil (it is its own only part).
func (p *Parts) Of(ctx context.Context, text string) ([]evidence.Part, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	parts := evidence.Parts(text)
	if len(parts) < 2 {
		return nil, nil
	}
	if err := p.encode(ctx, parts); err != nil {
		return nil, err
	}
	out := make([]evidence.Part, len(parts))
	for i, s := range parts {
		out[i] = evidence.Part{Text: s, Embedding: p.emb[s]}
	}
	return out, nil
}

// Evidence memoises evidence features per intent text (a session's
// experiences share one intent, and so do their samples), keeping the
// columns the model was configured with (shgat.Config.Evidence).
type Evidence struct {
	ix    *evidence.Index
	parts *Parts
	cols  []int
	mu    sync.Mutex
	cache map[string][]float64
}

// NewEvidence wraps an index built over the graph's tools and capabilities
// in graph order; names are the model's evidence features, parts encodes
// the intents' parts.
func NewEvidence(ix *evidence.Index, parts *Parts, names []string) (*Evidence, error) {
	cols, err := evidence.Columns(names)
	if err != nil {
		return nil, err
	}
	return &Evidence{ix: ix, parts: parts, cols: cols, cache: map[string][]float64{}}, nil
}

// Width is the number of features per capability.
func (e *Evidence) Width() int { return len(e.cols) }

// Features returns every capability's features for an intent, [C×Width];
// the result is shared, do not modify it.
func (e *Evidence) Features(ctx context.Context, text string, emb []float64) ([]float64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f, ok := e.cache[text]; ok {
		return f, nil
	}
	parts, err := e.parts.Of(ctx, text)
	if err != nil {
		return nil, err
	}
	all, err := e.ix.Features(evidence.Query{Text: text, Embedding: to32(emb), Parts: parts}, nil)
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

// partRows returns the unit embeddings of an intent's parts, nil for an
// intent of one part.
func partRows(ctx context.Context, parts *Parts, text string) ([][]float64, error) {
	ps, err := parts.Of(ctx, text)
	if err != nil || ps == nil {
		return nil, err
	}
	out := make([][]float64, len(ps))
	for i, p := range ps {
		out[i] = to64(p.Embedding)
	}
	return out, nil
}

func to32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
