// Command bench-train measures what training the SHGAT scorer costs a user:
// the train stage with train.DefaultConfig on the Seal-Tools catalog
// (pseudo-experiences from the dev queries, leaf capabilities ranked),
// features and intents from the real all-MiniLM-L6-v2 encoder, untracked.
// It prints one line on stdout:
//
//	bench-train samples_per_s=... epoch_s=... total_s=...
//
// where
//   - samples_per_s: transitions consumed by optimiser steps (steps × batch
//     size) per second of the training loop, from the end of the
//     evidence-weight fit to the last validation (value-network passes,
//     steps and the per-epoch validations);
//   - epoch_s: the median epoch, its validation included;
//   - total_s: the stage's whole run: load (catalog, features, tool texts
//     through the embedding cache, intents, split), the untrained
//     validation, the evidence-weight fit, the loop, and packaging the
//     MLflow Model folder (nothing is logged).
//
// The store (.local/bench-train/store.db: Seal-Tools imported, features
// built, tool texts in the embedding cache) is prepared once, untimed, and
// reused while its ready marker is there. The breakdown goes to stderr.
//
// Environment: ONNXRUNTIME_SHARED_LIBRARY_PATH (scripts/services.sh env),
// CAPFLOW_ROOT (repository root, default: the directory holding go.mod),
// CAPFLOW_SEALTOOLS_DIR (default shared/datasets/seal-tools beside the
// repository).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/capflow/capflow/internal/bench"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline"
	"github.com/capflow/capflow/pipeline/train"
)

func main() {
	bench.Main("bench-train", func(ctx context.Context) error { return run(ctx, slog.Default()) })
}

func run(ctx context.Context, log *slog.Logger) error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	dir := flag.String("dir", filepath.Join(root, ".local", "bench-train"), "folder of the prepared store")
	modelDir := flag.String("model-dir", filepath.Join(root, ".local", "models", "all-MiniLM-L6-v2"), "all-MiniLM-L6-v2 ONNX folder")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the timed run to this file")
	flag.Parse()

	onnx, st, err := bench.OpenSealTools(ctx, *dir, *modelDir, log)
	if err != nil {
		return err
	}
	defer onnx.Close()
	defer st.Close()

	cfg := train.DefaultConfig()
	stage, err := train.NewStage(train.StageConfig{
		Train: cfg, Encoder: textembed.Cached(onnx, st),
		Source: train.Source{PseudoPrefix: featurestore.SealToolsDevPrefix, CandidateLevels: []int{0}, Rewards: cfg.Reward},
	})
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	// The stage as a user's Runner runs it untracked, with a Tracker that
	// only notes when each step and validation is logged: the stage logs
	// its params right after loading, a step's metrics right after it, and
	// a validation's right after it.
	clk := &clock{Tracker: pipeline.Discard}
	env := &pipeline.Env{Store: st, Tracker: clk, Logger: log.With("stage", train.StageName), Progress: pipeline.NoProgress}
	start := time.Now()
	sum, err := stage.Train(ctx, env)
	end := time.Now()
	if err != nil {
		return err
	}
	return report(clk, sum, cfg, start, end, log)
}

// clock is a pipeline.Tracker that records nothing but when things were
// logged.
type clock struct {
	pipeline.Tracker
	loaded time.Time
	steps  []time.Time
	valids []validation
}

type validation struct {
	epoch int
	at    time.Time
	steps int // steps taken before it
}

func (c *clock) LogParams(context.Context, map[string]string) error {
	c.loaded = time.Now()
	return nil
}

func (c *clock) LogMetrics(_ context.Context, _ int64, m map[string]float64) error {
	now := time.Now()
	if _, ok := m["loss"]; ok {
		c.steps = append(c.steps, now)
	}
	if e, ok := m["epoch"]; ok {
		c.valids = append(c.valids, validation{epoch: int(e), at: now, steps: len(c.steps)})
	}
	return nil
}

// report turns the clock's marks into the line and the breakdown.
func report(c *clock, sum *train.Summary, cfg train.Config, start, end time.Time, log *slog.Logger) error {
	if len(c.valids) == 0 || c.loaded.IsZero() || sum.Steps == 0 {
		return errors.New("the stage logged no params, validation or step: cannot time it")
	}
	// Epoch-0 validations come before the loop: the untrained model and,
	// after the evidence-weight fit, the fitted one.
	first, loopStart := c.valids[0], c.valids[0]
	var epochs, valids []float64
	for i, v := range c.valids {
		if v.epoch == 0 {
			loopStart = v
			continue
		}
		epochs = append(epochs, v.at.Sub(c.valids[i-1].at).Seconds())
		valids = append(valids, v.at.Sub(c.steps[v.steps-1]).Seconds())
	}
	if len(epochs) == 0 {
		return errors.New("no epoch was validated")
	}
	last := c.valids[len(c.valids)-1]
	loop := last.at.Sub(loopStart.at).Seconds()
	samples := float64(sum.Steps * min(cfg.BatchSize, sum.Train))
	validTotal := sum64(valids)

	log.Info("data", "train_transitions", sum.Train, "valid_transitions", sum.Valid, "steps", sum.Steps,
		"batch", cfg.BatchSize, "epochs", len(epochs), "best_valid_mrr", round(sum.Best.MRR), "best_epoch", sum.Best.Epoch)
	log.Info("breakdown",
		"load_s", round(c.loaded.Sub(start).Seconds()),
		"init_and_untrained_validation_s", round(first.at.Sub(c.loaded).Seconds()),
		"evidence_fit_s", round(loopStart.at.Sub(first.at).Seconds()),
		"loop_s", round(loop),
		"validations_s", round(validTotal),
		"package_s", round(end.Sub(last.at).Seconds()))
	log.Info("epochs", "seconds", roundAll(epochs), "validation_seconds", roundAll(valids),
		"samples_per_s_excluding_validation", round(samples/(loop-validTotal)))
	fmt.Printf("bench-train samples_per_s=%.1f epoch_s=%.3f total_s=%.3f\n", samples/loop, median(epochs), end.Sub(start).Seconds())
	return nil
}

func median(v []float64) float64 {
	v = slices.Sorted(slices.Values(v))
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func sum64(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

func round(x float64) float64 { return float64(int64(x*1e3+0.5)) / 1e3 }

func roundAll(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = round(x)
	}
	return out
}
