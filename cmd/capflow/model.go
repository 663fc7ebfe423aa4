package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/pipeline"
)

func modelCommand(stdout io.Writer, log *slog.Logger) *ffcli.Command {
	return &ffcli.Command{
		Name:       "model",
		ShortUsage: "capflow model register|promote|rollback|download|show [flags] [args]",
		ShortHelp:  "publish MLflow Model folders and move them through the Model Registry",
		Subcommands: []*ffcli.Command{
			modelRegisterCommand(stdout, log),
			modelPromoteCommand(stdout, log),
			modelRollbackCommand(stdout, log),
			modelDownloadCommand(stdout, log),
			modelShowCommand(stdout, log),
		},
		Exec: func(context.Context, []string) error { return flag.ErrHelp },
	}
}

// mlflowFlags say which MLflow server a model command talks to.
type mlflowFlags struct{ trackingURI string }

func newMLflowFlags(fs *flag.FlagSet) *mlflowFlags {
	m := &mlflowFlags{}
	fs.StringVar(&m.trackingURI, "tracking-uri", "", "MLflow tracking server (default $MLFLOW_TRACKING_URI)")
	return m
}

func (m *mlflowFlags) client(log *slog.Logger) (*mlflowclient.Client, error) {
	opts := []mlflowclient.Option{mlflowclient.WithLogger(log)}
	if m.trackingURI != "" {
		opts = append(opts, mlflowclient.WithTrackingURI(m.trackingURI))
	}
	return mlflowclient.New(opts...)
}

func modelRegisterCommand(stdout io.Writer, log *slog.Logger) *ffcli.Command {
	fs := flag.NewFlagSet("capflow model register", flag.ContinueOnError)
	mf := newMLflowFlags(fs)
	runID := fs.String("run-id", "", "run that produced the model (default $MLFLOW_RUN_ID); the logged model is linked to it")
	experiment := fs.String("experiment", "", "experiment of a model logged without a run (default $MLFLOW_EXPERIMENT_NAME, else "+pipeline.DefaultExperiment+")")
	name := fs.String("name", mlmodel.DefaultName, "registered model name")
	loggedName := fs.String("logged-model-name", "", "logged model name (default: --name)")
	stage := fs.String("stage", "", "move the new version to this stage: Staging or Production (default: leave it in None)")
	description := fs.String("description", "", "model version description")
	return &ffcli.Command{
		Name:       "register",
		ShortUsage: "capflow model register DIR [--run-id ID | --experiment NAME] [--name NAME] [--stage Staging|Production]",
		ShortHelp:  "log an MLflow Model folder as a logged model and register it as a new version",
		LongHelp: "Verifies DIR, uploads it as an MLflow 3 logged model (linked to --run-id as an output), registers " +
			"it as a new version of --name with source models:/<model_id>, tagged with the folder's git_commit, " +
			"feature_version and dataset_digest metadata, and optionally moves it to --stage.",
		FlagSet: fs,
		Options: ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return errors.New("model register: want one DIR")
			}
			dir := args[0]
			if *stage != "" {
				st, err := mlflowclient.ParseStage(*stage)
				if err != nil || (st != mlflowclient.StageStaging && st != mlflowclient.StageProduction) {
					return fmt.Errorf("model register: %w: --stage %q (want Staging or Production)", mlmodel.ErrBadStage, *stage)
				}
			}
			f, err := mlmodel.Read(dir)
			if err != nil {
				return err
			}
			c, err := mf.client(log)
			if err != nil {
				return err
			}
			run, exp := *runID, *experiment
			if run != "" && exp != "" {
				return errors.New("model register: give --run-id or --experiment, not both")
			}
			if run == "" && exp == "" {
				run = c.DefaultRunID()
			}
			opts := mlmodel.LogOptions{Name: *loggedName}
			if opts.Name == "" {
				opts.Name = *name
			}
			if run == "" {
				if exp == "" {
					exp = c.DefaultExperimentName()
				}
				if exp == "" {
					exp = pipeline.DefaultExperiment
				}
				e, err := c.Experiments.GetOrCreate(ctx, exp)
				if err != nil {
					return fmt.Errorf("model register: experiment %s: %w", exp, err)
				}
				opts.ExperimentID = e.ID
			}
			lm, err := mlmodel.Log(ctx, c, run, dir, opts)
			if err != nil {
				return err
			}
			from := "without a run"
			if run != "" {
				from = "from run " + run
			}
			fmt.Fprintf(stdout, "logged model %s %s in experiment %s (%s)\n", lm.ID(), from, lm.Info.ExperimentID, lm.Info.ArtifactURI)
			mv, err := mlmodel.Register(ctx, c, mlmodel.RegisterOptions{
				Name: *name, ModelID: lm.ID(), Tags: mlmodel.VersionTags(f), Description: *description,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "registered %s version %s (%s, source %s)\n", mv.Name, mv.Version, mv.Status, mv.Source)
			if *stage == "" {
				return nil
			}
			tr, err := mlmodel.Promote(ctx, c, mv.Name, mv.Version, mlflowclient.Stage(*stage))
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, describeTransition(tr))
			return nil
		},
	}
}

// describeTransition is the one line a promote or rollback prints.
func describeTransition(tr *mlmodel.Transition) string {
	v := tr.Version
	s := fmt.Sprintf("%s version %s: %s → %s", v.Name, v.Version, tr.From, v.CurrentStage)
	if len(tr.Archived) > 0 {
		s += " (archived version " + strings.Join(tr.Archived, ", ") + ")"
	}
	return s
}

func modelPromoteCommand(stdout io.Writer, log *slog.Logger) *ffcli.Command {
	fs := flag.NewFlagSet("capflow model promote", flag.ContinueOnError)
	mf := newMLflowFlags(fs)
	name := fs.String("name", mlmodel.DefaultName, "registered model name")
	version := fs.String("version", "", "model version to move")
	stage := fs.String("stage", "", "Staging or Production; the version there now is archived")
	return &ffcli.Command{
		Name:       "promote",
		ShortUsage: "capflow model promote [--name NAME] --version V --stage Staging|Production",
		ShortHelp:  "move a model version to Staging or Production, archiving the one there",
		FlagSet:    fs,
		Options:    ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 0 {
				return fmt.Errorf("model promote: unexpected arguments %q", args)
			}
			if *version == "" || *stage == "" {
				return errors.New("model promote: --version and --stage are required")
			}
			c, err := mf.client(log)
			if err != nil {
				return err
			}
			tr, err := mlmodel.Promote(ctx, c, *name, *version, mlflowclient.Stage(*stage))
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, describeTransition(tr))
			return nil
		},
	}
}

func modelRollbackCommand(stdout io.Writer, log *slog.Logger) *ffcli.Command {
	fs := flag.NewFlagSet("capflow model rollback", flag.ContinueOnError)
	mf := newMLflowFlags(fs)
	name := fs.String("name", mlmodel.DefaultName, "registered model name")
	return &ffcli.Command{
		Name:       "rollback",
		ShortUsage: "capflow model rollback [--name NAME]",
		ShortHelp:  "put the previous Production version back into Production",
		LongHelp: "The previous version is, among the Archived versions that served in Production before, the one " +
			"that left Production last (see docs/mlmodel.md); the current Production version is archived.",
		FlagSet: fs,
		Options: ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 0 {
				return fmt.Errorf("model rollback: unexpected arguments %q", args)
			}
			c, err := mf.client(log)
			if err != nil {
				return err
			}
			tr, err := mlmodel.Rollback(ctx, c, *name)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, "rolled back: "+describeTransition(tr))
			return nil
		},
	}
}

func modelDownloadCommand(stdout io.Writer, log *slog.Logger) *ffcli.Command {
	fs := flag.NewFlagSet("capflow model download", flag.ContinueOnError)
	mf := newMLflowFlags(fs)
	return &ffcli.Command{
		Name:       "download",
		ShortUsage: "capflow model download URI DST",
		ShortHelp:  "download and verify a model folder (models:/NAME/STAGE, models:/NAME@ALIAS, models:/m-ID…)",
		FlagSet:    fs,
		Options:    ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 2 {
				return errors.New("model download: want URI and DST")
			}
			c, err := mf.client(log)
			if err != nil {
				return err
			}
			f, err := mlmodel.Download(ctx, c, args[0], args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "downloaded %s to %s (model %s, %d inputs, %d extra files)\n",
				args[0], f.Dir, orNone(f.ModelID()), len(f.Inputs), len(f.ExtraFiles))
			return nil
		},
	}
}

func orNone(s string) string {
	if s == "" {
		return "not logged"
	}
	return s
}

func modelShowCommand(stdout io.Writer, log *slog.Logger) *ffcli.Command {
	fs := flag.NewFlagSet("capflow model show", flag.ContinueOnError)
	mf := newMLflowFlags(fs)
	return &ffcli.Command{
		Name:       "show",
		ShortUsage: "capflow model show URI|DIR",
		ShortHelp:  "verify a model folder, local or in MLflow, and print its MLmodel summary",
		FlagSet:    fs,
		Options:    ffOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return errors.New("model show: want one URI or DIR")
			}
			src := args[0]
			var f *mlmodel.Folder
			if st, err := os.Stat(src); err == nil && st.IsDir() {
				if f, err = mlmodel.Read(src); err != nil {
					return err
				}
			} else {
				if !strings.Contains(src, ":") {
					return fmt.Errorf("model show: %s is neither a directory nor a URI", src)
				}
				c, err := mf.client(log)
				if err != nil {
					return err
				}
				tmp, err := os.MkdirTemp("", "capflow-model-show-*")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				if f, err = mlmodel.Download(ctx, c, src, tmp); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "uri:       %s\n", src)
			}
			return f.Summary(stdout)
		},
	}
}
