package textembed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"

	"github.com/capflow/capflow/featurestore"
)

// Cache stores embeddings by key. featurestore.Store satisfies it; a miss
// is an error for which featurestore.IsNotFound is true.
type Cache interface {
	Embedding(ctx context.Context, key featurestore.EmbeddingKey) ([]float32, error)
	PutEmbedding(ctx context.Context, key featurestore.EmbeddingKey, vec []float32) error
}

// TextHash is the hex SHA-256 of text, the TextHash of its cache key.
func TextHash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// Key is text's cache key under model m.
func Key(m ModelInfo, text string) featurestore.EmbeddingKey {
	return featurestore.EmbeddingKey{Model: m.Name, ModelVersion: m.Version, TextHash: TextHash(text)}
}

// cached is an Encoder that looks texts up in a Cache first.
type cached struct {
	enc   Encoder
	store Cache
}

// Cached returns enc behind the embedding cache store, keyed by (model
// name, model version, SHA-256 of the text): texts already cached under the
// same model are never encoded again; the distinct misses of one call are
// encoded in one Encode call and written back. A cached vector of the wrong
// dimension or with NaN/Inf is treated as a miss and overwritten. Errors
// reading (other than a miss) or writing the cache fail the call, so a
// broken store is seen rather than silently bypassed. Safe for concurrent
// use when enc and store are; two concurrent calls may both encode the
// same new text.
func Cached(enc Encoder, store Cache) Encoder {
	return &cached{enc: enc, store: store}
}

func (c *cached) Dim() int         { return c.enc.Dim() }
func (c *cached) Model() ModelInfo { return c.enc.Model() }

func (c *cached) Encode(ctx context.Context, texts []string) ([][]float32, error) {
	m := c.enc.Model()
	out := make([][]float32, len(texts))
	var (
		missTexts []string
		missKeys  []featurestore.EmbeddingKey
		missAt    = map[string][]int{} // text → positions in texts
	)
	for i, t := range texts {
		if at, ok := missAt[t]; ok { // a repeated miss is encoded once
			missAt[t] = append(at, i)
			continue
		}
		key := Key(m, t)
		v, err := c.store.Embedding(ctx, key)
		switch {
		case err == nil && c.usable(v):
			out[i] = v
			continue
		case err != nil && !featurestore.IsNotFound(err):
			return nil, fmt.Errorf("textembed: reading cached embedding %s@%s/%s: %w", key.Model, key.ModelVersion, key.TextHash, err)
		}
		missAt[t] = []int{i}
		missTexts = append(missTexts, t)
		missKeys = append(missKeys, key)
	}
	if len(missTexts) == 0 {
		return out, nil
	}
	vecs, err := c.enc.Encode(ctx, missTexts)
	if err != nil {
		return nil, err
	}
	if len(vecs) != len(missTexts) {
		return nil, fmt.Errorf("textembed: encoder %s returned %d vectors for %d texts", m.Name, len(vecs), len(missTexts))
	}
	for j, t := range missTexts {
		if err := c.store.PutEmbedding(ctx, missKeys[j], vecs[j]); err != nil {
			return nil, fmt.Errorf("textembed: caching embedding %s@%s/%s: %w", m.Name, m.Version, missKeys[j].TextHash, err)
		}
		for k, i := range missAt[t] {
			if k == 0 {
				out[i] = vecs[j]
			} else { // each position gets its own slice
				out[i] = append([]float32(nil), vecs[j]...)
			}
		}
	}
	return out, nil
}

// usable rejects a cached vector the encoder could not have produced now.
func (c *cached) usable(v []float32) bool {
	if d := c.enc.Dim(); len(v) == 0 || (d > 0 && len(v) != d) {
		return false
	}
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}
