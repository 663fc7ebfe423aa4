package evaluation

import (
	"context"
	"fmt"
	"sort"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/models/bm25"
	"github.com/capflow/capflow/models/ranker"
)

// BM25 ranks by Okapi BM25 (k1 1.5, b 0.75) of the intent against each
// capability's document: name, description, member tool names and
// descriptions (bm25.CapabilityDocument). It ignores embeddings.
type BM25 struct {
	ix    *bm25.Index
	ids   []string
	index map[string]int
}

// NewBM25 indexes the capabilities.
func NewBM25(tools []featurestore.Tool, caps []featurestore.Capability) (*BM25, error) {
	toolByID := map[string]featurestore.Tool{}
	for _, t := range tools {
		toolByID[t.ID] = t
	}
	capByID := map[string]featurestore.Capability{}
	for _, c := range caps {
		capByID[c.ID] = c
	}
	b := &BM25{index: map[string]int{}}
	docs := make([]string, len(caps))
	for i, c := range caps {
		docs[i] = bm25.CapabilityDocument(c, toolByID, capByID)
		b.ids = append(b.ids, c.ID)
		b.index[c.ID] = i
	}
	var err error
	if b.ix, err = bm25.New(docs, bm25.DefaultConfig()); err != nil {
		return nil, err
	}
	return b, nil
}

// Rank scores q.Candidates (nil: every capability).
func (b *BM25) Rank(ctx context.Context, q ranker.Query) ([]ranker.Scored, error) {
	idx, err := pool(b.index, len(b.ids), q.Candidates)
	if err != nil {
		return nil, err
	}
	scores, err := b.ix.ScoreDocs(q.Text, idx, nil)
	if err != nil {
		return nil, err
	}
	return sorted(b.ids, idx, scores), nil
}

// Cosine ranks by cosine similarity of the intent embedding and each
// capability's text embedding (the features the learned model starts from:
// the untrained baseline).
type Cosine struct {
	ids   []string
	index map[string]int
	emb   [][]float32
}

// NewCosine takes the capability ids and their unit text embeddings.
func NewCosine(ids []string, emb [][]float32) (*Cosine, error) {
	if len(ids) != len(emb) || len(ids) == 0 {
		return nil, fmt.Errorf("evaluation: cosine baseline: %d ids, %d embeddings", len(ids), len(emb))
	}
	c := &Cosine{ids: ids, emb: emb, index: map[string]int{}}
	for i, id := range ids {
		c.index[id] = i
	}
	return c, nil
}

// Rank scores q.Candidates (nil: every capability).
func (c *Cosine) Rank(ctx context.Context, q ranker.Query) ([]ranker.Scored, error) {
	idx, err := pool(c.index, len(c.ids), q.Candidates)
	if err != nil {
		return nil, err
	}
	scores := make([]float64, len(idx))
	for j, i := range idx {
		e := c.emb[i]
		if len(e) != len(q.Embedding) {
			return nil, fmt.Errorf("evaluation: cosine baseline: intent is %d-d, capability %q %d-d", len(q.Embedding), c.ids[i], len(e))
		}
		var s float64
		for k, v := range e {
			s += float64(v) * float64(q.Embedding[k])
		}
		scores[j] = s
	}
	return sorted(c.ids, idx, scores), nil
}

func pool(index map[string]int, n int, candidates []string) ([]int, error) {
	if candidates == nil {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx, nil
	}
	idx := make([]int, len(candidates))
	for j, id := range candidates {
		i, ok := index[id]
		if !ok {
			return nil, fmt.Errorf("evaluation: unknown capability %q", id)
		}
		idx[j] = i
	}
	return idx, nil
}

// sorted returns the candidates best first, ties in pool order.
func sorted(ids []string, idx []int, scores []float64) []ranker.Scored {
	out := make([]ranker.Scored, len(idx))
	for j, i := range idx {
		out[j] = ranker.Scored{ID: ids[i], Score: scores[j]}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Score > out[b].Score })
	return out
}
