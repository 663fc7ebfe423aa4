package embedded

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/internal/codec"
)

const kindFeatures = "capability features"

// UpsertCapabilityFeatures validates every row, then writes them all in one
// transaction. A bad row (wrong dimension, NaN/Inf, success_rate outside
// [0, 1], unknown capability) is a *featurestore.RecordError naming it, and
// nothing is written.
func (s *Store) UpsertCapabilityFeatures(ctx context.Context, rows []featurestore.CapabilityFeatures) error {
	for _, r := range rows {
		if err := s.cfg.CheckFeatures(r); err != nil {
			return fmt.Errorf("embedded: upsert capability features: %w", err)
		}
	}
	err := s.update(ctx, "upsert capability features", func(tx *bolt.Tx) error {
		caps, feats := tx.Bucket(bucketCaps), tx.Bucket(bucketFeatures)
		for _, r := range rows {
			if caps.Get([]byte(r.CapabilityID)) == nil {
				return &featurestore.RecordError{Kind: kindFeatures, ID: r.CapabilityID, Field: "capability_id", Reason: "names no stored capability"}
			}
			if err := feats.Put([]byte(r.CapabilityID), codec.EncodeFeatures(&r)); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.dropANNCache()
	}
	return err
}

// CapabilityFeatures returns the rows in ids' order; an id without a row is
// a *featurestore.NotFoundError.
func (s *Store) CapabilityFeatures(ctx context.Context, ids []string) ([]featurestore.CapabilityFeatures, error) {
	out := make([]featurestore.CapabilityFeatures, 0, len(ids))
	err := s.view(ctx, "capability features", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFeatures)
		for _, id := range ids {
			v := b.Get([]byte(id))
			if v == nil {
				return &featurestore.NotFoundError{Kind: kindFeatures, ID: id}
			}
			r, err := codec.DecodeFeatures(v)
			if err == nil && r.CapabilityID != id { // the value names its key
				err = codec.ErrCorrupt
			}
			if err != nil {
				return fmt.Errorf("%s %q: %w", kindFeatures, id, err)
			}
			out = append(out, *r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// annRow is one cached embedding, normalised to unit length so a cosine is
// a dot product.
type annRow struct {
	id  string
	vec []float32
}

func (s *Store) dropANNCache() {
	s.annMu.Lock()
	clear(s.ann)
	s.annGen++
	s.annMu.Unlock()
}

// annRows returns the cached embeddings of space, loading them on a miss.
func (s *Store) annRows(ctx context.Context, space featurestore.Space) ([]annRow, error) {
	s.annMu.Lock()
	rows, gen := s.ann[space], s.annGen
	s.annMu.Unlock()
	if rows != nil {
		return rows, nil
	}
	decode := codec.FeaturesHybrid
	if space == featurestore.SpaceText {
		decode = codec.FeaturesText
	}
	rows = []annRow{}
	err := s.view(ctx, "nearest capabilities", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFeatures).ForEach(func(k, v []byte) error {
			vec, err := decode(v)
			if err != nil {
				return fmt.Errorf("%s %q: %w", kindFeatures, k, err)
			}
			if unit(vec) {
				rows = append(rows, annRow{id: string(k), vec: vec})
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	s.annMu.Lock()
	if s.annGen == gen { // no write since the scan began
		if s.ann == nil {
			s.ann = map[featurestore.Space][]annRow{}
		}
		s.ann[space] = rows
	}
	s.annMu.Unlock()
	return rows, nil
}

// unit scales v to unit length in place; it reports false for a nil or
// zero vector, whose cosine is undefined.
func unit(v []float32) bool {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if n == 0 {
		return false
	}
	inv := 1 / math.Sqrt(n)
	for i := range v {
		v[i] = float32(float64(v[i]) * inv)
	}
	return true
}

// NearestCapabilities returns the k capabilities whose embeddings in space
// are closest to query by cosine distance (1 − cosine similarity), nearest
// first, ties by id. It is exact: a scan over every row, which at catalog
// scale is cheaper than keeping an index. Rows without an embedding in
// space are not candidates.
func (s *Store) NearestCapabilities(ctx context.Context, space featurestore.Space, query []float32, k int) ([]featurestore.Neighbor, error) {
	if err := s.cfg.CheckQueryVector(space, query); err != nil {
		return nil, fmt.Errorf("embedded: nearest capabilities: %w", err)
	}
	if k <= 0 {
		return []featurestore.Neighbor{}, nil
	}
	q := slices.Clone(query)
	unit(q) // not zero: checked above
	rows, err := s.annRows(ctx, space)
	if err != nil {
		return nil, err
	}
	out := make([]featurestore.Neighbor, len(rows))
	for i, r := range rows {
		var dot float64
		for j, x := range r.vec {
			dot += float64(x) * float64(q[j])
		}
		out[i] = featurestore.Neighbor{CapabilityID: r.id, Distance: 1 - dot}
	}
	slices.SortFunc(out, func(a, b featurestore.Neighbor) int {
		return cmp.Or(cmp.Compare(a.Distance, b.Distance), cmp.Compare(a.CapabilityID, b.CapabilityID))
	})
	return out[:min(k, len(out))], nil
}

// PutIntentFeatures stores f, replacing any row with its hash. A zero
// CreatedAt is set to now.
func (s *Store) PutIntentFeatures(ctx context.Context, f featurestore.IntentFeatures) error {
	const kind = "intent features"
	if f.IntentHash == "" {
		return &featurestore.RecordError{Kind: kind, Field: "intent_hash", Reason: "is required"}
	}
	if err := featurestore.CheckVector(kind, f.IntentHash, "embedding", f.Embedding, s.cfg.TextDim); err != nil {
		return err
	}
	if f.CreatedAt.IsZero() {
		f.CreatedAt = time.Now()
	}
	return s.update(ctx, "put intent features", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIntents).Put([]byte(f.IntentHash), codec.EncodeIntent(&f))
	})
}

// IntentFeatures returns the row for intentHash or a
// *featurestore.NotFoundError.
func (s *Store) IntentFeatures(ctx context.Context, intentHash string) (*featurestore.IntentFeatures, error) {
	var out *featurestore.IntentFeatures
	err := s.view(ctx, "intent features", func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketIntents).Get([]byte(intentHash))
		if v == nil {
			return &featurestore.NotFoundError{Kind: "intent features", ID: intentHash}
		}
		var err error
		out, err = codec.DecodeIntent(v)
		if err == nil && out.IntentHash != intentHash { // the value names its key
			err = codec.ErrCorrupt
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// embeddingKey joins the key's parts with NUL, which none of them holds
// (PutEmbedding checks).
func embeddingKey(k featurestore.EmbeddingKey) []byte {
	return []byte(k.Model + "\x00" + k.ModelVersion + "\x00" + k.TextHash)
}

// keyName names a cache key in errors.
func keyName(k featurestore.EmbeddingKey) string {
	return k.Model + "@" + k.ModelVersion + "/" + k.TextHash
}

// PutEmbedding caches vec for key, replacing any earlier value. The
// dimension is the model's, so only emptiness and finiteness are checked.
func (s *Store) PutEmbedding(ctx context.Context, key featurestore.EmbeddingKey, vec []float32) error {
	const kind = "embedding"
	switch {
	case key.Model == "":
		return &featurestore.RecordError{Kind: kind, ID: keyName(key), Field: "model", Reason: "is required"}
	case key.TextHash == "":
		return &featurestore.RecordError{Kind: kind, ID: keyName(key), Field: "text_hash", Reason: "is required"}
	case containsNUL(key.Model) || containsNUL(key.ModelVersion) || containsNUL(key.TextHash):
		return &featurestore.RecordError{Kind: kind, ID: keyName(key), Field: "key", Reason: "contains a NUL byte"}
	}
	if err := featurestore.CheckVector(kind, keyName(key), "vector", vec, len(vec)); err != nil {
		return err
	}
	if len(vec) == 0 {
		return &featurestore.RecordError{Kind: kind, ID: keyName(key), Field: "vector", Reason: "is empty"}
	}
	return s.update(ctx, "put embedding", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEmbeddings).Put(embeddingKey(key), codec.EncodeVector(vec))
	})
}

// Embedding returns the cached vector for key or a
// *featurestore.NotFoundError.
func (s *Store) Embedding(ctx context.Context, key featurestore.EmbeddingKey) ([]float32, error) {
	var out []float32
	err := s.view(ctx, "embedding", func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketEmbeddings).Get(embeddingKey(key))
		if v == nil {
			return &featurestore.NotFoundError{Kind: "embedding", ID: keyName(key)}
		}
		var err error
		out, err = codec.DecodeVector(v)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func containsNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }
