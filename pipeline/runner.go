package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/mlflowclient"
)

// Tags the Runner sets.
const (
	TagStages = "capflow.stages" // parent run: the stage names, comma-separated
	TagStage  = "capflow.stage"  // stage run: its stage name
	TagError  = "capflow.error"  // failed run: the error, shortened
	// TagValuePrefix prefixes the parent-run tag of each Env.Set value.
	TagValuePrefix = "capflow."
)

// DefaultExperiment is the MLflow experiment of a Runner without one.
const DefaultExperiment = "capflow"

// Runner runs stages under one MLflow parent run, a nested run per stage.
// The zero value runs untracked with no store; set Client to track.
type Runner struct {
	Client     *mlflowclient.Client // nil: no tracking, every Tracker is Discard
	Experiment string               // default DefaultExperiment
	RunName    string               // parent run name; default "pipeline"
	Store      featurestore.Store
	Logger     *slog.Logger      // default: discard
	Progress   Progress          // default NoProgress
	Tags       map[string]string // extra tags on the parent run
	Values     map[string]string // initial Env values (see Env.Value)
}

// Result is what a Run did.
type Result struct {
	ExperimentID string
	ParentRunID  string // "" when untracked
	Stages       []StageResult
	Values       map[string]string // every Env value at the end
}

// StageResult is one stage's run.
type StageResult struct {
	Name     string
	RunID    string
	Duration time.Duration
	Err      error
}

// ConfigError is an unusable Runner or stage list.
type ConfigError struct{ Reason string }

func (e *ConfigError) Error() string { return "pipeline: " + e.Reason }

// Run runs the stages in order and stops at the first failure, which is
// returned as a *StageError. The MLflow runs it opened are always ended:
// FINISHED, FAILED, or KILLED when ctx was cancelled.
func (r *Runner) Run(ctx context.Context, stages ...Stage) (*Result, error) {
	if len(stages) == 0 {
		return nil, &ConfigError{"no stages to run"}
	}
	seen := map[string]bool{}
	names := make([]string, len(stages))
	for i, s := range stages {
		if s == nil {
			return nil, &ConfigError{fmt.Sprintf("stage %d is nil", i)}
		}
		n := s.Name()
		if n == "" || strings.ContainsAny(n, ",\n") {
			return nil, &ConfigError{fmt.Sprintf("stage %d has an invalid name %q", i, n)}
		}
		if seen[n] {
			return nil, &ConfigError{fmt.Sprintf("two stages are named %q", n)}
		}
		seen[n] = true
		names[i] = n
	}
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	prog := r.Progress
	if prog == nil {
		prog = NoProgress
	}
	vals := newValues(r.Values)
	res := &Result{}

	var parent *mlflowclient.Run
	if r.Client != nil {
		expName := r.Experiment
		if expName == "" {
			expName = DefaultExperiment
		}
		exp, err := r.Client.Experiments.GetOrCreate(ctx, expName)
		if err != nil {
			return nil, fmt.Errorf("pipeline: experiment %q: %w", expName, err)
		}
		res.ExperimentID = exp.ID
		name := r.RunName
		if name == "" {
			name = "pipeline"
		}
		tags := []mlflowclient.Tag{{Key: TagStages, Value: strings.Join(names, ",")}}
		for k, v := range r.Tags {
			tags = append(tags, mlflowclient.Tag{Key: k, Value: v})
		}
		parent, err = r.Client.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: exp.ID, RunName: name, Tags: tags})
		if err != nil {
			return nil, fmt.Errorf("pipeline: create parent run: %w", err)
		}
		res.ParentRunID = parent.Info.RunID
		log.Info("pipeline run started", "experiment", expName, "run_id", res.ParentRunID, "stages", names)
	}

	var runErr error
	start := time.Now()
	for _, s := range stages {
		sr, err := r.runStage(ctx, s, parent, res.ExperimentID, vals, log, prog)
		res.Stages = append(res.Stages, sr)
		if err != nil {
			runErr = err
			break
		}
	}
	res.Values = vals.all()

	if parent != nil {
		// End the parent even when ctx is cancelled: a run left RUNNING
		// forever is worse than a late request.
		endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		tags := map[string]string{}
		for k, v := range vals.drain() {
			tags[TagValuePrefix+k] = v
		}
		if runErr != nil {
			tags[TagError] = shorten(runErr.Error())
		}
		var errs []error
		for k, v := range tags {
			errs = append(errs, r.Client.Runs.SetTag(endCtx, parent.Info.RunID, k, v))
		}
		errs = append(errs,
			r.Client.Runs.LogMetric(endCtx, parent.Info.RunID, mlflowclient.Metric{Key: "pipeline_seconds", Value: time.Since(start).Seconds(), Timestamp: time.Now().UnixMilli()}),
			r.Client.Runs.End(endCtx, parent.Info.RunID, status(ctx, runErr)))
		if err := errors.Join(errs...); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("pipeline: finish parent run %s: %w", parent.Info.RunID, err))
		}
	}
	return res, runErr
}

func (r *Runner) runStage(ctx context.Context, s Stage, parent *mlflowclient.Run, expID string, vals *values, log *slog.Logger, prog Progress) (StageResult, error) {
	sr := StageResult{Name: s.Name()}
	log = log.With("stage", sr.Name)
	env := &Env{Store: r.Store, Tracker: Discard, Logger: log, Progress: prog, values: vals}
	var tr *mlflowTracker
	if parent != nil {
		run, err := r.Client.Runs.Create(ctx, mlflowclient.CreateRunOptions{
			ExperimentID: expID, RunName: sr.Name, ParentRunID: parent.Info.RunID,
			Tags: []mlflowclient.Tag{{Key: TagStage, Value: sr.Name}},
		})
		if err != nil {
			sr.Err = fmt.Errorf("create run: %w", err)
			return sr, &StageError{Stage: sr.Name, Err: sr.Err}
		}
		if tr, err = newMLflowTracker(r.Client, run); err != nil {
			sr.Err = err
			endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_ = r.Client.Runs.End(endCtx, run.Info.RunID, mlflowclient.RunFailed)
			return sr, &StageError{Stage: sr.Name, Err: err}
		}
		env.Tracker, env.Client = tr, r.Client
		sr.RunID = run.Info.RunID
	}

	log.Info("stage started", "run_id", sr.RunID)
	t0 := time.Now()
	err := safeRun(ctx, s, env)
	sr.Duration = time.Since(t0)

	if tr != nil {
		endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		var errs []error
		errs = append(errs, tr.LogMetrics(endCtx, 0, map[string]float64{"stage_seconds": sr.Duration.Seconds()}))
		if err != nil {
			errs = append(errs, tr.SetTags(endCtx, map[string]string{TagError: shorten(err.Error())}))
		}
		errs = append(errs, tr.close(endCtx), r.Client.Runs.End(endCtx, sr.RunID, status(ctx, err)))
		if terr := errors.Join(errs...); terr != nil {
			err = errors.Join(err, fmt.Errorf("finish run %s: %w", sr.RunID, terr))
		}
	}
	if err != nil {
		sr.Err = err
		log.Error("stage failed", "err", err, "seconds", sr.Duration.Seconds())
		return sr, &StageError{Stage: sr.Name, Err: err}
	}
	log.Info("stage finished", "seconds", sr.Duration.Seconds())
	return sr, nil
}

// safeRun turns a panicking plugin stage into an error: a stage written by a
// user must not take the pipeline (and its MLflow runs) down with it.
func safeRun(ctx context.Context, s Stage, env *Env) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return s.Run(ctx, env)
}

func status(ctx context.Context, err error) mlflowclient.RunStatus {
	switch {
	case err == nil:
		return mlflowclient.RunFinished
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return mlflowclient.RunKilled
	default:
		return mlflowclient.RunFailed
	}
}

// shorten keeps a tag value under MLflow's 8000-character limit.
func shorten(s string) string {
	const limit = 4000
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}
