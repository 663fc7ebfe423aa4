package textembed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

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

// cached is an Encoder that looks texts up in a Cache first; put writes a
// miss back.
type cached struct {
	enc   Encoder
	store Cache
	put   func(ctx context.Context, key featurestore.EmbeddingKey, vec []float32) error
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
	return &cached{enc: enc, store: store, put: store.PutEmbedding}
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
		if err := c.put(ctx, missKeys[j], vecs[j]); err != nil {
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

// WriteBehindCache is Cached for a request path: a miss is encoded and
// returned at once and written to the cache by one background goroutine,
// so a slow cache write (the embedded store fsyncs each one) is not part of
// the request's latency. Reading the cache still fails the call on error.
type WriteBehindCache struct {
	*cached
	log     *slog.Logger
	queue   chan pendingPut
	done    chan struct{}
	once    sync.Once
	dropped atomic.Uint64
	failed  atomic.Uint64
}

type pendingPut struct {
	key featurestore.EmbeddingKey
	vec []float32
}

// WriteBehind returns enc behind store like Cached, with the write-back
// queued: at most pending writes wait; a miss beyond that is not cached
// (the text is encoded again next time) and counted in Dropped. Write
// errors are logged and counted in Failed, never returned. Close writes
// what is queued and stops the writer; call it before closing store.
func WriteBehind(enc Encoder, store Cache, pending int, log *slog.Logger) *WriteBehindCache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &WriteBehindCache{log: log, queue: make(chan pendingPut, max(pending, 1)), done: make(chan struct{})}
	w.cached = &cached{enc: enc, store: store, put: w.enqueue}
	go w.write(store)
	return w
}

func (w *WriteBehindCache) enqueue(_ context.Context, key featurestore.EmbeddingKey, vec []float32) error {
	select {
	case w.queue <- pendingPut{key: key, vec: append([]float32(nil), vec...)}:
	default:
		w.dropped.Add(1)
	}
	return nil
}

// writeTimeout bounds one queued write, so a hung store cannot hold Close.
const writeTimeout = 10 * time.Second

func (w *WriteBehindCache) write(store Cache) {
	defer close(w.done)
	for p := range w.queue {
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		if err := store.PutEmbedding(ctx, p.key, p.vec); err != nil {
			w.failed.Add(1)
			w.log.Warn("textembed: caching an embedding failed", "model", p.key.Model, "version", p.key.ModelVersion, "text_hash", p.key.TextHash, "err", err)
		}
		cancel()
	}
}

// Close writes the queued embeddings and stops the writer; Encode must not
// be called after it. Idempotent.
func (w *WriteBehindCache) Close() error {
	w.once.Do(func() { close(w.queue) })
	<-w.done
	return nil
}

// Dropped is how many misses were not cached because the queue was full.
func (w *WriteBehindCache) Dropped() uint64 { return w.dropped.Load() }

// Failed is how many queued writes the cache refused.
func (w *WriteBehindCache) Failed() uint64 { return w.failed.Load() }
