package mlmodel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/capflow/capflow/mlflowclient"
)

// DefaultName is the registered (and logged) model name of capflow's scorer.
const DefaultName = "capflow-shgat"

// LogOptions say where and how Log records a folder.
type LogOptions struct {
	// Name is the logged model's name (default DefaultName); it cannot
	// contain / : . % " or '.
	Name string
	// ExperimentID is required without a run; with a run it defaults to the
	// run's experiment.
	ExperimentID string
	// ModelType is free-form ("" as mlflow.onnx.log_model leaves it).
	ModelType string
	// Params and Tags go on the logged model. As in the official client, the
	// run's params are added to the model's (the run's win on a clash), and
	// the detected mlflow.user / mlflow.source.* tags are set (Tags win).
	Params []mlflowclient.Param
	Tags   []mlflowclient.Tag
	// Step is the run step the model is an output of; the run's metrics
	// logged at that step are copied to the model, as log_model does.
	Step int64
}

// Log uploads the verified MLflow Model folder dir as an MLflow 3 logged
// model, the way mlflow.onnx.log_model(…, name=…) does on the same server:
//
//  1. create the logged model (PENDING) in the run's experiment with
//     source_run_id, the run's params and the source tags;
//  2. link it to the run as an output (runs/outputs, at opts.Step) and copy
//     the run's metrics of that step to it;
//  3. upload the folder to the model's artifact location, its MLmodel
//     rewritten with artifact_path, run_id, model_id and model_uuid (= the
//     model id) as log_model writes them;
//  4. finalize READY (UPLOAD_FAILED if a step after creation failed).
//
// runID may be "" (a model without a run, opts.ExperimentID required).
func Log(ctx context.Context, c *mlflowclient.Client, runID, dir string, opts LogOptions) (*mlflowclient.LoggedModel, error) {
	f, err := Read(dir)
	if err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	var run *mlflowclient.Run
	if runID != "" {
		if run, err = c.Runs.Get(ctx, runID); err != nil {
			return nil, fmt.Errorf("mlmodel: log %s: run %s: %w", dir, runID, err)
		}
		if opts.ExperimentID == "" {
			opts.ExperimentID = run.Info.ExperimentID
		}
	}
	if opts.ExperimentID == "" {
		return nil, fmt.Errorf("mlmodel: log %s: %w: an experiment id or a run is required", dir, ErrBadModel)
	}
	params := mergeParams(opts.Params, run)
	tags := mergeTags(mlflowclient.SystemTags(), opts.Tags)
	lm, err := c.LoggedModels.Create(ctx, mlflowclient.CreateLoggedModelOptions{
		ExperimentID: opts.ExperimentID, Name: opts.Name, ModelType: opts.ModelType,
		SourceRunID: runID, Params: params, Tags: tags,
	})
	if err != nil {
		return nil, fmt.Errorf("mlmodel: log %s: %w", dir, err)
	}
	id := lm.Info.ModelID
	done, err := logArtifacts(ctx, c, run, f, lm, opts.Step)
	if err != nil {
		// Best effort, on a context that outlives a cancelled ctx: a model
		// left PENDING would look like an upload in progress.
		_, ferr := c.LoggedModels.Finalize(context.WithoutCancel(ctx), id, mlflowclient.LoggedModelUploadFailed)
		return nil, fmt.Errorf("mlmodel: log %s as %s: %w", dir, id, errors.Join(err, ferr))
	}
	return done, nil
}

func logArtifacts(ctx context.Context, c *mlflowclient.Client, run *mlflowclient.Run, f *Folder, lm *mlflowclient.LoggedModel, step int64) (*mlflowclient.LoggedModel, error) {
	id := lm.Info.ModelID
	if run != nil {
		if err := c.Runs.LogOutputs(ctx, run.Info.RunID, []mlflowclient.ModelOutput{{ModelID: id, Step: step}}); err != nil {
			return nil, fmt.Errorf("linking to run %s: %w", run.Info.RunID, err)
		}
		if err := copyStepMetrics(ctx, c, run, id, step); err != nil {
			return nil, err
		}
	}
	stage, err := os.MkdirTemp("", "capflow-mlmodel-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	if err := stageFolder(f, stage, lm, run); err != nil {
		return nil, err
	}
	if err := c.Artifacts.UploadDir(ctx, lm.Info.ArtifactURI, stage, ""); err != nil {
		return nil, fmt.Errorf("uploading to %s: %w", lm.Info.ArtifactURI, err)
	}
	return c.LoggedModels.Finalize(ctx, id, mlflowclient.LoggedModelReady)
}

// stageFolder copies f into the empty directory stage (hard links where the
// file system allows) with MLmodel rewritten for the logged model lm.
func stageFolder(f *Folder, stage string, lm *mlflowclient.LoggedModel, run *mlflowclient.Run) error {
	err := filepath.WalkDir(f.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(f.Dir, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(stage, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case rel == MLmodelFile || !d.Type().IsRegular():
			return nil
		}
		if os.Link(p, dst) == nil {
			return nil
		}
		return copyFile(p, dst)
	})
	if err != nil {
		return fmt.Errorf("staging %s: %w", f.Dir, err)
	}
	m := *f.MLmodel
	id := lm.Info.ModelID
	m.ArtifactPath, m.ModelID, m.ModelUUID, m.RunID = lm.Info.ArtifactURI, &id, id, ""
	if run != nil {
		m.RunID = run.Info.RunID
	}
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(stage, MLmodelFile), b, 0o644)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// mergeParams returns params plus the run's params, the run's winning on a
// clash, as Model.log does ({**params, **run.data.params}).
func mergeParams(params []mlflowclient.Param, run *mlflowclient.Run) []mlflowclient.Param {
	if run == nil {
		return params
	}
	out := slices.DeleteFunc(slices.Clone(params), func(p mlflowclient.Param) bool {
		_, ok := run.Param(p.Key)
		return ok
	})
	return append(out, run.Data.Params...)
}

// mergeTags returns base with each of override replacing a tag of the same key.
func mergeTags(base, override []mlflowclient.Tag) []mlflowclient.Tag {
	out := slices.Clone(base)
	for _, t := range override {
		if i := slices.IndexFunc(out, func(b mlflowclient.Tag) bool { return b.Key == t.Key }); i >= 0 {
			out[i] = t
		} else {
			out = append(out, t)
		}
	}
	return out
}

// copyStepMetrics logs the run's metric points at step, not yet tied to a
// model, again with the model's id: what Model.log does so the logged model
// shows the metrics it was produced with.
func copyStepMetrics(ctx context.Context, c *mlflowclient.Client, run *mlflowclient.Run, modelID string, step int64) error {
	var points []mlflowclient.Metric
	for _, latest := range run.Data.Metrics {
		for m, err := range c.Runs.AllMetricHistory(ctx, run.Info.RunID, latest.Key, 0) {
			if err != nil {
				return fmt.Errorf("metric history of %s: %w", latest.Key, err)
			}
			if m.Step == step && m.ModelID == "" {
				m.ModelID, m.RunID = modelID, run.Info.RunID
				points = append(points, m)
			}
		}
	}
	if len(points) == 0 {
		return nil
	}
	if err := c.Runs.LogBatch(ctx, run.Info.RunID, mlflowclient.Batch{Metrics: points}); err != nil {
		return fmt.Errorf("copying step %d metrics to the model: %w", step, err)
	}
	return nil
}

// Version tag keys Register sets from a folder's metadata (VersionTags).
const (
	TagGitCommit      = "capflow.git_commit"
	TagFeatureVersion = "capflow.feature_version"
	TagDatasetDigest  = "capflow.dataset_digest"
)

// VersionTags returns the model version tags for a folder's provenance: git
// commit, feature_version and dataset digest from its metadata (the Meta*
// keys), for those it has.
func VersionTags(f *Folder) []mlflowclient.Tag {
	var tags []mlflowclient.Tag
	for _, kv := range [][2]string{{MetaGitCommit, TagGitCommit}, {MetaFeatureVersion, TagFeatureVersion}, {MetaDatasetDigest, TagDatasetDigest}} {
		if v := f.Metadata[kv[0]]; v != "" {
			tags = append(tags, mlflowclient.Tag{Key: kv[1], Value: v})
		}
	}
	return tags
}

// RegisterOptions name the logged model to register and the version's tags.
type RegisterOptions struct {
	Name    string // registered model name; default DefaultName
	ModelID string // the logged model (m-…), required; it must be READY
	// RunID defaults to the logged model's source run.
	RunID       string
	Tags        []mlflowclient.Tag // e.g. VersionTags(folder)
	Description string
}

// Register creates a version of the registered model opts.Name (created if
// missing) from a logged model, with source models:/<model_id> and model_id
// set, as mlflow.register_model("models:/<model_id>", name) does, and waits
// until the version is READY (bound the wait with ctx).
func Register(ctx context.Context, c *mlflowclient.Client, opts RegisterOptions) (*mlflowclient.ModelVersion, error) {
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	fail := func(err error) error { return &RegistryError{Name: opts.Name, Err: err} }
	if opts.ModelID == "" {
		return nil, fail(fmt.Errorf("%w: a logged model id is required", ErrBadModel))
	}
	lm, err := c.LoggedModels.Get(ctx, opts.ModelID)
	if err != nil {
		return nil, fail(fmt.Errorf("logged model %s: %w", opts.ModelID, err))
	}
	if lm.Info.Status != mlflowclient.LoggedModelReady {
		return nil, fail(fmt.Errorf("%w: logged model %s is %s, not READY", ErrBadModel, opts.ModelID, lm.Info.Status))
	}
	if opts.RunID == "" {
		opts.RunID = lm.Info.SourceRunID
	}
	if _, err := c.Registry.GetOrCreateModel(ctx, mlflowclient.CreateModelOptions{Name: opts.Name}); err != nil {
		return nil, fail(err)
	}
	mv, err := c.Registry.CreateVersion(ctx, mlflowclient.CreateVersionOptions{
		Name: opts.Name, Source: lm.URI(), RunID: opts.RunID, ModelID: lm.Info.ModelID,
		Tags: opts.Tags, Description: opts.Description,
	})
	if err != nil {
		return nil, fail(err)
	}
	mv, err = c.Registry.WaitVersionReady(ctx, opts.Name, mv.Version)
	if err != nil {
		return mv, fail(err)
	}
	return mv, nil
}
