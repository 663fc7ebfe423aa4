// Command bench-per compares capflow's prioritized replay buffer
// (pipeline/replay) with cpprb's PrioritizedReplayBuffer on the training
// loop's hot path: a full buffer of -capacity CartPole-sized transitions,
// then sample(-batch) + update-priorities(random |δ|) pairs, with the same
// α, ε and β schedule on both sides. It prints medians over -reps
// repetitions as one line on stdout:
//
//	bench-per capflow_ops_per_s=... cpprb_ops_per_s=... ratio=...
//
// One op is one sample + update pair. Each repetition runs capflow
// in-process, then cpprb in a fresh python process (scripts/bench_per_cpprb.py),
// so a change in machine load hits both sides alike; each side fills a new
// buffer, runs -warmup seconds untimed, then -seconds timed. The |δ| come
// from a pool of pre-drawn uniform [0, 1) batches on both sides.
//
// Parameterisation: cpprb stores (p+ε)^α for the p it is given, so it gets
// |δ| and ε; capflow computes the same (|δ|+ε)^α. The remaining differences
// are cpprb's own: it keeps float32 priorities (capflow float64), normalises
// weights by the largest weight over the whole buffer (a second, min
// segment tree) where capflow uses the batch's largest, gives a first item
// (1+ε)^α where capflow gives 1, and does not guard against updating a slot
// overwritten since it was sampled (its check_for_update is off by default;
// capflow's ID check is always on). No Add happens in the timed loop.
//
// Environment: CAPFLOW_PYTHON (python with cpprb and numpy), CAPFLOW_ROOT
// (repository root, to find the script; defaults to the directory holding
// go.mod).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/capflow/capflow/internal/bench"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/capflow/capflow/pipeline/replay"
)

func main() { bench.Main("bench-per", run) }

type config struct {
	replay  replay.Config
	batch   int
	reps    int
	seconds float64
	warmup  float64
	pool    int
	seed    uint64
}

func parseFlags() (config, error) {
	cfg := config{replay: replay.DefaultConfig()}
	r := &cfg.replay
	flag.IntVar(&r.Capacity, "capacity", r.Capacity, "buffer capacity; the buffer is filled to it")
	flag.Float64Var(&r.Alpha, "alpha", r.Alpha, "priority exponent α")
	flag.Float64Var(&r.Epsilon, "eps", r.Epsilon, "ε added to |δ|")
	flag.Float64Var(&r.Beta, "beta", r.Beta, "initial β")
	flag.Float64Var(&r.BetaStep, "beta-step", r.BetaStep, "β increment per sample call (capped at 1)")
	flag.IntVar(&cfg.batch, "batch", 32, "sample batch size")
	flag.IntVar(&cfg.reps, "reps", 5, "repetitions per side (medians are reported)")
	flag.Float64Var(&cfg.seconds, "seconds", 2, "timed seconds per repetition and side")
	flag.Float64Var(&cfg.warmup, "warmup", 0.3, "untimed warm-up seconds per repetition and side")
	flag.IntVar(&cfg.pool, "pool", 1024, "pre-drawn |δ| batches, cycled")
	flag.Uint64Var(&cfg.seed, "seed", 1, "seed of repetition 0; repetition r uses seed+r")
	flag.Parse()
	switch {
	case cfg.reps < 1 || cfg.pool < 1:
		return cfg, errors.New("-reps and -pool must be positive")
	case cfg.batch < 1 || cfg.batch > r.Capacity:
		return cfg, errors.New("-batch must be in [1, capacity]")
	case !(cfg.seconds > 0) || cfg.warmup < 0:
		return cfg, errors.New("-seconds must be positive and -warmup not negative")
	}
	return cfg, r.Validate()
}

func run(ctx context.Context) error {
	cfg, err := parseFlags()
	if err != nil {
		return err
	}
	python, script, err := bench.PythonScript("bench_per_cpprb.py")
	if err != nil {
		return err
	}
	slog.Info("bench-per", "capacity", cfg.replay.Capacity, "batch", cfg.batch, "alpha", cfg.replay.Alpha,
		"eps", cfg.replay.Epsilon, "beta", cfg.replay.Beta, "beta_step", cfg.replay.BetaStep,
		"reps", cfg.reps, "seconds", cfg.seconds, "loadavg", loadAvg())

	var ours, theirs []float64
	for r := range cfg.reps {
		if err := ctx.Err(); err != nil {
			return err
		}
		seed := cfg.seed + uint64(r)
		ops, secs, err := benchCapflow(cfg, seed)
		if err != nil {
			return err
		}
		ours = append(ours, float64(ops)/secs)
		slog.Info("capflow", "rep", r, "ops", ops, "seconds", secs, "ops_per_s", int(float64(ops)/secs))

		py, err := benchCpprb(ctx, python, script, cfg, seed)
		if err != nil {
			return err
		}
		theirs = append(theirs, py.OpsPerS)
		slog.Info("cpprb", "rep", r, "version", py.Version, "ops", py.Ops, "seconds", py.Seconds, "ops_per_s", int(py.OpsPerS))
	}
	c, p := median(ours), median(theirs)
	slog.Info("done", "loadavg", loadAvg())
	fmt.Printf("bench-per capflow_ops_per_s=%.0f cpprb_ops_per_s=%.0f ratio=%.2f\n", c, p, c/p)
	return nil
}

// transition mirrors the script's env_dict: 44 bytes, as cpprb stores it.
type transition struct {
	Obs, NextObs [4]float32
	Act          int32
	Rew, Done    float32
}

// benchCapflow fills a new buffer, warms up, then counts sample + update
// pairs for cfg.seconds.
func benchCapflow(cfg config, seed uint64) (ops int, seconds float64, err error) {
	buf, err := replay.New[transition](cfg.replay)
	if err != nil {
		return 0, 0, err
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	for range cfg.replay.Capacity {
		buf.Add(transition{
			Obs:     [4]float32{rng.Float32(), rng.Float32(), rng.Float32(), rng.Float32()},
			NextObs: [4]float32{rng.Float32(), rng.Float32(), rng.Float32(), rng.Float32()},
			Act:     rng.Int32N(2),
			Rew:     rng.Float32(),
		})
	}
	deltas := make([][]float64, cfg.pool)
	for i := range deltas {
		deltas[i] = make([]float64, cfg.batch)
		for j := range deltas[i] {
			deltas[i][j] = rng.Float64()
		}
	}
	loop := func(n, from int) error {
		for k := range n {
			b, err := buf.Sample(rng, cfg.batch)
			if err != nil {
				return err
			}
			if _, err := buf.UpdatePriorities(b.IDs, deltas[(from+k)%cfg.pool]); err != nil {
				return err
			}
		}
		return nil
	}
	const chunk = 256
	start := time.Now()
	for time.Since(start).Seconds() < cfg.warmup {
		if err := loop(chunk, 0); err != nil {
			return 0, 0, err
		}
	}
	start = time.Now()
	for {
		if err := loop(chunk, ops); err != nil {
			return 0, 0, err
		}
		ops += chunk
		if seconds = time.Since(start).Seconds(); seconds >= cfg.seconds {
			return ops, seconds, nil
		}
	}
}

// pyResult is the script's JSON line.
type pyResult struct {
	Ops     int     `json:"ops"`
	Seconds float64 `json:"seconds"`
	OpsPerS float64 `json:"ops_per_s"`
	Version string  `json:"cpprb"`
}

func benchCpprb(ctx context.Context, python, script string, cfg config, seed uint64) (pyResult, error) {
	args, err := json.Marshal(map[string]any{
		"capacity": cfg.replay.Capacity, "batch": cfg.batch, "alpha": cfg.replay.Alpha, "eps": cfg.replay.Epsilon,
		"beta": cfg.replay.Beta, "beta_step": cfg.replay.BetaStep, "seconds": cfg.seconds, "warmup_s": cfg.warmup,
		"seed": seed, "pool": cfg.pool,
	})
	if err != nil {
		return pyResult{}, err
	}
	cmd := exec.CommandContext(ctx, python, script, string(args))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.Output()
	if err != nil {
		return pyResult{}, fmt.Errorf("cpprb script (is cpprb installed in %s's environment?): %w", python, err)
	}
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	var res pyResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return pyResult{}, fmt.Errorf("cpprb script output %q: %w", lines[len(lines)-1], err)
	}
	if !(res.OpsPerS > 0) {
		return pyResult{}, fmt.Errorf("cpprb script reported %v ops/s", res.OpsPerS)
	}
	return res, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// loadAvg is /proc/loadavg's 1-, 5- and 15-minute figures, or "" off Linux:
// other work on the machine skews both sides.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
