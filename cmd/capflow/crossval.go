package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline"
	"github.com/capflow/capflow/pipeline/train"
)

// cvFlags are capflow evaluate's cross-validation flags: --cv K, its fold
// seed and the training configuration each fold trains with.
type cvFlags struct {
	k    int
	seed uint64
	cfg  train.Config
	// training names the flags addTrainingFlags defines: they apply only
	// with --cv.
	training []string
}

func newCVFlags(fs *flag.FlagSet) *cvFlags {
	c := &cvFlags{cfg: train.DefaultConfig()}
	fs.IntVar(&c.k, "cv", 0, "cross-validate training on the store's logged experiences instead: K ≥ 2 folds grouped by session, a model trained per fold (training flags as capflow train's), mean ± sd of the trained model, evidence-fit-only, BM25 and cosine; --levels, --valid-fraction and --split-seed (each fold's early-stopping hold-out) apply")
	fs.Uint64Var(&c.seed, "cv-seed", 0, "with --cv: seed of the shuffle that deals sessions to folds")
	addTrainingFlags(fs, &c.cfg, "with --cv: ")
	scratch := flag.NewFlagSet("", flag.ContinueOnError)
	addTrainingFlags(scratch, &train.Config{}, "")
	scratch.VisitAll(func(f *flag.Flag) { c.training = append(c.training, f.Name) })
	return c
}

// evaluateOnly are capflow evaluate's flags about query sets and a model
// to evaluate, which cross-validation (it trains its own models on the
// store's sessions) does not read.
var evaluateOnly = []string{"model", "against", "queries", "query-prefix", "holdout", "report-queries", "report-prefix",
	"calibration-queries", "calibration-prefix", "ks", "bins", "promote", "ort-library"}

// mode says whether the flags ask for cross-validation, and refuses flags
// of the other mode: a flag that would be silently ignored is an error.
// Flags with a CAPFLOW_ environment variable are let through: the
// environment is shared by every command (CAPFLOW_EPOCHS=3 is for capflow
// train as much as for evaluate --cv), so what it sets is no mistake of
// this command line.
func (c *cvFlags) mode(fs *flag.FlagSet) (cv bool, err error) {
	var set []string
	fs.Visit(func(f *flag.Flag) {
		cv = cv || f.Name == "cv"
		if os.Getenv(envVar(f.Name)) == "" {
			set = append(set, f.Name)
		}
	})
	for _, name := range set {
		switch {
		case cv && slices.Contains(evaluateOnly, name):
			return true, fmt.Errorf("--%s does not apply with --cv, which trains and tests its own models on the store's logged sessions", name)
		case !cv && (name == "cv-seed" || slices.Contains(c.training, name)):
			return false, fmt.Errorf("--%s applies only with --cv", name)
		}
	}
	return cv, nil
}

// envVar is the environment variable of a flag (ffOptions: the CAPFLOW
// prefix, the name in upper case, - as _).
func envVar(flagName string) string {
	return "CAPFLOW_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// cvRun is what runCrossValidation needs from the evaluate command.
type cvRun struct {
	fs            *flag.FlagSet
	sf            *storeFlags
	ef            *encoderFlags
	tf            *trackingFlags
	levels        string
	validFraction float64
	splitSeed     uint64
	asJSON        bool
}

// runCrossValidation is capflow evaluate --cv: train.CVStage on the store's
// logged experiences under one pipeline run, then the table.
func (c *cvFlags) run(ctx context.Context, r cvRun, stdout, stderr io.Writer, log *slog.Logger) error {
	// What the flags alone show to be wrong, before anything is opened.
	if err := train.CheckFolds(c.k); err != nil {
		return fmt.Errorf("evaluate: --cv: %w", err)
	}
	if !(r.validFraction > 0 && r.validFraction < 1) {
		return fmt.Errorf("evaluate: --valid-fraction must be in (0,1), got %v", r.validFraction)
	}
	levels, err := parseInts("levels", r.levels)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	if err := checkTrainingFlags(c.cfg); err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	enc, closeEnc, err := openEncoder(ctx, r.fs, r.ef, r.sf)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	defer closeEnc()
	st, where, err := r.sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	cfg := c.cfg
	cfg.Model.Seed = cfg.Seed // as capflow train: one seed for the model and the sampling
	stage, err := train.NewCVStage(train.CVStageConfig{
		Train: cfg, Encoder: textembed.Cached(enc, st), K: c.k, Seed: c.seed,
		Source: train.Source{CandidateLevels: levels, ValidFraction: r.validFraction, SplitSeed: r.splitSeed, Rewards: cfg.Reward},
	})
	if err != nil {
		return fmt.Errorf("evaluate: %w", cvFlagError(err, where))
	}
	runner, err := r.tf.runner(st, stderr, log)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	named := false
	r.fs.Visit(func(f *flag.Flag) { named = named || f.Name == "run-name" })
	if !named {
		runner.RunName = "evaluate-cv"
	}
	log.Info("cross-validating", "folds", c.k, "store", where, "encoder", enc.Model().Name)
	var cv *train.CrossValidation
	res, err := runner.Run(ctx, pipeline.StageFunc(stage.Name(), func(ctx context.Context, env *pipeline.Env) error {
		var err error
		cv, err = stage.CrossValidate(ctx, env)
		return err
	}))
	if err != nil {
		return fmt.Errorf("evaluate: %w", cvFlagError(err, where))
	}
	if res.ParentRunID != "" {
		// The stage's run has everything; the parent is the row an
		// experiment's run table lists, so with the summary on it too,
		// cross-validations of different settings compare side by side
		// without expanding their nested runs. MLflow takes metrics on an
		// ended run.
		now := time.Now().UnixMilli()
		var b mlflowclient.Batch
		for k, v := range cv.Metrics() {
			b.Metrics = append(b.Metrics, mlflowclient.Metric{Key: k, Value: v, Timestamp: now})
		}
		if err := runner.Client.Runs.LogBatch(ctx, res.ParentRunID, b); err != nil {
			return fmt.Errorf("evaluate: log the summary to the parent run %s: %w", res.ParentRunID, err)
		}
	}
	if r.asJSON {
		b, err := json.Marshal(cv)
		if err != nil {
			return err
		}
		var obj map[string]any
		_ = json.Unmarshal(b, &obj)
		obj["metrics"] = cv.Metrics()
		obj["run_id"], obj["parent_run_id"] = res.Stages[0].RunID, res.ParentRunID
		b, _ = json.MarshalIndent(obj, "", "  ")
		_, err = fmt.Fprintln(stdout, string(b))
		return err
	}
	fmt.Fprintf(stdout, "cross-validation on the logged experiences of %s (encoder %s, %.1fs)\n\n", where, enc.Model().Name, cv.Seconds)
	if err := cv.WriteMarkdown(stdout); err != nil {
		return err
	}
	if res.ParentRunID != "" {
		fmt.Fprintf(stdout, "\nMLflow run %s (cross-validation run %s) in experiment %s\n", res.ParentRunID, res.Stages[0].RunID, res.ExperimentID)
	}
	return nil
}

// cvFlagError says what to do about the errors a user can fix: the flag
// behind a config error, the command to run before cross-validating. The
// error stays wrapped for errors.Is/As.
func cvFlagError(err error, where string) error {
	var ce *train.ConfigError
	switch {
	case errors.Is(err, train.ErrNoFeatures):
		return fmt.Errorf("the capabilities of %s have no features: run `capflow features build` first, with the same encoder: %w", where, err)
	case errors.Is(err, train.ErrNoExperiences):
		return fmt.Errorf("%s has no logged experiences to cross-validate (--store-path or --database-url names the store that logs them): %w", where, err)
	case errors.As(err, &ce):
		if ce.Field == "store" {
			return err
		}
		flags := strings.Split(strings.ReplaceAll(ce.Field, "_", "-"), "/")
		return fmt.Errorf("--%s: %w", strings.Join(flags, "/--"), err)
	}
	return err
}
