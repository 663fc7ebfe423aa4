// Package integration holds tests that run against the real services `make
// test` starts: the MLflow server, PostgreSQL + pgvector, Redis and ONNX
// Runtime. Under CI=true a missing service fails the test instead of skipping it.
package integration

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/mlflowclient"
)

func TestExperimentsLifecycle(t *testing.T) {
	c := testenv.Client(t)
	ctx := context.Background()
	name := testenv.Name(t, "exp")

	id, err := c.Experiments.Create(ctx, mlflowclient.CreateExperimentOptions{Name: name, Tags: []mlflowclient.Tag{{Key: "team", Value: "ml"}}})
	require.NoError(t, err)

	_, err = c.Experiments.Create(ctx, mlflowclient.CreateExperimentOptions{Name: name})
	assert.True(t, mlflowclient.IsAlreadyExists(err), "duplicate create: %v", err)

	again, err := c.Experiments.GetOrCreate(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, id, again.ID, "GetOrCreate resolves to the existing experiment")

	exp, err := c.Experiments.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, name, exp.Name)
	v, ok := exp.Tag("team")
	assert.True(t, ok)
	assert.Equal(t, "ml", v)
	assert.Equal(t, "active", exp.LifecycleStage)
	assert.NotEmpty(t, exp.ArtifactLocation)

	require.NoError(t, c.Experiments.SetTag(ctx, id, mlflowclient.TagNote, "capflow *integration* test"))
	require.NoError(t, c.Experiments.DeleteTag(ctx, id, "team"))
	exp, err = c.Experiments.GetByName(ctx, name)
	require.NoError(t, err)
	_, ok = exp.Tag("team")
	assert.False(t, ok)
	note, _ := exp.Tag(mlflowclient.TagNote)
	assert.Equal(t, "capflow *integration* test", note)

	renamed := name + "-renamed"
	require.NoError(t, c.Experiments.Update(ctx, id, renamed))
	_, err = c.Experiments.GetByName(ctx, name)
	assert.True(t, mlflowclient.IsNotFound(err), "old name is gone: %v", err)

	require.NoError(t, c.Experiments.Delete(ctx, id))
	exp, err = c.Experiments.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "deleted", exp.LifecycleStage)
	require.NoError(t, c.Experiments.Restore(ctx, id))
	exp, err = c.Experiments.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "active", exp.LifecycleStage)

	_, err = c.Experiments.Get(ctx, "987654321")
	assert.Equal(t, mlflowclient.CodeResourceDoesNotExist, mlflowclient.ErrorCode(err))
}

func TestExperimentsSearchPaging(t *testing.T) {
	c := testenv.Client(t)
	ctx := context.Background()
	prefix := testenv.Name(t, "page")
	var want []string
	for i := range 5 {
		id, err := c.Experiments.Create(ctx, mlflowclient.CreateExperimentOptions{Name: fmt.Sprintf("%s-%d", prefix, i)})
		require.NoError(t, err)
		want = append(want, id)
	}
	opts := mlflowclient.SearchExperimentsOptions{Filter: fmt.Sprintf("name LIKE '%s-%%'", prefix), MaxResults: 2, OrderBy: []string{"name ASC"}}
	page, err := c.Experiments.Search(ctx, opts)
	require.NoError(t, err)
	assert.Len(t, page.Items, 2)
	assert.NotEmpty(t, page.NextPageToken)

	got, err := mlflowclient.Collect(c.Experiments.All(ctx, opts))
	require.NoError(t, err)
	var ids []string
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	assert.Equal(t, want, ids)
}

func TestRunsLifecycleAndData(t *testing.T) {
	c := testenv.Client(t)
	ctx := context.Background()
	exp, err := c.Experiments.GetOrCreate(ctx, testenv.Name(t, "runs"))
	require.NoError(t, err)

	start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	parent, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{
		ExperimentID: exp.ID, RunName: "parent", StartTime: start, Description: "the sweep",
		Tags: []mlflowclient.Tag{{Key: "phase", Value: "train"}},
	})
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.RunRunning, parent.Info.Status)
	assert.Equal(t, start.UnixMilli(), parent.Info.StartTime)
	assert.Equal(t, "parent", parent.Info.RunName)
	for _, k := range []string{mlflowclient.TagUser, mlflowclient.TagSourceName, mlflowclient.TagSourceType, mlflowclient.TagNote, "phase"} {
		_, ok := parent.Tag(k)
		assert.True(t, ok, "tag %s", k)
	}

	child, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: exp.ID, RunName: "child", ParentRunID: parent.Info.RunID})
	require.NoError(t, err)
	pid, _ := child.Tag(mlflowclient.TagParentRunID)
	assert.Equal(t, parent.Info.RunID, pid)

	id := child.Info.RunID
	require.NoError(t, c.Runs.LogParam(ctx, id, "lr", "0.001"))
	require.NoError(t, c.Runs.SetTag(ctx, id, "stage", "a"))
	require.NoError(t, c.Runs.SetTag(ctx, id, "stage", "b"))
	require.NoError(t, c.Runs.SetTag(ctx, id, "tmp", "x"))
	require.NoError(t, c.Runs.DeleteTag(ctx, id, "tmp"))
	require.NoError(t, c.Runs.LogMetric(ctx, id, mlflowclient.Metric{Key: "loss", Value: 1.5, Step: 0}))
	require.NoError(t, c.Runs.LogMetric(ctx, id, mlflowclient.Metric{Key: "loss", Value: math.NaN(), Step: 1, Timestamp: 1}))
	require.NoError(t, c.Runs.LogMetric(ctx, id, mlflowclient.Metric{Key: "loss", Value: math.Inf(1), Step: 2, Timestamp: 2}))

	err = c.Runs.LogParam(ctx, id, "lr", "0.1")
	assert.True(t, mlflowclient.IsInvalidParameter(err), "params are immutable: %v", err)

	// log-batch spanning several requests: 2,500 metric points, 150 params, 120 tags.
	var b mlflowclient.Batch
	for i := range 2500 {
		b.Metrics = append(b.Metrics, mlflowclient.Metric{Key: "acc", Value: float64(i) / 2500, Timestamp: 1700000000000 + int64(i), Step: int64(i)})
	}
	for i := range 150 {
		b.Params = append(b.Params, mlflowclient.Param{Key: fmt.Sprintf("p%03d", i), Value: fmt.Sprint(i)})
	}
	for i := range 120 {
		b.Tags = append(b.Tags, mlflowclient.Tag{Key: fmt.Sprintf("t%03d", i), Value: "v"})
	}
	require.NoError(t, c.Runs.LogBatch(ctx, id, b))

	run, err := c.Runs.Get(ctx, id)
	require.NoError(t, err)
	assert.Len(t, run.Data.Params, 151)
	lr, _ := run.Param("lr")
	assert.Equal(t, "0.001", lr)
	stage, _ := run.Tag("stage")
	assert.Equal(t, "b", stage)
	_, ok := run.Tag("tmp")
	assert.False(t, ok)
	_, ok = run.Tag("t119")
	assert.True(t, ok)

	hist, err := mlflowclient.Collect(c.Runs.AllMetricHistory(ctx, id, "acc", 1000))
	require.NoError(t, err)
	require.Len(t, hist, 2500)
	slices.SortFunc(hist, func(a, b mlflowclient.Metric) int { return int(a.Step - b.Step) })
	for i, m := range hist {
		require.Equal(t, int64(i), m.Step)
		require.Equal(t, float64(i)/2500, m.Value)
	}
	loss, err := mlflowclient.Collect(c.Runs.AllMetricHistory(ctx, id, "loss", 0))
	require.NoError(t, err)
	require.Len(t, loss, 3)
	slices.SortFunc(loss, func(a, b mlflowclient.Metric) int { return int(a.Step - b.Step) })
	assert.Equal(t, 1.5, loss[0].Value)
	assert.True(t, math.IsNaN(loss[1].Value))
	// The SQL store clamps ±Inf to ±MaxFloat64 (sqlalchemy_store.sanitize_metric_value).
	assert.Equal(t, math.MaxFloat64, loss[2].Value)

	// Datasets as inputs.
	ds := mlflowclient.DatasetInput{
		Tags:    []mlflowclient.Tag{{Key: "mlflow.data.context", Value: "train"}},
		Dataset: mlflowclient.Dataset{Name: "seal-tools-dev", Digest: "abc123", SourceType: "local", Source: `{"uri":"file:///data/dev.jsonl"}`},
	}
	require.NoError(t, c.Runs.LogInputs(ctx, id, []mlflowclient.DatasetInput{ds}, nil))
	run, err = c.Runs.Get(ctx, id)
	require.NoError(t, err)
	require.Len(t, run.Inputs.DatasetInputs, 1)
	assert.Equal(t, "seal-tools-dev", run.Inputs.DatasetInputs[0].Dataset.Name)

	// Search: nested runs by parent tag, by metric, by param; paging.
	runs, err := mlflowclient.Collect(c.Runs.All(ctx, mlflowclient.SearchRunsOptions{
		ExperimentIDs: []string{exp.ID},
		Filter:        fmt.Sprintf("tags.mlflow.parentRunId = '%s' AND params.lr = '0.001'", parent.Info.RunID),
	}))
	require.NoError(t, err)
	require.Len(t, runs, 1)
	assert.Equal(t, id, runs[0].Info.RunID)

	require.NoError(t, c.Runs.End(ctx, id, mlflowclient.RunFinished))
	info, err := c.Runs.Update(ctx, parent.Info.RunID, mlflowclient.UpdateRunOptions{RunName: "parent-renamed"})
	require.NoError(t, err)
	assert.Equal(t, "parent-renamed", info.RunName)
	run, err = c.Runs.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.RunFinished, run.Info.Status)
	assert.NotZero(t, run.Info.EndTime)

	all, err := mlflowclient.Collect(c.Runs.All(ctx, mlflowclient.SearchRunsOptions{ExperimentIDs: []string{exp.ID}, MaxResults: 1, OrderBy: []string{"attributes.start_time ASC"}}))
	require.NoError(t, err)
	assert.Len(t, all, 2)

	require.NoError(t, c.Runs.Delete(ctx, id))
	active, err := mlflowclient.Collect(c.Runs.All(ctx, mlflowclient.SearchRunsOptions{ExperimentIDs: []string{exp.ID}}))
	require.NoError(t, err)
	assert.Len(t, active, 1)
	deleted, err := mlflowclient.Collect(c.Runs.All(ctx, mlflowclient.SearchRunsOptions{ExperimentIDs: []string{exp.ID}, ViewType: mlflowclient.ViewDeletedOnly}))
	require.NoError(t, err)
	assert.Len(t, deleted, 1)
	require.NoError(t, c.Runs.Restore(ctx, id))
	run, err = c.Runs.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "active", run.Info.LifecycleStage)

	_, err = c.Runs.Get(ctx, "0123456789abcdef0123456789abcdef")
	assert.True(t, mlflowclient.IsNotFound(err), "%v", err)
}

func TestLogBatchRejectsBadInputBeforeSending(t *testing.T) {
	c := testenv.Client(t)
	ctx := context.Background()
	exp, err := c.Experiments.GetOrCreate(ctx, testenv.Name(t, "bad"))
	require.NoError(t, err)
	run, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: exp.ID})
	require.NoError(t, err)
	// One bad key among good points: nothing at all may be logged.
	b := mlflowclient.Batch{Metrics: []mlflowclient.Metric{{Key: "ok", Value: 1, Timestamp: 1}, {Key: "../escape", Value: 1, Timestamp: 1}}}
	err = c.Runs.LogBatch(ctx, run.Info.RunID, b)
	var ve *mlflowclient.ValidationError
	require.ErrorAs(t, err, &ve)
	got, err := c.Runs.Get(ctx, run.Info.RunID)
	require.NoError(t, err)
	assert.Empty(t, got.Data.Metrics, "nothing half-written")
}
