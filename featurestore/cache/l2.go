package cache

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// NewRedisClient returns a go-redis client set up the way the cache needs:
// short dial/read/write timeouts that honour context deadlines, no retries
// and a short pool wait, so that a dead or hung Redis costs a request at most
// one Options.L2Timeout and then the circuit opens. A client built elsewhere
// works too, but with go-redis defaults (3 s timeouts, 3 retries) a dead
// Redis stalls the first requests for seconds.
func NewRedisClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:                  addr,
		DialTimeout:           100 * time.Millisecond,
		ReadTimeout:           100 * time.Millisecond,
		WriteTimeout:          100 * time.Millisecond,
		PoolTimeout:           100 * time.Millisecond,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
	})
}

// maxPending bounds the keys remembered for a failed invalidation. Past it
// the whole prefix is dropped on recovery instead (see l2.flush).
const maxPending = 100_000

// l2 is the Redis layer. It keeps a circuit: after a failure it stays away
// from Redis for retry, then probes again with the next request. It logs the
// first failure and the recovery once each.
//
// A write whose invalidation cannot reach Redis leaves a possibly stale entry
// there; its key goes into pending, pending keys are never read from Redis,
// and they are deleted as soon as Redis answers again. Only then are they
// read again.
type l2 struct {
	rdb     *redis.Client
	prefix  string
	ttl     time.Duration
	timeout time.Duration
	retry   time.Duration
	log     *slog.Logger
	stats   *counters

	down    atomic.Bool
	retryAt atomic.Int64 // unix ns; while down, Redis is skipped until then

	mu       sync.Mutex
	pending  map[string]uint64 // key → seq of its last failed invalidation
	seq      uint64
	dropAll  bool         // pending overflowed: drop every key under prefix on recovery
	npending atomic.Int64 // len(pending), or 1 while dropAll; read on the hot path
}

// usable reports whether to try Redis now: it is up, or it is time to probe.
func (c *l2) usable() bool {
	return !c.down.Load() || time.Now().UnixNano() >= c.retryAt.Load()
}

// failed handles an error of a Redis call made under ctx. Cancellation by
// the caller is not Redis's fault and changes nothing.
func (c *l2) failed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	c.stats.l2Errors.Add(1)
	c.retryAt.Store(time.Now().Add(c.retry).UnixNano())
	if c.down.CompareAndSwap(false, true) {
		c.log.Warn("featurestore cache: redis unavailable, reading through to the store", "err", err)
	}
}

// succeeded marks Redis up, logging a recovery once, and then clears what
// failed invalidations left behind.
func (c *l2) succeeded(ctx context.Context) {
	c.up()
	if c.npending.Load() > 0 {
		c.flush(ctx)
	}
}

func (c *l2) up() {
	if c.down.CompareAndSwap(true, false) {
		c.log.Info("featurestore cache: redis available again")
	}
}

func (c *l2) key(k string) string { return c.prefix + k }

// get returns the values of keys (nil = miss). ok is false when Redis was
// skipped or failed; then every key is a miss.
func (c *l2) get(ctx context.Context, keys []string) (vals [][]byte, ok bool) {
	vals = make([][]byte, len(keys))
	if !c.usable() {
		return vals, false
	}
	ask := make([]string, 0, len(keys))
	at := make([]int, 0, len(keys))
	for i, k := range keys {
		if c.isPending(k) {
			continue
		}
		ask = append(ask, c.key(k))
		at = append(at, i)
	}
	if len(ask) == 0 {
		// Only pending keys were asked for: settle them, so that they
		// become readable once Redis answers.
		c.flush(ctx)
		return vals, !c.down.Load()
	}
	tctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.rdb.MGet(tctx, ask...).Result()
	if err != nil {
		c.failed(ctx, err)
		return vals, false
	}
	c.succeeded(ctx)
	for j, v := range res {
		if s, isStr := v.(string); isStr {
			vals[at[j]] = []byte(s)
		}
	}
	return vals, true
}

// set stores values in one pipeline. A failure only costs the cache fill.
func (c *l2) set(ctx context.Context, keys []string, vals [][]byte) {
	if len(keys) == 0 || !c.usable() {
		return
	}
	tctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	_, err := c.rdb.Pipelined(tctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			p.Set(tctx, c.key(k), vals[i], c.ttl)
		}
		return nil
	})
	if err != nil {
		c.failed(ctx, err)
		return
	}
	c.succeeded(ctx)
}

// del invalidates keys. When Redis cannot be reached the keys are remembered
// in pending and deleted on recovery.
func (c *l2) del(ctx context.Context, keys []string) {
	if len(keys) == 0 {
		return
	}
	if c.usable() {
		err := c.unlink(ctx, keys)
		if err == nil {
			c.succeeded(ctx)
			return
		}
		c.failed(ctx, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropAll {
		return
	}
	if c.pending == nil {
		c.pending = make(map[string]uint64)
	}
	c.seq++
	for _, k := range keys {
		c.pending[k] = c.seq
	}
	if len(c.pending) > maxPending {
		c.pending, c.dropAll = nil, true
		c.npending.Store(1)
		return
	}
	c.npending.Store(int64(len(c.pending)))
}

func (c *l2) unlink(ctx context.Context, keys []string) error {
	tctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	const chunk = 1000
	_, err := c.rdb.Pipelined(tctx, func(p redis.Pipeliner) error {
		for i := 0; i < len(keys); i += chunk {
			ks := make([]string, 0, min(chunk, len(keys)-i))
			for _, k := range keys[i:min(i+chunk, len(keys))] {
				ks = append(ks, c.key(k))
			}
			p.Unlink(tctx, ks...)
		}
		return nil
	})
	return err
}

func (c *l2) isPending(k string) bool {
	if c.npending.Load() == 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropAll {
		return true
	}
	_, ok := c.pending[k]
	return ok
}

// flush deletes the keys whose invalidation failed. After an overflow it
// drops every key under the prefix (SCAN + UNLINK), which may take longer
// than one request's timeout; that only happens after more than maxPending
// writes while Redis was away.
func (c *l2) flush(ctx context.Context) {
	c.mu.Lock()
	dropAll := c.dropAll
	snap := make(map[string]uint64, len(c.pending))
	for k, s := range c.pending {
		snap[k] = s
	}
	c.mu.Unlock()

	if dropAll {
		if err := c.dropPrefix(ctx); err != nil {
			c.failed(ctx, err)
			return
		}
		c.up()
		c.mu.Lock()
		c.dropAll = false
		c.npending.Store(int64(len(c.pending)))
		c.mu.Unlock()
		c.log.Info("featurestore cache: dropped redis entries under prefix after missed invalidations", "prefix", c.prefix)
		return
	}
	if len(snap) == 0 {
		return
	}
	keys := make([]string, 0, len(snap))
	for k := range snap {
		keys = append(keys, k)
	}
	if err := c.unlink(ctx, keys); err != nil {
		c.failed(ctx, err)
		return
	}
	c.up()
	c.mu.Lock()
	for k, s := range snap {
		if c.pending[k] == s { // not invalidated again meanwhile
			delete(c.pending, k)
		}
	}
	c.npending.Store(int64(len(c.pending)))
	c.mu.Unlock()
}

func (c *l2) dropPrefix(ctx context.Context) error {
	tctx, cancel := context.WithTimeout(ctx, 50*c.timeout)
	defer cancel()
	var cursor uint64
	for {
		keys, next, err := c.rdb.Scan(tctx, cursor, escapeGlob(c.prefix)+"*", 1000).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := c.rdb.Unlink(tctx, keys...).Err(); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// escapeGlob quotes Redis glob metacharacters in a literal prefix.
func escapeGlob(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}
