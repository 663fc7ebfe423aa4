package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/capflow/capflow/mlflowclient"
)

// Tracker records what a stage did in its MLflow run. Metrics go through an
// asynchronous batched logger, so logging never waits on the server inside a
// training loop; Flush (done by the Runner when the stage ends) waits for
// everything to be acknowledged.
type Tracker interface {
	// RunID is the MLflow run, "" when not tracking.
	RunID() string
	LogParams(ctx context.Context, params map[string]string) error
	// LogMetrics logs every key at the same step and timestamp.
	LogMetrics(ctx context.Context, step int64, metrics map[string]float64) error
	SetTags(ctx context.Context, tags map[string]string) error
	// LogArtifact uploads a local file into the run's artifact directory
	// dir ("" for the root).
	LogArtifact(ctx context.Context, localPath, dir string) error
	// LogArtifactBytes writes data as the artifact at path (e.g.
	// "validation/report.json").
	LogArtifactBytes(ctx context.Context, path string, data []byte) error
	Flush(ctx context.Context) error
}

// Discard is the Tracker of an untracked run: it records nothing.
var Discard Tracker = discard{}

type discard struct{}

func (discard) RunID() string                                               { return "" }
func (discard) LogParams(context.Context, map[string]string) error          { return nil }
func (discard) LogMetrics(context.Context, int64, map[string]float64) error { return nil }
func (discard) SetTags(context.Context, map[string]string) error            { return nil }
func (discard) LogArtifact(context.Context, string, string) error           { return nil }
func (discard) LogArtifactBytes(context.Context, string, []byte) error      { return nil }
func (discard) Flush(context.Context) error                                 { return nil }

// mlflowTracker tracks one MLflow run.
type mlflowTracker struct {
	c           *mlflowclient.Client
	runID       string
	artifactURI string
	log         *mlflowclient.AsyncLogger
}

func newMLflowTracker(c *mlflowclient.Client, run *mlflowclient.Run) (*mlflowTracker, error) {
	lg, err := mlflowclient.NewAsyncLogger(c, run.Info.RunID, mlflowclient.AsyncLoggerOptions{})
	if err != nil {
		return nil, err
	}
	return &mlflowTracker{c: c, runID: run.Info.RunID, artifactURI: run.Info.ArtifactURI, log: lg}, nil
}

func (t *mlflowTracker) RunID() string { return t.runID }

func (t *mlflowTracker) LogParams(ctx context.Context, params map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(params)) {
		if err := t.log.LogParam(ctx, k, params[k]); err != nil {
			return err
		}
	}
	return nil
}

func (t *mlflowTracker) LogMetrics(ctx context.Context, step int64, metrics map[string]float64) error {
	now := time.Now().UnixMilli()
	ms := make([]mlflowclient.Metric, 0, len(metrics))
	for _, k := range slices.Sorted(maps.Keys(metrics)) {
		ms = append(ms, mlflowclient.Metric{Key: k, Value: metrics[k], Step: step, Timestamp: now})
	}
	return t.log.LogMetrics(ctx, ms...)
}

func (t *mlflowTracker) SetTags(ctx context.Context, tags map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		if err := t.log.SetTag(ctx, k, tags[k]); err != nil {
			return err
		}
	}
	return nil
}

func (t *mlflowTracker) LogArtifact(ctx context.Context, localPath, dir string) error {
	return t.c.Artifacts.UploadFile(ctx, t.artifactURI, localPath, dir)
}

func (t *mlflowTracker) LogArtifactBytes(ctx context.Context, path string, data []byte) error {
	return t.c.Artifacts.Put(ctx, t.artifactURI, path, bytes.NewReader(data), int64(len(data)))
}

func (t *mlflowTracker) Flush(ctx context.Context) error { return t.log.Flush(ctx) }

func (t *mlflowTracker) close(ctx context.Context) error { return t.log.Close(ctx) }

// Params formats typed values as MLflow params: floats in their shortest
// exact form, durations as Go durations, everything else with %v.
func Params(kv ...any) map[string]string {
	out := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		k := fmt.Sprint(kv[i])
		switch v := kv[i+1].(type) {
		case float64:
			out[k] = strconv.FormatFloat(v, 'g', -1, 64)
		case float32:
			out[k] = strconv.FormatFloat(float64(v), 'g', -1, 32)
		case time.Duration:
			out[k] = v.String()
		case time.Time:
			out[k] = v.UTC().Format(time.RFC3339)
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}
