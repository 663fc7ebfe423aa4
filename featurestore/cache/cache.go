// Package cache puts the design's cache layers in front of a
// featurestore.Store: L1 an in-process LRU (10,000 entries, TTL 1 h), L2
// Redis (TTL 24 h), L3 the store itself. It caches the request-path reads —
// capability feature rows, intent features and text embeddings — read-through,
// and invalidates them on writes through the same Store. Everything else is
// delegated unchanged.
//
// # Consistency
//
// A write through a Store invalidates its keys in L1 and L2 before it
// returns, and a fill racing with a write is discarded (a generation counter
// checked under a lock that invalidation takes exclusively), so a reader of
// this Store never sees a row older than the last write that returned. Other
// processes sharing the Redis see the write at once in L2, but their own L1
// may serve the old row for up to L1TTL: run writers (offline feature jobs)
// and readers with that in mind, or give readers a shorter L1TTL.
//
// # Redis bounds
//
// Redis cannot cap a set of keys at 100,000 by itself. The cache bounds L2 by
// TTL (every key is written with L2TTL) and relies on the deployment to bound
// memory: set maxmemory to about 100,000 × the value size (≈8.5 KB for a row
// with 1024+64+1024-d vectors, so ≈900 MB) with maxmemory-policy
// volatile-lru or allkeys-lru, so Redis evicts the least recently used
// entries as the design's 100,000-entry LRU would.
//
// # Redis down
//
// Any Redis error (with the short timeouts of NewRedisClient) makes the call
// read through to the store; the first failure is logged once, counted in
// L2Errors, and Redis is left alone for L2RetryInterval before the next probe.
// The recovery is logged once. Invalidations that could not reach Redis are
// remembered and applied on recovery; until then those keys are not read
// from Redis.
//
// # Redis values
//
// L2 values are featurestore/internal/codec's compact binary encoding, the
// one the embedded store also uses: a value that does not decode (another
// layout version, another record kind, or another record's id) is logged
// and treated as a miss.
package cache

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/redis/go-redis/v9"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/internal/codec"
)

// Options configure New. Zero fields take the design's defaults.
type Options struct {
	L1Size int           // entries in the in-process LRU (default 10,000)
	L1TTL  time.Duration // default 1 h
	// Redis is the L2 client; nil means no L2. NewRedisClient sets the short
	// timeouts the cache wants.
	Redis           *redis.Client
	L2TTL           time.Duration // default 24 h
	L2Timeout       time.Duration // per Redis call (default 100 ms)
	L2RetryInterval time.Duration // how long to skip Redis after a failure (default 1 s)
	// KeyPrefix starts every Redis key (default "capflow:fs:v2:", the
	// encoding's version, so that a new encoding never reads old values).
	KeyPrefix string
	Logger    *slog.Logger // default slog.Default()
}

func (o Options) withDefaults() Options {
	if o.L1Size <= 0 {
		o.L1Size = 10_000
	}
	if o.L1TTL <= 0 {
		o.L1TTL = time.Hour
	}
	if o.L2TTL <= 0 {
		o.L2TTL = 24 * time.Hour
	}
	if o.L2Timeout <= 0 {
		o.L2Timeout = 100 * time.Millisecond
	}
	if o.L2RetryInterval <= 0 {
		o.L2RetryInterval = time.Second
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = fmt.Sprintf("capflow:fs:v%d:", codec.Version)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Stats are the cache's counters since New. L1 counts every requested key;
// L2 counts the keys looked up there (those L1 missed; a lookup skipped
// while Redis is down counts as a miss); L2Errors counts failed Redis calls;
// StoreReads counts read calls that reached the store (a batch is one).
type Stats struct {
	L1Hits, L1Misses uint64
	L2Hits, L2Misses uint64
	L2Errors         uint64
	StoreReads       uint64
}

type counters struct {
	l1Hits, l1Misses, l2Hits, l2Misses, l2Errors, storeReads atomic.Uint64
}

// Store is a featurestore.Store with the cache layers in front. It is safe
// for concurrent use.
type Store struct {
	featurestore.Store // L3; methods not defined here are delegated as they are

	l1    *expirable.LRU[string, any]
	l2    *l2 // nil without Redis
	stats counters

	// fillMu and gen discard fills that raced with a write: readers note gen
	// before looking anything up and fill only under fillMu.RLock if gen is
	// unchanged; writers bump gen and invalidate under fillMu.Lock.
	fillMu sync.RWMutex
	gen    atomic.Uint64
}

var _ featurestore.Store = (*Store)(nil)

// New wraps store. The Redis client, if any, stays the caller's to close.
func New(store featurestore.Store, opts Options) *Store {
	opts = opts.withDefaults()
	s := &Store{
		Store: store,
		// The expirable LRU runs one cleanup goroutine for its lifetime.
		l1: expirable.NewLRU[string, any](opts.L1Size, nil, opts.L1TTL),
	}
	if opts.Redis != nil {
		s.l2 = &l2{
			rdb:     opts.Redis,
			prefix:  opts.KeyPrefix,
			ttl:     opts.L2TTL,
			timeout: opts.L2Timeout,
			retry:   opts.L2RetryInterval,
			log:     opts.Logger,
			stats:   &s.stats,
		}
	}
	return s
}

// Stats returns a snapshot of the counters.
func (s *Store) Stats() Stats {
	return Stats{
		L1Hits:     s.stats.l1Hits.Load(),
		L1Misses:   s.stats.l1Misses.Load(),
		L2Hits:     s.stats.l2Hits.Load(),
		L2Misses:   s.stats.l2Misses.Load(),
		L2Errors:   s.stats.l2Errors.Load(),
		StoreReads: s.stats.storeReads.Load(),
	}
}

// PurgeL1 empties the in-process layer (for tests and operators).
func (s *Store) PurgeL1() { s.l1.Purge() }

// Close empties L1 and closes the store (not the Redis client).
func (s *Store) Close() error {
	s.l1.Purge()
	return s.Store.Close()
}

// Keys of L1; L2 keys are the same with KeyPrefix in front. Embedding keys
// are length-prefixed so that no model name can make two keys collide.
func featuresKey(id string) string { return "cf:" + id }
func intentKey(hash string) string { return "if:" + hash }
func embeddingKey(k featurestore.EmbeddingKey) string {
	return fmt.Sprintf("emb:%d:%s%d:%s%s", len(k.Model), k.Model, len(k.ModelVersion), k.ModelVersion, k.TextHash)
}

// entry is a value to put in L1 and, when enc is set, in L2.
type entry struct {
	key string
	val any // owned by the cache: never handed to a caller
	enc []byte
}

// fill adds entries unless a write happened since gen0.
func (s *Store) fill(ctx context.Context, gen0 uint64, es []entry) {
	if len(es) == 0 {
		return
	}
	s.fillMu.RLock()
	defer s.fillMu.RUnlock()
	if s.gen.Load() != gen0 {
		return
	}
	var keys []string
	var vals [][]byte
	for _, e := range es {
		s.l1.Add(e.key, e.val)
		if e.enc != nil {
			keys = append(keys, e.key)
			vals = append(vals, e.enc)
		}
	}
	if s.l2 != nil {
		s.l2.set(ctx, keys, vals)
	}
}

// invalidate drops keys from both layers, after a write to the store.
func (s *Store) invalidate(ctx context.Context, keys []string) {
	s.fillMu.Lock()
	defer s.fillMu.Unlock()
	s.gen.Add(1)
	for _, k := range keys {
		s.l1.Remove(k)
	}
	if s.l2 != nil {
		// The write has happened; its caller's cancellation must not leave
		// a stale entry in Redis.
		s.l2.del(context.WithoutCancel(ctx), keys)
	}
}

// lookupL2 returns L2's values for keys and counts hits and misses.
func (s *Store) lookupL2(ctx context.Context, keys []string) [][]byte {
	if s.l2 == nil {
		return make([][]byte, len(keys))
	}
	vals, _ := s.l2.get(ctx, keys)
	for _, v := range vals {
		if v != nil {
			s.stats.l2Hits.Add(1)
		} else {
			s.stats.l2Misses.Add(1)
		}
	}
	return vals
}

func cloneFeatures(r featurestore.CapabilityFeatures) featurestore.CapabilityFeatures {
	r.TextEmbedding = slices.Clone(r.TextEmbedding)
	r.N2VEmbedding = slices.Clone(r.N2VEmbedding)
	r.HybridEmbedding = slices.Clone(r.HybridEmbedding)
	return r
}

func cloneIntent(f featurestore.IntentFeatures) *featurestore.IntentFeatures {
	f.Embedding = slices.Clone(f.Embedding)
	f.ContextTools = slices.Clone(f.ContextTools)
	return &f
}

// CapabilityFeatures reads ids through the layers: L1, then one Redis MGET
// for L1's misses, then one store call for what is still missing, then fills
// L2 (one pipeline) and L1. Rows come back in ids' order; an unknown id is
// the store's error.
func (s *Store) CapabilityFeatures(ctx context.Context, ids []string) ([]featurestore.CapabilityFeatures, error) {
	gen0 := s.gen.Load()
	out := make([]featurestore.CapabilityFeatures, len(ids))
	missing := map[string][]int{} // id → positions in ids
	var order []string            // missing ids, first-seen order
	for i, id := range ids {
		if v, ok := s.l1.Get(featuresKey(id)); ok {
			s.stats.l1Hits.Add(1)
			out[i] = cloneFeatures(*v.(*featurestore.CapabilityFeatures))
			continue
		}
		s.stats.l1Misses.Add(1)
		if _, seen := missing[id]; !seen {
			order = append(order, id)
		}
		missing[id] = append(missing[id], i)
	}
	if len(order) == 0 {
		return out, nil
	}

	var fills []entry
	if s.l2 != nil {
		keys := make([]string, len(order))
		for i, id := range order {
			keys[i] = featuresKey(id)
		}
		vals := s.lookupL2(ctx, keys)
		rest := order[:0:0]
		for i, id := range order {
			var r *featurestore.CapabilityFeatures
			if vals[i] != nil {
				var err error
				if r, err = codec.DecodeFeatures(vals[i]); err != nil || r.CapabilityID != id {
					s.l2.log.Warn("featurestore cache: ignoring unreadable redis value", "key", keys[i], "err", err)
					r = nil
				}
			}
			if r == nil {
				rest = append(rest, id)
				continue
			}
			for _, p := range missing[id] {
				out[p] = cloneFeatures(*r)
			}
			fills = append(fills, entry{key: keys[i], val: r})
		}
		order = rest
	}

	if len(order) > 0 {
		s.stats.storeReads.Add(1)
		rows, err := s.Store.CapabilityFeatures(ctx, order)
		if err != nil {
			return nil, err
		}
		if len(rows) != len(order) {
			return nil, fmt.Errorf("cache: store returned %d capability feature rows for %d ids", len(rows), len(order))
		}
		for i, id := range order {
			if rows[i].CapabilityID != id {
				return nil, fmt.Errorf("cache: store returned capability features %q at the place of %q", rows[i].CapabilityID, id)
			}
			for _, p := range missing[id] {
				out[p] = cloneFeatures(rows[i])
			}
			own := cloneFeatures(rows[i])
			e := entry{key: featuresKey(id), val: &own}
			if s.l2 != nil {
				e.enc = codec.EncodeFeatures(&own)
			}
			fills = append(fills, e)
		}
	}
	s.fill(ctx, gen0, fills)
	return out, nil
}

// IntentFeatures reads one intent's features through the layers.
func (s *Store) IntentFeatures(ctx context.Context, intentHash string) (*featurestore.IntentFeatures, error) {
	gen0 := s.gen.Load()
	key := intentKey(intentHash)
	if v, ok := s.l1.Get(key); ok {
		s.stats.l1Hits.Add(1)
		return cloneIntent(*v.(*featurestore.IntentFeatures)), nil
	}
	s.stats.l1Misses.Add(1)
	if s.l2 != nil {
		if b := s.lookupL2(ctx, []string{key})[0]; b != nil {
			f, err := codec.DecodeIntent(b)
			if err == nil && f.IntentHash == intentHash {
				s.fill(ctx, gen0, []entry{{key: key, val: f}})
				return cloneIntent(*f), nil
			}
			s.l2.log.Warn("featurestore cache: ignoring unreadable redis value", "key", key, "err", err)
		}
	}
	s.stats.storeReads.Add(1)
	f, err := s.Store.IntentFeatures(ctx, intentHash)
	if err != nil {
		return nil, err
	}
	own := cloneIntent(*f)
	e := entry{key: key, val: own}
	if s.l2 != nil {
		e.enc = codec.EncodeIntent(own)
	}
	s.fill(ctx, gen0, []entry{e})
	return f, nil
}

// Embedding reads one cached text embedding through the layers.
func (s *Store) Embedding(ctx context.Context, k featurestore.EmbeddingKey) ([]float32, error) {
	gen0 := s.gen.Load()
	key := embeddingKey(k)
	if v, ok := s.l1.Get(key); ok {
		s.stats.l1Hits.Add(1)
		return slices.Clone(v.([]float32)), nil
	}
	s.stats.l1Misses.Add(1)
	if s.l2 != nil {
		if b := s.lookupL2(ctx, []string{key})[0]; b != nil {
			v, err := codec.DecodeVector(b)
			if err == nil {
				s.fill(ctx, gen0, []entry{{key: key, val: v}})
				return slices.Clone(v), nil
			}
			s.l2.log.Warn("featurestore cache: ignoring unreadable redis value", "key", key, "err", err)
		}
	}
	s.stats.storeReads.Add(1)
	v, err := s.Store.Embedding(ctx, k)
	if err != nil {
		return nil, err
	}
	own := slices.Clone(v)
	e := entry{key: key, val: own}
	if s.l2 != nil {
		e.enc = codec.EncodeVector(own)
	}
	s.fill(ctx, gen0, []entry{e})
	return v, nil
}

// Writes go to the store first, then invalidate — also when the store
// returns an error, since the write may have happened all the same (a
// timeout after commit).

// UpsertCapabilityFeatures writes rows and invalidates their cached copies.
func (s *Store) UpsertCapabilityFeatures(ctx context.Context, rows []featurestore.CapabilityFeatures) error {
	err := s.Store.UpsertCapabilityFeatures(ctx, rows)
	keys := make([]string, len(rows))
	for i, r := range rows {
		keys[i] = featuresKey(r.CapabilityID)
	}
	s.invalidate(ctx, keys)
	return err
}

// PutIntentFeatures writes f and invalidates its cached copy.
func (s *Store) PutIntentFeatures(ctx context.Context, f featurestore.IntentFeatures) error {
	err := s.Store.PutIntentFeatures(ctx, f)
	s.invalidate(ctx, []string{intentKey(f.IntentHash)})
	return err
}

// PutEmbedding writes vec and invalidates its cached copy.
func (s *Store) PutEmbedding(ctx context.Context, k featurestore.EmbeddingKey, vec []float32) error {
	err := s.Store.PutEmbedding(ctx, k, vec)
	s.invalidate(ctx, []string{embeddingKey(k)})
	return err
}

// WriteDataset writes d and invalidates the cached features of its
// capabilities, whose rows the store may derive from the dataset.
func (s *Store) WriteDataset(ctx context.Context, d *featurestore.Dataset) error {
	err := s.Store.WriteDataset(ctx, d)
	if d != nil && len(d.Capabilities) > 0 {
		keys := make([]string, len(d.Capabilities))
		for i, c := range d.Capabilities {
			keys[i] = featuresKey(c.ID)
		}
		s.invalidate(ctx, keys)
	}
	return err
}
