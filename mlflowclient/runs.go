package mlflowclient

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// RunsService handles runs, their metrics, params, tags, inputs and outputs.
type RunsService service

// System tags the MLflow UI reads.
const (
	TagUser          = "mlflow.user"
	TagSourceName    = "mlflow.source.name"
	TagSourceType    = "mlflow.source.type"
	TagGitCommit     = "mlflow.source.git.commit"
	TagNote          = "mlflow.note.content" // run/experiment description (markdown)
	TagParentRunID   = "mlflow.parentRunId"
	TagRunName       = "mlflow.runName"
	TagLoggedModels  = "mlflow.log-model.history"
	SourceTypeLocal  = "LOCAL"
	SourceTypeJob    = "JOB"
	SourceTypeNotebk = "NOTEBOOK"
)

// CreateRunOptions are the fields of CreateRun plus the conveniences the
// official fluent API offers.
type CreateRunOptions struct {
	ExperimentID string
	RunName      string
	StartTime    time.Time // zero: now
	Tags         []Tag
	// ParentRunID nests the run under another (sets mlflow.parentRunId).
	ParentRunID string
	// Description sets mlflow.note.content, shown as the run's description.
	Description string
	// SkipSystemTags leaves out the detected mlflow.user / mlflow.source.* /
	// git commit tags (see SystemTags). Tags given explicitly always win.
	SkipSystemTags bool
}

// Create starts a run in RUNNING state.
func (s *RunsService) Create(ctx context.Context, opts CreateRunOptions) (*Run, error) {
	if err := required("experiment_id", opts.ExperimentID); err != nil {
		return nil, err
	}
	var tags []Tag
	if !opts.SkipSystemTags {
		tags = SystemTags()
	}
	if opts.ParentRunID != "" {
		if err := validateRunID(opts.ParentRunID); err != nil {
			return nil, fmt.Errorf("parent: %w", err)
		}
		tags = append(tags, Tag{TagParentRunID, opts.ParentRunID})
	}
	if opts.Description != "" {
		tags = append(tags, Tag{TagNote, opts.Description})
	}
	tags = mergeTags(tags, opts.Tags)
	for _, t := range tags {
		if err := validateTag(t); err != nil {
			return nil, err
		}
	}
	start := opts.StartTime
	if start.IsZero() {
		start = time.Now()
	}
	user, _ := findTag(tags, TagUser)
	in := struct {
		ExperimentID string `json:"experiment_id"`
		UserID       string `json:"user_id,omitempty"`
		RunName      string `json:"run_name,omitempty"`
		StartTime    int64  `json:"start_time"`
		Tags         []Tag  `json:"tags,omitempty"`
	}{opts.ExperimentID, user, opts.RunName, start.UnixMilli(), tags}
	var out struct {
		Run Run `json:"run"`
	}
	if err := s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/runs/create"}, in, &out); err != nil {
		return nil, err
	}
	return &out.Run, nil
}

// mergeTags returns base with each of override replacing a tag of the same key.
func mergeTags(base, override []Tag) []Tag {
	out := make([]Tag, 0, len(base)+len(override))
	idx := map[string]int{}
	for _, t := range append(base, override...) {
		if i, ok := idx[t.Key]; ok {
			out[i] = t
			continue
		}
		idx[t.Key] = len(out)
		out = append(out, t)
	}
	return out
}

// Get fetches a run with its latest metrics, params, tags, inputs and outputs.
func (s *RunsService) Get(ctx context.Context, runID string) (*Run, error) {
	if err := validateRunID(runID); err != nil {
		return nil, err
	}
	var out struct {
		Run Run `json:"run"`
	}
	err := s.c.call(ctx, endpoint{method: http.MethodGet, path: "/api/2.0/mlflow/runs/get"}, url.Values{"run_id": {runID}}, &out)
	if err != nil {
		return nil, err
	}
	return &out.Run, nil
}

// UpdateRunOptions change a run's status, end time or name. Zero fields are left alone.
type UpdateRunOptions struct {
	Status  RunStatus
	EndTime time.Time
	RunName string
}

// Update changes a run's status, end time or name and returns its new info.
func (s *RunsService) Update(ctx context.Context, runID string, opts UpdateRunOptions) (*RunInfo, error) {
	if err := validateRunID(runID); err != nil {
		return nil, err
	}
	in := struct {
		RunID   string    `json:"run_id"`
		Status  RunStatus `json:"status,omitempty"`
		EndTime int64     `json:"end_time,omitempty"`
		RunName string    `json:"run_name,omitempty"`
	}{RunID: runID, Status: opts.Status, RunName: opts.RunName}
	if !opts.EndTime.IsZero() {
		in.EndTime = opts.EndTime.UnixMilli()
	}
	var out struct {
		RunInfo RunInfo `json:"run_info"`
	}
	if err := s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/runs/update"}, in, &out); err != nil {
		return nil, err
	}
	return &out.RunInfo, nil
}

// End terminates a run with status (FINISHED, FAILED or KILLED) at the current time.
func (s *RunsService) End(ctx context.Context, runID string, status RunStatus) error {
	switch status {
	case RunFinished, RunFailed, RunKilled:
	default:
		return &ValidationError{Field: "run status", Value: string(status), Reason: "a run ends FINISHED, FAILED or KILLED"}
	}
	_, err := s.Update(ctx, runID, UpdateRunOptions{Status: status, EndTime: time.Now()})
	return err
}

// Delete marks a run deleted.
func (s *RunsService) Delete(ctx context.Context, runID string) error {
	return s.runOnly(ctx, "/api/2.0/mlflow/runs/delete", runID)
}

// Restore restores a deleted run.
func (s *RunsService) Restore(ctx context.Context, runID string) error {
	return s.runOnly(ctx, "/api/2.0/mlflow/runs/restore", runID)
}

func (s *RunsService) runOnly(ctx context.Context, path, runID string) error {
	if err := validateRunID(runID); err != nil {
		return err
	}
	return s.c.call(ctx, endpoint{method: http.MethodPost, path: path}, map[string]string{"run_id": runID}, nil)
}

// SearchRunsOptions select runs. Filter uses MLflow's grammar, e.g.
// `metrics.mrr > 0.5 AND params.lr = '0.001' AND tags.mlflow.parentRunId = 'abc'
// AND attributes.status = 'FINISHED'`.
type SearchRunsOptions struct {
	ExperimentIDs []string `json:"experiment_ids"`
	Filter        string   `json:"filter,omitempty"`
	ViewType      ViewType `json:"run_view_type,omitempty"`
	MaxResults    int      `json:"max_results,omitempty"` // page size (server default 1000, max 50000)
	OrderBy       []string `json:"order_by,omitempty"`    // e.g. "metrics.mrr DESC", "attributes.start_time"
	PageToken     string   `json:"page_token,omitempty"`
}

// Search returns one page of runs.
func (s *RunsService) Search(ctx context.Context, opts SearchRunsOptions) (*Page[*Run], error) {
	if len(opts.ExperimentIDs) == 0 {
		return nil, &ValidationError{Field: "experiment_ids", Reason: "at least one experiment id is required"}
	}
	var out struct {
		Runs          []*Run `json:"runs"`
		NextPageToken string `json:"next_page_token"`
	}
	if err := s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/runs/search"}, opts, &out); err != nil {
		return nil, err
	}
	return &Page[*Run]{Items: out.Runs, NextPageToken: out.NextPageToken}, nil
}

// All iterates over every matching run, fetching pages as needed.
func (s *RunsService) All(ctx context.Context, opts SearchRunsOptions) iter.Seq2[*Run, error] {
	return all(ctx, opts.PageToken, func(ctx context.Context, token string) (*Page[*Run], error) {
		o := opts
		o.PageToken = token
		return s.Search(ctx, o)
	})
}

// LogMetric logs one metric point. A zero Timestamp means now. For many
// points use LogBatch or an AsyncLogger.
func (s *RunsService) LogMetric(ctx context.Context, runID string, m Metric) error {
	if err := validateRunID(runID); err != nil {
		return err
	}
	if m.Timestamp == 0 {
		m.Timestamp = time.Now().UnixMilli()
	}
	if err := validateMetric(m); err != nil {
		return err
	}
	m.RunID = runID
	return s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/runs/log-metric"}, m, nil)
}

// LogParam logs a parameter. Params are immutable: logging a different value
// for an existing key fails with INVALID_PARAMETER_VALUE.
func (s *RunsService) LogParam(ctx context.Context, runID, key, value string) error {
	if err := validateRunID(runID); err != nil {
		return err
	}
	if err := validateParam(Param{key, value}); err != nil {
		return err
	}
	return s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/runs/log-parameter"},
		map[string]string{"run_id": runID, "key": key, "value": value}, nil)
}

// SetTag sets (or overwrites) a run tag.
func (s *RunsService) SetTag(ctx context.Context, runID, key, value string) error {
	if err := validateRunID(runID); err != nil {
		return err
	}
	if err := validateTag(Tag{key, value}); err != nil {
		return err
	}
	return s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/runs/set-tag"},
		map[string]string{"run_id": runID, "key": key, "value": value}, nil)
}

// DeleteTag removes a run tag.
func (s *RunsService) DeleteTag(ctx context.Context, runID, key string) error {
	if err := validateRunID(runID); err != nil {
		return err
	}
	if err := required("tag key", key); err != nil {
		return err
	}
	return s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/runs/delete-tag"},
		map[string]string{"run_id": runID, "key": key}, nil)
}

// LogBatch logs metrics, params and tags. Every entity is validated before
// anything is sent; the batch is then split into requests that each respect
// the server's limits (≤1000 metrics, ≤100 params, ≤100 tags, ≤1000 entities,
// ≤1 MB body). Chunks are sent in order; on error, earlier chunks stay logged
// and the error names how many were sent.
func (s *RunsService) LogBatch(ctx context.Context, runID string, b Batch) error {
	if err := validateRunID(runID); err != nil {
		return err
	}
	b, err := b.validate()
	if err != nil {
		return err
	}
	bodies, err := chunkBatch(runID, b, serverBatchLimits)
	if err != nil {
		return err
	}
	return s.sendBatches(ctx, bodies)
}

func (s *RunsService) sendBatches(ctx context.Context, bodies [][]byte) error {
	for i, body := range bodies {
		if err := s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/runs/log-batch"}, json.RawMessage(body), nil); err != nil {
			if len(bodies) > 1 {
				return fmt.Errorf("log-batch request %d of %d (earlier ones were logged): %w", i+1, len(bodies), err)
			}
			return err
		}
	}
	return nil
}

// LogInputs records the datasets (and logged models) a run used.
func (s *RunsService) LogInputs(ctx context.Context, runID string, datasets []DatasetInput, models []ModelInput) error {
	if err := validateRunID(runID); err != nil {
		return err
	}
	for i, d := range datasets {
		if d.Dataset.Name == "" || d.Dataset.Digest == "" || d.Dataset.SourceType == "" || d.Dataset.Source == "" {
			return &ValidationError{Field: fmt.Sprintf("datasets[%d]", i), Value: d.Dataset.Name, Reason: "name, digest, source_type and source are required"}
		}
		if len(d.Dataset.Digest) > 36 {
			return &ValidationError{Field: fmt.Sprintf("datasets[%d].digest", i), Value: d.Dataset.Digest, Reason: "longer than 36 characters"}
		}
	}
	in := struct {
		RunID    string         `json:"run_id"`
		Datasets []DatasetInput `json:"datasets,omitempty"`
		Models   []ModelInput   `json:"models,omitempty"`
	}{runID, datasets, models}
	return s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/runs/log-inputs"}, in, nil)
}

// LogOutputs links logged models to the run that produced them.
func (s *RunsService) LogOutputs(ctx context.Context, runID string, models []ModelOutput) error {
	if err := validateRunID(runID); err != nil {
		return err
	}
	if len(models) == 0 {
		return &ValidationError{Field: "models", Reason: "at least one model output is required"}
	}
	in := struct {
		RunID  string        `json:"run_id"`
		Models []ModelOutput `json:"models"`
	}{runID, models}
	return s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/runs/outputs"}, in, nil)
}

// MetricHistoryOptions page through a metric's history.
type MetricHistoryOptions struct {
	MaxResults int // page size; 0 lets the server choose
	PageToken  string
}

// MetricHistory returns one page of every logged point of metric key.
func (s *RunsService) MetricHistory(ctx context.Context, runID, key string, opts MetricHistoryOptions) (*Page[Metric], error) {
	if err := validateRunID(runID); err != nil {
		return nil, err
	}
	if err := required("metric key", key); err != nil {
		return nil, err
	}
	q := url.Values{"run_id": {runID}, "metric_key": {key}}
	if opts.MaxResults > 0 {
		q.Set("max_results", strconv.Itoa(opts.MaxResults))
	}
	if opts.PageToken != "" {
		q.Set("page_token", opts.PageToken)
	}
	var out struct {
		Metrics       []Metric `json:"metrics"`
		NextPageToken string   `json:"next_page_token"`
	}
	if err := s.c.call(ctx, endpoint{method: http.MethodGet, path: "/api/2.0/mlflow/metrics/get-history"}, q, &out); err != nil {
		return nil, err
	}
	return &Page[Metric]{Items: out.Metrics, NextPageToken: out.NextPageToken}, nil
}

// AllMetricHistory iterates over every point of metric key.
func (s *RunsService) AllMetricHistory(ctx context.Context, runID, key string, pageSize int) iter.Seq2[Metric, error] {
	return all(ctx, "", func(ctx context.Context, token string) (*Page[Metric], error) {
		return s.MetricHistory(ctx, runID, key, MetricHistoryOptions{MaxResults: pageSize, PageToken: token})
	})
}
