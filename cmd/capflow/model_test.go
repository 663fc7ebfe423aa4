package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/models/onnxgraph"
)

// writeModelFolder packages a two-input toy scorer (scores = intent·candidatesᵀ).
func writeModelFolder(t *testing.T, scale float32) string {
	t.Helper()
	g := onnxgraph.New("toy")
	x := g.Input("intent", onnxgraph.Float, "batch", 2)
	k := g.Input("candidates", onnxgraph.Float, "candidates", 2)
	raw := g.Op("MatMul", []string{x, g.Op("Transpose", []string{k}, onnxgraph.AttrInts("perm", 1, 0))})
	g.Node("Mul", []string{raw, g.FloatScalar(scale)}, []string{"scores"})
	g.Output("scores", onnxgraph.Float, "batch", "candidates")
	b, err := (&onnxgraph.Model{Graph: g, Opset: 17}).Marshal()
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "model")
	require.NoError(t, mlmodel.Write(dir, &mlmodel.Model{
		ONNX: b,
		Example: map[string]mlmodel.Tensor{
			"intent":     {Shape: []int64{1, 2}, Data: []float32{1, 2}},
			"candidates": {Shape: []int64{3, 2}, Data: []float32{1, 0, 0, 1, 1, 1}},
		},
		Files:    map[string][]byte{"config.json": []byte(`{}`)},
		Metadata: map[string]string{mlmodel.MetaFeatureVersion: "fv-cli"},
	}))
	return dir
}

func TestModelCommands(t *testing.T) {
	c := testenv.Client(t)
	uri := testenv.MLflowURI(t)
	ctx := context.Background()
	name := testenv.Name(t, "cli-shgat")
	experiment := testenv.Name(t, "cli-model")
	t.Cleanup(func() {
		_ = c.Registry.DeleteModel(context.Background(), name)
		if e, err := c.Experiments.GetByName(context.Background(), experiment); err == nil {
			_ = c.Experiments.Delete(context.Background(), e.ID)
		}
	})
	t.Setenv("MLFLOW_RUN_ID", "")
	mlflow := []string{"--tracking-uri", uri, "--name", name}

	out, err := capflow(t, append([]string{"model", "register", "--experiment", experiment, "--stage", "Production"}, append(mlflow, writeModelFolder(t, 1))...)...)
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^logged model m-[0-9a-f]{32} without a run in experiment \d+ `, out)
	assert.Regexp(t, `(?m)^registered `+regexp.QuoteMeta(name)+` version 1 \(READY, source models:/m-[0-9a-f]{32}\)$`, out)
	assert.Contains(t, out, name+" version 1: None → Production\n")

	exp, err := c.Experiments.GetByName(ctx, experiment)
	require.NoError(t, err)
	run, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: exp.ID, RunName: "train"})
	require.NoError(t, err)
	out, err = capflow(t, append([]string{"model", "register", "--run-id", run.Info.RunID}, append(mlflow, writeModelFolder(t, 2))...)...)
	require.NoError(t, err)
	assert.Contains(t, out, "from run "+run.Info.RunID)
	mv, err := c.Registry.GetVersion(ctx, name, "2")
	require.NoError(t, err)
	fv, _ := mv.Tag(mlmodel.TagFeatureVersion)
	assert.Equal(t, "fv-cli", fv)

	out, err = capflow(t, append([]string{"model", "promote", "--version", "2", "--stage", "Staging"}, mlflow...)...)
	require.NoError(t, err)
	assert.Equal(t, name+" version 2: None → Staging\n", out)
	out, err = capflow(t, append([]string{"model", "promote", "--version", "2", "--stage", "Production"}, mlflow...)...)
	require.NoError(t, err)
	assert.Equal(t, name+" version 2: Staging → Production (archived version 1)\n", out)
	out, err = capflow(t, append([]string{"model", "rollback"}, mlflow...)...)
	require.NoError(t, err)
	assert.Equal(t, "rolled back: "+name+" version 1: Archived → Production (archived version 2)\n", out)

	_, err = capflow(t, append([]string{"model", "promote", "--version", "2", "--stage", "Nowhere"}, mlflow...)...)
	assert.ErrorIs(t, err, mlmodel.ErrBadStage)
	_, err = capflow(t, append([]string{"model", "register", "--run-id", run.Info.RunID, "--experiment", experiment}, append(mlflow, writeModelFolder(t, 3))...)...)
	assert.ErrorContains(t, err, "not both")
	_, err = capflow(t, append([]string{"model", "register", "--stage", "Archived"}, append(mlflow, writeModelFolder(t, 3))...)...)
	assert.ErrorIs(t, err, mlmodel.ErrBadStage, "refused before anything is logged")
	_, err = capflow(t, append([]string{"model", "register"}, append(mlflow, t.TempDir())...)...)
	assert.ErrorIs(t, err, mlmodel.ErrNoMLmodel)

	dst := filepath.Join(t.TempDir(), "prod")
	out, err = capflow(t, "model", "download", "--tracking-uri", uri, "models:/"+name+"/Production", dst)
	require.NoError(t, err)
	assert.Regexp(t, `^downloaded models:/\S+/Production to \S+ \(model m-[0-9a-f]{32}, 2 inputs, 1 extra files\)\n$`, out)
	_, err = os.Stat(filepath.Join(dst, mlmodel.ModelFile))
	require.NoError(t, err)

	out, err = capflow(t, "model", "show", dst)
	require.NoError(t, err)
	assert.Contains(t, out, "input:     intent float32[-1,2]\n")
	assert.Contains(t, out, "metadata:  feature_version=fv-cli\n")
	_, err = capflow(t, "model", "show", "--tracking-uri", uri, "models:/"+name+"/Staging")
	assert.Error(t, err, "version 2 left Staging for Production, then Archived")
	out, err = capflow(t, "model", "show", "--tracking-uri", uri, "models:/"+name+"/2")
	require.NoError(t, err)
	assert.Contains(t, out, "output:    scores float32[-1,-1]\n")
	assert.Contains(t, out, "file:      extra_files/config.json\n")
}
