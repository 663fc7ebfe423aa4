package mlflowclient

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Field names follow MLflow's protos (service.proto, model_registry.proto);
// JSON tags are the proto field names the REST API uses.

// Tag is a key/value tag on an experiment, run, logged model, registered model
// or model version.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Param is a run or logged-model parameter.
type Param struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Metric is one metric point. Timestamp is milliseconds since the epoch.
// NaN and ±Inf travel as the strings proto3 JSON uses; note that MLflow's SQL
// store keeps NaN but clamps ±Inf to ±math.MaxFloat64.
type Metric struct {
	Key           string  `json:"key"`
	Value         float64 `json:"value"`
	Timestamp     int64   `json:"timestamp"`
	Step          int64   `json:"step"`
	RunID         string  `json:"run_id,omitempty"`
	ModelID       string  `json:"model_id,omitempty"`
	DatasetName   string  `json:"dataset_name,omitempty"`
	DatasetDigest string  `json:"dataset_digest,omitempty"`
}

type metricWire struct {
	Key           string          `json:"key"`
	Value         json.RawMessage `json:"value"`
	Timestamp     int64           `json:"timestamp"`
	Step          int64           `json:"step"`
	RunID         string          `json:"run_id,omitempty"`
	ModelID       string          `json:"model_id,omitempty"`
	DatasetName   string          `json:"dataset_name,omitempty"`
	DatasetDigest string          `json:"dataset_digest,omitempty"`
}

// MarshalJSON writes non-finite values as "NaN", "Infinity", "-Infinity".
func (m Metric) MarshalJSON() ([]byte, error) { return m.appendJSON(nil), nil }

// appendJSON encodes m by hand: log-batch bodies hold thousands of points and
// this is the client's hot path in training loops (about 10× cheaper than
// encoding/json, without allocations).
func (m Metric) appendJSON(b []byte) []byte {
	b = append(b, `{"key":`...)
	b = appendJSONString(b, m.Key)
	b = append(b, `,"value":`...)
	b = appendFloat(b, m.Value)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, m.Timestamp, 10)
	b = append(b, `,"step":`...)
	b = strconv.AppendInt(b, m.Step, 10)
	for _, f := range [...]struct{ name, v string }{
		{`,"run_id":`, m.RunID}, {`,"model_id":`, m.ModelID},
		{`,"dataset_name":`, m.DatasetName}, {`,"dataset_digest":`, m.DatasetDigest},
	} {
		if f.v != "" {
			b = append(b, f.name...)
			b = appendJSONString(b, f.v)
		}
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Validated keys never need
// escaping, so the common case is a plain copy.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// UnmarshalJSON accepts numbers and the proto3 strings for non-finite values.
func (m *Metric) UnmarshalJSON(b []byte) error {
	var w metricWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	v, err := parseFloat(w.Value)
	if err != nil {
		return fmt.Errorf("metric %q value: %w", w.Key, err)
	}
	*m = Metric{Key: w.Key, Value: v, Timestamp: w.Timestamp, Step: w.Step, RunID: w.RunID,
		ModelID: w.ModelID, DatasetName: w.DatasetName, DatasetDigest: w.DatasetDigest}
	return nil
}

func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(v, -1):
		return append(b, `"-Infinity"`...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func parseFloat(raw json.RawMessage) (float64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		switch s {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
		return strconv.ParseFloat(s, 64)
	}
	return strconv.ParseFloat(string(raw), 64)
}

// Millis converts t to MLflow's millisecond timestamps.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// ViewType selects active, deleted or all entities in searches.
type ViewType string

const (
	ViewActiveOnly  ViewType = "ACTIVE_ONLY"
	ViewDeletedOnly ViewType = "DELETED_ONLY"
	ViewAll         ViewType = "ALL"
)

// Experiment is an MLflow experiment.
type Experiment struct {
	ID               string `json:"experiment_id"`
	Name             string `json:"name"`
	ArtifactLocation string `json:"artifact_location"`
	LifecycleStage   string `json:"lifecycle_stage"` // "active" or "deleted"
	LastUpdateTime   int64  `json:"last_update_time"`
	CreationTime     int64  `json:"creation_time"`
	Tags             []Tag  `json:"tags"`
}

// Tag returns the value of tag key and whether it is set.
func (e *Experiment) Tag(key string) (string, bool) { return findTag(e.Tags, key) }

func findTag(tags []Tag, key string) (string, bool) {
	for _, t := range tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// RunStatus is a run's lifecycle status.
type RunStatus string

const (
	RunRunning   RunStatus = "RUNNING"
	RunScheduled RunStatus = "SCHEDULED"
	RunFinished  RunStatus = "FINISHED"
	RunFailed    RunStatus = "FAILED"
	RunKilled    RunStatus = "KILLED"
)

// Run is an MLflow run: metadata, the latest metrics, params and tags, and its
// dataset/model inputs and model outputs.
type Run struct {
	Info    RunInfo    `json:"info"`
	Data    RunData    `json:"data"`
	Inputs  RunInputs  `json:"inputs"`
	Outputs RunOutputs `json:"outputs"`
}

// RunInfo is a run's metadata.
type RunInfo struct {
	RunID          string    `json:"run_id"`
	RunName        string    `json:"run_name"`
	ExperimentID   string    `json:"experiment_id"`
	UserID         string    `json:"user_id"`
	Status         RunStatus `json:"status"`
	StartTime      int64     `json:"start_time"`
	EndTime        int64     `json:"end_time"`
	ArtifactURI    string    `json:"artifact_uri"`
	LifecycleStage string    `json:"lifecycle_stage"`
}

// RunData holds the latest value of each metric, and all params and tags.
type RunData struct {
	Metrics []Metric `json:"metrics"`
	Params  []Param  `json:"params"`
	Tags    []Tag    `json:"tags"`
}

// Tag returns the value of run tag key and whether it is set.
func (r *Run) Tag(key string) (string, bool) { return findTag(r.Data.Tags, key) }

// Param returns the value of param key and whether it is set.
func (r *Run) Param(key string) (string, bool) { return findParam(r.Data.Params, key) }

func findParam(params []Param, key string) (string, bool) {
	for _, p := range params {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// RunInputs are the datasets and models a run consumed.
type RunInputs struct {
	DatasetInputs []DatasetInput `json:"dataset_inputs"`
	ModelInputs   []ModelInput   `json:"model_inputs"`
}

// RunOutputs are the logged models a run produced.
type RunOutputs struct {
	ModelOutputs []ModelOutput `json:"model_outputs"`
}

// Dataset describes a dataset used by a run (service.proto Dataset).
type Dataset struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	SourceType string `json:"source_type"`
	Source     string `json:"source"`
	Schema     string `json:"schema,omitempty"`
	Profile    string `json:"profile,omitempty"`
}

// DatasetInput is a dataset with its input tags (e.g. mlflow.data.context=train).
type DatasetInput struct {
	Tags    []Tag   `json:"tags,omitempty"`
	Dataset Dataset `json:"dataset"`
}

// ModelInput names a logged model a run used.
type ModelInput struct {
	ModelID string `json:"model_id"`
}

// ModelOutput names a logged model a run produced, at a step.
type ModelOutput struct {
	ModelID string `json:"model_id"`
	Step    int64  `json:"step"`
}

// FileInfo is one entry of an artifact listing.
type FileInfo struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize int64  `json:"file_size,omitempty"`
}
