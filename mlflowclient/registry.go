package mlflowclient

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// RegistryService handles the Model Registry (model_registry.proto):
// registered models, their versions, stages, aliases and tags. Its calls go to
// the registry URI (WithRegistryURI / MLFLOW_REGISTRY_URI), which defaults to
// the tracking server.
type RegistryService service

// RegisteredModel is a named model in the registry.
type RegisteredModel struct {
	Name                 string                 `json:"name"`
	CreationTimestamp    int64                  `json:"creation_timestamp"`
	LastUpdatedTimestamp int64                  `json:"last_updated_timestamp"`
	UserID               string                 `json:"user_id,omitempty"`
	Description          string                 `json:"description"`
	LatestVersions       []*ModelVersion        `json:"latest_versions"` // latest version per stage
	Tags                 []Tag                  `json:"tags"`
	Aliases              []RegisteredModelAlias `json:"aliases"`
}

// Tag returns the value of tag key and whether it is set.
func (m *RegisteredModel) Tag(key string) (string, bool) { return findTag(m.Tags, key) }

// Alias returns the version alias points to and whether it is set.
func (m *RegisteredModel) Alias(alias string) (string, bool) {
	for _, a := range m.Aliases {
		if a.Alias == alias {
			return a.Version, true
		}
	}
	return "", false
}

// RegisteredModelAlias maps an alias (e.g. "champion") to a version.
type RegisteredModelAlias struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

// ModelVersionStatus is a model version's registration state.
type ModelVersionStatus string

const (
	VersionPendingRegistration ModelVersionStatus = "PENDING_REGISTRATION"
	VersionFailedRegistration  ModelVersionStatus = "FAILED_REGISTRATION"
	VersionReady               ModelVersionStatus = "READY"
)

// ModelVersion is one version of a registered model. Version is a decimal
// string ("1", "2", ...), as on the wire.
type ModelVersion struct {
	Name                 string             `json:"name"`
	Version              string             `json:"version"`
	CreationTimestamp    int64              `json:"creation_timestamp"`
	LastUpdatedTimestamp int64              `json:"last_updated_timestamp"`
	UserID               string             `json:"user_id,omitempty"`
	CurrentStage         Stage              `json:"current_stage"`
	Description          string             `json:"description"`
	Source               string             `json:"source"` // runs:/…, models:/m-…, mlflow-artifacts:/…
	RunID                string             `json:"run_id"`
	Status               ModelVersionStatus `json:"status"`
	StatusMessage        string             `json:"status_message,omitempty"`
	Tags                 []Tag              `json:"tags"`
	RunLink              string             `json:"run_link,omitempty"`
	Aliases              []string           `json:"aliases"`
	ModelID              string             `json:"model_id,omitempty"` // MLflow 3 logged model
	ModelParams          []ModelParam       `json:"model_params,omitempty"`
	ModelMetrics         []Metric           `json:"model_metrics,omitempty"`
}

// ModelParam is a logged model's param as shown on a model version.
type ModelParam struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Tag returns the value of tag key and whether it is set.
func (v *ModelVersion) Tag(key string) (string, bool) { return findTag(v.Tags, key) }

// URI returns the version's models:/<name>/<version> URI.
func (v *ModelVersion) URI() string { return "models:/" + v.Name + "/" + v.Version }

// Stage is a model version stage (deprecated by MLflow in favour of aliases,
// but still served).
type Stage string

const (
	StageNone       Stage = "None"
	StageStaging    Stage = "Staging"
	StageProduction Stage = "Production"
	StageArchived   Stage = "Archived"
)

// ParseStage returns the canonical stage for s, case-insensitively as the
// server does ("production" → Production).
func ParseStage(s string) (Stage, error) {
	for _, st := range []Stage{StageNone, StageStaging, StageProduction, StageArchived} {
		if strings.EqualFold(s, string(st)) {
			return st, nil
		}
	}
	return "", &ValidationError{Field: "model version stage", Value: shorten(s),
		Reason: "must be one of None, Staging, Production, Archived"}
}

func regEndpoint(method, path string) endpoint {
	return endpoint{method: method, path: "/api/2.0/mlflow/" + path, registry: true}
}

// Server rules for aliases (mlflow/utils/validation.py), with Python's Unicode \w.
var (
	aliasPattern        = regexp.MustCompile(`^[\p{L}\p{N}_\-]*$`)
	aliasVersionPattern = regexp.MustCompile(`^[vV]\p{Nd}+$`)
)

// validateModelName checks a name a model is created or renamed to.
func validateModelName(field, name string) error {
	if err := required(field, name); err != nil {
		return err
	}
	if strings.ContainsAny(name, "/:") {
		return &ValidationError{Field: field, Value: shorten(name), Reason: "cannot contain '/' or ':'"}
	}
	return nil
}

func validateVersion(v string) error {
	if err := required("model version", v); err != nil {
		return err
	}
	if _, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
		return &ValidationError{Field: "model version", Value: shorten(v), Reason: "must be an integer"}
	}
	return nil
}

func validateNameVersion(name, version string) error {
	if err := required("registered model name", name); err != nil {
		return err
	}
	return validateVersion(version)
}

// validateAlias applies the server's rules for alias names; reserved also
// rejects the names SetAlias may not use ("latest", "v<digits>").
func validateAlias(alias string, reserved bool) error {
	switch {
	case alias == "":
		return &ValidationError{Field: "alias", Reason: "is empty"}
	case !aliasPattern.MatchString(alias):
		return &ValidationError{Field: "alias", Value: shorten(alias),
			Reason: "may only contain alphanumerics, underscores and dashes"}
	case len(alias) > maxAliasLength:
		return &ValidationError{Field: "alias", Value: shorten(alias), Reason: "longer than 255 characters"}
	case reserved && strings.EqualFold(alias, "latest"):
		return &ValidationError{Field: "alias", Value: alias, Reason: "'latest' is reserved"}
	case reserved && aliasVersionPattern.MatchString(alias):
		return &ValidationError{Field: "alias", Value: alias, Reason: "version-like aliases (v<number>) are reserved"}
	}
	return nil
}

func validateRegistryTag(t Tag) error {
	if err := validateKey("tag key", t.Key); err != nil {
		return err
	}
	if len(t.Value) > maxRegistryTagValueLength {
		return &ValidationError{Field: "tag value", Value: t.Key,
			Reason: "longer than " + strconv.Itoa(maxRegistryTagValueLength) + " characters"}
	}
	return nil
}

// ---- Registered models ----

// CreateModelOptions are the fields of CreateRegisteredModel.
type CreateModelOptions struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Tags        []Tag  `json:"tags,omitempty"`
}

// CreateModel creates a registered model. A name that exists already yields
// an *APIError with code RESOURCE_ALREADY_EXISTS (IsAlreadyExists); see
// GetOrCreateModel.
func (s *RegistryService) CreateModel(ctx context.Context, opts CreateModelOptions) (*RegisteredModel, error) {
	if err := validateModelName("registered model name", opts.Name); err != nil {
		return nil, err
	}
	for i, t := range opts.Tags {
		if err := validateRegistryTag(t); err != nil {
			return nil, fmt.Errorf("tags[%d]: %w", i, err)
		}
	}
	var out struct {
		RegisteredModel RegisteredModel `json:"registered_model"`
	}
	if err := s.c.call(ctx, regEndpoint(http.MethodPost, "registered-models/create"), opts, &out); err != nil {
		return nil, err
	}
	return &out.RegisteredModel, nil
}

// GetOrCreateModel returns the registered model opts.Name, creating it (with
// opts' description and tags) when missing. It is safe to call concurrently
// and on retries: a create that meets RESOURCE_ALREADY_EXISTS resolves to the
// existing model. An existing model is returned as is, not updated.
func (s *RegistryService) GetOrCreateModel(ctx context.Context, opts CreateModelOptions) (*RegisteredModel, error) {
	m, err := s.GetModel(ctx, opts.Name)
	if err == nil {
		return m, nil
	}
	if !IsNotFound(err) {
		return nil, err
	}
	m, err = s.CreateModel(ctx, opts)
	if IsAlreadyExists(err) {
		return s.GetModel(ctx, opts.Name)
	}
	return m, err
}

// GetModel fetches a registered model with its latest versions, tags and aliases.
func (s *RegistryService) GetModel(ctx context.Context, name string) (*RegisteredModel, error) {
	if err := required("registered model name", name); err != nil {
		return nil, err
	}
	var out struct {
		RegisteredModel RegisteredModel `json:"registered_model"`
	}
	if err := s.c.call(ctx, regEndpoint(http.MethodGet, "registered-models/get"), url.Values{"name": {name}}, &out); err != nil {
		return nil, err
	}
	return &out.RegisteredModel, nil
}

// RenameModel renames a registered model; its versions follow.
func (s *RegistryService) RenameModel(ctx context.Context, name, newName string) (*RegisteredModel, error) {
	if err := required("registered model name", name); err != nil {
		return nil, err
	}
	if err := validateModelName("new registered model name", newName); err != nil {
		return nil, err
	}
	var out struct {
		RegisteredModel RegisteredModel `json:"registered_model"`
	}
	err := s.c.call(ctx, regEndpoint(http.MethodPost, "registered-models/rename"),
		map[string]string{"name": name, "new_name": newName}, &out)
	if err != nil {
		return nil, err
	}
	return &out.RegisteredModel, nil
}

// UpdateModel sets a registered model's description.
func (s *RegistryService) UpdateModel(ctx context.Context, name, description string) (*RegisteredModel, error) {
	if err := required("registered model name", name); err != nil {
		return nil, err
	}
	var out struct {
		RegisteredModel RegisteredModel `json:"registered_model"`
	}
	err := s.c.call(ctx, regEndpoint(http.MethodPatch, "registered-models/update"),
		map[string]string{"name": name, "description": description}, &out)
	if err != nil {
		return nil, err
	}
	return &out.RegisteredModel, nil
}

// DeleteModel deletes a registered model and all its versions.
func (s *RegistryService) DeleteModel(ctx context.Context, name string) error {
	if err := required("registered model name", name); err != nil {
		return err
	}
	// DELETE carries a JSON body, as the official client sends it.
	return s.c.call(ctx, regEndpoint(http.MethodDelete, "registered-models/delete"), map[string]string{"name": name}, nil)
}

// SearchOptions filter, order and page a registry search. Filter uses
// MLflow's grammar: for models e.g. `name LIKE 'clf%' AND tags.team = 'ml'`,
// for versions e.g. `name = 'clf' AND run_id = '…'`. OrderBy items look like
// "name ASC", "last_updated_timestamp DESC" (versions: also "version_number").
type SearchOptions struct {
	Filter     string
	OrderBy    []string
	MaxResults int // page size; models ≤ 1000 (server default 100), versions ≤ 200000
	PageToken  string
}

func (o SearchOptions) query() url.Values {
	q := url.Values{}
	if o.Filter != "" {
		q.Set("filter", o.Filter)
	}
	if o.MaxResults > 0 {
		q.Set("max_results", strconv.Itoa(o.MaxResults))
	}
	for _, ob := range o.OrderBy {
		q.Add("order_by", ob)
	}
	if o.PageToken != "" {
		q.Set("page_token", o.PageToken)
	}
	return q
}

// SearchModels returns one page of registered models.
func (s *RegistryService) SearchModels(ctx context.Context, opts SearchOptions) (*Page[*RegisteredModel], error) {
	if opts.MaxResults > 1000 {
		return nil, &ValidationError{Field: "max_results", Value: strconv.Itoa(opts.MaxResults), Reason: "must be at most 1000"}
	}
	var out struct {
		RegisteredModels []*RegisteredModel `json:"registered_models"`
		NextPageToken    string             `json:"next_page_token"`
	}
	// The server routes registered-models/search for GET only.
	if err := s.c.call(ctx, regEndpoint(http.MethodGet, "registered-models/search"), opts.query(), &out); err != nil {
		return nil, err
	}
	return &Page[*RegisteredModel]{Items: out.RegisteredModels, NextPageToken: out.NextPageToken}, nil
}

// AllModels iterates over every matching registered model, fetching pages as needed.
func (s *RegistryService) AllModels(ctx context.Context, opts SearchOptions) iter.Seq2[*RegisteredModel, error] {
	return all(ctx, opts.PageToken, func(ctx context.Context, token string) (*Page[*RegisteredModel], error) {
		o := opts
		o.PageToken = token
		return s.SearchModels(ctx, o)
	})
}

// SetModelTag sets (or overwrites) a tag on a registered model.
func (s *RegistryService) SetModelTag(ctx context.Context, name, key, value string) error {
	if err := required("registered model name", name); err != nil {
		return err
	}
	if err := validateRegistryTag(Tag{key, value}); err != nil {
		return err
	}
	return s.c.call(ctx, regEndpoint(http.MethodPost, "registered-models/set-tag"),
		map[string]string{"name": name, "key": key, "value": value}, nil)
}

// DeleteModelTag removes a tag from a registered model.
func (s *RegistryService) DeleteModelTag(ctx context.Context, name, key string) error {
	if err := required("registered model name", name); err != nil {
		return err
	}
	if err := required("tag key", key); err != nil {
		return err
	}
	return s.c.call(ctx, regEndpoint(http.MethodDelete, "registered-models/delete-tag"),
		map[string]string{"name": name, "key": key}, nil)
}

// ---- Model versions ----

// CreateVersionOptions are the fields of CreateModelVersion. Source is where
// the model's files are: "runs:/<run_id>/<path>" (with RunID set to that
// run), "models:/<model_id>" (with ModelID set), or an artifact URI inside the
// run's (RunID) or logged model's (ModelID) artifact location.
type CreateVersionOptions struct {
	Name        string `json:"name"`
	Source      string `json:"source"`
	RunID       string `json:"run_id,omitempty"`
	ModelID     string `json:"model_id,omitempty"`
	Tags        []Tag  `json:"tags,omitempty"`
	RunLink     string `json:"run_link,omitempty"`
	Description string `json:"description,omitempty"`
}

// CreateVersion registers a new version of a registered model (which must
// exist). Some servers register asynchronously: the version may come back
// PENDING_REGISTRATION; see WaitVersionReady.
func (s *RegistryService) CreateVersion(ctx context.Context, opts CreateVersionOptions) (*ModelVersion, error) {
	if err := required("registered model name", opts.Name); err != nil {
		return nil, err
	}
	if err := required("model version source", opts.Source); err != nil {
		return nil, err
	}
	if opts.RunID != "" {
		if err := validateRunID(opts.RunID); err != nil {
			return nil, err
		}
	}
	for i, t := range opts.Tags {
		if err := validateRegistryTag(t); err != nil {
			return nil, fmt.Errorf("tags[%d]: %w", i, err)
		}
	}
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	if err := s.c.call(ctx, regEndpoint(http.MethodPost, "model-versions/create"), opts, &out); err != nil {
		return nil, err
	}
	return &out.ModelVersion, nil
}

// GetVersion fetches one model version.
func (s *RegistryService) GetVersion(ctx context.Context, name, version string) (*ModelVersion, error) {
	if err := validateNameVersion(name, version); err != nil {
		return nil, err
	}
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	err := s.c.call(ctx, regEndpoint(http.MethodGet, "model-versions/get"), url.Values{"name": {name}, "version": {version}}, &out)
	if err != nil {
		return nil, err
	}
	return &out.ModelVersion, nil
}

// WaitVersionReady polls a model version until it leaves PENDING_REGISTRATION,
// backing off from 100ms to 5s between polls; bound the wait with ctx. A
// version that ends FAILED_REGISTRATION is returned with an error holding the
// server's status message.
func (s *RegistryService) WaitVersionReady(ctx context.Context, name, version string) (*ModelVersion, error) {
	wait := 100 * time.Millisecond
	var last *ModelVersion
	stillPending := func() error {
		return fmt.Errorf("mlflowclient: waiting for model %q version %s (still %s): %w", name, version, last.Status, ctx.Err())
	}
	for {
		mv, err := s.GetVersion(ctx, name, version)
		if err != nil {
			if last != nil && ctx.Err() != nil { // the deadline fell during a poll
				return last, stillPending()
			}
			return nil, err
		}
		last = mv
		switch mv.Status {
		case VersionFailedRegistration:
			return mv, fmt.Errorf("mlflowclient: model %q version %s failed registration: %s", name, version, mv.StatusMessage)
		case VersionPendingRegistration:
		default: // READY, or a status this client does not know: nothing to wait for
			return mv, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return mv, stillPending()
		case <-t.C:
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// UpdateVersion sets a model version's description.
func (s *RegistryService) UpdateVersion(ctx context.Context, name, version, description string) (*ModelVersion, error) {
	if err := validateNameVersion(name, version); err != nil {
		return nil, err
	}
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	err := s.c.call(ctx, regEndpoint(http.MethodPatch, "model-versions/update"),
		map[string]string{"name": name, "version": version, "description": description}, &out)
	if err != nil {
		return nil, err
	}
	return &out.ModelVersion, nil
}

// DeleteVersion deletes a model version.
func (s *RegistryService) DeleteVersion(ctx context.Context, name, version string) error {
	if err := validateNameVersion(name, version); err != nil {
		return err
	}
	return s.c.call(ctx, regEndpoint(http.MethodDelete, "model-versions/delete"),
		map[string]string{"name": name, "version": version}, nil)
}

// SearchVersions returns one page of model versions.
func (s *RegistryService) SearchVersions(ctx context.Context, opts SearchOptions) (*Page[*ModelVersion], error) {
	if opts.MaxResults > 200_000 {
		return nil, &ValidationError{Field: "max_results", Value: strconv.Itoa(opts.MaxResults), Reason: "must be at most 200000"}
	}
	var out struct {
		ModelVersions []*ModelVersion `json:"model_versions"`
		NextPageToken string          `json:"next_page_token"`
	}
	if err := s.c.call(ctx, regEndpoint(http.MethodGet, "model-versions/search"), opts.query(), &out); err != nil {
		return nil, err
	}
	return &Page[*ModelVersion]{Items: out.ModelVersions, NextPageToken: out.NextPageToken}, nil
}

// AllVersions iterates over every matching model version, fetching pages as needed.
func (s *RegistryService) AllVersions(ctx context.Context, opts SearchOptions) iter.Seq2[*ModelVersion, error] {
	return all(ctx, opts.PageToken, func(ctx context.Context, token string) (*Page[*ModelVersion], error) {
		o := opts
		o.PageToken = token
		return s.SearchVersions(ctx, o)
	})
}

// SetVersionTag sets (or overwrites) a tag on a model version.
func (s *RegistryService) SetVersionTag(ctx context.Context, name, version, key, value string) error {
	if err := validateNameVersion(name, version); err != nil {
		return err
	}
	if err := validateRegistryTag(Tag{key, value}); err != nil {
		return err
	}
	return s.c.call(ctx, regEndpoint(http.MethodPost, "model-versions/set-tag"),
		map[string]string{"name": name, "version": version, "key": key, "value": value}, nil)
}

// DeleteVersionTag removes a tag from a model version.
func (s *RegistryService) DeleteVersionTag(ctx context.Context, name, version, key string) error {
	if err := validateNameVersion(name, version); err != nil {
		return err
	}
	if err := required("tag key", key); err != nil {
		return err
	}
	return s.c.call(ctx, regEndpoint(http.MethodDelete, "model-versions/delete-tag"),
		map[string]string{"name": name, "version": version, "key": key}, nil)
}

// GetDownloadURI returns where a version's files are, as the registry stores
// it: an artifact URI (mlflow-artifacts:/…), or for a version registered from
// a run a runs:/ URI. Client.ResolveURI follows such indirections.
func (s *RegistryService) GetDownloadURI(ctx context.Context, name, version string) (string, error) {
	if err := validateNameVersion(name, version); err != nil {
		return "", err
	}
	var out struct {
		ArtifactURI string `json:"artifact_uri"`
	}
	err := s.c.call(ctx, regEndpoint(http.MethodGet, "model-versions/get-download-uri"),
		url.Values{"name": {name}, "version": {version}}, &out)
	if err != nil {
		return "", err
	}
	if out.ArtifactURI == "" {
		return "", fmt.Errorf("mlflowclient: model %q version %s: server returned no download URI", name, version)
	}
	return out.ArtifactURI, nil
}

// TransitionStage moves a model version to stage (None, Staging, Production
// or Archived, any case). With archiveExisting, the versions already in that
// stage are moved to Archived.
func (s *RegistryService) TransitionStage(ctx context.Context, name, version string, stage Stage, archiveExisting bool) (*ModelVersion, error) {
	if err := validateNameVersion(name, version); err != nil {
		return nil, err
	}
	st, err := ParseStage(string(stage))
	if err != nil {
		return nil, err
	}
	in := struct {
		Name            string `json:"name"`
		Version         string `json:"version"`
		Stage           Stage  `json:"stage"`
		ArchiveExisting bool   `json:"archive_existing_versions"`
	}{name, version, st, archiveExisting}
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	if err := s.c.call(ctx, regEndpoint(http.MethodPost, "model-versions/transition-stage"), in, &out); err != nil {
		return nil, err
	}
	return &out.ModelVersion, nil
}

// GetLatestVersions returns the latest version in each of stages (any case);
// with no stages, the latest version of every stage.
func (s *RegistryService) GetLatestVersions(ctx context.Context, name string, stages ...Stage) ([]*ModelVersion, error) {
	if err := required("registered model name", name); err != nil {
		return nil, err
	}
	in := struct {
		Name   string  `json:"name"`
		Stages []Stage `json:"stages,omitempty"`
	}{Name: name}
	for _, st := range stages {
		c, err := ParseStage(string(st))
		if err != nil {
			return nil, err
		}
		in.Stages = append(in.Stages, c)
	}
	var out struct {
		ModelVersions []*ModelVersion `json:"model_versions"`
	}
	if err := s.c.call(ctx, regEndpoint(http.MethodPost, "registered-models/get-latest-versions"), in, &out); err != nil {
		return nil, err
	}
	return out.ModelVersions, nil
}

// ---- Aliases ----

// SetAlias points alias at version, moving it if it pointed elsewhere.
func (s *RegistryService) SetAlias(ctx context.Context, name, alias, version string) error {
	if err := validateNameVersion(name, version); err != nil {
		return err
	}
	if err := validateAlias(alias, true); err != nil {
		return err
	}
	return s.c.call(ctx, regEndpoint(http.MethodPost, "registered-models/alias"),
		map[string]string{"name": name, "alias": alias, "version": version}, nil)
}

// GetByAlias returns the version alias points to. An alias that is not set
// yields an *APIError with code RESOURCE_DOES_NOT_EXIST (IsNotFound).
func (s *RegistryService) GetByAlias(ctx context.Context, name, alias string) (*ModelVersion, error) {
	if err := required("registered model name", name); err != nil {
		return nil, err
	}
	if err := validateAlias(alias, false); err != nil {
		return nil, err
	}
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	err := s.c.call(ctx, regEndpoint(http.MethodGet, "registered-models/alias"), url.Values{"name": {name}, "alias": {alias}}, &out)
	if err != nil {
		return nil, aliasNotFound(err)
	}
	return &out.ModelVersion, nil
}

// aliasNotFound gives a missing alias the code IsNotFound tests: the
// open-source server answers it with INVALID_PARAMETER_VALUE
// ("Registered model alias X not found.").
func aliasNotFound(err error) error {
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == CodeInvalidParameterValue &&
		strings.Contains(ae.Message, "alias") && strings.HasSuffix(strings.TrimSpace(ae.Message), "not found.") {
		nf := *ae
		nf.Code = CodeResourceDoesNotExist
		return &nf
	}
	return err
}

// DeleteAlias removes an alias.
func (s *RegistryService) DeleteAlias(ctx context.Context, name, alias string) error {
	if err := required("registered model name", name); err != nil {
		return err
	}
	if err := validateAlias(alias, false); err != nil {
		return err
	}
	return s.c.call(ctx, regEndpoint(http.MethodDelete, "registered-models/alias"),
		map[string]string{"name": name, "alias": alias}, nil)
}
