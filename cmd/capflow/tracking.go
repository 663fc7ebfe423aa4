package main

import (
	"flag"
	"io"
	"log/slog"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/pipeline"
)

// trackingFlags say where a pipeline command logs: the MLflow server, the
// experiment, the run name, and whether to draw progress bars.
type trackingFlags struct {
	trackingURI string
	experiment  string
	runName     string
	noTracking  bool
	noProgress  bool
}

func newTrackingFlags(fs *flag.FlagSet, defaultRunName string) *trackingFlags {
	t := &trackingFlags{}
	fs.StringVar(&t.trackingURI, "tracking-uri", "", "MLflow tracking server (default $MLFLOW_TRACKING_URI)")
	fs.StringVar(&t.experiment, "experiment", pipeline.DefaultExperiment, "MLflow experiment of the pipeline run")
	fs.StringVar(&t.runName, "run-name", defaultRunName, "name of the parent MLflow run")
	fs.BoolVar(&t.noTracking, "no-tracking", false, "run without logging to MLflow")
	fs.BoolVar(&t.noProgress, "no-progress", false, "no progress bars even on a terminal (log lines instead)")
	return t
}

// runner builds the pipeline Runner: tracked unless --no-tracking, progress
// bars when stderr is a terminal.
func (t *trackingFlags) runner(st featurestore.Store, stderr io.Writer, log *slog.Logger) (*pipeline.Runner, error) {
	r := &pipeline.Runner{Experiment: t.experiment, RunName: t.runName, Store: st, Logger: log}
	if t.noProgress {
		r.Progress = pipeline.LogProgress(log, 0)
	} else {
		r.Progress = pipeline.AutoProgress(stderr, log)
	}
	if t.noTracking {
		return r, nil
	}
	var opts []mlflowclient.Option
	if t.trackingURI != "" {
		opts = append(opts, mlflowclient.WithTrackingURI(t.trackingURI))
	}
	opts = append(opts, mlflowclient.WithLogger(log))
	c, err := mlflowclient.New(opts...)
	if err != nil {
		return nil, err
	}
	r.Client = c
	return r, nil
}
