package mlflowclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// LoggedModelsService handles MLflow 3 logged models (service.proto:
// CreateLoggedModel, FinalizeLoggedModel, SearchLoggedModels, ...). A logged
// model is a first-class entity with its own artifact location, params, tags
// and metrics; a run links to the models it produced through RunsService.LogOutputs.
type LoggedModelsService service

// LoggedModelStatus is a logged model's upload state.
type LoggedModelStatus string

const (
	LoggedModelPending      LoggedModelStatus = "LOGGED_MODEL_PENDING"
	LoggedModelReady        LoggedModelStatus = "LOGGED_MODEL_READY"
	LoggedModelUploadFailed LoggedModelStatus = "LOGGED_MODEL_UPLOAD_FAILED"
)

var loggedModelStatusByNumber = map[int]LoggedModelStatus{
	0: "LOGGED_MODEL_STATUS_UNSPECIFIED", 1: LoggedModelPending, 2: LoggedModelReady, 3: LoggedModelUploadFailed,
}

// UnmarshalJSON accepts the enum name (what MLflow sends) or its number
// (what a proto3 JSON encoder may send).
func (s *LoggedModelStatus) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err == nil {
		*s = LoggedModelStatus(name)
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("logged model status: %s is neither a name nor a number", b)
	}
	st, ok := loggedModelStatusByNumber[n]
	if !ok {
		st = LoggedModelStatus(strconv.Itoa(n))
	}
	*s = st
	return nil
}

// LoggedModel is an MLflow 3 logged model.
type LoggedModel struct {
	Info LoggedModelInfo `json:"info"`
	Data LoggedModelData `json:"data"`
}

// LoggedModelInfo is a logged model's metadata.
type LoggedModelInfo struct {
	ModelID                string                  `json:"model_id"`
	ExperimentID           string                  `json:"experiment_id"`
	Name                   string                  `json:"name"`
	CreationTimestampMs    int64                   `json:"creation_timestamp_ms"`
	LastUpdatedTimestampMs int64                   `json:"last_updated_timestamp_ms"`
	ArtifactURI            string                  `json:"artifact_uri"` // e.g. mlflow-artifacts:/1/models/m-…/artifacts
	Status                 LoggedModelStatus       `json:"status"`
	CreatorID              int64                   `json:"creator_id,omitempty"`
	ModelType              string                  `json:"model_type"`
	SourceRunID            string                  `json:"source_run_id"`
	StatusMessage          string                  `json:"status_message,omitempty"`
	Tags                   []Tag                   `json:"tags"`
	Registrations          []LoggedModelRegistered `json:"registrations,omitempty"`
}

// LoggedModelRegistered names a registered model version created from a logged model.
type LoggedModelRegistered struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// LoggedModelData holds a logged model's params and metrics.
type LoggedModelData struct {
	Params  []Param  `json:"params"`
	Metrics []Metric `json:"metrics"`
}

// ID returns the model id (m-…).
func (m *LoggedModel) ID() string { return m.Info.ModelID }

// URI returns the model's models:/<model_id> URI.
func (m *LoggedModel) URI() string { return "models:/" + m.Info.ModelID }

// Tag returns the value of tag key and whether it is set.
func (m *LoggedModel) Tag(key string) (string, bool) { return findTag(m.Info.Tags, key) }

// Param returns the value of param key and whether it is set.
func (m *LoggedModel) Param(key string) (string, bool) { return findParam(m.Data.Params, key) }

// TagModelVersions is the logged model tag where the server records the
// registry versions created from the model, as JSON [{"name", "version"}].
const TagModelVersions = "mlflow.modelVersions"

// ModelVersions returns the registry versions created from this model:
// Info.Registrations when the server fills it, else what the
// mlflow.modelVersions tag (kept by the open-source server) lists.
func (m *LoggedModel) ModelVersions() []LoggedModelRegistered {
	if len(m.Info.Registrations) > 0 {
		return m.Info.Registrations
	}
	raw, ok := m.Tag(TagModelVersions)
	if !ok {
		return nil
	}
	var entries []struct {
		Name    string          `json:"name"`
		Version json.RawMessage `json:"version"` // a number in the tag, a string in the proto
	}
	if json.Unmarshal([]byte(raw), &entries) != nil {
		return nil
	}
	out := make([]LoggedModelRegistered, 0, len(entries))
	for _, e := range entries {
		v := strings.Trim(string(e.Version), `"`)
		out = append(out, LoggedModelRegistered{Name: e.Name, Version: v})
	}
	return out
}

// loggedModelParamsPerRequest is the official client's batch size for
// create and log-params (_MLFLOW_*_LOGGED_MODEL_PARAMS_BATCH_SIZE).
const loggedModelParamsPerRequest = 100

// CreateLoggedModelOptions are the fields of CreateLoggedModel. Name may be
// empty (the server picks one); it cannot contain / : . % " or '.
type CreateLoggedModelOptions struct {
	ExperimentID string
	Name         string
	ModelType    string // free-form, e.g. "onnx"
	SourceRunID  string // the run that produced the model, if any
	Params       []Param
	Tags         []Tag
}

// Create creates a logged model in PENDING state; upload its artifacts to
// Info.ArtifactURI, then call Finalize. Params beyond the first 100 are sent
// in further requests, as the official client does.
func (s *LoggedModelsService) Create(ctx context.Context, opts CreateLoggedModelOptions) (*LoggedModel, error) {
	if err := required("experiment_id", opts.ExperimentID); err != nil {
		return nil, err
	}
	if opts.Name != "" && strings.ContainsAny(opts.Name, `/:.%"'`) {
		return nil, &ValidationError{Field: "logged model name", Value: shorten(opts.Name),
			Reason: `cannot contain any of / : . % " '`}
	}
	if opts.SourceRunID != "" {
		if err := validateRunID(opts.SourceRunID); err != nil {
			return nil, fmt.Errorf("source run: %w", err)
		}
	}
	if err := validateParams(opts.Params); err != nil {
		return nil, err
	}
	for i, t := range opts.Tags {
		if err := validateTag(t); err != nil {
			return nil, fmt.Errorf("tags[%d]: %w", i, err)
		}
	}
	first, rest := opts.Params, []Param(nil)
	if len(first) > loggedModelParamsPerRequest {
		first, rest = first[:loggedModelParamsPerRequest], first[loggedModelParamsPerRequest:]
	}
	in := struct {
		ExperimentID string  `json:"experiment_id"`
		Name         string  `json:"name,omitempty"`
		ModelType    string  `json:"model_type,omitempty"`
		SourceRunID  string  `json:"source_run_id,omitempty"`
		Params       []Param `json:"params,omitempty"`
		Tags         []Tag   `json:"tags,omitempty"`
	}{opts.ExperimentID, opts.Name, opts.ModelType, opts.SourceRunID, first, opts.Tags}
	var out struct {
		Model LoggedModel `json:"model"`
	}
	if err := s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/logged-models"}, in, &out); err != nil {
		return nil, err
	}
	if len(rest) == 0 {
		return &out.Model, nil
	}
	if err := s.LogParams(ctx, out.Model.Info.ModelID, rest...); err != nil {
		return &out.Model, fmt.Errorf("logged model %s created, but logging its params failed: %w", out.Model.Info.ModelID, err)
	}
	return s.Get(ctx, out.Model.Info.ModelID)
}

// validateParams checks each param and rejects a key given twice.
func validateParams(params []Param) error {
	seen := make(map[string]bool, len(params))
	for i, p := range params {
		if err := validateParam(p); err != nil {
			return fmt.Errorf("params[%d]: %w", i, err)
		}
		if seen[p.Key] {
			return &ValidationError{Field: "param key", Value: p.Key, Reason: "given twice"}
		}
		seen[p.Key] = true
	}
	return nil
}

func modelPath(id string, suffix ...string) (string, error) {
	if err := required("model_id", id); err != nil {
		return "", err
	}
	p := "/api/2.0/mlflow/logged-models/" + url.PathEscape(id)
	for _, s := range suffix {
		p += "/" + s
	}
	return p, nil
}

// Get fetches a logged model by id (RESOURCE_DOES_NOT_EXIST once deleted).
func (s *LoggedModelsService) Get(ctx context.Context, modelID string) (*LoggedModel, error) {
	p, err := modelPath(modelID)
	if err != nil {
		return nil, err
	}
	var out struct {
		Model LoggedModel `json:"model"`
	}
	if err := s.c.call(ctx, endpoint{method: http.MethodGet, path: p}, nil, &out); err != nil {
		return nil, err
	}
	return &out.Model, nil
}

// Finalize sets the final status of a logged model: LoggedModelReady once
// its artifacts are uploaded, LoggedModelUploadFailed otherwise.
func (s *LoggedModelsService) Finalize(ctx context.Context, modelID string, status LoggedModelStatus) (*LoggedModel, error) {
	p, err := modelPath(modelID)
	if err != nil {
		return nil, err
	}
	if status != LoggedModelReady && status != LoggedModelUploadFailed {
		return nil, &ValidationError{Field: "logged model status", Value: string(status),
			Reason: "a model is finalized LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED"}
	}
	in := map[string]string{"model_id": modelID, "status": string(status)}
	var out struct {
		Model LoggedModel `json:"model"`
	}
	if err := s.c.call(ctx, endpoint{method: http.MethodPatch, path: p}, in, &out); err != nil {
		return nil, err
	}
	return &out.Model, nil
}

// Delete marks a logged model deleted.
func (s *LoggedModelsService) Delete(ctx context.Context, modelID string) error {
	p, err := modelPath(modelID)
	if err != nil {
		return err
	}
	// The official client sends the id in the body too; DELETE bodies are JSON.
	return s.c.call(ctx, endpoint{method: http.MethodDelete, path: p}, map[string]string{"model_id": modelID}, nil)
}

// LogParams adds params to a logged model, 100 per request. Params are
// immutable: a key the model already has with another value fails (the
// sqlite server answers BAD_REQUEST). Re-logging identical values succeeds,
// so a retried request whose first answer was lost is harmless.
func (s *LoggedModelsService) LogParams(ctx context.Context, modelID string, params ...Param) error {
	p, err := modelPath(modelID, "params")
	if err != nil {
		return err
	}
	if err := validateParams(params); err != nil {
		return err
	}
	for i := 0; i < len(params); i += loggedModelParamsPerRequest {
		chunk := params[i:min(i+loggedModelParamsPerRequest, len(params))]
		in := struct {
			ModelID string  `json:"model_id"`
			Params  []Param `json:"params"`
		}{modelID, chunk}
		if err := s.c.call(ctx, endpoint{method: http.MethodPost, path: p}, in, nil); err != nil {
			if s.alreadyHas(ctx, modelID, err, chunk) {
				continue
			}
			if i > 0 {
				return fmt.Errorf("logging params %d.. (earlier ones were logged): %w", i, err)
			}
			return err
		}
	}
	return nil
}

// alreadyHas reports whether a failed log-params call failed only because
// the model holds every one of params already, with the same values (the
// server rejects any existing key, even unchanged).
func (s *LoggedModelsService) alreadyHas(ctx context.Context, modelID string, err error, params []Param) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode < 400 || ae.StatusCode >= 500 || IsNotFound(err) {
		return false
	}
	m, gerr := s.Get(ctx, modelID)
	if gerr != nil {
		return false
	}
	for _, p := range params {
		if v, ok := m.Param(p.Key); !ok || v != p.Value {
			return false
		}
	}
	return true
}

// SetTags sets (or overwrites) tags on a logged model.
func (s *LoggedModelsService) SetTags(ctx context.Context, modelID string, tags ...Tag) error {
	p, err := modelPath(modelID, "tags")
	if err != nil {
		return err
	}
	if len(tags) == 0 {
		return nil
	}
	for i, t := range tags {
		if err := validateTag(t); err != nil {
			return fmt.Errorf("tags[%d]: %w", i, err)
		}
	}
	in := struct {
		Tags []Tag `json:"tags"`
	}{tags}
	return s.c.call(ctx, endpoint{method: http.MethodPatch, path: p}, in, nil)
}

// DeleteTag removes a tag from a logged model.
func (s *LoggedModelsService) DeleteTag(ctx context.Context, modelID, key string) error {
	if err := required("tag key", key); err != nil {
		return err
	}
	// The key is a path segment: the server's route cannot match a "/" in it,
	// escaped or not.
	if strings.Contains(key, "/") {
		return &ValidationError{Field: "tag key", Value: shorten(key),
			Reason: "a logged model tag whose key contains '/' cannot be deleted through the REST API"}
	}
	p, err := modelPath(modelID, "tags", url.PathEscape(key))
	if err != nil {
		return err
	}
	return s.c.call(ctx, endpoint{method: http.MethodDelete, path: p}, nil, nil)
}

// LoggedModelDataset restricts metric filters and ordering to one dataset.
type LoggedModelDataset struct {
	DatasetName   string `json:"dataset_name"`
	DatasetDigest string `json:"dataset_digest,omitempty"`
}

// LoggedModelOrderBy is one ordering key (SearchLoggedModels.OrderBy), e.g.
// {FieldName: "creation_timestamp"} or {FieldName: "metrics.accuracy",
// DatasetName: "eval"}. As on the wire, the zero Ascending means descending.
type LoggedModelOrderBy struct {
	FieldName     string `json:"field_name"`
	Ascending     bool   `json:"ascending"`
	DatasetName   string `json:"dataset_name,omitempty"`
	DatasetDigest string `json:"dataset_digest,omitempty"`
}

// SearchLoggedModelsOptions select logged models. Filter uses MLflow's
// grammar, e.g. `name = 'clf' AND params.lr = '0.1' AND metrics.acc > 0.9`.
type SearchLoggedModelsOptions struct {
	ExperimentIDs []string             `json:"experiment_ids"`
	Filter        string               `json:"filter,omitempty"`
	Datasets      []LoggedModelDataset `json:"datasets,omitempty"`
	OrderBy       []LoggedModelOrderBy `json:"order_by,omitempty"`
	MaxResults    int                  `json:"max_results,omitempty"`
	PageToken     string               `json:"page_token,omitempty"`
}

// Search returns one page of logged models.
func (s *LoggedModelsService) Search(ctx context.Context, opts SearchLoggedModelsOptions) (*Page[*LoggedModel], error) {
	if len(opts.ExperimentIDs) == 0 {
		return nil, &ValidationError{Field: "experiment_ids", Reason: "at least one experiment id is required"}
	}
	for i, o := range opts.OrderBy {
		if o.FieldName == "" {
			return nil, &ValidationError{Field: fmt.Sprintf("order_by[%d].field_name", i), Reason: "is required"}
		}
	}
	for i, d := range opts.Datasets {
		if d.DatasetName == "" {
			return nil, &ValidationError{Field: fmt.Sprintf("datasets[%d].dataset_name", i), Reason: "is required"}
		}
	}
	var out struct {
		Models        []*LoggedModel `json:"models"`
		NextPageToken string         `json:"next_page_token"`
	}
	if err := s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/logged-models/search"}, opts, &out); err != nil {
		return nil, err
	}
	return &Page[*LoggedModel]{Items: out.Models, NextPageToken: out.NextPageToken}, nil
}

// All iterates over every matching logged model, fetching pages as needed.
func (s *LoggedModelsService) All(ctx context.Context, opts SearchLoggedModelsOptions) iter.Seq2[*LoggedModel, error] {
	return all(ctx, opts.PageToken, func(ctx context.Context, token string) (*Page[*LoggedModel], error) {
		o := opts
		o.PageToken = token
		return s.Search(ctx, o)
	})
}
