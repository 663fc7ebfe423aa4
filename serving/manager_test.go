package serving

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/internal/testmodel"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/models/ranker"
)

const testDim = 16

// testStore is a small catalog with text embeddings, standing in for the
// feature store: tools and capabilities, and the tools' text embeddings
// message passing starts from.
type testStore struct {
	tools   []featurestore.Tool
	caps    []featurestore.Capability
	toolEmb [][]float32
	rng     *rand.Rand
}

func newTestStore(t *testing.T) *testStore {
	s := &testStore{rng: rand.New(rand.NewPCG(7, 8))}
	s.tools, s.caps = testmodel.Catalog()
	for range s.tools {
		s.toolEmb = append(s.toolEmb, testmodel.Unit(s.rng, testDim))
	}
	return s
}

// model describes a random d-wide SHGAT model of the store's catalog.
func (s *testStore) model(seed uint64, d int) testmodel.PackageOptions {
	o := testmodel.PackageOptions{Tools: s.tools, Caps: s.caps, Dim: d, Seed: seed, FeatureVersion: "fv-serving"}
	if d == testDim {
		o.ToolText = s.toolEmb
	}
	return o
}

// writeModel packages a random d-wide SHGAT model of the store's catalog
// into a fresh MLflow Model folder.
func (s *testStore) writeModel(t *testing.T, seed uint64, d int) string {
	return testmodel.Package(t, s.model(seed, d)).Dir
}

func promote(t *testing.T, ctx context.Context, c *mlflowclient.Client, name, version string, st mlflowclient.Stage) {
	_, err := mlmodel.Promote(ctx, c, name, version, st)
	require.NoError(t, err)
}

func (s *testStore) config(c *mlflowclient.Client, name, cache string, reg prometheus.Registerer, lib string) ManagerConfig {
	return ManagerConfig{Client: c, Name: name, Poll: -1, CacheDir: cache, Tools: s.tools, Caps: s.caps, Dim: testDim,
		ORTLibrary: lib, Registerer: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func (s *testStore) query() ranker.Query {
	return ranker.Query{Text: "weather for my flight and a hotel", Embedding: testmodel.Unit(s.rng, testDim), ContextTools: []string{"tool3"}}
}

// metric returns the value of the counter or gauge name with labels, or the
// sample count of a histogram; 0 when absent.
func metric(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

// TestManagerLifecycle: start on v1; a promoted v2 swaps in under load with
// no request failing or seeing another version, and v1 closes only after
// its last request; a broken v3 and a v4 of the wrong width are refused
// while v2 keeps serving; a restart without the registry serves v2 from the
// cache.
func TestManagerLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := testenv.Client(t)
	lib := testenv.ORTLibrary(t)
	st := newTestStore(t)
	name := testenv.Name(t, "capflow-shgat-serving")

	v1 := testmodel.Register(t, ctx, c, name, st.writeModel(t, 1, testDim))
	v2 := testmodel.Register(t, ctx, c, name, st.writeModel(t, 2, testDim))
	require.Equal(t, []string{"1", "2"}, []string{v1, v2})
	promote(t, ctx, c, name, v1, mlflowclient.StageProduction)

	cache := t.TempDir()
	reg := prometheus.NewRegistry()
	mgr, err := NewManager(st.config(c, name, cache, reg, lib))
	require.NoError(t, err)
	defer mgr.Close()
	require.False(t, mgr.Ready())
	_, _, _, ok := mgr.Acquire("")
	require.False(t, ok, "Acquire before Start")
	require.NoError(t, mgr.Start(ctx))
	require.True(t, mgr.Ready())
	require.Equal(t, "1", mgr.Current().Version)
	require.Equal(t, "Production", mgr.Current().Stage)
	require.Equal(t, 1.0, metric(t, reg, "capflow_serving_model_info", map[string]string{"version": "1", "role": "primary", "stage": "Production"}))

	// (1) v2 swaps in while requests hammer the manager.
	promote(t, ctx, c, name, v2, mlflowclient.StageProduction)
	old := mgr.primary.cur.Load()
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		mu      sync.Mutex
		seen    = map[string]int{}
		rankErr error
	)
	queries := make([]ranker.Query, 8)
	for i := range queries {
		queries[i] = st.query()
	}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				m, role, release, ok := mgr.Acquire(fmt.Sprintf("s%d-%d", g, i))
				if !ok || role != RolePrimary {
					mu.Lock()
					rankErr = errors.Join(rankErr, fmt.Errorf("acquire: ok=%v role=%s", ok, role))
					mu.Unlock()
					return
				}
				_, err := m.Ranker.Rank(ctx, queries[g])
				v := m.Version
				release()
				mu.Lock()
				seen[v]++
				rankErr = errors.Join(rankErr, err)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	swapped, err := mgr.Reload(ctx)
	require.NoError(t, err)
	require.True(t, swapped)
	time.Sleep(50 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	require.NoError(t, rankErr)
	t.Logf("requests served during the swap by version: %v", seen)
	require.Positive(t, seen["1"])
	require.Positive(t, seen["2"])
	require.Len(t, seen, 2)
	require.Equal(t, "2", mgr.Current().Version)
	require.True(t, old.closed.Load(), "v1 is closed once its requests are done")
	require.Zero(t, old.refs.Load())
	require.Equal(t, 0.0, metric(t, reg, "capflow_serving_model_info", map[string]string{"version": "1"}))
	require.Equal(t, 2.0, metric(t, reg, "capflow_serving_model_swaps_total", map[string]string{"role": "primary"}))
	swapped, err = mgr.Reload(ctx)
	require.NoError(t, err)
	require.False(t, swapped, "same version: nothing to do")

	// (2) A v3 whose stored example scores do not match its weights is refused.
	broken := st.model(3, testDim)
	broken.Broken = true
	v3 := testmodel.Register(t, ctx, c, name, testmodel.Package(t, broken).Dir)
	promote(t, ctx, c, name, v3, mlflowclient.StageProduction)
	swapped, err = mgr.Reload(ctx)
	require.False(t, swapped)
	var re *RefusedError
	require.ErrorAs(t, err, &re)
	require.Equal(t, ReasonVerify, re.Reason)
	require.Equal(t, v3, re.Version)
	t.Logf("v3 refused: %v", err)
	require.Equal(t, "2", mgr.Current().Version)
	require.True(t, mgr.Ready())
	require.Equal(t, 1.0, metric(t, reg, "capflow_serving_model_load_failures_total", map[string]string{"role": "primary", "reason": ReasonVerify}))
	m, _, release, ok := mgr.Acquire("")
	require.True(t, ok)
	_, err = m.Ranker.Rank(ctx, st.query())
	release()
	require.NoError(t, err)
	// Asked again, the refusal stands without a new download or count.
	_, err = mgr.Reload(ctx)
	require.ErrorAs(t, err, &re)
	require.Equal(t, 1.0, metric(t, reg, "capflow_serving_model_load_failures_total", map[string]string{"role": "primary", "reason": ReasonVerify}))

	// A v4 of another width than the store's is refused too.
	v4 := testmodel.Register(t, ctx, c, name, st.writeModel(t, 4, 8))
	promote(t, ctx, c, name, v4, mlflowclient.StageProduction)
	_, err = mgr.Reload(ctx)
	require.ErrorAs(t, err, &re)
	require.Equal(t, ReasonDim, re.Reason)
	require.Equal(t, "2", mgr.Current().Version)
	require.Equal(t, 1.0, metric(t, reg, "capflow_serving_model_load_failures_total", map[string]string{"role": "primary", "reason": ReasonDim}))

	// The cache holds the verified versions only, with their markers.
	entries, err := os.ReadDir(filepath.Join(cache, name))
	require.NoError(t, err)
	var files []string
	for _, e := range entries {
		files = append(files, e.Name())
	}
	require.ElementsMatch(t, []string{"1", "1.json", "2", "2.json"}, files)
	require.NoError(t, mgr.Close())
	_, _, _, ok = mgr.Acquire("")
	require.False(t, ok, "Acquire after Close")

	// (3) Restart with the registry unreachable: v2 from the cache.
	down, err := mlflowclient.New(mlflowclient.WithEnv(func(string) (string, bool) { return "", false }),
		mlflowclient.WithTrackingURI("http://127.0.0.1:1"), mlflowclient.WithRetryPolicy(mlflowclient.NoRetry()))
	require.NoError(t, err)
	reg2 := prometheus.NewRegistry()
	mgr2, err := NewManager(st.config(down, name, cache, reg2, lib))
	require.NoError(t, err)
	defer mgr2.Close()
	require.NoError(t, mgr2.Start(ctx))
	require.True(t, mgr2.Ready())
	require.Equal(t, "2", mgr2.Current().Version)
	require.Equal(t, 1.0, metric(t, reg2, "capflow_serving_model_cache_hits_total", nil))
	require.Equal(t, 1.0, metric(t, reg2, "capflow_serving_model_load_failures_total", map[string]string{"reason": ReasonRegistry}))
	m, _, release, ok = mgr2.Acquire("")
	require.True(t, ok)
	_, err = m.Ranker.Rank(ctx, st.query())
	release()
	require.NoError(t, err)
	_, err = mgr2.Reload(ctx)
	require.ErrorAs(t, err, &re)
	require.Equal(t, ReasonRegistry, re.Reason)
	require.Equal(t, "2", mgr2.Current().Version, "still serving after a failed poll")

	require.NoError(t, mgr2.Close())

	// Restart with the registry up but its Production (v4) refused: v2 from
	// the cache too.
	reg3 := prometheus.NewRegistry()
	mgr4, err := NewManager(st.config(c, name, cache, reg3, lib))
	require.NoError(t, err)
	defer mgr4.Close()
	require.NoError(t, mgr4.Start(ctx))
	require.Equal(t, "2", mgr4.Current().Version)
	require.Equal(t, 1.0, metric(t, reg3, "capflow_serving_model_load_failures_total", map[string]string{"reason": ReasonDim}))
	require.NoError(t, mgr4.Close())

	// Neither registry nor cache: Start fails.
	mgr3, err := NewManager(st.config(down, name, t.TempDir(), nil, lib))
	require.NoError(t, err)
	require.Error(t, mgr3.Start(ctx))
	require.False(t, mgr3.Ready())
}

// TestManagerCanaryShadow: the Staging model takes a sticky 30% of the
// sessions and is scored as a shadow with agreement metrics; once Staging is
// empty, every session goes to the primary.
func TestManagerCanaryShadow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := testenv.Client(t)
	lib := testenv.ORTLibrary(t)
	st := newTestStore(t)
	name := testenv.Name(t, "capflow-shgat-canary")
	v1 := testmodel.Register(t, ctx, c, name, st.writeModel(t, 11, testDim))
	v2 := testmodel.Register(t, ctx, c, name, st.writeModel(t, 12, testDim))
	promote(t, ctx, c, name, v1, mlflowclient.StageProduction)
	promote(t, ctx, c, name, v2, mlflowclient.StageStaging)

	reg := prometheus.NewRegistry()
	cfg := st.config(c, name, t.TempDir(), reg, lib)
	cfg.Canary = CanaryConfig{Follow: "Staging", Percent: 30}
	cfg.Shadow = ShadowConfig{Follow: "Staging", SampleRate: 1}
	mgr, err := NewManager(cfg)
	require.NoError(t, err)
	defer mgr.Close()
	require.NoError(t, mgr.Start(ctx))
	require.Equal(t, v1, mgr.Current().Version)
	require.Equal(t, v2, mgr.Candidate().Version)

	// (4) ~30% of 1,000 sessions on the canary, the same ones every time.
	route := func() (roles []Role, canary int) {
		for i := range 1000 {
			m, role, release, ok := mgr.Acquire(fmt.Sprintf("session-%d", i))
			require.True(t, ok)
			require.Equal(t, map[Role]string{RolePrimary: v1, RoleCanary: v2}[role], m.Version)
			release()
			roles = append(roles, role)
			if role == RoleCanary {
				canary++
			}
		}
		return roles, canary
	}
	roles, canary := route()
	t.Logf("canary sessions: %d of 1000 at 30%%", canary)
	require.InDelta(t, 300, canary, 50)
	again, _ := route()
	require.Equal(t, roles, again, "sticky per session")
	for range 20 {
		_, role, release, _ := mgr.Acquire("")
		release()
		require.Equal(t, RolePrimary, role, "no session: primary")
	}

	// (5) Shadow scoring records agreement and rank correlation.
	const n = 25
	agreed := 0
	for range n {
		sm, release, ok := mgr.Shadow("any")
		require.True(t, ok)
		require.Equal(t, v2, sm.Version)
		release()
		pm, _, prel, _ := mgr.Acquire("")
		q := st.query()
		primary, err := pm.Ranker.Rank(ctx, q)
		prel()
		require.NoError(t, err)
		shadow, err := mgr.ScoreShadow(ctx, q, primary)
		require.NoError(t, err)
		require.Len(t, shadow, len(primary))
		if shadow[0].ID == primary[0].ID {
			agreed++
		}
	}
	t.Logf("shadow top-1 agreement %d/%d", agreed, n)
	require.Equal(t, float64(n), metric(t, reg, "capflow_serving_shadow_comparisons_total", nil))
	require.Equal(t, float64(agreed), metric(t, reg, "capflow_serving_shadow_top1_agreements_total", nil))
	require.InDelta(t, float64(agreed)/n, metric(t, reg, "capflow_serving_shadow_top1_agreement_ratio", nil), 1e-12)
	require.Equal(t, float64(n), metric(t, reg, "capflow_serving_shadow_rank_correlation", nil))

	// Staging promoted to Production: Staging is empty, the canary and the
	// shadow unload and every session goes to the new primary.
	promote(t, ctx, c, name, v2, mlflowclient.StageProduction)
	swapped, err := mgr.Reload(ctx)
	require.NoError(t, err)
	require.True(t, swapped)
	require.Equal(t, v2, mgr.Current().Version)
	require.Nil(t, mgr.Candidate())
	for i := range 100 {
		m, role, release, ok := mgr.Acquire(fmt.Sprintf("session-%d", i))
		require.True(t, ok)
		require.Equal(t, RolePrimary, role)
		require.Equal(t, v2, m.Version)
		release()
	}
	_, _, ok := mgr.Shadow("x")
	require.False(t, ok)
	_, err = mgr.ScoreShadow(ctx, st.query(), nil)
	require.ErrorIs(t, err, ErrNoShadow)
}

func TestSpearmanAndRouting(t *testing.T) {
	order := func(ids ...string) []ranker.Scored {
		out := make([]ranker.Scored, len(ids))
		for i, id := range ids {
			out[i] = ranker.Scored{ID: id}
		}
		return out
	}
	rho, ok := spearman(order("a", "b", "c", "d"), order("a", "b", "c", "d"))
	require.True(t, ok)
	require.Equal(t, 1.0, rho)
	rho, _ = spearman(order("a", "b", "c", "d"), order("d", "c", "b", "a"))
	require.Equal(t, -1.0, rho)
	rho, _ = spearman(order("a", "b", "c"), order("b", "a", "c"))
	require.InDelta(t, 0.5, rho, 1e-12) // 1 - 6·2/(3·8)
	_, ok = spearman(order("a"), order("a"))
	require.False(t, ok)

	require.False(t, canaryRoutes("", 100))
	require.True(t, canaryRoutes("s", 100))
	require.False(t, canaryRoutes("s", 0))
	var ids []string
	for i := range 10000 {
		if canaryRoutes(fmt.Sprint("u", i), 5) {
			ids = append(ids, fmt.Sprint("u", i))
		}
	}
	require.InDelta(t, 500, len(ids), 100)
	// Raising the percent keeps the sessions already on the canary.
	for _, id := range ids {
		require.True(t, canaryRoutes(id, 20))
	}
}

func TestManagerConfig(t *testing.T) {
	c, err := mlflowclient.New(mlflowclient.WithEnv(func(string) (string, bool) { return "", false }), mlflowclient.WithTrackingURI("http://127.0.0.1:1"))
	require.NoError(t, err)
	caps := []featurestore.Capability{{ID: "a"}}
	var ce *ManagerConfigError
	for _, cfg := range []ManagerConfig{
		{Caps: caps, Dim: 4},
		{Client: c, Caps: caps},
		{Client: c, Dim: 4},
		{Client: c, Caps: caps, Dim: 4, Follow: "Archived"},
		{Client: c, Caps: caps, Dim: 4, Follow: "@"},
		{Client: c, Caps: caps, Dim: 4, Canary: CanaryConfig{Follow: "Staging", Percent: 101}},
		{Client: c, Caps: caps, Dim: 4, Shadow: ShadowConfig{Follow: "Staging", SampleRate: 2}},
	} {
		_, err := NewManager(cfg)
		require.ErrorAs(t, err, &ce)
	}
	m, err := NewManager(ManagerConfig{Client: c, Caps: caps, Dim: 4, Follow: "@champion"})
	require.NoError(t, err)
	require.Equal(t, "capflow-shgat", m.cfg.Name)
	require.Equal(t, DefaultPoll, m.cfg.Poll)
	reg := prometheus.NewRegistry()
	_, err = NewManager(ManagerConfig{Client: c, Caps: caps, Dim: 4, Registerer: reg})
	require.NoError(t, err)
	_, err = NewManager(ManagerConfig{Client: c, Caps: caps, Dim: 4, Registerer: reg})
	require.Error(t, err, "collectors registered twice")
}

// TestManagerPolls: a version promoted after Start is picked up by polling;
// Close stops the loop.
func TestManagerPolls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testenv.Client(t)
	lib := testenv.ORTLibrary(t)
	st := newTestStore(t)
	name := testenv.Name(t, "capflow-shgat-poll")
	v1 := testmodel.Register(t, ctx, c, name, st.writeModel(t, 21, testDim))
	v2 := testmodel.Register(t, ctx, c, name, st.writeModel(t, 22, testDim))
	require.NoError(t, c.Registry.SetAlias(ctx, name, "champion", v1))
	cfg := st.config(c, name, t.TempDir(), nil, lib)
	cfg.Follow, cfg.Poll = "@champion", 100*time.Millisecond
	mgr, err := NewManager(cfg)
	require.NoError(t, err)
	require.NoError(t, mgr.Start(ctx))
	require.Equal(t, v1, mgr.Current().Version)
	require.Equal(t, "@champion", mgr.Current().Stage)
	require.NoError(t, c.Registry.SetAlias(ctx, name, "champion", v2))
	require.Eventually(t, func() bool { return mgr.Current().Version == v2 }, 30*time.Second, 50*time.Millisecond)
	require.NoError(t, mgr.Close())
	require.False(t, mgr.Ready())
}
