package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/cache"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/internal/testmodel"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/serving"
)

const srvDim = 16

// srvModel packages a random SHGAT over testmodel.Catalog; broken alters
// its stored example scores so that verification refuses it.
func srvModel(t *testing.T, seed uint64, broken bool) string {
	t.Helper()
	return testmodel.Package(t, testmodel.PackageOptions{Dim: srvDim, Seed: seed, FeatureVersion: "fv-serving-it", Broken: broken}).Dir
}

// service is a Manager and a Server on a real TCP listener.
type service struct {
	base string
	mgr  *serving.Manager
	stop func() error
}

// startService runs the full service over store as `capflow serve` wires
// it: the cache layers, the hashing encoder behind the embedding cache, one
// Prometheus registry for both.
func startService(t *testing.T, ctx context.Context, c *mlflowclient.Client, store featurestore.Store, name, cacheDir string, log *slog.Logger) *service {
	t.Helper()
	tools, err := store.Tools(ctx)
	require.NoError(t, err)
	caps, err := store.Capabilities(ctx)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	mgr, err := serving.NewManager(serving.ManagerConfig{Client: c, Name: name, Poll: 200 * time.Millisecond, CacheDir: cacheDir,
		Tools: tools, Caps: caps, Dim: srvDim, ORTLibrary: testenv.ORTLibrary(t), Logger: log, Registerer: reg})
	require.NoError(t, err)
	require.NoError(t, mgr.Start(ctx))
	cached := cache.New(store, cache.Options{Logger: log})
	enc, err := textembed.NewHashing(textembed.HashingConfig{Dim: srvDim})
	require.NoError(t, err)
	srv, err := serving.NewServer(serving.ServerConfig{Models: mgr, Store: cached, Encoder: textembed.Cached(enc, cached),
		FallbackEncoder: enc, Reload: mgr.Reload, Registry: reg, Logger: log})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srvCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(srvCtx, ln) }()
	var once sync.Once
	var stopErr error
	s := &service{base: "http://" + ln.Addr().String(), mgr: mgr}
	s.stop = func() error {
		once.Do(func() {
			cancel()
			stopErr = errors.Join(<-done, mgr.Close())
		})
		return stopErr
	}
	t.Cleanup(func() { s.stop() })
	return s
}

type rankResult struct {
	start   time.Time
	status  int
	version string
	err     error
}

func (s *service) rank(ctx context.Context, session string) rankResult {
	r := rankResult{start: time.Now()}
	body := fmt.Sprintf(`{"intent": "weather for my flight and a hotel", "context_tools": ["tool3"], "session_id": %q, "top_k": 5}`, session)
	req, err := http.NewRequestWithContext(ctx, "POST", s.base+"/rank", strings.NewReader(body))
	if err != nil {
		r.err = err
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.err = err
		return r
	}
	defer resp.Body.Close()
	r.status = resp.StatusCode
	var rr serving.RankResponse
	if err := json.NewDecoder(resp.Body).Decode(&rr); err != nil {
		r.err = err
		return r
	}
	if resp.StatusCode == http.StatusOK && len(rr.Rankings) == 0 {
		r.err = errors.New("no rankings")
	}
	r.version = rr.ModelVersion
	return r
}

func (s *service) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(s.base + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// metricValue reads one sample of the /metrics text; labels is the exact
// label set as Prometheus prints it (sorted). -1 when absent.
func metricValue(text, name, labels string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+labels) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}

// TestServingHotSwapOverHTTP runs the ranking service against the real
// registry with 200 ms polling: a promoted v2 swaps in under a real HTTP
// load with no failed request and no version other than 1 and 2 (only 2
// once the swap is seen); a broken v3 is refused while v2 serves and the
// service stays ready; a second service with the registry unreachable and
// the same cache directory serves v2 from the cache.
func TestServingHotSwapOverHTTP(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := testenv.Client(t)
	testenv.ORTLibrary(t)
	logs := &testenv.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("service log:\n%s", logs.String())
		}
	})

	name := testenv.Name(t, "capflow-shgat-http")
	testmodel.Forget(t, c, name)
	v1 := testmodel.Register(t, ctx, c, name, srvModel(t, 1, false))
	v2 := testmodel.Register(t, ctx, c, name, srvModel(t, 2, false))
	v3 := testmodel.Register(t, ctx, c, name, srvModel(t, 3, true))
	require.Equal(t, []string{"1", "2", "3"}, []string{v1, v2, v3})
	_, err := mlmodel.Promote(ctx, c, name, v1, mlflowclient.StageProduction)
	require.NoError(t, err)

	store := testmodel.Store(t, filepath.Join(t.TempDir(), "store.db"), testmodel.StoreOptions{Dim: srvDim, FeatureVersion: "fv-serving-it"})
	cacheDir := t.TempDir()
	svc := startService(t, ctx, c, store, name, cacheDir, log)
	require.Equal(t, "1", svc.mgr.Current().Version)
	first := svc.rank(ctx, "warmup")
	require.NoError(t, first.err)
	require.Equal(t, http.StatusOK, first.status)
	require.Equal(t, "1", first.version)

	// (1) Promote v2 while 8 clients post /rank for about 3 s.
	var (
		stopLoad atomic.Bool
		wg       sync.WaitGroup
		mu       sync.Mutex
		results  []rankResult
	)
	loadStart := time.Now()
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stopLoad.Load(); i++ {
				r := svc.rank(ctx, fmt.Sprintf("client%d-%d", g, i))
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second)
	promoted := time.Now()
	_, err = mlmodel.Promote(ctx, c, name, v2, mlflowclient.StageProduction)
	require.NoError(t, err)
	// The swap is seen once the metrics report v2.
	var swapped time.Time
	for swapped.IsZero() {
		_, text := svc.get(t, "/metrics")
		if metricValue(text, "capflow_serving_model_info", `{name="`+name+`",role="primary",stage="Production",version="2"}`) == 1 {
			swapped = time.Now()
			break
		}
		require.Less(t, time.Since(promoted), 10*time.Second, "v2 was not swapped in within 10 s")
		time.Sleep(20 * time.Millisecond)
	}
	// About 3 s of load in all, and some of it after the swap.
	end := loadStart.Add(3 * time.Second)
	if e := swapped.Add(500 * time.Millisecond); e.After(end) {
		end = e
	}
	time.Sleep(time.Until(end))
	stopLoad.Store(true)
	wg.Wait()

	byVersion := map[string]int{}
	var after int
	for _, r := range results {
		require.NoError(t, r.err)
		require.Equal(t, http.StatusOK, r.status)
		require.Contains(t, []string{"1", "2"}, r.version)
		byVersion[r.version]++
		if r.start.After(swapped) {
			after++
			require.Equal(t, "2", r.version, "a request started after the swap was seen")
		}
	}
	t.Logf("%d requests under load: %v by version; the swap was seen %v after the promotion; %d requests after it",
		len(results), byVersion, swapped.Sub(promoted).Round(time.Millisecond), after)
	require.Positive(t, byVersion["1"])
	require.Positive(t, byVersion["2"])
	require.Positive(t, after)
	_, text := svc.get(t, "/metrics")
	require.Equal(t, 1.0, metricValue(text, "capflow_serving_model_info", `{name="`+name+`",role="primary",stage="Production",version="2"}`))
	require.NotEqual(t, 1.0, metricValue(text, "capflow_serving_model_info", `{name="`+name+`",role="primary",stage="Production",version="1"}`))

	// (2) Promote the broken v3: refused at the next poll, v2 keeps serving.
	_, err = mlmodel.Promote(ctx, c, name, v3, mlflowclient.StageProduction)
	require.NoError(t, err)
	refusals := `{reason="verify",role="primary"}`
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, text = svc.get(t, "/metrics")
		if metricValue(text, "capflow_serving_model_load_failures_total", refusals) >= 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "v3 was not refused within 10 s")
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a few more polls: still refused, not retried
	_, text = svc.get(t, "/metrics")
	require.Equal(t, 1.0, metricValue(text, "capflow_serving_model_load_failures_total", refusals), "refused once, not at every poll")
	for i := range 5 {
		r := svc.rank(ctx, fmt.Sprintf("after-v3-%d", i))
		require.NoError(t, r.err)
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, "2", r.version)
		code, body := svc.get(t, "/readyz")
		require.Equal(t, http.StatusOK, code, body)
	}
	require.NoError(t, svc.stop())

	// (3) Registry unreachable, same cache: v2 from the cache.
	down, err := mlflowclient.New(mlflowclient.WithEnv(func(string) (string, bool) { return "", false }),
		mlflowclient.WithTrackingURI("http://127.0.0.1:1"), mlflowclient.WithRetryPolicy(mlflowclient.NoRetry()))
	require.NoError(t, err)
	svc2 := startService(t, ctx, down, store, name, cacheDir, log)
	for i := range 5 {
		r := svc2.rank(ctx, fmt.Sprintf("offline-%d", i))
		require.NoError(t, r.err)
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, "2", r.version)
	}
	code, body := svc2.get(t, "/readyz")
	require.Equal(t, http.StatusOK, code, body)
	_, text = svc2.get(t, "/metrics")
	require.Equal(t, 1.0, metricValue(text, "capflow_serving_model_cache_hits_total", ""))
	require.GreaterOrEqual(t, metricValue(text, "capflow_serving_model_load_failures_total", `{reason="registry",role="primary"}`), 1.0)
	require.NoError(t, svc2.stop())
}
