package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/pipeline"
)

func TestRunnerUntrackedOrderValuesAndFailure(t *testing.T) {
	ctx := context.Background()
	var order []string
	first := pipeline.StageFunc("first", func(ctx context.Context, env *pipeline.Env) error {
		order = append(order, "first")
		env.Set("feature_version", "fv-1")
		return env.Tracker.LogMetrics(ctx, 0, map[string]float64{"x": 1}) // Discard: no error
	})
	second := pipeline.StageFunc("second", func(ctx context.Context, env *pipeline.Env) error {
		order = append(order, "second")
		v, ok := env.Value("feature_version")
		if !ok || v != "fv-1" {
			return errors.New("value from the first stage not visible")
		}
		return nil
	})
	r := &pipeline.Runner{}
	res, err := r.Run(ctx, first, second)
	require.NoError(t, err)
	assert.Equal(t, []string{"first", "second"}, order)
	assert.Equal(t, "fv-1", res.Values["feature_version"])
	assert.Empty(t, res.ParentRunID)

	boom := errors.New("boom")
	order = nil
	failing := pipeline.StageFunc("failing", func(context.Context, *pipeline.Env) error { order = append(order, "failing"); return boom })
	res, err = r.Run(ctx, first, failing, second)
	require.ErrorIs(t, err, boom)
	var se *pipeline.StageError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "failing", se.Stage)
	assert.Equal(t, []string{"first", "failing"}, order, "a stage after a failure must not run")
	require.Len(t, res.Stages, 2)
	assert.ErrorIs(t, res.Stages[1].Err, boom)
}

func TestRunnerRecoversPanickingStage(t *testing.T) {
	bad := pipeline.StageFunc("bad", func(context.Context, *pipeline.Env) error { panic("plugin bug") })
	_, err := (&pipeline.Runner{}).Run(context.Background(), bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "panic: plugin bug")
}

func TestRunnerRejectsBadStageLists(t *testing.T) {
	ok := pipeline.StageFunc("a", func(context.Context, *pipeline.Env) error { return nil })
	for name, stages := range map[string][]pipeline.Stage{
		"none":      nil,
		"nil stage": {ok, nil},
		"duplicate": {ok, ok},
		"no name":   {pipeline.StageFunc("", func(context.Context, *pipeline.Env) error { return nil })},
		"comma":     {pipeline.StageFunc("a,b", func(context.Context, *pipeline.Env) error { return nil })},
	} {
		_, err := (&pipeline.Runner{}).Run(context.Background(), stages...)
		var ce *pipeline.ConfigError
		assert.ErrorAs(t, err, &ce, name)
	}
}

func TestParamsFormatting(t *testing.T) {
	p := pipeline.Params("f", 0.1, "i", 3, "b", true, "s", "x")
	assert.Equal(t, map[string]string{"f": "0.1", "i": "3", "b": "true", "s": "x"}, p)
}

// TestRunnerTracked runs two stages against the real MLflow server and reads
// back what the UI would show: one parent run, a nested FINISHED run per
// stage with its params, metrics and artifact, the published value as a
// parent tag, and a failing stage ending both runs FAILED.
func TestRunnerTracked(t *testing.T) {
	ctx := context.Background()
	c := testenv.Client(t)
	exp := testenv.Name(t, "pipeline")
	r := &pipeline.Runner{Client: c, Experiment: exp, RunName: "tracked"}
	stage := pipeline.StageFunc("work", func(ctx context.Context, env *pipeline.Env) error {
		if err := env.Tracker.LogParams(ctx, pipeline.Params("alpha", 0.5)); err != nil {
			return err
		}
		for step := range 3 {
			if err := env.Tracker.LogMetrics(ctx, int64(step), map[string]float64{"loss": 1 / float64(step+1)}); err != nil {
				return err
			}
		}
		env.Set("feature_version", "fv-test")
		return env.Tracker.LogArtifactBytes(ctx, "reports/r.json", []byte(`{"ok":true}`))
	})
	res, err := r.Run(ctx, stage)
	require.NoError(t, err)
	require.NotEmpty(t, res.ParentRunID)

	parent, err := c.Runs.Get(ctx, res.ParentRunID)
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.RunFinished, parent.Info.Status)
	assert.Equal(t, "fv-test", tag(parent, "capflow.feature_version"))
	assert.Equal(t, "work", tag(parent, pipeline.TagStages))

	child, err := c.Runs.Get(ctx, res.Stages[0].RunID)
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.RunFinished, child.Info.Status)
	assert.Equal(t, res.ParentRunID, tag(child, mlflowclient.TagParentRunID))
	assert.Equal(t, "work", child.Info.RunName)
	var alpha string
	for _, p := range child.Data.Params {
		if p.Key == "alpha" {
			alpha = p.Value
		}
	}
	assert.Equal(t, "0.5", alpha)
	hist, err := c.Runs.MetricHistory(ctx, child.Info.RunID, "loss", mlflowclient.MetricHistoryOptions{})
	require.NoError(t, err)
	assert.Len(t, hist.Items, 3)
	files, err := c.Artifacts.List(ctx, child.Info.ArtifactURI, "reports")
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.True(t, strings.HasSuffix(files[0].Path, "r.json"))

	boom := errors.New("stage broke")
	res, err = r.Run(ctx, pipeline.StageFunc("broken", func(context.Context, *pipeline.Env) error { return boom }))
	require.ErrorIs(t, err, boom)
	parent, err = c.Runs.Get(ctx, res.ParentRunID)
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.RunFailed, parent.Info.Status)
	assert.Contains(t, tag(parent, pipeline.TagError), "stage broke")
	child, err = c.Runs.Get(ctx, res.Stages[0].RunID)
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.RunFailed, child.Info.Status)
}

func tag(r *mlflowclient.Run, key string) string {
	for _, t := range r.Data.Tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}
