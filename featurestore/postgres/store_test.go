package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/internal/testenv"
)

// Small dimensions keep the tests fast; the schema follows the config.
var testCfg = featurestore.Config{TextDim: 8, GraphDim: 4, HybridDim: 6}

// testSchema returns a schema name unique to this test, dropped at cleanup.
func testSchema(t *testing.T, dsn string) string {
	t.Helper()
	name := strings.ToLower(testenv.Name(t, "fs"))
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name)
	if len(name) > 63 { // keep the unique tail
		name = "fs_" + name[len(name)-60:]
	}
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// newStore opens a store in a fresh schema.
func newStore(t *testing.T) *Store {
	t.Helper()
	dsn := testenv.PostgresDSN(t)
	s, err := Open(context.Background(), dsn, testCfg, WithSchema(testSchema(t, dsn)), WithLogger(warnLogger()))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// warnLogger keeps the migration chatter out of test output but shows
// reconnect warnings.
func warnLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func count(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	require.NoError(t, s.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+s.qualified(table)).Scan(&n))
	return n
}

func ptr[T any](v T) *T { return &v }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testDataset() *featurestore.Dataset {
	return &featurestore.Dataset{
		Tools: []featurestore.Tool{
			{ID: "fs.read", Name: "read", Description: "read a file", InputSchema: []byte(`{"type": "object"}`)},
			{ID: "fs.write", Name: "write"},
			{ID: "http.get", Name: "get", Description: "GET a URL"},
		},
		Capabilities: []featurestore.Capability{
			{ID: "files", Name: "Files", Members: []string{"fs.write", "fs.read"}, SuccessRate: ptr(0.9)},
			{ID: "web", Name: "Web", Members: []string{"http.get"}, AvgExecutionTimeMs: ptr(120.5)},
			{ID: "all", Name: "All", Description: "everything", Members: []string{"web", "files"}},
		},
		Experiences: []featurestore.Experience{
			{Intent: "save notes", ContextTools: []string{"fs.read"}, CandidateIDs: []string{"files", "web"}, SelectedCapability: "files",
				Rank: 1, Outcome: featurestore.OutcomeSuccess, ExecutionTimeMs: 12, UserFeedback: ptr(5), Timestamp: t0, SessionID: "s1",
				IntentEmbedding: []float32{1, 2, 3, 4, 5, 6, 7, 8}},
			{Intent: "fetch page", CandidateIDs: []string{"files", "web"}, SelectedCapability: "web", Rank: 2,
				Outcome: featurestore.OutcomeFailure, ExecutionTimeMs: 300, Timestamp: t0.Add(time.Minute), SessionID: "s1"},
			{Intent: "fetch page", CandidateIDs: []string{"web"}, SelectedCapability: "web", Rank: 1,
				Outcome: featurestore.OutcomePartial, ExecutionTimeMs: 30, Timestamp: t0.Add(-time.Hour).In(time.FixedZone("X", 3600)), SessionID: "s2"},
		},
		Queries: []featurestore.Query{
			{ID: "q1", Intent: "write a file", Relevant: []string{"files"}},
			{ID: "q2", Intent: "browse", ContextTools: []string{"http.get"}, Relevant: []string{"web", "all"}, Timestamp: ptr(t0)},
		},
	}
}

func TestMigrateFreshAndRerun(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	st, err := s.Status(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, st)
	for _, m := range st {
		assert.True(t, m.Applied, "migration %04d_%s", m.Version, m.Name)
		assert.False(t, m.AppliedAt.IsZero())
	}
	require.NoError(t, s.Migrate(ctx), "second run")
	st2, err := s.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, st, st2, "re-running changes nothing")
	assert.Equal(t, len(st), count(t, s, "schema_migrations"))

	// Reopening the migrated schema works, with or without migrating.
	for _, opts := range [][]Option{{WithSchema(s.schema)}, {WithSchema(s.schema), SkipMigrations()}} {
		s2, err := Open(ctx, testenv.PostgresDSN(t), testCfg, opts...)
		require.NoError(t, err)
		s2.Close()
	}
}

func TestStatusBeforeMigrate(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresDSN(t)
	schema := testSchema(t, dsn)
	_, err := Open(ctx, dsn, testCfg, WithSchema(schema), SkipMigrations())
	require.ErrorIs(t, err, errNoMeta, "an unmigrated schema cannot be opened without migrating")

	s := &Store{connCfg: mustConnConfig(t, dsn, schema), cfg: testCfg.WithDefaults(), schema: schema}
	st, err := s.Status(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, st)
	for _, m := range st {
		assert.False(t, m.Applied)
	}
}

func mustConnConfig(t *testing.T, dsn, schema string) *pgx.ConnConfig {
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize() + ", public"
	return cfg
}

func TestMigrateConcurrent(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresDSN(t)
	schema := testSchema(t, dsn)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*Store, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(ctx, dsn, testCfg, WithSchema(schema), WithLogger(warnLogger()))
		}()
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "migrator %d", i)
		defer stores[i].Close()
	}
	ms, err := loadMigrations()
	require.NoError(t, err)
	assert.Equal(t, len(ms), count(t, stores[0], "schema_migrations"))
	assert.Equal(t, 1, count(t, stores[0], "store_meta"))
	// Every store works.
	require.NoError(t, stores[n-1].WriteDataset(ctx, testDataset()))
}

func TestDimsMismatchRefused(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	other := testCfg
	other.TextDim = 16
	for _, opts := range [][]Option{{WithSchema(s.schema)}, {WithSchema(s.schema), SkipMigrations()}} {
		_, err := Open(ctx, testenv.PostgresDSN(t), other, opts...)
		var dm *DimsMismatchError
		require.ErrorAs(t, err, &dm)
		assert.Equal(t, 8, dm.StoredText)
		assert.Equal(t, 16, dm.WantText)
	}
}

func TestWriteDatasetIdempotent(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	require.NoError(t, s.WriteDataset(ctx, testDataset()))
	counts := map[string]int{}
	tables := []string{"tools", "capabilities", "capability_members", "experiences", "queries"}
	for _, tb := range tables {
		counts[tb] = count(t, s, tb)
	}
	assert.Equal(t, map[string]int{"tools": 3, "capabilities": 3, "capability_members": 5, "experiences": 3, "queries": 2}, counts)

	require.NoError(t, s.WriteDataset(ctx, testDataset()), "re-import")
	for _, tb := range tables {
		assert.Equal(t, counts[tb], count(t, s, tb), "%s after re-import", tb)
	}

	tools, err := s.Tools(ctx)
	require.NoError(t, err)
	require.Len(t, tools, 3)
	assert.Equal(t, "fs.read", tools[0].ID)
	assert.JSONEq(t, `{"type":"object"}`, string(tools[0].InputSchema))
	assert.Nil(t, tools[1].InputSchema)

	caps, err := s.Capabilities(ctx)
	require.NoError(t, err)
	require.Len(t, caps, 3)
	assert.Equal(t, featurestore.Capability{ID: "all", Name: "All", Description: "everything", Members: []string{"web", "files"}, Level: 1}, caps[0])
	assert.Equal(t, []string{"fs.write", "fs.read"}, caps[1].Members, "member order kept")
	assert.Equal(t, 0.9, *caps[1].SuccessRate)

	got, err := s.CapabilitiesByID(ctx, []string{"web", "all", "web"})
	require.NoError(t, err)
	assert.Equal(t, []string{"web", "all", "web"}, []string{got[0].ID, got[1].ID, got[2].ID})
	assert.Equal(t, 120.5, *got[0].AvgExecutionTimeMs)
	_, err = s.CapabilitiesByID(ctx, []string{"web", "nope", "nope2"})
	var nf *featurestore.NotFoundError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, "nope", nf.ID)

	qs, err := s.Queries(ctx)
	require.NoError(t, err)
	require.Len(t, qs, 2)
	assert.Equal(t, featurestore.Query{ID: "q1", Intent: "write a file", Relevant: []string{"files"}}, qs[0])
	assert.Equal(t, t0, *qs[1].Timestamp)

	exps, err := s.ExperiencesBetween(ctx, t0.Add(-24*time.Hour), t0.Add(24*time.Hour))
	require.NoError(t, err)
	require.Len(t, exps, 3)
	assert.Equal(t, "s2", exps[0].SessionID, "ordered by time")
	assert.Equal(t, t0.Add(-time.Hour), exps[0].Timestamp)
	assert.Equal(t, time.UTC, exps[0].Timestamp.Location())
	assert.Equal(t, []float32{1, 2, 3, 4, 5, 6, 7, 8}, exps[1].IntentEmbedding)
	assert.Equal(t, 5, *exps[1].UserFeedback)

	// A membership change replaces the member rows.
	d := testDataset()
	d.Capabilities[0].Members = []string{"fs.read"}
	require.NoError(t, s.WriteDataset(ctx, d))
	got, err = s.CapabilitiesByID(ctx, []string{"files"})
	require.NoError(t, err)
	assert.Equal(t, []string{"fs.read"}, got[0].Members)
	assert.Equal(t, counts["capability_members"]-1, count(t, s, "capability_members"))
}

func TestWriteDatasetInvalidWritesNothing(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	d := testDataset()
	d.Capabilities[0].Members = append(d.Capabilities[0].Members, "ghost")
	d.Experiences[0].Outcome = "meh"
	err := s.WriteDataset(ctx, d)
	var verrs featurestore.ValidationErrors
	require.ErrorAs(t, err, &verrs)
	assert.Len(t, verrs, 2)
	for _, tb := range []string{"tools", "capabilities", "capability_members", "experiences", "queries"} {
		assert.Zero(t, count(t, s, tb), tb)
	}
}

func features(id string, seed float32) featurestore.CapabilityFeatures {
	return featurestore.CapabilityFeatures{
		CapabilityID:    id,
		TextEmbedding:   []float32{seed, 1, 2, 3, 4, 5, 6, 7},
		N2VEmbedding:    []float32{seed, 0, 0, 1},
		HybridEmbedding: []float32{seed, 1, seed * seed, 0, 1, 2},
		ToolCount:       2, AvgExecutionTimeMs: 10, SuccessRate: 0.5,
		UsageCount1d: 1, UsageCount7d: 2, UsageCount30d: 3, PageRank: 0.25, ClusteringCoefficient: 0.1,
		FeatureVersion: "v1", ComputedAt: t0,
	}
}

func TestCapabilityFeatures(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	require.NoError(t, s.WriteDataset(ctx, testDataset()))

	rows := []featurestore.CapabilityFeatures{features("files", 1), features("web", 2), {CapabilityID: "all", FeatureVersion: "v1", ComputedAt: t0}}
	require.NoError(t, s.UpsertCapabilityFeatures(ctx, rows))
	got, err := s.CapabilityFeatures(ctx, []string{"all", "files", "web"})
	require.NoError(t, err)
	assert.Equal(t, []featurestore.CapabilityFeatures{rows[2], rows[0], rows[1]}, got)

	// Upsert replaces.
	rows[0].FeatureVersion = "v2"
	rows[0].TextEmbedding[0] = 42
	require.NoError(t, s.UpsertCapabilityFeatures(ctx, rows[:1]))
	got, err = s.CapabilityFeatures(ctx, []string{"files"})
	require.NoError(t, err)
	assert.Equal(t, rows[0], got[0])
	assert.Equal(t, 3, count(t, s, "capability_features"))

	_, err = s.CapabilityFeatures(ctx, []string{"files", "ghost"})
	var nf *featurestore.NotFoundError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, "ghost", nf.ID)
}

func TestCapabilityFeaturesBadInputWritesNothing(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	require.NoError(t, s.WriteDataset(ctx, testDataset()))

	wrongDim := features("web", 1)
	wrongDim.HybridEmbedding = []float32{1, 2}
	nan := features("web", 1)
	nan.N2VEmbedding[2] = float32(math.NaN())
	cases := map[string]struct {
		row   featurestore.CapabilityFeatures
		field string
	}{
		"wrong dim":          {wrongDim, "hybrid_embedding"},
		"NaN":                {nan, "n2v_embedding"},
		"unknown capability": {features("ghost", 1), "capability_id"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := s.UpsertCapabilityFeatures(ctx, []featurestore.CapabilityFeatures{features("files", 1), c.row})
			var re *featurestore.RecordError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, c.row.CapabilityID, re.ID)
			assert.Equal(t, c.field, re.Field)
			assert.Zero(t, count(t, s, "capability_features"), "nothing written")
		})
	}
}

func TestNearestCapabilities(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	rng := rand.New(rand.NewPCG(1, 2))
	d := &featurestore.Dataset{Tools: []featurestore.Tool{{ID: "t", Name: "t"}}}
	var rows []featurestore.CapabilityFeatures
	for i := range 200 {
		id := fmt.Sprintf("cap%03d", i)
		d.Capabilities = append(d.Capabilities, featurestore.Capability{ID: id, Name: id, Members: []string{"t"}})
		h := make([]float32, testCfg.HybridDim)
		for j := range h {
			h[j] = float32(rng.NormFloat64())
		}
		rows = append(rows, featurestore.CapabilityFeatures{CapabilityID: id, HybridEmbedding: h, ComputedAt: t0})
	}
	d.Capabilities = append(d.Capabilities, featurestore.Capability{ID: "nohybrid", Name: "x", Members: []string{"t"}})
	rows = append(rows, featurestore.CapabilityFeatures{CapabilityID: "nohybrid", ComputedAt: t0})
	require.NoError(t, s.WriteDataset(ctx, d))
	require.NoError(t, s.UpsertCapabilityFeatures(ctx, rows))

	q := rows[17].HybridEmbedding
	const k = 10
	got, err := s.NearestCapabilities(ctx, featurestore.SpaceHybrid, q, k)
	require.NoError(t, err)
	require.Len(t, got, k)
	assert.Equal(t, "cap017", got[0].CapabilityID)
	assert.InDelta(t, 0, got[0].Distance, 1e-6)

	// Brute force agrees (recall 1 at this size).
	type nd struct {
		id string
		d  float64
	}
	var all []nd
	for _, r := range rows[:200] {
		all = append(all, nd{r.CapabilityID, cosineDistance(q, r.HybridEmbedding)})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].d < all[j].d })
	for i := range k {
		assert.Equal(t, all[i].id, got[i].CapabilityID, "rank %d", i)
		assert.InDelta(t, all[i].d, got[i].Distance, 1e-5)
	}

	_, err = s.NearestCapabilities(ctx, featurestore.SpaceHybrid, []float32{1, 2}, k)
	var re *featurestore.RecordError
	require.ErrorAs(t, err, &re)
}

func cosineDistance(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return 1 - dot/math.Sqrt(na*nb)
}

func TestIntentFeaturesAndEmbeddingCache(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)

	_, err := s.IntentFeatures(ctx, "h1")
	assert.True(t, featurestore.IsNotFound(err))
	f := featurestore.IntentFeatures{IntentHash: "h1", Embedding: []float32{1, 2, 3, 4, 5, 6, 7, 8}, ContextTools: []string{"a"}, CreatedAt: t0}
	require.NoError(t, s.PutIntentFeatures(ctx, f))
	got, err := s.IntentFeatures(ctx, "h1")
	require.NoError(t, err)
	assert.Equal(t, f, *got)
	f.Embedding = []float32{1}
	var re *featurestore.RecordError
	require.ErrorAs(t, s.PutIntentFeatures(ctx, f), &re)

	key := featurestore.EmbeddingKey{Model: "bge-m3", ModelVersion: "1", TextHash: "abc"}
	_, err = s.Embedding(ctx, key)
	assert.True(t, featurestore.IsNotFound(err))
	require.NoError(t, s.PutEmbedding(ctx, key, []float32{0.5, 0.25, 3}))
	require.NoError(t, s.PutEmbedding(ctx, key, []float32{0.5, 0.25}), "replace")
	v, err := s.Embedding(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, []float32{0.5, 0.25}, v)
	require.ErrorAs(t, s.PutEmbedding(ctx, key, []float32{float32(math.Inf(1))}), &re)
	assert.Equal(t, 1, count(t, s, "embedding_cache"))
}

func TestExperiences(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	require.NoError(t, s.WriteDataset(ctx, &featurestore.Dataset{Tools: testDataset().Tools, Capabilities: testDataset().Capabilities}))
	now := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	exp := func(cap string, age time.Duration, session string) featurestore.Experience {
		return featurestore.Experience{Intent: "do " + cap, CandidateIDs: []string{cap}, SelectedCapability: cap, Rank: 1,
			Outcome: featurestore.OutcomeSuccess, Timestamp: now.Add(-age), SessionID: session}
	}
	require.NoError(t, s.AppendExperiences(ctx, exp("files", time.Hour, "a")), "single")
	batch := []featurestore.Experience{
		exp("files", 2*24*time.Hour, "a"), exp("files", 10*24*time.Hour, "b"), exp("web", 40*24*time.Hour, "b"),
		exp("web", 12*time.Hour, "a"), exp("web", -time.Hour, "b"), // in the future of now: not counted
		exp("web", 0, "b"),              // at now: not counted (windows are [now-N·24h, now))
		exp("files", 24*time.Hour, "b"), // at now-24h: in the 1d window
	}
	require.NoError(t, s.AppendExperiences(ctx, batch...), "batch")
	require.NoError(t, s.AppendExperiences(ctx, batch...), "again: deduplicated")
	assert.Equal(t, 8, count(t, s, "experiences"))

	bySession, err := s.ExperiencesBySession(ctx, "a")
	require.NoError(t, err)
	require.Len(t, bySession, 3)
	for i := 1; i < len(bySession); i++ {
		assert.True(t, bySession[i-1].Timestamp.Before(bySession[i].Timestamp), "ordered by time")
	}

	between, err := s.ExperiencesBetween(ctx, now.Add(-3*24*time.Hour), now.Add(-time.Hour))
	require.NoError(t, err)
	assert.Len(t, between, 3, "from inclusive, to exclusive")
	between, err = s.ExperiencesBetween(ctx, now.Add(-2*24*time.Hour), now.Add(-12*time.Hour))
	require.NoError(t, err)
	assert.Len(t, between, 2, "from inclusive, to exclusive")

	usage, err := s.UsageCounts(ctx, now)
	require.NoError(t, err)
	assert.Equal(t, map[string]featurestore.Usage{
		"files": {Count1d: 2, Count7d: 3, Count30d: 4},
		"web":   {Count1d: 1, Count7d: 1, Count30d: 1},
	}, usage)

	// Bad input: typed error naming the record, nothing written.
	unknown := exp("ghost", 0, "c")
	badDim := exp("web", 0, "c")
	badDim.IntentEmbedding = []float32{1, 2}
	badOutcome := exp("web", 0, "c")
	badOutcome.Outcome = "maybe"
	unknownTool := exp("web", 0, "c")
	unknownTool.ContextTools = []string{"nope"}
	for _, c := range []struct {
		e     featurestore.Experience
		field string
	}{{unknown, "candidate_ids"}, {badDim, "intent_embedding"}, {badOutcome, "outcome"}, {unknownTool, "context_tools"}} {
		err := s.AppendExperiences(ctx, exp("web", 3*time.Minute, "c"), c.e)
		var re *featurestore.RecordError
		require.ErrorAs(t, err, &re, c.field)
		assert.Equal(t, "#1", re.ID)
		assert.Equal(t, c.field, re.Field)
		assert.Equal(t, 8, count(t, s, "experiences"))
	}
}

// TestReconnectAfterBackendsTerminated: every pooled connection is killed
// server-side (as by a Postgres restart); the next call still succeeds.
func TestReconnectAfterBackendsTerminated(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	require.NoError(t, s.WriteDataset(ctx, testDataset()))
	// Fill the pool with several connections.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Tools(ctx)
			assert.NoError(t, err)
		}()
	}
	wg.Wait()

	killer, err := pgx.Connect(ctx, testenv.PostgresDSN(t))
	require.NoError(t, err)
	defer killer.Close(ctx)
	var killed int
	require.NoError(t, killer.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid = ANY($1)`, poolPIDs(t, s)).Scan(&killed))
	require.Positive(t, killed)

	caps, err := s.CapabilitiesByID(ctx, []string{"files"})
	require.NoError(t, err, "the call after the kill succeeds")
	assert.Equal(t, "files", caps[0].ID)
	require.NoError(t, s.AppendExperiences(ctx, testDataset().Experiences[1]))
}

// poolPIDs returns the backend pids of the pool's idle connections, so the
// test only kills its own store's connections.
func poolPIDs(t *testing.T, s *Store) []uint32 {
	var pids []uint32
	for _, c := range s.pool.AcquireAllIdle(context.Background()) {
		pids = append(pids, c.Conn().PgConn().PID())
		c.Release()
	}
	require.NotEmpty(t, pids)
	return pids
}

func TestConnLost(t *testing.T) {
	assert.False(t, connLost(errors.New("boom")))
	assert.False(t, connLost(&featurestore.RecordError{}))
}

// A bulk upsert (≥ bulkRows, at least the table's size) rebuilds the ANN
// indexes instead of maintaining them row by row; afterwards both exist, the
// planner uses them, and they find the right neighbours; a smaller
// follow-up upsert keeps them.
func TestBulkUpsertRebuildsANNIndex(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	rng := rand.New(rand.NewPCG(3, 4))
	randVec := func(dim int) []float32 {
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32(rng.NormFloat64())
		}
		return v
	}
	d := &featurestore.Dataset{Tools: []featurestore.Tool{{ID: "t", Name: "t"}}}
	rows := make([]featurestore.CapabilityFeatures, bulkRows)
	for i := range rows {
		id := fmt.Sprintf("cap%05d", i)
		d.Capabilities = append(d.Capabilities, featurestore.Capability{ID: id, Name: id, Members: []string{"t"}})
		rows[i] = featurestore.CapabilityFeatures{CapabilityID: id, TextEmbedding: randVec(testCfg.TextDim),
			HybridEmbedding: randVec(testCfg.HybridDim), ComputedAt: t0}
	}
	require.NoError(t, s.WriteDataset(ctx, d))
	require.NoError(t, s.UpsertCapabilityFeatures(ctx, rows))
	require.NoError(t, s.UpsertCapabilityFeatures(ctx, rows[:10]))
	assert.Equal(t, bulkRows, count(t, s, "capability_features"))

	for _, c := range []struct {
		space featurestore.Space
		index string
		query []float32
	}{
		{featurestore.SpaceHybrid, "capability_features_hybrid_hnsw", rows[4242].HybridEmbedding},
		{featurestore.SpaceText, "capability_features_text_hnsw", rows[4242].TextEmbedding},
	} {
		var indexes int
		require.NoError(t, s.Pool().QueryRow(ctx, "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = $2",
			s.Schema(), c.index).Scan(&indexes))
		assert.Equal(t, 1, indexes, "the %s index is back after the bulk load", c.space)
		assert.Contains(t, explainNearest(t, s, c.space, c.query), c.index, "the %s search uses its index", c.space)

		got, err := s.NearestCapabilities(ctx, c.space, c.query, 5)
		require.NoError(t, err)
		require.NotEmpty(t, got)
		assert.Equal(t, "cap04242", got[0].CapabilityID, c.space)
	}
}

// explainNearest is the plan of NearestCapabilities' query in space.
func explainNearest(t *testing.T, s *Store, space featurestore.Space, q []float32) string {
	t.Helper()
	col := spaceColumn(space)
	rows, err := s.Pool().Query(context.Background(), "EXPLAIN SELECT capability_id FROM capability_features WHERE "+col+
		" IS NOT NULL ORDER BY "+col+" <=> $1 LIMIT 5", pgvector.NewVector(q))
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return strings.Join(lines, "\n")
}

// A text dimension too wide for an HNSW index gets none (the migration and
// the bulk rebuild agree), and the text search is an exact scan.
func TestWideTextHasNoIndex(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresDSN(t)
	cfg := featurestore.Config{TextDim: hnswMaxDim + 1, GraphDim: 4, HybridDim: 6}
	s, err := Open(ctx, dsn, cfg, WithSchema(testSchema(t, dsn)), WithLogger(warnLogger()))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	rows, err := s.Pool().Query(ctx, "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND indexname LIKE '%hnsw'", s.Schema())
	require.NoError(t, err)
	indexes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Equal(t, []string{"capability_features_hybrid_hnsw"}, indexes)
	assert.Len(t, s.annIndexes(), 1)

	d := &featurestore.Dataset{Tools: []featurestore.Tool{{ID: "t", Name: "t"}}}
	var feats []featurestore.CapabilityFeatures
	for i := range 3 {
		id := fmt.Sprintf("cap%d", i)
		d.Capabilities = append(d.Capabilities, featurestore.Capability{ID: id, Name: id, Members: []string{"t"}})
		v := make([]float32, cfg.TextDim)
		v[i] = 1
		feats = append(feats, featurestore.CapabilityFeatures{CapabilityID: id, TextEmbedding: v, ComputedAt: t0})
	}
	require.NoError(t, s.WriteDataset(ctx, d))
	require.NoError(t, s.UpsertCapabilityFeatures(ctx, feats))
	q := make([]float32, cfg.TextDim)
	q[1], q[2] = 1, 0.5
	got, err := s.NearestCapabilities(ctx, featurestore.SpaceText, q, 2)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, []string{"cap1", "cap2"}, []string{got[0].CapabilityID, got[1].CapabilityID})
}

// A store created before the text index (migration 1 only, features
// stored) gets it when reopened, and its text search finds the rows.
func TestMigrationAddsTextIndex(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresDSN(t)
	schema := testSchema(t, dsn)
	s, err := Open(ctx, dsn, testCfg, WithSchema(schema), WithLogger(warnLogger()))
	require.NoError(t, err)
	d := &featurestore.Dataset{Tools: []featurestore.Tool{{ID: "t", Name: "t"}},
		Capabilities: []featurestore.Capability{{ID: "a", Name: "a", Members: []string{"t"}}, {ID: "b", Name: "b", Members: []string{"t"}}}}
	require.NoError(t, s.WriteDataset(ctx, d))
	text := func(i int) []float32 { v := make([]float32, testCfg.TextDim); v[i] = 1; return v }
	require.NoError(t, s.UpsertCapabilityFeatures(ctx, []featurestore.CapabilityFeatures{
		{CapabilityID: "a", TextEmbedding: text(0), ComputedAt: t0}, {CapabilityID: "b", TextEmbedding: text(1), ComputedAt: t0}}))
	_, err = s.Pool().Exec(ctx, "DROP INDEX capability_features_text_hnsw; DELETE FROM schema_migrations WHERE version = 2")
	require.NoError(t, err)
	s.Close()

	s, err = Open(ctx, dsn, testCfg, WithSchema(schema), WithLogger(warnLogger()))
	require.NoError(t, err)
	defer s.Close()
	var indexes int
	require.NoError(t, s.Pool().QueryRow(ctx, "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'capability_features_text_hnsw'",
		schema).Scan(&indexes))
	assert.Equal(t, 1, indexes)
	got, err := s.NearestCapabilities(ctx, featurestore.SpaceText, text(1), 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "b", got[0].CapabilityID)
}
