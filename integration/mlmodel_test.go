package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/models/shgat"
)

// mlmScorer is the model the MLflow Model tests package: ONNX bytes, an input
// example and the scores the model must give on it ([batch][candidates]).
// To test another model, change mlmNewScorer only.
type mlmScorer struct {
	onnx    []byte
	example map[string]mlmodel.Tensor
	want    [][]float64
}

// mlmNewScorer exports a random SHGAT scorer (shgat.ExportScorer) and
// computes the expected scores with the Go Scorer itself.
func mlmNewScorer(t *testing.T, seed uint64) mlmScorer {
	t.Helper()
	const heads, headDim, b, c, n = 2, 4, 3, 4, 5
	d := heads * headDim
	rng := rand.New(rand.NewPCG(seed, 7))
	vec := func(k int, scale float64) []float64 {
		v := make([]float64, k)
		for i := range v {
			v[i] = (rng.Float64()*2 - 1) * scale
		}
		return v
	}
	s := &shgat.Scorer{
		Dim: d, Heads: heads, HeadDim: headDim, Wq: vec(d*d, 0.5), CtxQ: vec(d*d, 0.5), CtxGate: 0.3,
		Scale: 1 / (float64(heads) * math.Sqrt(headDim)), CtxScale: 1 / math.Sqrt(float64(d)),
		Evidence: []float64{0.4, -0.2, 1},
	}
	m, err := shgat.ExportScorer(s)
	require.NoError(t, err)
	model, err := m.Marshal()
	require.NoError(t, err)

	// float32 inputs; the Go scorer sees exactly the same values.
	f32 := func(v []float64) []float32 {
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(x)
		}
		return out
	}
	f64 := func(v []float32) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	intent, ctx, keys := f32(vec(b*d, 1)), f32(vec(b*c*d, 1)), f32(vec(n*d, 1))
	mask := []float32{1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0} // row 2 has no context at all
	rel := []float32{1, 1.5, 0.5, 2, 0.8}
	nf := len(s.Evidence)
	ev := f32(vec(b*n*nf, 2))
	want := make([][]float64, b)
	for i := range b {
		req := shgat.Request{Intent: f64(intent[i*d : (i+1)*d]), Evidence: f64(ev[i*n*nf : (i+1)*n*nf])}
		for j := range c {
			if mask[i*c+j] == 1 {
				req.Context = append(req.Context, f64(ctx[(i*c+j)*d:(i*c+j+1)*d]))
			}
		}
		want[i], err = s.Score(req, f64(keys), f64(rel))
		require.NoError(t, err)
	}
	// The ONNX scorer takes the projected rows (shgat.Scorer.Project).
	projKeys, err := s.ProjectKeys(keys)
	require.NoError(t, err)
	ctxKeys, err := s.ProjectContext(ctx)
	require.NoError(t, err)
	return mlmScorer{
		onnx: model,
		example: map[string]mlmodel.Tensor{
			shgat.InputIntent:      {Shape: []int64{b, int64(d)}, Data: intent},
			shgat.InputContext:     {Shape: []int64{b, c, int64(d)}, Data: ctx},
			shgat.InputContextKeys: {Shape: []int64{b, c, int64(d)}, Data: ctxKeys},
			shgat.InputContextMask: {Shape: []int64{b, c}, Data: mask},
			shgat.InputCandidates:  {Shape: []int64{n, int64(d)}, Data: projKeys},
			shgat.InputReliability: {Shape: []int64{n}, Data: rel},
			shgat.InputEvidence:    {Shape: []int64{b, n, int64(nf)}, Data: ev},
		},
		want: want,
	}
}

// mlmWrite packages s as a folder with capflow's extra files and metadata.
func mlmWrite(t *testing.T, s mlmScorer, featureVersion string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shgat")
	require.NoError(t, mlmodel.Write(dir, &mlmodel.Model{
		ONNX:    s.onnx,
		Example: s.example,
		Files: map[string][]byte{
			"config.json":         []byte(`{"heads":2,"head_dim":4}`),
			"capability_ids.json": []byte(`["c1","c2","c3","c4","c5"]`),
			"feature_version.txt": []byte(featureVersion),
			"metrics.json":        []byte(`{"mrr":0.5}`),
			"representations.bin": make([]byte, 160),
		},
		Metadata: map[string]string{
			mlmodel.MetaFeatureVersion: featureVersion, mlmodel.MetaGitCommit: "0123abcd", mlmodel.MetaDatasetDigest: "d1g3st",
		},
	}))
	return dir
}

// mlmPython runs a Python script with the venv's python against the test
// server and returns its stdout (the script's last line is its JSON answer).
func mlmPython(t *testing.T, ctx context.Context, script string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, testenv.Python(t), append([]string{"-c", script}, args...)...)
	env := []string{"MLFLOW_TRACKING_URI=" + testenv.MLflowURI(t), "MLFLOW_DISABLE_TELEMETRY=true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MLFLOW_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("python failed (%v):\n%s\n%s", err, stderr.String(), stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return lines[len(lines)-1]
}

// mlmCheckPython makes sure the venv has what mlflow.onnx needs.
func mlmCheckPython(t *testing.T, ctx context.Context) {
	t.Helper()
	cmd := exec.CommandContext(ctx, testenv.Python(t), "-c", "import mlflow.onnx, onnx, onnxruntime")
	if out, err := cmd.CombinedOutput(); err != nil {
		testenv.Missing(t, "Python packages onnx and onnxruntime in the venv (scripts/requirements.txt): %v\n%s", err, out)
	}
}

// What Python reads in a Go-written folder, and what it predicts.
const mlmPyInspect = `
import json, sys
import mlflow, numpy as np
from mlflow.models import Model
path = sys.argv[1]
m = Model.load(path)
ex = m.load_input_example(path)
info = mlflow.models.get_model_info(path)
print(json.dumps({
    "inputs": [[s.name, str(s.type), list(s.shape)] for s in m.signature.inputs.inputs],
    "outputs": [[s.name, str(s.type), list(s.shape)] for s in m.signature.outputs.inputs],
    "info_inputs": info.signature.inputs.input_names(),
    "example": {k: [str(v.dtype), list(v.shape)] for k, v in ex.items()},
    "flavors": sorted(info.flavors),
    "metadata": m.metadata,
}))
`

// Load by URI (a stage, an alias…) and predict on the model's own example.
const mlmPyPredict = `
import json, sys
import mlflow
from mlflow.models import Model
uri = sys.argv[1]
model = mlflow.pyfunc.load_model(uri)
local = mlflow.artifacts.download_artifacts(uri)
ex = Model.load(local).load_input_example(local)
out = model.predict(ex)
print(json.dumps({k: v.tolist() for k, v in out.items()}))
`

func mlmAssertScores(t *testing.T, want [][]float64, got [][]float64) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Len(t, got[i], len(want[i]))
		for j := range want[i] {
			assert.InDelta(t, want[i][j], got[i][j], 1e-5, "score[%d][%d]", i, j)
		}
	}
}

func TestMLmodelPythonReadsGoFolder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mlmCheckPython(t, ctx)
	s := mlmNewScorer(t, 1)
	dir := mlmWrite(t, s, "fv-py")

	var got struct {
		Inputs, Outputs [][]any
		InfoInputs      []string `json:"info_inputs"`
		Example         map[string][]any
		Flavors         []string
		Metadata        map[string]string
	}
	require.NoError(t, json.Unmarshal([]byte(mlmPython(t, ctx, mlmPyInspect, dir)), &got))
	assert.Equal(t, []string{"intent", "context", "context_keys", "context_mask", "candidates", "reliability", "evidence"}, got.InfoInputs)
	assert.Equal(t, []any{"evidence", "float32", []any{-1.0, -1.0, 3.0}}, got.Inputs[6])
	assert.Equal(t, []any{"context", "float32", []any{-1.0, -1.0, 8.0}}, got.Inputs[1])
	assert.Equal(t, []any{"scores", "float32", []any{-1.0, -1.0}}, got.Outputs[0])
	assert.Equal(t, []any{"float32", []any{3.0, 4.0, 8.0}}, got.Example["context"])
	assert.Equal(t, []string{"onnx", "python_function"}, got.Flavors)
	assert.Equal(t, "fv-py", got.Metadata["feature_version"])

	var scores map[string][][]float64
	require.NoError(t, json.Unmarshal([]byte(mlmPython(t, ctx, mlmPyPredict, dir)), &scores))
	mlmAssertScores(t, s.want, scores["scores"])
}

// Python's mlflow.onnx.save_model and log_model on the same ONNX model,
// signature, example, metadata and extra files produce the same folder and
// the same kind of logged model as the Go side.
const mlmPyReference = `
import json, os, sys
import mlflow, mlflow.onnx, onnx
from mlflow.models import Model
godir, pydir, run_id = sys.argv[1], sys.argv[2], sys.argv[3]
gm = Model.load(godir)
ex = gm.load_input_example(godir)
extra = [os.path.join(godir, e["path"]) for e in gm.flavors["onnx"]["extra_files"]]
model = onnx.load(os.path.join(godir, "model.onnx"))
mlflow.onnx.save_model(model, pydir, input_example=ex, signature=gm.signature, metadata=gm.metadata, extra_files=extra)
with mlflow.start_run(run_id=run_id):
    info = mlflow.onnx.log_model(model, name="pyref", input_example=ex, signature=gm.signature, metadata=gm.metadata, extra_files=extra)
print(json.dumps({"model_id": info.model_id}))
`

func TestMLmodelMatchesPythonFolderAndLoggedModel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mlmCheckPython(t, ctx)
	c := testenv.Client(t)
	s := mlmNewScorer(t, 2)
	godir := mlmWrite(t, s, "fv-ref")
	pydir := filepath.Join(t.TempDir(), "py")

	expID, err := c.Experiments.Create(ctx, mlflowclient.CreateExperimentOptions{Name: testenv.Name(t, "mlmodel-ref")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Experiments.Delete(context.Background(), expID) })
	pyRun, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: expID, RunName: "python"})
	require.NoError(t, err)
	goRun, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: expID, RunName: "go"})
	require.NoError(t, err)

	var ref struct {
		ModelID string `json:"model_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(mlmPython(t, ctx, mlmPyReference, godir, pydir, pyRun.Info.RunID)), &ref))

	// The folders: same files; identical examples, signature, flavors.
	assert.Equal(t, mlmTree(t, pydir), mlmTree(t, godir))
	for _, f := range []string{mlmodel.ExampleFile, mlmodel.ServingInputFile, "extra_files/config.json"} {
		a, err := os.ReadFile(filepath.Join(pydir, f))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(godir, f))
		require.NoError(t, err)
		assert.Equal(t, string(a), string(b), "%s is byte for byte what MLflow writes", f)
	}
	py, gm := mlmMLmodelMap(t, pydir), mlmMLmodelMap(t, godir)
	assert.Equal(t, mlmKeys(py, ""), mlmKeys(gm, ""), "MLmodel has the same fields at every level")
	// onnx.save_model re-encodes model.onnx: repeated dims unpacked where
	// onnxgraph packs them, both valid protobuf; sizes differ by that only.
	pyONNX, err := os.Stat(filepath.Join(pydir, mlmodel.ModelFile))
	require.NoError(t, err)
	goONNX, err := os.Stat(filepath.Join(godir, mlmodel.ModelFile))
	require.NoError(t, err)
	assert.Equal(t, py["model_size_bytes"].(float64)-float64(pyONNX.Size()), gm["model_size_bytes"].(float64)-float64(goONNX.Size()), "model_size_bytes")
	for _, k := range []string{"signature", "saved_input_example_info", "metadata", "mlflow_version",
		"model_id", "prompts", "is_signature_from_type_hint", "type_hint_from_example"} {
		assert.Equal(t, py[k], gm[k], k)
	}
	pyFl, goFl := py["flavors"].(map[string]any), gm["flavors"].(map[string]any)
	assert.Equal(t, pyFl["onnx"], goFl["onnx"], "flavors.onnx")
	pyPf, goPf := pyFl["python_function"].(map[string]any), goFl["python_function"].(map[string]any)
	for _, k := range []string{"data", "env", "loader_module"} {
		assert.Equal(t, pyPf[k], goPf[k], "flavors.python_function.%s", k)
	}
	assert.True(t, strings.HasPrefix(pyPf["python_version"].(string), goPf["python_version"].(string)+"."), "python %s vs %s", pyPf["python_version"], goPf["python_version"])
	assert.Equal(t, mlmReqNames(t, pydir), mlmReqNames(t, godir), "requirements.txt names the same packages")

	// Read verifies Python's folder as it verifies its own.
	pf, err := mlmodel.Read(pydir)
	require.NoError(t, err)
	gf, err := mlmodel.Read(godir)
	require.NoError(t, err)
	assert.Equal(t, gf.Inputs, pf.Inputs)
	assert.Equal(t, gf.Outputs, pf.Outputs)
	assert.Equal(t, gf.Example, pf.Example)
	assert.Equal(t, gf.ExtraFiles, pf.ExtraFiles)
	assert.Equal(t, gf.Metadata, pf.Metadata)

	// The logged models, Python's and Go's, on the same server.
	lm, err := mlmodel.Log(ctx, c, goRun.Info.RunID, godir, mlmodel.LogOptions{Name: "goref"})
	require.NoError(t, err)
	pylm, err := c.LoggedModels.Get(ctx, ref.ModelID)
	require.NoError(t, err)
	assert.Equal(t, pylm.Info.Status, lm.Info.Status)
	assert.Equal(t, pylm.Info.ModelType, lm.Info.ModelType)
	assert.Equal(t, pylm.Info.ExperimentID, lm.Info.ExperimentID)
	tagKeys := func(m *mlflowclient.LoggedModel) []string {
		var k []string
		for _, t := range m.Info.Tags {
			if t.Key != mlflowclient.TagGitCommit { // only a Go binary built from a checkout knows it
				k = append(k, t.Key)
			}
		}
		sort.Strings(k)
		return k
	}
	assert.Equal(t, tagKeys(pylm), tagKeys(lm))
	pyDL, goDL := filepath.Join(t.TempDir(), "pydl"), filepath.Join(t.TempDir(), "godl")
	_, err = c.DownloadURI(ctx, pylm.URI(), pyDL)
	require.NoError(t, err)
	_, err = c.DownloadURI(ctx, lm.URI(), goDL)
	require.NoError(t, err)
	assert.Equal(t, mlmTree(t, pyDL), mlmTree(t, goDL), "same artifact layout")
	pyLogged, goLogged := mlmMLmodelMap(t, pyDL), mlmMLmodelMap(t, goDL)
	assert.Equal(t, mlmKeys(pyLogged, ""), mlmKeys(goLogged, ""))
	assert.Equal(t, lm.Info.ModelID, goLogged["model_id"])
	assert.Equal(t, lm.Info.ModelID, goLogged["model_uuid"])
	assert.Equal(t, goRun.Info.RunID, goLogged["run_id"])
	assert.Equal(t, lm.Info.ArtifactURI, goLogged["artifact_path"])
	assert.Equal(t, pylm.Info.ModelID, pyLogged["model_uuid"], "Python does the same")
	for _, r := range []*mlflowclient.Run{pyRun, goRun} {
		got, err := c.Runs.Get(ctx, r.Info.RunID)
		require.NoError(t, err)
		assert.Len(t, got.Outputs.ModelOutputs, 1, "the run lists its model as an output")
	}
}

func mlmTree(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "registered_model_meta" { // written by Python's downloader
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files = append(files, filepath.ToSlash(rel))
		return nil
	}))
	sort.Strings(files)
	return files
}

// mlmMLmodelMap parses MLmodel as plain maps (numbers as float64).
func mlmMLmodelMap(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, mlmodel.MLmodelFile))
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(b, &doc))
	raw, err := json.Marshal(doc)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out))
	return out
}

func mlmKeys(v any, prefix string) []string {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	var out []string
	for k, sub := range m {
		out = append(out, prefix+k)
		out = append(out, mlmKeys(sub, prefix+k+".")...)
	}
	sort.Strings(out)
	return out
}

func mlmReqNames(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, mlmodel.RequirementsFile))
	require.NoError(t, err)
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		name, _, _ := strings.Cut(line, "==")
		if name = strings.TrimSpace(name); name != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func TestMLmodelRegistryLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := testenv.Client(t)
	name := testenv.Name(t, "capflow-shgat")
	t.Cleanup(func() { _ = c.Registry.DeleteModel(context.Background(), name) })
	expID, err := c.Experiments.Create(ctx, mlflowclient.CreateExperimentOptions{Name: testenv.Name(t, "mlmodel")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Experiments.Delete(context.Background(), expID) })

	// Two trainings, two models: Log + Register each.
	type trained struct {
		scorer mlmScorer
		dir    string
		run    string
		lm     *mlflowclient.LoggedModel
		mv     *mlflowclient.ModelVersion
	}
	train := func(seed uint64) *trained {
		s := mlmNewScorer(t, seed)
		dir := mlmWrite(t, s, "fv-"+string(rune('a'+seed)))
		run, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: expID, RunName: "train"})
		require.NoError(t, err)
		require.NoError(t, c.Runs.LogParam(ctx, run.Info.RunID, "lr", "0.01"))
		require.NoError(t, c.Runs.LogMetric(ctx, run.Info.RunID, mlflowclient.Metric{Key: "mrr", Value: 0.5 + float64(seed)/10, Step: 0}))
		lm, err := mlmodel.Log(ctx, c, run.Info.RunID, dir, mlmodel.LogOptions{})
		require.NoError(t, err)
		f, err := mlmodel.Read(dir)
		require.NoError(t, err)
		mv, err := mlmodel.Register(ctx, c, mlmodel.RegisterOptions{Name: name, ModelID: lm.ID(), Tags: mlmodel.VersionTags(f)})
		require.NoError(t, err)
		return &trained{s, dir, run.Info.RunID, lm, mv}
	}
	a := train(1)

	// The logged model: READY, linked to its run, the run's params and step metrics copied.
	assert.Equal(t, mlflowclient.LoggedModelReady, a.lm.Info.Status)
	assert.Equal(t, a.run, a.lm.Info.SourceRunID)
	assert.Equal(t, mlmodel.DefaultName, a.lm.Info.Name)
	lm, err := c.LoggedModels.Get(ctx, a.lm.ID())
	require.NoError(t, err)
	v, _ := lm.Param("lr")
	assert.Equal(t, "0.01", v)
	require.Len(t, lm.Data.Metrics, 1)
	assert.Equal(t, "mrr", lm.Data.Metrics[0].Key)
	user, _ := lm.Tag(mlflowclient.TagUser)
	assert.NotEmpty(t, user)
	run, err := c.Runs.Get(ctx, a.run)
	require.NoError(t, err)
	assert.Equal(t, []mlflowclient.ModelOutput{{ModelID: a.lm.ID(), Step: 0}}, run.Outputs.ModelOutputs)
	assert.Contains(t, lm.ModelVersions(), mlflowclient.LoggedModelRegistered{Name: name, Version: a.mv.Version})

	// The version: source models:/m-…, the run, READY, provenance tags.
	assert.Equal(t, "models:/"+a.lm.ID(), a.mv.Source)
	assert.Equal(t, a.run, a.mv.RunID)
	assert.Equal(t, mlflowclient.VersionReady, a.mv.Status)
	fv, _ := a.mv.Tag(mlmodel.TagFeatureVersion)
	assert.Equal(t, "fv-b", fv)
	gc, _ := a.mv.Tag(mlmodel.TagGitCommit)
	assert.Equal(t, "0123abcd", gc)

	stage := func(version string) mlflowclient.Stage {
		t.Helper()
		mv, err := c.Registry.GetVersion(ctx, name, version)
		require.NoError(t, err)
		return mv.CurrentStage
	}

	// Nothing to roll back to yet; no model at all is another error.
	_, err = mlmodel.Rollback(ctx, c, name)
	require.ErrorIs(t, err, mlmodel.ErrNoRollbackTarget)
	_, err = mlmodel.Rollback(ctx, c, testenv.Name(t, "absent"))
	assert.True(t, mlflowclient.IsNotFound(err), "%v", err)

	tr, err := mlmodel.Promote(ctx, c, name, a.mv.Version, mlflowclient.StageStaging)
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.StageNone, tr.From)
	assert.Equal(t, mlflowclient.StageStaging, tr.Version.CurrentStage)
	tr, err = mlmodel.Promote(ctx, c, name, a.mv.Version, mlflowclient.StageProduction)
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.StageStaging, tr.From)
	assert.Empty(t, tr.Archived)
	assert.Equal(t, mlflowclient.StageProduction, stage(a.mv.Version))

	_, err = mlmodel.Rollback(ctx, c, name)
	require.ErrorIs(t, err, mlmodel.ErrNoRollbackTarget, "a single version has nothing before it")

	b := train(2)
	_, err = mlmodel.Promote(ctx, c, name, b.mv.Version, mlflowclient.StageStaging)
	require.NoError(t, err)
	tr, err = mlmodel.Promote(ctx, c, name, b.mv.Version, mlflowclient.StageProduction)
	require.NoError(t, err)
	assert.Equal(t, []string{a.mv.Version}, tr.Archived, "Production archives the previous Production")
	assert.Equal(t, mlflowclient.StageArchived, stage(a.mv.Version))
	assert.Equal(t, mlflowclient.StageProduction, stage(b.mv.Version))
	hist, _ := tr.Version.Tag(mlmodel.TagStageHistory)
	assert.Regexp(t, `^Staging@\d+ Production@\d+$`, hist)

	// A version archived out of Staging never served: Rollback skips it.
	cc := train(3)
	_, err = mlmodel.Promote(ctx, c, name, cc.mv.Version, mlflowclient.StageStaging)
	require.NoError(t, err)
	_, err = mlmodel.Promote(ctx, c, name, b.mv.Version, mlflowclient.StageStaging) // demote b: Production is now empty
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.StageArchived, stage(cc.mv.Version))
	_, err = mlmodel.Promote(ctx, c, name, b.mv.Version, mlflowclient.StageProduction)
	require.NoError(t, err)

	tr, err = mlmodel.Rollback(ctx, c, name)
	require.NoError(t, err)
	assert.Equal(t, a.mv.Version, tr.Version.Version, "the version that left Production last (c never served)")
	assert.Equal(t, []string{b.mv.Version}, tr.Archived)
	assert.Equal(t, mlflowclient.StageProduction, stage(a.mv.Version))
	assert.Equal(t, mlflowclient.StageArchived, stage(b.mv.Version))
	assert.Equal(t, mlflowclient.StageArchived, stage(cc.mv.Version))
	tr, err = mlmodel.Rollback(ctx, c, name)
	require.NoError(t, err)
	assert.Equal(t, b.mv.Version, tr.Version.Version, "rolling back twice undoes the rollback")

	_, err = mlmodel.Promote(ctx, c, name, a.mv.Version, "Archived")
	require.ErrorIs(t, err, mlmodel.ErrBadStage)

	_, err = mlmodel.Promote(ctx, c, name, a.mv.Version, mlflowclient.StageStaging)
	require.NoError(t, err)

	// Go downloads by alias, by stage and by logged model id: the same bytes.
	require.NoError(t, c.Registry.SetAlias(ctx, name, "champion", b.mv.Version))
	for uri, want := range map[string]*trained{
		"models:/" + name + "@champion":   b,
		"models:/" + name + "/Production": b,
		"models:/" + name + "/Staging":    a,
		"models:/" + a.lm.ID():            a,
	} {
		dst := filepath.Join(t.TempDir(), "dl")
		f, err := mlmodel.Download(ctx, c, uri, dst)
		require.NoError(t, err, uri)
		assert.Equal(t, dst, f.Dir)
		got, err := f.ONNX()
		require.NoError(t, err)
		assert.Equal(t, want.scorer.onnx, got, uri)
		assert.Equal(t, want.scorer.example, f.Example, uri)
		assert.Equal(t, want.lm.ID(), f.ModelID(), uri)
		assert.Len(t, f.ExtraFiles, 5)
		_, err = mlmodel.Download(ctx, c, uri, dst)
		assert.ErrorIs(t, err, mlmodel.ErrExists, "never over a folder")
	}
	_, err = mlmodel.Download(ctx, c, "models:/"+name+"/None", filepath.Join(t.TempDir(), "none"))
	assert.True(t, mlflowclient.IsNotFound(err), "%v", err)
	var re *mlmodel.RegistryError
	_, err = mlmodel.Register(ctx, c, mlmodel.RegisterOptions{Name: name})
	assert.True(t, errors.As(err, &re) && errors.Is(err, mlmodel.ErrBadModel), "%v", err)

	// Python serves the Staging version (a) through pyfunc and scores like Go.
	mlmCheckPython(t, ctx)
	var scores map[string][][]float64
	require.NoError(t, json.Unmarshal([]byte(mlmPython(t, ctx, mlmPyPredict, "models:/"+name+"/Staging")), &scores))
	mlmAssertScores(t, a.scorer.want, scores["scores"])
}
