package textembed

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
)

// memCache is an in-memory Cache that copies vectors both ways, as a store
// would.
type memCache struct {
	mu      sync.Mutex
	m       map[featurestore.EmbeddingKey][]float32
	getErr  error
	putErr  error
	gets    atomic.Int64
	putKeys []featurestore.EmbeddingKey
}

func newMemCache() *memCache { return &memCache{m: map[featurestore.EmbeddingKey][]float32{}} }

func (c *memCache) Embedding(_ context.Context, k featurestore.EmbeddingKey) ([]float32, error) {
	c.gets.Add(1)
	if c.getErr != nil {
		return nil, c.getErr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	if !ok {
		return nil, &featurestore.NotFoundError{Kind: "embedding", ID: k.TextHash}
	}
	return append([]float32(nil), v...), nil
}

func (c *memCache) PutEmbedding(_ context.Context, k featurestore.EmbeddingKey, v []float32) error {
	if c.putErr != nil {
		return c.putErr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] = append([]float32(nil), v...)
	c.putKeys = append(c.putKeys, k)
	return nil
}

// countingEncoder wraps an Encoder and records each Encode call's texts.
type countingEncoder struct {
	Encoder
	info  ModelInfo
	mu    sync.Mutex
	calls [][]string
}

func (c *countingEncoder) Model() ModelInfo { return c.info }

func (c *countingEncoder) Encode(ctx context.Context, texts []string) ([][]float32, error) {
	c.mu.Lock()
	c.calls = append(c.calls, append([]string(nil), texts...))
	c.mu.Unlock()
	return c.Encoder.Encode(ctx, texts)
}

func TestTextHash(t *testing.T) {
	// SHA-256 test vector (FIPS 180-2, "abc").
	assert.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", TextHash("abc"))
	assert.Equal(t, featurestore.EmbeddingKey{Model: "m", ModelVersion: "v", TextHash: TextHash("abc")}, Key(ModelInfo{Name: "m", Version: "v"}, "abc"))
}

func TestCached(t *testing.T) {
	ctx := context.Background()
	h := newHashing(t, HashingConfig{Dim: 64})
	enc := &countingEncoder{Encoder: h, info: ModelInfo{Name: "hash", Version: "1", Dim: 64}}
	store := newMemCache()
	c := Cached(enc, store)
	assert.Equal(t, 64, c.Dim())
	assert.Equal(t, enc.info, c.Model())

	first := []string{"read file", "send mail", "read file", ""}
	got, err := c.Encode(ctx, first)
	require.NoError(t, err)
	want, err := h.Encode(ctx, first)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	// One batch of the distinct misses, each written back once.
	assert.Equal(t, [][]string{{"read file", "send mail", ""}}, enc.calls)
	assert.Len(t, store.putKeys, 3)
	got[0][0] = 42 // duplicates do not share a slice
	assert.NotEqual(t, got[0], got[2])

	// Unchanged texts are never re-encoded; only the new one is.
	got, err = c.Encode(ctx, []string{"send mail", "new text", "read file"})
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"read file", "send mail", ""}, {"new text"}}, enc.calls)
	want, _ = h.Encode(ctx, []string{"send mail", "new text", "read file"})
	assert.Equal(t, want, got)

	// All hits: no Encode call at all.
	_, err = c.Encode(ctx, first)
	require.NoError(t, err)
	assert.Len(t, enc.calls, 2)

	// A different model version misses everything.
	enc2 := &countingEncoder{Encoder: h, info: ModelInfo{Name: "hash", Version: "2", Dim: 64}}
	_, err = Cached(enc2, store).Encode(ctx, []string{"send mail", "read file"})
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"send mail", "read file"}}, enc2.calls)
}

func TestCachedRejectsBadEntries(t *testing.T) {
	ctx := context.Background()
	h := newHashing(t, HashingConfig{Dim: 8})
	enc := &countingEncoder{Encoder: h, info: h.Model()}
	store := newMemCache()
	store.m[Key(h.Model(), "short")] = []float32{1, 0}                                   // wrong dimension
	store.m[Key(h.Model(), "nan")] = []float32{float32(math.NaN()), 0, 0, 0, 0, 0, 0, 0} // corrupt
	got, err := Cached(enc, store).Encode(ctx, []string{"short", "nan"})
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"short", "nan"}}, enc.calls)
	assert.Len(t, got[0], 8)
	assert.Len(t, store.m[Key(h.Model(), "short")], 8, "overwritten")
}

func TestCachedErrors(t *testing.T) {
	ctx := context.Background()
	h := newHashing(t, HashingConfig{Dim: 8})
	boom := errors.New("connection refused")

	store := newMemCache()
	store.getErr = boom
	_, err := Cached(h, store).Encode(ctx, []string{"a"})
	assert.ErrorIs(t, err, boom)

	store = newMemCache()
	store.putErr = boom
	_, err = Cached(h, store).Encode(ctx, []string{"a"})
	assert.ErrorIs(t, err, boom)

	ctxc, cancel := context.WithCancel(ctx)
	cancel()
	_, err = Cached(h, newMemCache()).Encode(ctxc, []string{"a"})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestCachedConcurrent(t *testing.T) {
	h := newHashing(t, HashingConfig{Dim: 32})
	c := Cached(h, newMemCache())
	in := []string{"a b", "c d", "e f", "a b"}
	want, err := h.Encode(context.Background(), in)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				got, err := c.Encode(context.Background(), in)
				if !assert.NoError(t, err) || !assert.Equal(t, want, got) {
					return
				}
			}
		})
	}
	wg.Wait()
}

// featurestore.Store is a Cache.
var _ Cache = featurestore.Store(nil)

func TestCachedEmbeddedStore(t *testing.T) {
	ctx := context.Background()
	s, err := embedded.Open(filepath.Join(t.TempDir(), "fs.db"), featurestore.Config{})
	require.NoError(t, err)
	defer s.Close()
	h := newHashing(t, HashingConfig{})
	enc := &countingEncoder{Encoder: h, info: h.Model()}
	in := []string{"Send an email", "", "Translate text"}
	first, err := Cached(enc, s).Encode(ctx, in)
	require.NoError(t, err)
	second, err := Cached(enc, s).Encode(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, first, second)
	assert.Len(t, enc.calls, 1, "second call served from the store")
}

// blockingCache is a memCache whose writes wait for release.
type blockingCache struct {
	*memCache
	started chan struct{}
	release chan struct{}
}

func (c *blockingCache) PutEmbedding(ctx context.Context, k featurestore.EmbeddingKey, v []float32) error {
	c.started <- struct{}{}
	<-c.release
	return c.memCache.PutEmbedding(ctx, k, v)
}

// TestWriteBehind: misses are returned at once and reach the store by Close;
// a failing store does not fail Encode; a full queue drops the write and
// never blocks Encode.
func TestWriteBehind(t *testing.T) {
	ctx := context.Background()
	h := newHashing(t, HashingConfig{Dim: 64})
	info := ModelInfo{Name: "hash", Version: "1", Dim: 64}
	enc := &countingEncoder{Encoder: h, info: info}
	store := newMemCache()
	w := WriteBehind(enc, store, 16, nil)
	texts := []string{"read file", "send mail", "read file"}
	got, err := w.Encode(ctx, texts)
	require.NoError(t, err)
	want, _ := h.Encode(ctx, texts)
	assert.Equal(t, want, got)
	require.NoError(t, w.Close())
	require.NoError(t, w.Close(), "Close is idempotent")
	assert.Len(t, store.putKeys, 2)
	assert.Zero(t, w.Dropped())
	// A later encoder over the same store hits.
	enc2 := &countingEncoder{Encoder: h, info: info}
	again := WriteBehind(enc2, store, 16, nil)
	got, err = again.Encode(ctx, texts)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Empty(t, enc2.calls)
	require.NoError(t, again.Close())

	// The store refuses writes: Encode still answers; the failures are
	// counted and logged.
	bad := newMemCache()
	bad.putErr = errors.New("disk full")
	var logs strings.Builder
	fw := WriteBehind(h, bad, 16, slog.New(slog.NewTextHandler(&logs, nil)))
	_, err = fw.Encode(ctx, []string{"a", "b"})
	require.NoError(t, err)
	require.NoError(t, fw.Close())
	assert.Equal(t, uint64(2), fw.Failed())
	assert.Contains(t, logs.String(), "disk full")

	// One write in progress, one queued: the third miss is dropped, and
	// Encode does not wait for the store.
	slow := &blockingCache{memCache: newMemCache(), started: make(chan struct{}, 8), release: make(chan struct{})}
	sw := WriteBehind(h, slow, 1, nil)
	_, err = sw.Encode(ctx, []string{"first"})
	require.NoError(t, err)
	<-slow.started // the writer holds "first"
	_, err = sw.Encode(ctx, []string{"second", "third"})
	require.NoError(t, err)
	assert.Equal(t, uint64(1), sw.Dropped())
	close(slow.release)
	require.NoError(t, sw.Close())
	assert.Len(t, slow.putKeys, 2)
}
