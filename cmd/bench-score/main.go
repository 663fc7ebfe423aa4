// Command bench-score times the SHGAT request-time scorer: the Go forward
// (shgat.Scorer.Score, float64) against the exported ONNX model run by ONNX
// Runtime (shgat.ORTScorer.Score: one intra-op thread, B=1), on a random
// scorer of the design size (D=1024, 16 heads of 64) with C context tools.
// For each candidate count N it prints one line on stdout:
//
//	bench-score n=<N> go_p50_us=<µs> ort_p50_us=<µs> ort_p99_us=<µs>
//
// Each timing is one whole Score call, input checks included. The Go side
// runs -iters iterations, or fewer if they would exceed -go-seconds. The
// largest difference between the two scorers is reported on stderr with
// the progress.
//
// Environment: ONNXRUNTIME_SHARED_LIBRARY_PATH (`make bench-score` sets it).
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/capflow/capflow/internal/bench"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/capflow/capflow/models/shgat"
)

func main() { bench.Main("bench-score", run) }

type config struct {
	heads, headDim int
	c              int
	ns             []int
	warmup, iters  int
	goSeconds      float64
	threads        int
	seed           uint64
}

func parseFlags() (config, error) {
	var cfg config
	var ns string
	flag.IntVar(&cfg.heads, "heads", 16, "attention heads")
	flag.IntVar(&cfg.headDim, "head-dim", 64, "width of a head (D = heads·head-dim)")
	flag.IntVar(&cfg.c, "c", 4, "context tools per request (all real)")
	flag.StringVar(&ns, "n", "100,1000,10000", "comma-separated candidate counts")
	flag.IntVar(&cfg.warmup, "warmup", 200, "untimed calls before timing (a tenth of it for Go)")
	flag.IntVar(&cfg.iters, "iters", 2000, "timed calls per scorer and N")
	flag.Float64Var(&cfg.goSeconds, "go-seconds", 20, "time budget of the Go scorer per N (fewer iterations if exceeded)")
	flag.IntVar(&cfg.threads, "threads", 1, "ORT intra-op threads")
	flag.Uint64Var(&cfg.seed, "seed", 1, "random seed")
	flag.Parse()
	for _, f := range strings.Split(ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return cfg, fmt.Errorf("-n: %q is not a positive integer", f)
		}
		cfg.ns = append(cfg.ns, n)
	}
	switch {
	case cfg.heads < 1 || cfg.headDim < 1 || cfg.c < 0 || cfg.iters < 1 || cfg.warmup < 0 || cfg.threads < 1:
		return cfg, fmt.Errorf("-heads, -head-dim, -iters and -threads must be positive, -c and -warmup not negative")
	}
	return cfg, nil
}

func run(ctx context.Context) error {
	cfg, err := parseFlags()
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(cfg.seed, 0x5c0e))
	d := cfg.heads * cfg.headDim
	s := randomScorer(rng, cfg.heads, cfg.headDim)

	dir, err := os.MkdirTemp("", "bench-score-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	model, err := shgat.ExportScorer(s)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "scorer.onnx")
	if err := model.WriteFile(path); err != nil {
		return err
	}
	ortS, err := shgat.OpenORT(ctx, path, shgat.ORTOptions{Dim: d, IntraOpThreads: cfg.threads})
	if err != nil {
		return err
	}
	defer ortS.Close()
	slog.Info("scorer", "dim", d, "heads", cfg.heads, "head_dim", cfg.headDim, "context", cfg.c, "ort_threads", cfg.threads, "ort_library", os.Getenv("ONNXRUNTIME_SHARED_LIBRARY_PATH"))

	req := shgat.Request{Intent: vec(rng, d, 1)}
	var intent32, ctx32, mask32 []float32
	intent32 = to32(intent32, req.Intent)
	for range cfg.c {
		t := vec(rng, d, 1)
		req.Context = append(req.Context, t)
		ctx32 = to32(ctx32, t)
		mask32 = append(mask32, 1)
	}

	ctxKeys32, err := s.ProjectContext(ctx32)
	if err != nil {
		return err
	}
	for _, n := range cfg.ns {
		keys := vec(rng, n*d, math.Sqrt(float64(n)))
		rel := make([]float64, n)
		for i := range rel {
			rel[i] = []float64{0.5, 1, 1.2}[rng.IntN(3)]
		}
		// Serving passes the evidence features of every candidate.
		req.Evidence = make([]float64, n*len(s.Evidence))
		for i := range req.Evidence {
			req.Evidence[i] = 3 * rng.Float64()
		}
		// ORT takes the keys projected as a loaded model holds them
		// (Scorer.Project, done once per model version, not timed).
		keys32, err := s.ProjectKeys(to32(nil, keys))
		if err != nil {
			return err
		}
		rel32, ev32 := to32(nil, rel), to32(nil, req.Evidence)

		var want []float64
		goTimes, err := timeCalls(ctx, max(cfg.warmup/10, 1), cfg.iters, time.Duration(cfg.goSeconds*float64(time.Second)), func() error {
			var err error
			want, err = s.Score(req, keys, rel)
			return err
		})
		if err != nil {
			return fmt.Errorf("n=%d: Go scorer: %w", n, err)
		}
		var got []float32
		ortTimes, err := timeCalls(ctx, cfg.warmup, cfg.iters, 0, func() error {
			var err error
			got, err = ortS.Score(shgat.Batch{B: 1, C: cfg.c, N: n, Intent: intent32, Context: ctx32, ContextKeys: ctxKeys32,
				ContextMask: mask32, Candidates: keys32, Reliability: rel32, Evidence: ev32})
			return err
		})
		if err != nil {
			return fmt.Errorf("n=%d: ORT scorer: %w", n, err)
		}
		diff := 0.0
		for i, w := range want {
			diff = max(diff, math.Abs(float64(got[i])-w))
		}
		slog.Info("done", "n", n, "go_iters", len(goTimes), "ort_iters", len(ortTimes), "max_abs_diff", diff)
		fmt.Printf("bench-score n=%d go_p50_us=%.1f ort_p50_us=%.1f ort_p99_us=%.1f\n",
			n, quantile(goTimes, 0.5), quantile(ortTimes, 0.5), quantile(ortTimes, 0.99))
	}
	return nil
}

// timeCalls runs f warmup times, then times up to iters calls (stopping
// early once budget, if positive, is spent) and returns the durations in µs.
func timeCalls(ctx context.Context, warmup, iters int, budget time.Duration, f func() error) ([]float64, error) {
	for range warmup {
		if err := f(); err != nil {
			return nil, err
		}
	}
	times := make([]float64, 0, iters)
	start := time.Now()
	for i := range iters {
		if i%100 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		t0 := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		times = append(times, float64(time.Since(t0).Nanoseconds())/1e3)
		if budget > 0 && time.Since(start) > budget {
			break
		}
	}
	return times, nil
}

// quantile is the q-quantile of xs by the nearest-rank method.
func quantile(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// randomScorer has near-identity weights, as an untrained model.
func randomScorer(rng *rand.Rand, heads, headDim int) *shgat.Scorer {
	d := heads * headDim
	w := func() []float64 {
		m := vec(rng, d*d, 0.05*math.Sqrt(float64(d)))
		for i := 0; i < d*d; i += d + 1 {
			m[i]++
		}
		return m
	}
	return &shgat.Scorer{
		Dim: d, Heads: heads, HeadDim: headDim, Wq: w(), CtxQ: w(), CtxGate: -0.85,
		Scale: 1 / (float64(heads) * math.Sqrt(float64(headDim))), CtxScale: 1 / math.Sqrt(float64(d)),
		Evidence: []float64{0.5, 1, 1},
	}
}

// vec is a Gaussian vector of norm about norm.
func vec(rng *rand.Rand, n int, norm float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = norm * rng.NormFloat64() / math.Sqrt(float64(n))
	}
	return v
}

func to32(dst []float32, v []float64) []float32 {
	for _, x := range v {
		dst = append(dst, float32(x))
	}
	return dst
}
