// Command bench-serve load-tests capflow's /rank with wrk and, for
// comparison, the same ONNX model behind `mlflow models serve`. It prints
// on stdout, for each candidate count N (default 100 and 1,000):
//
//	bench-serve n=<N> rps=<n> p50_ms=<n> p99_ms=<n>
//	bench-serve-mlflow n=<N> rps=<n> p50_ms=<n> p99_ms=<n>
//
// Everything else (progress, load averages, wrk's other figures, the
// targets) goes to stderr.
//
// The fixture: a synthetic catalog (2,000 tools, 1,000 capabilities of 2–4
// tools, 20 level-1 capabilities over them; short pseudo-word names and
// descriptions, random unit text embeddings), a random SHGAT model at
// D = 1024 run over it (message passing gives the keys), packaged with
// shgat.WriteMLflowModel (catalog.ToolText set, so /rank computes the
// evidence features), and an embedded store holding the catalog.
//
// capflow: serving.Server in this process on 127.0.0.1, over a fixed
// Models that always serves that one model (the Manager follows a registry;
// loading is not what is measured), Gin in release mode, the request log
// formatted and discarded. Each request carries a precomputed intent
// embedding, the intent text (BM25 evidence), one context tool and N
// explicit candidate_ids; top_k 10.
//
// mlflow: `mlflow models serve -m <the same folder> --env-manager local`
// (the onnx pyfunc flavor, uvicorn, MLflow's default worker count) from
// the venv. The pyfunc has no catalog, so its /invocations body carries the
// tensors capflow looks up or computes itself: intent [1,D], the context
// tool's representation and attention key [1,1,D] and mask [1,1], the N
// candidate keys [N,D] (the model's shgat.Projection rows),
// reliability [N] and the evidence [1,N,3]. The scorer does the same work
// on the same inputs; the body is N×D floats of JSON more. One request to
// each server checks that both return the same scores before timing.
//
// Both are measured the same way: a 3 s warm-up of -c concurrent clients
// (which waits for its last responses, so the server starts idle), then
// wrk -t2 -c<CPUs> -d10s --latency with scripts/bench_serve_wrk.lua POSTing one
// body file; its Requests/sec and Latency Distribution 50%/99% are printed.
// wrk, the server and (for mlflow) its workers share the machine.
//
// One connection per CPU (2 on the dev VM): the server always has a
// request to work on and requests do not queue, so the latency is the
// service time under full load. With more connections than
// CPUs a closed-loop client measures queueing instead: latency ≈ c / rps
// (Little's law) whatever the server does; -c 8 shows that regime.
//
// Environment: ONNXRUNTIME_SHARED_LIBRARY_PATH and CAPFLOW_MLFLOW_BIN
// (`make bench-serve` sets both); wrk on PATH (scripts/deps.sh).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/models/ranker"
	"github.com/capflow/capflow/serving"
)

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-serve: FAILED:", err)
		os.Exit(1)
	}
}

type config struct {
	ns                   []int
	dim                  int
	tools, caps, domains int
	topK                 int
	threads, conns       int
	duration, warmup     time.Duration
	wrkTimeout           time.Duration
	ortThreads           int
	seed                 uint64
	wrk, lua, mlflow     string
	skipMLflow, keep     bool
	cpuProfile           string
	mlflowStart          time.Duration
}

func parseFlags() (config, error) {
	var cfg config
	var ns string
	flag.StringVar(&ns, "n", "100,1000", "comma-separated candidate counts per request")
	flag.IntVar(&cfg.dim, "dim", 1024, "embedding dimension D")
	flag.IntVar(&cfg.tools, "tools", 2000, "tools in the synthetic catalog")
	flag.IntVar(&cfg.caps, "caps", 1000, "leaf capabilities (2–4 tools each)")
	flag.IntVar(&cfg.domains, "domains", 20, "level-1 capabilities over the leaves")
	flag.IntVar(&cfg.topK, "top-k", 10, "top_k of /rank")
	flag.IntVar(&cfg.threads, "t", min(2, runtime.NumCPU()), "wrk threads")
	flag.IntVar(&cfg.conns, "c", runtime.NumCPU(), "wrk connections (default: one per CPU)")
	flag.DurationVar(&cfg.duration, "d", 10*time.Second, "measured wrk run per server and N (whole seconds)")
	flag.DurationVar(&cfg.warmup, "warmup", 3*time.Second, "wrk warm-up run before each measured run (0: none)")
	flag.DurationVar(&cfg.wrkTimeout, "timeout", 60*time.Second, "wrk --timeout (a slower response is a socket error, not a latency)")
	flag.IntVar(&cfg.ortThreads, "ort-threads", 1, "ONNX Runtime intra-op threads per /rank call")
	flag.Uint64Var(&cfg.seed, "seed", 1, "random seed")
	flag.StringVar(&cfg.wrk, "wrk", "wrk", "wrk binary")
	flag.StringVar(&cfg.lua, "lua", "", "wrk script (default <repo>/scripts/bench_serve_wrk.lua)")
	flag.StringVar(&cfg.mlflow, "mlflow", os.Getenv("CAPFLOW_MLFLOW_BIN"), "the venv's mlflow CLI (default $CAPFLOW_MLFLOW_BIN)")
	flag.DurationVar(&cfg.mlflowStart, "mlflow-start", 3*time.Minute, "how long to wait for mlflow models serve's /ping")
	flag.BoolVar(&cfg.skipMLflow, "skip-mlflow", false, "measure capflow only")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the work directory (model folder, store, bodies, mlflow log)")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the capflow runs (warm-ups included) to this file")
	flag.Parse()
	for _, f := range strings.Split(ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return cfg, fmt.Errorf("-n: %q is not a positive integer", f)
		}
		cfg.ns = append(cfg.ns, n)
	}
	switch {
	case cfg.dim < 1 || cfg.tools < 4 || cfg.caps < 1 || cfg.domains < 0 || cfg.topK < 1:
		return cfg, errors.New("-dim, -caps and -top-k must be positive, -tools at least 4, -domains not negative")
	case cfg.threads < 1 || cfg.conns < cfg.threads:
		return cfg, errors.New("-t must be positive and -c at least -t")
	case cfg.duration < time.Second || cfg.warmup < 0 || cfg.wrkTimeout < time.Second:
		return cfg, errors.New("-d and -timeout must be at least 1s, -warmup not negative")
	case !cfg.skipMLflow && cfg.mlflow == "":
		return cfg, errors.New("CAPFLOW_MLFLOW_BIN is not set and -mlflow not given (eval \"$(bash scripts/services.sh env)\"), or pass -skip-mlflow")
	}
	if cfg.lua == "" {
		root, err := testenv.RepoRoot()
		if err != nil {
			return cfg, err
		}
		cfg.lua = filepath.Join(root, "scripts", "bench_serve_wrk.lua")
	}
	return cfg, nil
}

func run(ctx context.Context) error {
	cfg, err := parseFlags()
	if err != nil {
		return err
	}
	if _, err := exec.LookPath(cfg.wrk); err != nil {
		return fmt.Errorf("%w (make deps installs the Debian package wrk)", err)
	}
	if _, err := os.Stat(cfg.lua); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-serve-")
	if err != nil {
		return err
	}
	if cfg.keep {
		slog.Info("work directory kept", "dir", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	slog.Info("bench-serve", "n", cfg.ns, "dim", cfg.dim, "wrk", fmt.Sprintf("-t%d -c%d -d%s --latency (warm-up %s)", cfg.threads, cfg.conns, cfg.duration, cfg.warmup),
		"cpus", runtime.NumCPU(), "gomaxprocs", runtime.GOMAXPROCS(0), "loadavg", loadAvg())
	f, err := buildFixture(ctx, cfg, dir)
	if err != nil {
		return fmt.Errorf("fixture: %w", err)
	}
	for _, n := range cfg.ns {
		r := f.reqs[n]
		slog.Info("bodies", "n", n, "rank_bytes", r.rankBytes, "mlflow_bytes", r.mlfBytes)
	}

	capflow, err := benchCapflow(ctx, cfg, f)
	if err != nil {
		return fmt.Errorf("capflow: %w", err)
	}
	if cfg.skipMLflow {
		return nil
	}
	mlf, err := benchMLflow(ctx, cfg, f, capflow, filepath.Join(dir, "mlflow-serve.log"))
	if err != nil {
		return fmt.Errorf("mlflow models serve: %w", err)
	}
	for _, n := range cfg.ns {
		a, b := capflow[n].res, mlf[n]
		slog.Info("ratio", "n", n, "rps_capflow_over_mlflow", fmt.Sprintf("%.1f", a.rps/b.rps),
			"p99_ms_capflow", ms(a.p99), "p99_ms_mlflow", ms(b.p99))
	}
	n := cfg.ns[len(cfg.ns)-1]
	a, b := capflow[n].res, mlf[n]
	slog.Info("targets", "n", n, "p99_le_5ms", a.p99 <= 5*time.Millisecond, "rps_ge_10x_mlflow", a.rps >= 10*b.rps)
	return nil
}

// capflowRun is one N measured against capflow, with the ranking of the
// check request (compared with mlflow's scores).
type capflowRun struct {
	res      *wrkResult
	rankings []serving.Ranking
}

// benchCapflow serves the model in-process and measures /rank per N.
func benchCapflow(ctx context.Context, cfg config, f *fixture) (map[int]capflowRun, error) {
	st, err := embedded.Open(f.storePath, featurestore.Config{TextDim: cfg.dim})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	tools, err := st.Tools(ctx)
	if err != nil {
		return nil, err
	}
	caps, err := st.Capabilities(ctx)
	if err != nil {
		return nil, err
	}
	rk, err := ranker.Open(ctx, f.modelDir, tools, caps, ranker.Options{IntraOpThreads: cfg.ortThreads})
	if err != nil {
		return nil, err
	}
	defer rk.Close()
	gin.SetMode(gin.ReleaseMode)
	srv, err := serving.NewServer(serving.ServerConfig{
		Models: fixedModels{&serving.Model{Name: "bench-serve", Version: "1", Stage: "Production", Ranker: rk, Loaded: time.Now()}},
		Store:  st,
		// Formatted like a real request log, then dropped: the cost stays,
		// the terminal is not flooded.
		Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			slog.Warn("capflow server", "err", err)
		}
	}()
	url := "http://" + ln.Addr().String() + "/rank"
	if cfg.cpuProfile != "" {
		pf, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	slog.Info("capflow server", "url", url, "ort_threads", cfg.ortThreads)

	out := map[int]capflowRun{}
	for _, n := range cfg.ns {
		r := f.reqs[n]
		b, err := post(ctx, url, r.rankBody)
		if err != nil {
			return nil, err
		}
		var resp serving.RankResponse
		if err := json.Unmarshal(b, &resp); err != nil {
			return nil, fmt.Errorf("/rank response: %w", err)
		}
		if len(resp.Rankings) != min(cfg.topK, n) || resp.Candidates != "request" {
			return nil, fmt.Errorf("n=%d: /rank returned %d rankings from %q candidates, want %d from the request", n, len(resp.Rankings), resp.Candidates, min(cfg.topK, n))
		}
		res, err := measure(ctx, cfg, "capflow", url, r)
		if err != nil {
			return nil, err
		}
		out[n] = capflowRun{res: res, rankings: resp.Rankings}
		fmt.Printf("bench-serve n=%d rps=%s p50_ms=%s p99_ms=%s\n", n, rps(res.rps), ms(res.p50), ms(res.p99))
	}
	return out, nil
}

// benchMLflow serves the same folder with `mlflow models serve`, checks
// its scores against capflow's rankings and measures /invocations per N.
func benchMLflow(ctx context.Context, cfg config, f *fixture, capflow map[int]capflowRun, logPath string) (map[int]*wrkResult, error) {
	t0 := time.Now()
	s, err := startMLflow(ctx, cfg.mlflow, f.modelDir, logPath, cfg.mlflowStart)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	slog.Info("mlflow models serve: ready", "after", time.Since(t0).Round(time.Millisecond))
	url := s.url + "/invocations"
	out := map[int]*wrkResult{}
	for _, n := range cfg.ns {
		r := f.reqs[n]
		b, err := post(ctx, url, r.mlflowBody)
		if err != nil {
			return nil, err
		}
		if err := sameScores(b, r.candidates, capflow[n].rankings); err != nil {
			return nil, fmt.Errorf("n=%d: %w", n, err)
		}
		res, err := measure(ctx, cfg, "mlflow", url, r)
		if err != nil {
			return nil, err
		}
		out[n] = res
		fmt.Printf("bench-serve-mlflow n=%d rps=%s p50_ms=%s p99_ms=%s\n", n, rps(res.rps), ms(res.p50), ms(res.p99))
	}
	return out, nil
}

// measure runs the warm-up and the measured wrk run against url with r's
// body for server ("capflow" or "mlflow"), logging load and wrk's figures.
func measure(ctx context.Context, cfg config, server, url string, r *request) (*wrkResult, error) {
	body := r.rankBody
	if server == "mlflow" {
		body = r.mlflowBody
	}
	if cfg.warmup > 0 {
		t0 := time.Now()
		k, err := warmUp(ctx, url, body, cfg.conns, cfg.warmup)
		if err != nil {
			return nil, fmt.Errorf("warm-up n=%d: %w", r.n, err)
		}
		slog.Info("warm-up", "server", server, "n", r.n, "requests", k, "took", time.Since(t0).Round(time.Millisecond))
	}
	before := loadAvg()
	res, err := wrkRun(ctx, cfg, url, body, cfg.duration)
	if err != nil {
		return nil, err
	}
	slog.Info("wrk", "server", server, "n", r.n, "requests", res.requests, "seconds", fmt.Sprintf("%.2f", res.seconds), "rps", rps(res.rps),
		"p50_ms", ms(res.p50), "p99_ms", ms(res.p99), "latency_avg_stdev_max", res.latencyLine, "transfer_per_s", res.transferPerS,
		"socket_errors", res.socketErrors, "loadavg_before", before, "loadavg_after", loadAvg())
	if res.non2xx > 0 {
		return nil, fmt.Errorf("n=%d: %d of %d responses were not 2xx", r.n, res.non2xx, res.requests)
	}
	return res, nil
}

// warmUp keeps conns requests in flight until d has passed, then waits
// for the last ones to complete. Unlike a wrk run, it abandons nothing: a
// slow server starts the measured run idle, not still working through
// requests whose client is gone.
func warmUp(ctx context.Context, url, bodyFile string, conns int, d time.Duration) (int, error) {
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		return 0, err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(d)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var count atomic.Int64
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if _, err := postBytes(ctx, client, url, body); err != nil {
					cancel(err) // the first error wins
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	return int(count.Load()), context.Cause(ctx)
}

// sameScores checks mlflow's scores for the candidates against the scores
// capflow returned for its top rankings: same model, same inputs.
func sameScores(body []byte, candidates []string, rankings []serving.Ranking) error {
	var resp struct {
		Predictions map[string][][]float64 `json:"predictions"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return fmt.Errorf("mlflow response %s: %w", trim(body, 200), err)
	}
	scores := resp.Predictions["scores"]
	if len(scores) != 1 || len(scores[0]) != len(candidates) {
		return fmt.Errorf("%w (%s)", errNoScores, trim(body, 200))
	}
	pos := make(map[string]int, len(candidates))
	for i, id := range candidates {
		pos[id] = i
	}
	var worst float64
	for _, rk := range rankings {
		got := scores[0][pos[rk.CapabilityID]]
		diff := math.Abs(got - rk.Score)
		if diff > 1e-3*math.Max(1, math.Abs(rk.Score)) {
			return fmt.Errorf("mlflow scores %s %.6f, capflow %.6f: not the same model or inputs", rk.CapabilityID, got, rk.Score)
		}
		worst = max(worst, diff)
	}
	slog.Info("mlflow and capflow agree", "n", len(candidates), "top", len(rankings), "max_abs_diff", worst)
	return nil
}

// fixedModels serves one loaded model as the primary, with no canary and no
// shadow: the benchmark measures request handling, not the registry.
type fixedModels struct{ m *serving.Model }

func (f fixedModels) Acquire(string) (*serving.Model, serving.Role, func(), bool) {
	return f.m, serving.RolePrimary, func() {}, true
}

func (f fixedModels) Shadow(string) (*serving.Model, func(), bool) { return nil, nil, false }

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64)
}

func rps(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
