package cache

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/internal/codec"
	"github.com/capflow/capflow/internal/testenv"
)

// fakeStore is an in-memory featurestore.Store that records the reads that
// reach it. Methods the cache does not touch are inert.
type fakeStore struct {
	mu       sync.Mutex
	features map[string]featurestore.CapabilityFeatures
	intents  map[string]featurestore.IntentFeatures
	embs     map[featurestore.EmbeddingKey][]float32
	reads    [][]string // ids of every CapabilityFeatures call
	others   int        // IntentFeatures + Embedding calls
	// beforeRead, when set, runs inside CapabilityFeatures after the rows
	// were read: it lets a test write while a read is in flight.
	beforeReturn func()
}

func newFake() *fakeStore {
	return &fakeStore{
		features: map[string]featurestore.CapabilityFeatures{},
		intents:  map[string]featurestore.IntentFeatures{},
		embs:     map[featurestore.EmbeddingKey][]float32{},
	}
}

func (f *fakeStore) WriteDataset(context.Context, *featurestore.Dataset) error { return nil }
func (f *fakeStore) Tools(context.Context) ([]featurestore.Tool, error)        { return nil, nil }
func (f *fakeStore) Capabilities(context.Context) ([]featurestore.Capability, error) {
	return nil, nil
}
func (f *fakeStore) CapabilitiesByID(context.Context, []string) ([]featurestore.Capability, error) {
	return nil, nil
}
func (f *fakeStore) Queries(context.Context) ([]featurestore.Query, error) { return nil, nil }

func (f *fakeStore) UpsertCapabilityFeatures(_ context.Context, rows []featurestore.CapabilityFeatures) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range rows {
		f.features[r.CapabilityID] = cloneFeatures(r)
	}
	return nil
}

func (f *fakeStore) CapabilityFeatures(_ context.Context, ids []string) ([]featurestore.CapabilityFeatures, error) {
	f.mu.Lock()
	f.reads = append(f.reads, slices.Clone(ids))
	out := make([]featurestore.CapabilityFeatures, len(ids))
	var err error
	for i, id := range ids {
		r, ok := f.features[id]
		if !ok {
			err = &featurestore.NotFoundError{Kind: "capability features", ID: id}
			break
		}
		out[i] = cloneFeatures(r)
	}
	hook := f.beforeReturn
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if hook != nil {
		hook()
	}
	return out, nil
}

func (f *fakeStore) NearestCapabilities(context.Context, featurestore.Space, []float32, int) ([]featurestore.Neighbor, error) {
	return nil, nil
}

func (f *fakeStore) PutIntentFeatures(_ context.Context, x featurestore.IntentFeatures) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.intents[x.IntentHash] = *cloneIntent(x)
	return nil
}

func (f *fakeStore) IntentFeatures(_ context.Context, h string) (*featurestore.IntentFeatures, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.others++
	x, ok := f.intents[h]
	if !ok {
		return nil, &featurestore.NotFoundError{Kind: "intent features", ID: h}
	}
	return cloneIntent(x), nil
}

func (f *fakeStore) PutEmbedding(_ context.Context, k featurestore.EmbeddingKey, v []float32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.embs[k] = slices.Clone(v)
	return nil
}

func (f *fakeStore) Embedding(_ context.Context, k featurestore.EmbeddingKey) ([]float32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.others++
	v, ok := f.embs[k]
	if !ok {
		return nil, &featurestore.NotFoundError{Kind: "embedding", ID: k.TextHash}
	}
	return slices.Clone(v), nil
}

func (f *fakeStore) AppendExperiences(context.Context, ...featurestore.Experience) error { return nil }
func (f *fakeStore) ExperiencesBetween(context.Context, time.Time, time.Time) ([]featurestore.Experience, error) {
	return nil, nil
}
func (f *fakeStore) ExperiencesBySession(context.Context, string) ([]featurestore.Experience, error) {
	return nil, nil
}
func (f *fakeStore) UsageCounts(context.Context, time.Time) (map[string]featurestore.Usage, error) {
	return nil, nil
}
func (f *fakeStore) Close() error { return nil }

func (f *fakeStore) readCalls() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reads)
}

func vec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = rng.Float32()*2 - 1
	}
	return v
}

func row(rng *rand.Rand, id string) featurestore.CapabilityFeatures {
	return featurestore.CapabilityFeatures{
		CapabilityID:          id,
		TextEmbedding:         vec(rng, 16),
		N2VEmbedding:          vec(rng, 4),
		HybridEmbedding:       vec(rng, 16),
		ToolCount:             rng.IntN(20),
		AvgExecutionTimeMs:    rng.Float64() * 1000,
		SuccessRate:           rng.Float64(),
		UsageCount1d:          rng.IntN(10),
		UsageCount7d:          rng.IntN(70),
		UsageCount30d:         rng.IntN(300),
		PageRank:              rng.Float64(),
		ClusteringCoefficient: rng.Float64(),
		FeatureVersion:        "v1",
		ComputedAt:            time.Date(2026, 11, 25, 12, 0, 0, rng.IntN(1e9), time.UTC),
	}
}

// seed puts rows cap-0..cap-(n-1) into the fake and returns them.
func seed(t *testing.T, f *fakeStore, n int) []featurestore.CapabilityFeatures {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	rows := make([]featurestore.CapabilityFeatures, n)
	for i := range rows {
		rows[i] = row(rng, fmt.Sprintf("cap-%d", i))
	}
	require.NoError(t, f.UpsertCapabilityFeatures(context.Background(), rows))
	return rows
}

func ids(rows []featurestore.CapabilityFeatures) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.CapabilityID
	}
	return out
}

// sharedRedis connects to the services' Redis with a key prefix of this
// test's own, deleted when the test ends.
func sharedRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	addr := testenv.RedisAddr(t)
	rdb := NewRedisClient(addr)
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		testenv.Missing(t, "Redis at %s: %v", addr, err)
	}
	prefix := fmt.Sprintf("capflow-test:%s:%d:", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		deleteKeys(t, rdb, prefix)
		rdb.Close()
	})
	return rdb, prefix
}

func deleteKeys(t *testing.T, rdb *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, escapeGlob(prefix)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Logf("cleaning up redis keys %s*: %v", prefix, err)
	}
}

func TestReadThroughFillsL1AndL2(t *testing.T) {
	rdb, prefix := sharedRedis(t)
	ctx := context.Background()
	f := newFake()
	rows := seed(t, f, 3)
	c := New(f, Options{Redis: rdb, KeyPrefix: prefix})

	got, err := c.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	assert.Equal(t, rows, got)
	assert.Equal(t, Stats{L1Misses: 3, L2Misses: 3, StoreReads: 1}, c.Stats())
	n, err := rdb.Exists(ctx, prefix+"cf:cap-0", prefix+"cf:cap-1", prefix+"cf:cap-2").Result()
	require.NoError(t, err)
	assert.EqualValues(t, 3, n, "read-through fills L2")
	ttl, err := rdb.TTL(ctx, prefix+"cf:cap-0").Result()
	require.NoError(t, err)
	assert.InDelta(t, (24 * time.Hour).Seconds(), ttl.Seconds(), 60, "L2 entries carry the 24 h TTL")

	got, err = c.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	assert.Equal(t, rows, got)
	assert.Equal(t, Stats{L1Hits: 3, L1Misses: 3, L2Misses: 3, StoreReads: 1}, c.Stats(), "second read hits L1")

	// A caller changing what it got must not change the cache.
	got[0].TextEmbedding[0] = 42
	c.PurgeL1()
	got, err = c.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	assert.Equal(t, rows, got, "L2 round-trips every field")
	assert.Equal(t, Stats{L1Hits: 3, L1Misses: 6, L2Hits: 3, L2Misses: 3, StoreReads: 1}, c.Stats(), "after purging L1, L2 hits")
	got, err = c.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	assert.Equal(t, rows, got)
	assert.EqualValues(t, 6, c.Stats().L1Hits, "L2 hits are promoted to L1")
	assert.Len(t, f.readCalls(), 1)

	// A second Store (another process) sharing the Redis reads from L2.
	c2 := New(f, Options{Redis: rdb, KeyPrefix: prefix})
	got, err = c2.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	assert.Equal(t, rows, got)
	assert.Equal(t, Stats{L1Misses: 3, L2Hits: 3}, c2.Stats())
}

func TestBatchReadMakesOneStoreCallForMisses(t *testing.T) {
	rdb, prefix := sharedRedis(t)
	ctx := context.Background()
	f := newFake()
	rows := seed(t, f, 10)
	all := ids(rows)
	c := New(f, Options{Redis: rdb, KeyPrefix: prefix})

	_, err := c.CapabilityFeatures(ctx, all[:5]) // L1 and L2 hold 0..4
	require.NoError(t, err)
	c.PurgeL1()
	_, err = c.CapabilityFeatures(ctx, all[:3]) // L1 holds 0..2 again, from L2
	require.NoError(t, err)
	before := c.Stats()

	want := append(slices.Clone(rows), rows[7], rows[1])
	got, err := c.CapabilityFeatures(ctx, append(slices.Clone(all), "cap-7", "cap-1"))
	require.NoError(t, err)
	assert.Equal(t, want, got, "rows come back in the order asked, duplicates included")

	reads := f.readCalls()
	require.Len(t, reads, 2)
	assert.Equal(t, all[5:], reads[1], "one store call, for exactly the ids neither layer had")
	after := c.Stats()
	assert.EqualValues(t, 4, after.L1Hits-before.L1Hits)     // 0,1,2 and the repeated 1
	assert.EqualValues(t, 8, after.L1Misses-before.L1Misses) // 3..9 and the repeated 7
	assert.EqualValues(t, 2, after.L2Hits-before.L2Hits)     // 3, 4
	assert.EqualValues(t, 5, after.L2Misses-before.L2Misses) // 5..9, once each
	assert.EqualValues(t, 1, after.StoreReads-before.StoreReads)

	// Everything is cached now: no further store call.
	_, err = c.CapabilityFeatures(ctx, all)
	require.NoError(t, err)
	assert.Len(t, f.readCalls(), 2)
}

func TestUnknownIDIsTheStoresErrorAndNotCached(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	rows := seed(t, f, 2)
	c := New(f, Options{})
	_, err := c.CapabilityFeatures(ctx, []string{rows[0].CapabilityID, "nope"})
	require.Error(t, err)
	assert.True(t, featurestore.IsNotFound(err), "%v", err)
	_, err = c.IntentFeatures(ctx, "nope")
	assert.True(t, featurestore.IsNotFound(err), "%v", err)
	_, err = c.Embedding(ctx, featurestore.EmbeddingKey{Model: "m", TextHash: "nope"})
	assert.True(t, featurestore.IsNotFound(err), "%v", err)

	require.NoError(t, f.UpsertCapabilityFeatures(ctx, []featurestore.CapabilityFeatures{{CapabilityID: "nope"}}))
	got, err := c.CapabilityFeatures(ctx, []string{"nope"})
	require.NoError(t, err, "a miss is not cached")
	assert.Equal(t, "nope", got[0].CapabilityID)
}

func TestWritesInvalidateBothLayers(t *testing.T) {
	rdb, prefix := sharedRedis(t)
	ctx := context.Background()
	f := newFake()
	rows := seed(t, f, 2)
	c := New(f, Options{Redis: rdb, KeyPrefix: prefix})
	other := New(f, Options{Redis: rdb, KeyPrefix: prefix}) // shares L2 only

	_, err := c.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	updated := row(rand.New(rand.NewPCG(9, 9)), rows[0].CapabilityID)
	require.NoError(t, c.UpsertCapabilityFeatures(ctx, []featurestore.CapabilityFeatures{updated}))
	n, err := rdb.Exists(ctx, prefix+"cf:cap-0").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the write dropped the L2 entry")
	got, err := c.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	assert.Equal(t, []featurestore.CapabilityFeatures{updated, rows[1]}, got)
	got, err = other.CapabilityFeatures(ctx, ids(rows)[:1])
	require.NoError(t, err)
	assert.Equal(t, updated, got[0], "another Store sharing the Redis sees the write")

	// WriteDataset invalidates its capabilities' feature rows.
	_, err = c.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	calls := len(f.readCalls())
	require.NoError(t, c.WriteDataset(ctx, &featurestore.Dataset{Capabilities: []featurestore.Capability{{ID: rows[1].CapabilityID}}}))
	_, err = c.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	reads := f.readCalls()
	require.Len(t, reads, calls+1)
	assert.Equal(t, []string{rows[1].CapabilityID}, reads[calls])

	// Intent features.
	in := featurestore.IntentFeatures{IntentHash: "h1", Embedding: []float32{1, 2}, ContextTools: []string{"t"}, CreatedAt: time.Unix(1, 0).UTC()}
	require.NoError(t, c.PutIntentFeatures(ctx, in))
	gotIn, err := c.IntentFeatures(ctx, "h1")
	require.NoError(t, err)
	assert.Equal(t, in, *gotIn)
	in.Embedding = []float32{3, 4}
	require.NoError(t, c.PutIntentFeatures(ctx, in))
	gotIn, err = c.IntentFeatures(ctx, "h1")
	require.NoError(t, err)
	assert.Equal(t, in, *gotIn)
	c.PurgeL1()
	gotIn, err = c.IntentFeatures(ctx, "h1")
	require.NoError(t, err)
	assert.Equal(t, in, *gotIn, "from L2")

	// Embeddings.
	k := featurestore.EmbeddingKey{Model: "bge-m3", ModelVersion: "1", TextHash: "abc"}
	require.NoError(t, c.PutEmbedding(ctx, k, []float32{1, 2, 3}))
	v, err := c.Embedding(ctx, k)
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 2, 3}, v)
	require.NoError(t, c.PutEmbedding(ctx, k, []float32{4, 5, 6}))
	v, err = c.Embedding(ctx, k)
	require.NoError(t, err)
	assert.Equal(t, []float32{4, 5, 6}, v)
	c.PurgeL1()
	others := f.others
	v, err = c.Embedding(ctx, k)
	require.NoError(t, err)
	assert.Equal(t, []float32{4, 5, 6}, v)
	assert.Equal(t, others, f.others, "from L2, not the store")
}

// A read that got the old row from the store while a write went through
// must not put that row in the cache after the write returned.
func TestFillRacingAWriteIsDiscarded(t *testing.T) {
	rdb, prefix := sharedRedis(t)
	ctx := context.Background()
	f := newFake()
	rows := seed(t, f, 1)
	c := New(f, Options{Redis: rdb, KeyPrefix: prefix})
	updated := row(rand.New(rand.NewPCG(5, 5)), rows[0].CapabilityID)

	f.beforeReturn = func() {
		f.beforeReturn = nil // under no lock: only this goroutine reads it now
		require.NoError(t, c.UpsertCapabilityFeatures(ctx, []featurestore.CapabilityFeatures{updated}))
	}
	got, err := c.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	assert.Equal(t, rows[0], got[0], "the racing read returns what the store gave it")

	got, err = c.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	assert.Equal(t, updated, got[0], "but did not cache it")
	c.PurgeL1()
	got, err = c.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	assert.Equal(t, updated, got[0])
}

func TestL1EntriesExpire(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	rows := seed(t, f, 1)
	c := New(f, Options{L1TTL: 50 * time.Millisecond})
	for range 2 {
		_, err := c.CapabilityFeatures(ctx, ids(rows))
		require.NoError(t, err)
	}
	assert.Len(t, f.readCalls(), 1)
	time.Sleep(120 * time.Millisecond)
	_, err := c.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	assert.Len(t, f.readCalls(), 2, "the entry expired")
	assert.Equal(t, Stats{L1Hits: 1, L1Misses: 2, StoreReads: 2}, c.Stats())
}

func TestL1IsBounded(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	rows := seed(t, f, 5)
	c := New(f, Options{L1Size: 3})
	_, err := c.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	_, err = c.CapabilityFeatures(ctx, ids(rows)[:2]) // the oldest two were evicted
	require.NoError(t, err)
	assert.Equal(t, ids(rows)[:2], f.readCalls()[1])
}

// countingHandler counts log records by message.
type countingHandler struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs[r.Message]++
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
func (h *countingHandler) count(substr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for m, c := range h.msgs {
		if strings.Contains(m, substr) {
			n += c
		}
	}
	return n
}

// privateRedis is a redis-server of this test's own, to kill and restart.
type privateRedis struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(t, "redis-server binary: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	p := &privateRedis{t: t, port: port, dir: t.TempDir()}
	p.start(bin)
	t.Cleanup(p.kill)
	return p
}

func (p *privateRedis) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

func (p *privateRedis) start(bin string) {
	p.t.Helper()
	p.cmd = exec.Command(bin, "--port", strconv.Itoa(p.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", p.dir)
	require.NoError(p.t, p.cmd.Start())
	rdb := redis.NewClient(&redis.Options{Addr: p.addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			p.kill()
			p.t.Fatalf("private redis-server on %s did not come up", p.addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *privateRedis) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

func TestRedisKilledMidTest(t *testing.T) {
	ctx := context.Background()
	srv := startPrivateRedis(t)
	rdb := NewRedisClient(srv.addr())
	defer rdb.Close()
	logs := &countingHandler{msgs: map[string]int{}}
	f := newFake()
	rows := seed(t, f, 4)
	const retry = 100 * time.Millisecond
	c := New(f, Options{Redis: rdb, KeyPrefix: "t:", L2RetryInterval: retry, Logger: slog.New(logs)})

	_, err := c.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	require.EqualValues(t, 4, c.Stats().L2Misses)

	srv.kill()
	for i := range 5 {
		c.PurgeL1()
		start := time.Now()
		got, err := c.CapabilityFeatures(ctx, ids(rows))
		require.NoError(t, err, "read %d with redis down", i)
		assert.Equal(t, rows, got)
		assert.Less(t, time.Since(start), time.Second, "a dead redis does not stall reads")
		time.Sleep(retry / 2)
	}
	st := c.Stats()
	assert.Positive(t, st.L2Errors)
	assert.Zero(t, st.L2Hits)
	assert.Equal(t, 1+5, len(f.readCalls()), "every read went to the store")
	assert.Equal(t, 1, logs.count("redis unavailable"), "the outage is logged once")

	// A write while Redis is down cannot invalidate L2; pretend Redis kept
	// the old row (persistence) and check that it is never served.
	updated := row(rand.New(rand.NewPCG(7, 7)), rows[0].CapabilityID)
	require.NoError(t, c.UpsertCapabilityFeatures(ctx, []featurestore.CapabilityFeatures{updated}))
	bin, err := exec.LookPath("redis-server")
	require.NoError(t, err)
	srv.start(bin)
	stale := codec.EncodeFeatures(&rows[0])
	require.NoError(t, rdb.Set(ctx, "t:cf:"+rows[0].CapabilityID, stale, time.Hour).Err())
	time.Sleep(2 * retry)

	c.PurgeL1()
	got, err := c.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	assert.Equal(t, updated, got[0], "the missed invalidation was applied on recovery")
	assert.Equal(t, rows[1:], got[1:])
	assert.Equal(t, 1, logs.count("redis available again"), "the recovery is logged once")

	// L2 is used again.
	c.PurgeL1()
	before := c.Stats()
	got, err = c.CapabilityFeatures(ctx, ids(rows))
	require.NoError(t, err)
	assert.Equal(t, append([]featurestore.CapabilityFeatures{updated}, rows[1:]...), got)
	after := c.Stats()
	assert.EqualValues(t, 4, after.L2Hits-before.L2Hits, "L2 serves again after recovery")
	assert.Equal(t, before.StoreReads, after.StoreReads)
	assert.Equal(t, before.L2Errors, after.L2Errors)
	assert.Equal(t, 1, logs.count("redis unavailable"))
}

func TestCollectorsExportStats(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	rows := seed(t, f, 2)
	c := New(f, Options{})
	for range 2 {
		_, err := c.CapabilityFeatures(ctx, ids(rows))
		require.NoError(t, err)
	}
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c.Collectors()[0]))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			got[name] = m.GetCounter().GetValue()
		}
	}
	assert.Equal(t, map[string]float64{
		"capflow_featurestore_cache_hits_total{l1}":    2,
		"capflow_featurestore_cache_misses_total{l1}":  2,
		"capflow_featurestore_cache_hits_total{l2}":    0,
		"capflow_featurestore_cache_misses_total{l2}":  0,
		"capflow_featurestore_cache_errors_total{l2}":  0,
		"capflow_featurestore_cache_store_reads_total": 1,
	}, got)
}
