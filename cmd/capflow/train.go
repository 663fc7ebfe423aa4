package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline"
	"github.com/capflow/capflow/pipeline/train"
)

// trainFlags are the training settings; they map onto train.StageConfig,
// with train.DefaultConfig's values as defaults.
type trainFlags struct {
	cfg             train.Config
	src             train.Source
	levels          string
	registeredModel string
	stage           string
	noRegister      bool
	reportPrefix    string
	outDir          string
}

func newTrainFlags(fs *flag.FlagSet) *trainFlags {
	t := &trainFlags{cfg: train.DefaultConfig(), src: train.Source{ValidFraction: 0.2}}
	c := &t.cfg
	addTrainingFlags(fs, c, "")
	fs.IntVar(&c.CheckpointEvery, "checkpoint-every", c.CheckpointEvery, "write a resumable checkpoint every this many steps under --out-dir (0: none)")
	fs.StringVar(&t.outDir, "out-dir", "", "keep the model folder and checkpoints here (default: a temporary folder, removed after logging)")
	fs.StringVar(&t.src.PseudoPrefix, "pseudo-prefix", "", `train on pseudo-sessions from the queries whose id has this prefix instead of logged experiences (Seal-Tools: "dev-"); a query's calls become a multi-step plan`)
	fs.BoolVar(&t.src.PseudoSingleStep, "pseudo-single-step", false, "with --pseudo-prefix, ignore the queries' calls: one-step episodes with the query's context only")
	fs.StringVar(&t.levels, "candidate-levels", "", "comma-separated capability levels ranked, e.g. 0 (default: all)")
	fs.Float64Var(&t.src.ValidFraction, "valid-fraction", t.src.ValidFraction, "fraction of sessions held out for validation, in (0,1)")
	fs.Uint64Var(&t.src.SplitSeed, "split-seed", 0, "seed of the session-hashed validation split")
	fs.BoolVar(&t.src.Temporal, "temporal", false, "hold out the latest sessions instead of a hash-chosen set")
	fs.BoolVar(&t.src.NoEvidence, "no-evidence", false, "train the dense score alone, without lexical evidence features")
	fs.StringVar(&t.registeredModel, "registered-model", mlmodel.DefaultName, "registered model name of the new version")
	fs.StringVar(&t.stage, "stage", string(mlflowclient.StageStaging), "stage the new version moves to: Staging, Production or None")
	fs.BoolVar(&t.noRegister, "no-register", false, "log the model to the run but do not register it")
	fs.StringVar(&t.reportPrefix, "report-prefix", "", `also evaluate on the queries whose id has this prefix against the untrained model and cosine similarity (Seal-Tools: "test_in_domain-")`)
	return t
}

// addTrainingFlags defines the flags of the training configuration c (the
// model, the losses, the optimiser, early stopping, the seed), with c's
// values as defaults: capflow train and capflow evaluate --cv train the
// same way. about prefixes every usage line ("with --cv: ").
func addTrainingFlags(fs *flag.FlagSet, c *train.Config, about string) {
	fs.IntVar(&c.Epochs, "epochs", c.Epochs, about+"training epochs (each ends with a validation)")
	fs.IntVar(&c.StepsPerEpoch, "steps-per-epoch", c.StepsPerEpoch, about+"optimiser steps per epoch (0: one pass over the training transitions)")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, about+"transitions per step (prioritised replay batch)")
	fs.Float64Var(&c.LR, "lr", c.LR, about+"Adam learning rate (cosine-annealed)")
	fs.Float64Var(&c.ListwiseWeight, "listwise-weight", c.ListwiseWeight, about+"weight of the softmax loss over the candidate pool (0: off)")
	fs.Float64Var(&c.TDWeight, "td-weight", c.TDWeight, about+"weight of the importance-weighted TD loss (0: off)")
	fs.IntVar(&c.FusionSteps, "fusion-steps", c.FusionSteps, about+"full-batch steps fitting the evidence weights before the main loop (0: off)")
	fs.Float64Var(&c.FusionLR, "fusion-lr", c.FusionLR, about+"learning rate of the evidence-weight fit")
	fs.Var(betaStepFlag{c}, "beta-step", about+`PER β schedule: "run" rises from 0.4 to exactly 1 at the run's last planned step (epochs × steps per epoch); a number in [0,1] is added to β per step instead, capped at 1`)
	fs.IntVar(&c.Patience, "patience", c.Patience, about+"epochs without improvement before stopping early")
	fs.StringVar(&c.Monitor, "monitor", c.Monitor, about+"validation metric that picks the best epoch: mrr, hit1, hit3, hit5 or ndcg5")
	fs.Float64Var(&c.Model.L2, "l2", c.Model.L2, about+"decay of the projections towards their initial centre")
	fs.BoolVar(&c.KeyMemory, "key-memory", c.KeyMemory, about+"learn a key offset per capability (collaborative memory of the intents that needed it)")
	fs.BoolVar(&c.Model.IntentParts, "intent-parts", c.Model.IntentParts, about+"score an intent as the best of its parts (the whole intent and each clause)")
	fs.Float64Var(&c.Model.Dropout, "dropout", c.Model.Dropout, about+"dropout on attention messages, in [0,1)")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, about+"seed of the model's initialisation, sampling and dropout")
}

// betaStepFlag is --beta-step: "run" selects train.BetaAnnealRun, a number
// train.BetaAnnealReplay with that Replay.BetaStep. One flag, so that a step
// given explicitly is never silently overridden by the run's horizon.
type betaStepFlag struct{ c *train.Config }

func (f betaStepFlag) String() string {
	if f.c == nil || f.c.BetaAnneal != train.BetaAnnealReplay {
		return train.BetaAnnealRun
	}
	return strconv.FormatFloat(f.c.Replay.BetaStep, 'g', -1, 64)
}

func (f betaStepFlag) Set(s string) error {
	if s == train.BetaAnnealRun {
		f.c.BetaAnneal = train.BetaAnnealRun
		return nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || !(x >= 0 && x <= 1) {
		return fmt.Errorf(`want "run" or a number in [0,1], got %q`, s)
	}
	f.c.BetaAnneal, f.c.Replay.BetaStep = train.BetaAnnealReplay, x
	return nil
}

// check rejects what the flags alone show to be wrong, before any encoder
// or store is opened; the stage checks the rest.
func (t *trainFlags) check() error {
	if _, err := parseInts("candidate-levels", t.levels); err != nil {
		return err
	}
	if !(t.src.ValidFraction > 0 && t.src.ValidFraction < 1) {
		return fmt.Errorf("--valid-fraction must be in (0,1), got %v", t.src.ValidFraction)
	}
	st, err := mlflowclient.ParseStage(t.stage)
	if err != nil || st == mlflowclient.StageArchived {
		return fmt.Errorf("--stage must be Staging, Production or None, got %q", t.stage)
	}
	t.stage = string(st) // any case on the command line, MLflow's spelling from here
	return checkTrainingFlags(t.cfg)
}

// checkTrainingFlags rejects the model flags of addTrainingFlags that only
// the model's own check, once the data is loaded, would find wrong.
func checkTrainingFlags(c train.Config) error {
	if m := c.Model; !(m.Dropout >= 0 && m.Dropout < 1) || !(m.L2 >= 0) {
		return fmt.Errorf("--dropout must be in [0,1) and --l2 ≥ 0, got %v and %v", m.Dropout, m.L2)
	}
	return nil
}

// stageConfig is the flags as the stage's configuration around enc.
func (t *trainFlags) stageConfig(enc textembed.Encoder) (train.StageConfig, error) {
	levels, err := parseInts("candidate-levels", t.levels)
	if err != nil {
		return train.StageConfig{}, err
	}
	cfg := t.cfg
	cfg.Model.Seed = cfg.Seed
	src := t.src
	src.CandidateLevels = levels
	src.Rewards = cfg.Reward
	return train.StageConfig{
		Train: cfg, Source: src, Encoder: enc,
		RegisteredModel: t.registeredModel, Stage: t.stage, NoRegister: t.noRegister,
		ReportPrefix: t.reportPrefix, OutDir: t.outDir,
	}, nil
}

// flagError names the flag behind a stage config error: its fields are the
// config's JSON names, the flags the same with dashes.
func flagError(err error) error {
	var ce *train.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	flags := strings.Split(strings.ReplaceAll(ce.Field, "_", "-"), "/")
	return fmt.Errorf("--%s: %s", strings.Join(flags, "/--"), ce.Reason)
}

// parseInts reads the comma-separated non-negative integers of --<name>
// ("0,1"); empty is nil.
func parseInts(name, s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("--%s: %q is not a non-negative integer (want a comma-separated list)", name, f)
		}
		out = append(out, n)
	}
	return out, nil
}

func trainCommand(stdout, stderr io.Writer, log *slog.Logger) *ffcli.Command {
	fs := flag.NewFlagSet("capflow train", flag.ContinueOnError)
	sf := newStoreFlags(fs)
	ef := newEncoderFlags(fs)
	tkf := newTrackingFlags(fs, "train")
	tf := newTrainFlags(fs)
	noCache := fs.Bool("no-embedding-cache", false, "encode every text again instead of reading the store's embedding cache")
	ablation := fs.Bool("ablation", false, "train every ablation variant (train.AblationVariants) with the same data and seed, report each on --report-prefix, and print the table (nothing is registered)")
	dump := fs.Bool("dump-config", false, "print the effective configuration as \"flag value\" lines (a start for --config) and exit")
	return &ffcli.Command{
		Name:       "train",
		ShortUsage: "capflow train [--config FILE] [flags]",
		ShortHelp:  "train the SHGAT scorer on the store's experiences and register it in MLflow",
		LongHelp: "Loads the catalog, features and experiences from the store (or pseudo-experiences from queries with " +
			"--pseudo-prefix), trains the SHGAT scorer (prioritised replay, TD and listwise losses, validation every " +
			"epoch, early stopping), packages the best model as an MLflow Model folder, logs it to the run and registers " +
			"it as a new version of --registered-model in --stage. Run `capflow features build` with the same encoder first.",
		FlagSet: fs,
		Options: ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 0 {
				return fmt.Errorf("train: unexpected arguments %q", args)
			}
			if *dump {
				dumpConfig(stdout, fs)
				return nil
			}
			if err := tf.check(); err != nil {
				return fmt.Errorf("train: %w", err)
			}
			if *ablation && tf.reportPrefix == "" {
				return errors.New("train: --ablation reports on held-out queries: set --report-prefix")
			}
			enc, closeEnc, err := openEncoder(ctx, fs, ef, sf)
			if err != nil {
				return fmt.Errorf("train: %w", err)
			}
			defer closeEnc()
			st, where, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			if !*noCache {
				enc = textembed.Cached(enc, st)
			}
			scfg, err := tf.stageConfig(enc)
			if err != nil {
				return fmt.Errorf("train: %w", err)
			}
			stage, err := train.NewStage(scfg)
			if err != nil {
				return fmt.Errorf("train: %w", flagError(err))
			}
			r, err := tkf.runner(st, stderr, log)
			if err != nil {
				return fmt.Errorf("train: %w", err)
			}
			if *ablation {
				log.Info("ablation", "store", where, "encoder", enc.Model().Name, "variants", len(train.AblationVariants()))
				ab, res, err := train.Ablate(ctx, r, scfg, train.AblationVariants())
				if err != nil {
					return fmt.Errorf("train: %w", flagError(err))
				}
				fmt.Fprintln(stdout, ab.Markdown())
				if res.ParentRunID != "" {
					fmt.Fprintf(stdout, "run     %s (experiment %s): one child run per variant, ablation.md in ablation-table\n", res.ParentRunID, res.ExperimentID)
				}
				return nil
			}
			log.Info("training", "store", where, "encoder", enc.Model().Name, "text_dim", enc.Dim())
			// Runner.Run drops the stage's Summary; keep it for the tables.
			var sum *train.Summary
			res, err := r.Run(ctx, pipeline.StageFunc(train.StageName, func(ctx context.Context, env *pipeline.Env) error {
				s, err := stage.Train(ctx, env)
				sum = s
				return err
			}))
			if err != nil {
				return err
			}
			printSummary(stdout, sum, tf, res)
			return nil
		},
	}
}

// printSummary prints the validation history, the report when there is
// one, and where the model went.
func printSummary(w io.Writer, sum *train.Summary, tf *trainFlags, res *pipeline.Result) {
	fmt.Fprintf(w, "trained %d steps in %.1fs on %d transitions (%d for validation); * best by %s\n\n",
		sum.Steps, sum.Seconds, sum.Train, sum.Valid, tf.cfg.Monitor)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "epoch\tstep\tmrr\tndcg5\thit1")
	for i, v := range sum.History {
		note := ""
		switch {
		case i == 0:
			note = "untrained"
		case i == 1 && v.Epoch == 0:
			note = "evidence weights fitted"
		}
		if v.Epoch == sum.Best.Epoch && v.Step == sum.Best.Step && v.MRR == sum.Best.MRR && v.NDCG5 == sum.Best.NDCG5 {
			note = strings.TrimSpace(note + " *")
		}
		fmt.Fprintf(tw, "%d\t%d\t%.4f\t%.4f\t%.4f\t%s\n", v.Epoch, v.Step, v.MRR, v.NDCG5, v.Hit1, note)
	}
	tw.Flush()
	if len(sum.Report) > 0 {
		fmt.Fprintf(w, "\nreport on the %d %q queries\n", sum.Report["trained"].Queries, tf.reportPrefix)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "\tMRR\tnDCG@5\tHit@1\tHit@3\tHit@5\tCOMP@5")
		for _, name := range []string{"trained", "fused", "untrained", "bm25", "cosine"} {
			v, ok := sum.Report[name]
			if !ok {
				continue // no fusion fit
			}
			label := map[string]string{"fused": "evidence fit only"}[name]
			if label == "" {
				label = name
			}
			fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\n", label, v.MRR, v.NDCG5, v.Hit1, v.Hit3, v.Hit5, v.Comp5)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	if res.ParentRunID != "" {
		fmt.Fprintf(w, "run     %s (parent %s, experiment %s)\n", res.Stages[0].RunID, res.ParentRunID, res.ExperimentID)
	}
	switch {
	case sum.ModelURI != "":
		fmt.Fprintf(w, "model   %s\nstage   %s\n", sum.ModelURI, tf.stage)
	case sum.LoggedModelID != "":
		fmt.Fprintf(w, "model   models:/%s (logged, not registered)\n", sum.LoggedModelID)
	case tf.outDir != "":
		fmt.Fprintf(w, "model   %s (not tracked: not logged or registered)\n", sum.ModelDir)
	default:
		fmt.Fprintln(w, "model   not kept (not tracked; set --out-dir to keep the folder)")
	}
}

// dumpConfig prints every flag as a config-file line: those set (by flag,
// environment or config file) as "name value", the others commented out with
// their default, so that reading the output back sets exactly the same
// flags (an explicit --text-dim, say, no longer follows the encoder). An
// empty value stays a comment: a bare name would read back as "true".
func dumpConfig(w io.Writer, fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		v := f.Value.String()
		switch {
		case f.Name == "config" || f.Name == "dump-config":
		case f.Name == "encoder-api-key" && v != "":
			fmt.Fprintf(w, "# %s (set, not shown)\n", f.Name)
		case v == "":
			fmt.Fprintf(w, "# %s\n", f.Name)
		case set[f.Name]:
			fmt.Fprintf(w, "%s %s\n", f.Name, v)
		default:
			fmt.Fprintf(w, "# %s %s\n", f.Name, v)
		}
	})
}
