package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/mlflowclient"
)

// The interop tests check that what the Go client writes is what the official
// Python client reads (scripts/interop_check.py), and the other way round.

// interopScript runs scripts/interop_check.py with the venv's python in mode
// ("check" or "write"), passing in as JSON, and returns its stdout. It fails
// the test, with the script's report, if the script exits non-zero.
func interopScript(t *testing.T, ctx context.Context, mode string, in any) string {
	t.Helper()
	py := testenv.Python(t)
	script, err := filepath.Abs(filepath.Join("..", "scripts", "interop_check.py"))
	require.NoError(t, err)
	payload, err := json.Marshal(in)
	require.NoError(t, err)

	cmd := exec.CommandContext(ctx, py, script, mode, string(payload))
	env := []string{"MLFLOW_DISABLE_TELEMETRY=true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MLFLOW_") { // the payload names the server
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("interop_check.py %s failed (%v):\n%s\n%s", mode, err, stderr.String(), stdout.String())
	}
	return stdout.String()
}

// jsonFloat writes NaN and ±Inf the way interop_check.py reads them.
func jsonFloat(v float64) any {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Infinity"
	case math.IsInf(v, -1):
		return "-Infinity"
	}
	return v
}

func TestInteropGoWritesPythonReads(t *testing.T) {
	c := testenv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Experiment and run with params and tags.
	expID, err := c.Experiments.Create(ctx, mlflowclient.CreateExperimentOptions{Name: testenv.Name(t, "interop")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Experiments.Delete(context.Background(), expID) })
	run, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: expID, RunName: "go-writer",
		Tags: []mlflowclient.Tag{{Key: "team", Value: "ml"}}})
	require.NoError(t, err)
	runID := run.Info.RunID

	params := map[string]string{"learning_rate": "0.01", "layers": "3", "optimizer": "adam"}
	tags := map[string]string{"team": "ml", "stage": "dev", "note": "héllo ✓ \"quoted\""}
	var batch mlflowclient.Batch
	for k, v := range params {
		batch.Params = append(batch.Params, mlflowclient.Param{Key: k, Value: v})
	}
	for k, v := range tags {
		batch.Tags = append(batch.Tags, mlflowclient.Tag{Key: k, Value: v})
	}

	// Metric histories: loss has a NaN in the middle; grad_norm ends on NaN,
	// so the run's latest value is NaN too.
	ts := time.Now().Add(-time.Minute).UnixMilli()
	series := map[string][]float64{
		"loss":      {1.0, 0.5, math.NaN(), 0.25, 0.125},
		"grad_norm": {3.5, 2.25, math.NaN()},
	}
	wantMetrics := map[string][][3]any{}
	for key, vals := range series {
		for step, v := range vals {
			m := mlflowclient.Metric{Key: key, Value: v, Timestamp: ts + int64(step), Step: int64(step)}
			batch.Metrics = append(batch.Metrics, m)
			wantMetrics[key] = append(wantMetrics[key], [3]any{m.Step, jsonFloat(v), m.Timestamp})
		}
	}
	require.NoError(t, c.Runs.LogBatch(ctx, runID, batch))
	// One point through the single-metric endpoint as well.
	acc := mlflowclient.Metric{Key: "accuracy", Value: 0.875, Timestamp: ts, Step: 7}
	require.NoError(t, c.Runs.LogMetric(ctx, runID, acc))
	wantMetrics["accuracy"] = [][3]any{{acc.Step, acc.Value, acc.Timestamp}}

	// Artifacts: a file at the root and a directory with a nested directory.
	files := map[string]string{
		"summary.json":  `{"best_loss": 0.125}` + "\n",
		"data/a.txt":    "alpha\n",
		"data/sub/b.md": "# beta ✓\n",
	}
	local := t.TempDir()
	for p, content := range files {
		full := filepath.Join(local, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(content), 0o644))
	}
	require.NoError(t, c.Runs.LogArtifact(ctx, runID, filepath.Join(local, "summary.json"), ""))
	require.NoError(t, c.Runs.LogArtifacts(ctx, runID, filepath.Join(local, "data"), "data"))
	require.NoError(t, c.Runs.End(ctx, runID, mlflowclient.RunFinished))
	fileEntry := func(p string) map[string]any {
		return map[string]any{"path": p, "is_dir": false, "file_size": len(files[p])}
	}
	dirEntry := func(p string) map[string]any { return map[string]any{"path": p, "is_dir": true} }

	// Registered model with two versions, stage transitions and aliases.
	name := testenv.Name(t, "interop-model")
	_, err = c.Registry.CreateModel(ctx, mlflowclient.CreateModelOptions{Name: name, Description: "interop model",
		Tags: []mlflowclient.Tag{{Key: "owner", Value: "capflow"}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Registry.DeleteModel(context.Background(), name) })
	versions := map[string]map[string]any{}
	for i, src := range []string{"runs:/" + runID + "/data", "runs:/" + runID + "/summary.json"} {
		mv, err := c.Registry.CreateVersion(ctx, mlflowclient.CreateVersionOptions{Name: name, Source: src, RunID: runID,
			Description: "version from go", Tags: []mlflowclient.Tag{{Key: "index", Value: strconv.Itoa(i + 1)}}})
		require.NoError(t, err)
		mv, err = c.Registry.WaitVersionReady(ctx, name, mv.Version)
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(i+1), mv.Version)
		versions[mv.Version] = map[string]any{"run_id": runID, "source": src, "description": "version from go",
			"tags": map[string]string{"index": mv.Version}}
	}
	// v1: None → Staging → Production; v2: → Production, archiving v1.
	_, err = c.Registry.TransitionStage(ctx, name, "1", "staging", false)
	require.NoError(t, err)
	_, err = c.Registry.TransitionStage(ctx, name, "1", "Production", false)
	require.NoError(t, err)
	mv2, err := c.Registry.TransitionStage(ctx, name, "2", "Production", true)
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.StageProduction, mv2.CurrentStage)
	require.NoError(t, c.Registry.SetAlias(ctx, name, "champion", "2"))
	require.NoError(t, c.Registry.SetAlias(ctx, name, "previous", "1"))
	require.NoError(t, c.Registry.SetVersionTag(ctx, name, "2", "validated", "true"))
	versions["1"]["current_stage"], versions["1"]["aliases"] = "Archived", []string{"previous"}
	versions["2"]["current_stage"], versions["2"]["aliases"] = "Production", []string{"champion"}
	versions["2"]["tags"] = map[string]string{"index": "2", "validated": "true"}

	out := interopScript(t, ctx, "check", map[string]any{
		"tracking_uri": testenv.MLflowURI(t),
		"run": map[string]any{
			"run_id": runID, "experiment_id": expID, "run_name": "go-writer", "status": "FINISHED",
			"params": params, "tags": tags, "metrics": wantMetrics,
		},
		"artifacts": map[string]any{
			"run_id": runID,
			"listings": map[string]any{
				"":         []any{fileEntry("summary.json"), dirEntry("data")},
				"data":     []any{fileEntry("data/a.txt"), dirEntry("data/sub")},
				"data/sub": []any{fileEntry("data/sub/b.md")},
			},
			"files": files,
		},
		"model": map[string]any{
			"name": name, "description": "interop model", "tags": map[string]string{"owner": "capflow"},
			"aliases":  map[string]string{"champion": "2", "previous": "1"},
			"latest":   map[string]string{"Production": "2", "Archived": "1"},
			"versions": versions,
		},
	})
	assert.Contains(t, out, "interop check OK")
}

func TestInteropPythonWritesGoReads(t *testing.T) {
	c := testenv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	expName := testenv.Name(t, "interop-py")
	out := interopScript(t, ctx, "write", map[string]any{"tracking_uri": testenv.MLflowURI(t), "experiment_name": expName})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var wrote struct {
		RunID        string              `json:"run_id"`
		ExperimentID string              `json:"experiment_id"`
		RunName      string              `json:"run_name"`
		Params       map[string]string   `json:"params"`
		Tags         map[string]string   `json:"tags"`
		Metrics      map[string][][3]any `json:"metrics"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &wrote), "script output: %s", out)
	t.Cleanup(func() { _ = c.Experiments.Delete(context.Background(), wrote.ExperimentID) })

	exp, err := c.Experiments.Get(ctx, wrote.ExperimentID)
	require.NoError(t, err)
	assert.Equal(t, expName, exp.Name)

	run, err := c.Runs.Get(ctx, wrote.RunID)
	require.NoError(t, err)
	assert.Equal(t, wrote.ExperimentID, run.Info.ExperimentID)
	assert.Equal(t, "python-writer", run.Info.RunName)
	assert.Equal(t, mlflowclient.RunFinished, run.Info.Status)
	gotParams := map[string]string{}
	for _, p := range run.Data.Params {
		gotParams[p.Key] = p.Value
	}
	assert.Equal(t, wrote.Params, gotParams)
	for k, v := range wrote.Tags {
		got, ok := run.Tag(k)
		assert.True(t, ok, "tag %s missing", k)
		assert.Equal(t, v, got, "tag %s", k)
	}

	require.Contains(t, wrote.Metrics, "loss")
	want := wrote.Metrics["loss"]
	hist, err := mlflowclient.Collect(c.Runs.AllMetricHistory(ctx, wrote.RunID, "loss", 0))
	require.NoError(t, err)
	require.Len(t, hist, len(want))
	byStep := map[int64]mlflowclient.Metric{}
	for _, m := range hist {
		byStep[m.Step] = m
	}
	for _, p := range want {
		step, value, tsMillis := int64(p[0].(float64)), p[1].(float64), int64(p[2].(float64))
		m, ok := byStep[step]
		require.True(t, ok, "step %d missing", step)
		assert.Equal(t, value, m.Value, "loss at step %d", step)
		assert.Equal(t, tsMillis, m.Timestamp, "loss timestamp at step %d", step)
	}
	// The run's latest loss is the last step's.
	var latest *mlflowclient.Metric
	for i := range run.Data.Metrics {
		if run.Data.Metrics[i].Key == "loss" {
			latest = &run.Data.Metrics[i]
		}
	}
	require.NotNil(t, latest, "run has no latest loss")
	assert.Equal(t, want[len(want)-1][1].(float64), latest.Value)
}
