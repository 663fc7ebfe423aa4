package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/mlflowclient"
)

// regExperimentAndRun creates a fresh experiment and a run in it.
func regExperimentAndRun(t *testing.T, c *mlflowclient.Client) (expID string, run *mlflowclient.Run) {
	t.Helper()
	ctx := context.Background()
	expID, err := c.Experiments.Create(ctx, mlflowclient.CreateExperimentOptions{Name: testenv.Name(t, "lm-exp")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Experiments.Delete(context.Background(), expID) })
	run, err = c.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: expID, RunName: "producer"})
	require.NoError(t, err)
	return expID, run
}

func TestLoggedModelLifecycle(t *testing.T) {
	c := testenv.Client(t)
	ctx := context.Background()
	expID, run := regExperimentAndRun(t, c)

	// 150 params: more than one request's worth (the official client sends 100 per request).
	params := make([]mlflowclient.Param, 150)
	for i := range params {
		params[i] = mlflowclient.Param{Key: fmt.Sprintf("p%03d", i), Value: fmt.Sprint(i)}
	}
	params[0] = mlflowclient.Param{Key: "lr", Value: "0.1"}
	m, err := c.LoggedModels.Create(ctx, mlflowclient.CreateLoggedModelOptions{
		ExperimentID: expID, Name: "clf", ModelType: "onnx", SourceRunID: run.Info.RunID,
		Params: params, Tags: []mlflowclient.Tag{{Key: "team", Value: "ml"}},
	})
	require.NoError(t, err)
	id := m.ID()
	assert.Regexp(t, `^m-[0-9a-f]{32}$`, id)
	assert.Equal(t, "models:/"+id, m.URI())
	assert.Equal(t, expID, m.Info.ExperimentID)
	assert.Equal(t, "clf", m.Info.Name)
	assert.Equal(t, "onnx", m.Info.ModelType)
	assert.Equal(t, run.Info.RunID, m.Info.SourceRunID)
	assert.Equal(t, mlflowclient.LoggedModelPending, m.Info.Status)
	assert.Contains(t, m.Info.ArtifactURI, "mlflow-artifacts:/"+expID+"/models/"+id)
	assert.Positive(t, m.Info.CreationTimestampMs)
	assert.Len(t, m.Data.Params, 150, "all params, including the second request's")
	v, _ := m.Param("p149")
	assert.Equal(t, "149", v)
	v, _ = m.Tag("team")
	assert.Equal(t, "ml", v)

	require.NoError(t, c.LoggedModels.LogParams(ctx, id, mlflowclient.Param{Key: "extra", Value: "x"}))
	require.NoError(t, c.LoggedModels.SetTags(ctx, id,
		mlflowclient.Tag{Key: "stage", Value: "candidate"}, mlflowclient.Tag{Key: "team", Value: "infra"},
		mlflowclient.Tag{Key: "a/b", Value: "slash"}))
	require.NoError(t, c.LoggedModels.DeleteTag(ctx, id, "stage"))
	// The server cannot route a "/" in the tag key of DELETE …/tags/<key>:
	// refused before sending, and the tag is still there.
	var ve *mlflowclient.ValidationError
	require.ErrorAs(t, c.LoggedModels.DeleteTag(ctx, id, "a/b"), &ve)

	m, err = c.LoggedModels.Finalize(ctx, id, mlflowclient.LoggedModelReady)
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.LoggedModelReady, m.Info.Status)

	m, err = c.LoggedModels.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.LoggedModelReady, m.Info.Status)
	v, _ = m.Param("extra")
	assert.Equal(t, "x", v)
	v, _ = m.Tag("team")
	assert.Equal(t, "infra", v, "SetTags overwrites")
	_, ok := m.Tag("stage")
	assert.False(t, ok, "deleted tag")
	v, _ = m.Tag("a/b")
	assert.Equal(t, "slash", v)

	// Params are immutable, as for runs; re-logging the same value is harmless
	// (a retried request), a different one fails.
	require.NoError(t, c.LoggedModels.LogParams(ctx, id, mlflowclient.Param{Key: "lr", Value: "0.1"}, mlflowclient.Param{Key: "extra", Value: "x"}))
	err = c.LoggedModels.LogParams(ctx, id, mlflowclient.Param{Key: "lr", Value: "0.2"})
	var ae *mlflowclient.APIError
	require.ErrorAs(t, err, &ae, "changing a param")
	assert.Equal(t, 400, ae.StatusCode)

	page, err := c.LoggedModels.Search(ctx, mlflowclient.SearchLoggedModelsOptions{
		ExperimentIDs: []string{expID}, Filter: "name = 'clf' AND params.lr = '0.1'",
	})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	assert.Equal(t, id, page.Items[0].ID())

	// The run links to the model it produced (runs/outputs).
	require.NoError(t, c.Runs.LogOutputs(ctx, run.Info.RunID, []mlflowclient.ModelOutput{{ModelID: id, Step: 7}}))
	got, err := c.Runs.Get(ctx, run.Info.RunID)
	require.NoError(t, err)
	assert.Contains(t, got.Outputs.ModelOutputs, mlflowclient.ModelOutput{ModelID: id, Step: 7})

	require.NoError(t, c.LoggedModels.Delete(ctx, id))
	_, err = c.LoggedModels.Get(ctx, id)
	assert.True(t, mlflowclient.IsNotFound(err), "deleted model: %v", err)
	_, err = c.LoggedModels.Finalize(ctx, "m-00000000000000000000000000000000", mlflowclient.LoggedModelReady)
	assert.True(t, mlflowclient.IsNotFound(err), "unknown model: %v", err)
}

func TestLoggedModelSearchPagingAndOrder(t *testing.T) {
	c := testenv.Client(t)
	ctx := context.Background()
	expID, _ := regExperimentAndRun(t, c)

	var ids []string
	for i := range 5 {
		m, err := c.LoggedModels.Create(ctx, mlflowclient.CreateLoggedModelOptions{
			ExperimentID: expID, Name: fmt.Sprintf("m%d", i),
			Params: []mlflowclient.Param{{Key: "rank", Value: fmt.Sprint(i)}},
		})
		require.NoError(t, err)
		ids = append(ids, m.ID())
		if i%2 == 0 {
			_, err = c.LoggedModels.Finalize(ctx, m.ID(), mlflowclient.LoggedModelReady)
			require.NoError(t, err)
		}
	}

	opts := mlflowclient.SearchLoggedModelsOptions{
		ExperimentIDs: []string{expID}, MaxResults: 2,
		OrderBy: []mlflowclient.LoggedModelOrderBy{{FieldName: "name", Ascending: true}},
	}
	first, err := c.LoggedModels.Search(ctx, opts)
	require.NoError(t, err)
	assert.Len(t, first.Items, 2)
	assert.NotEmpty(t, first.NextPageToken)

	var names, got []string
	for m, err := range c.LoggedModels.All(ctx, opts) {
		require.NoError(t, err)
		names = append(names, m.Info.Name)
		got = append(got, m.ID())
	}
	assert.Equal(t, []string{"m0", "m1", "m2", "m3", "m4"}, names)
	assert.ElementsMatch(t, ids, got)

	// Descending is the zero value, as on the wire.
	opts.OrderBy[0].Ascending = false
	desc, err := mlflowclient.Collect(c.LoggedModels.All(ctx, opts))
	require.NoError(t, err)
	require.Len(t, desc, 5)
	assert.Equal(t, "m4", desc[0].Info.Name)

	found, err := mlflowclient.Collect(c.LoggedModels.All(ctx, mlflowclient.SearchLoggedModelsOptions{
		ExperimentIDs: []string{expID}, Filter: "params.rank IN ('2', '3')",
	}))
	require.NoError(t, err)
	require.Len(t, found, 2)
	for _, m := range found {
		rank, _ := m.Param("rank")
		assert.Contains(t, []string{"2", "3"}, rank)
		want := mlflowclient.LoggedModelPending
		if rank == "2" {
			want = mlflowclient.LoggedModelReady
		}
		assert.Equal(t, want, m.Info.Status, m.Info.Name)
	}
	assert.True(t, slices.ContainsFunc(found, func(m *mlflowclient.LoggedModel) bool { return m.Info.Name == "m2" }))
}
