package mlflowclient

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// ExperimentsService handles experiments (service.proto: CreateExperiment, ...).
type ExperimentsService service

// The MLflow 3 UI opens an experiment in its GenAI or its model-training view
// by this tag; without it the UI guesses (and guesses GenAI for an empty one).
const (
	TagExperimentKind              = "mlflow.experimentKind"
	ExperimentKindModelTraining    = "custom_model_development"
	ExperimentKindGenAIDevelopment = "genai_development"
)

// CreateExperimentOptions are the fields of CreateExperiment.
type CreateExperimentOptions struct {
	Name             string `json:"name"`
	ArtifactLocation string `json:"artifact_location,omitempty"`
	Tags             []Tag  `json:"tags,omitempty"`
}

// Create creates an experiment and returns its id. A name that exists already
// yields an *APIError with RESOURCE_ALREADY_EXISTS (see GetOrCreate) — except
// when this call itself was retried: then the first attempt most likely
// created it and only its answer was lost, so the existing id is returned.
func (s *ExperimentsService) Create(ctx context.Context, opts CreateExperimentOptions) (string, error) {
	if err := validateExperimentName(opts.Name); err != nil {
		return "", err
	}
	for _, t := range opts.Tags {
		if err := validateExperimentTag(t.Key, t.Value); err != nil {
			return "", err
		}
	}
	var out struct {
		ExperimentID string `json:"experiment_id"`
	}
	tries, err := s.c.callTries(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/experiments/create"}, opts, &out)
	if tries > 1 && IsAlreadyExists(err) {
		exp, gerr := s.GetByName(ctx, opts.Name)
		if gerr != nil {
			return "", err
		}
		return exp.ID, nil
	}
	return out.ExperimentID, err
}

// GetOrCreate returns the experiment called name, creating it when missing.
// It is safe to call concurrently and on retries: a create that meets
// RESOURCE_ALREADY_EXISTS (another caller, or our own first attempt whose
// answer was lost) resolves to the existing experiment.
func (s *ExperimentsService) GetOrCreate(ctx context.Context, name string, tags ...Tag) (*Experiment, error) {
	exp, err := s.GetByName(ctx, name)
	if err == nil {
		return exp, nil
	}
	if !IsNotFound(err) {
		return nil, err
	}
	id, err := s.Create(ctx, CreateExperimentOptions{Name: name, Tags: tags})
	if IsAlreadyExists(err) {
		return s.GetByName(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// Get fetches an experiment by id.
func (s *ExperimentsService) Get(ctx context.Context, id string) (*Experiment, error) {
	if err := required("experiment_id", id); err != nil {
		return nil, err
	}
	var out struct {
		Experiment Experiment `json:"experiment"`
	}
	err := s.c.call(ctx, endpoint{method: http.MethodGet, path: "/api/2.0/mlflow/experiments/get"},
		url.Values{"experiment_id": {id}}, &out)
	if err != nil {
		return nil, err
	}
	return &out.Experiment, nil
}

// GetByName fetches an experiment by name (RESOURCE_DOES_NOT_EXIST when absent).
func (s *ExperimentsService) GetByName(ctx context.Context, name string) (*Experiment, error) {
	if err := required("experiment name", name); err != nil {
		return nil, err
	}
	var out struct {
		Experiment Experiment `json:"experiment"`
	}
	err := s.c.call(ctx, endpoint{method: http.MethodGet, path: "/api/2.0/mlflow/experiments/get-by-name"},
		url.Values{"experiment_name": {name}}, &out)
	if err != nil {
		return nil, err
	}
	return &out.Experiment, nil
}

// SearchExperimentsOptions filter and order an experiment search. Filter uses
// MLflow's grammar, e.g. `name LIKE 'capflow%' AND tags.team = 'ml'`.
type SearchExperimentsOptions struct {
	Filter     string   `json:"filter,omitempty"`
	OrderBy    []string `json:"order_by,omitempty"` // e.g. "last_update_time DESC"
	ViewType   ViewType `json:"view_type,omitempty"`
	MaxResults int      `json:"max_results,omitempty"` // page size (server default 1000)
	PageToken  string   `json:"page_token,omitempty"`
}

// Search returns one page of experiments.
func (s *ExperimentsService) Search(ctx context.Context, opts SearchExperimentsOptions) (*Page[*Experiment], error) {
	var out struct {
		Experiments   []*Experiment `json:"experiments"`
		NextPageToken string        `json:"next_page_token"`
	}
	err := s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/experiments/search"}, opts, &out)
	if err != nil {
		return nil, err
	}
	return &Page[*Experiment]{Items: out.Experiments, NextPageToken: out.NextPageToken}, nil
}

// All iterates over every matching experiment, fetching pages as needed.
func (s *ExperimentsService) All(ctx context.Context, opts SearchExperimentsOptions) iter.Seq2[*Experiment, error] {
	return all(ctx, opts.PageToken, func(ctx context.Context, token string) (*Page[*Experiment], error) {
		o := opts
		o.PageToken = token
		return s.Search(ctx, o)
	})
}

// Update renames an experiment.
func (s *ExperimentsService) Update(ctx context.Context, id, newName string) error {
	if err := required("experiment_id", id); err != nil {
		return err
	}
	if err := validateExperimentName(newName); err != nil {
		return err
	}
	return s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/experiments/update"},
		map[string]string{"experiment_id": id, "new_name": newName}, nil)
}

// Delete marks an experiment (and its runs) deleted; Restore undoes it.
func (s *ExperimentsService) Delete(ctx context.Context, id string) error {
	return s.lifecycle(ctx, "delete", id)
}

// Restore restores a deleted experiment.
func (s *ExperimentsService) Restore(ctx context.Context, id string) error {
	return s.lifecycle(ctx, "restore", id)
}

func (s *ExperimentsService) lifecycle(ctx context.Context, verb, id string) error {
	if err := required("experiment_id", id); err != nil {
		return err
	}
	return s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/experiments/" + verb},
		map[string]string{"experiment_id": id}, nil)
}

// SetTag sets a tag on an experiment (e.g. mlflow.note.content for the UI's description).
func (s *ExperimentsService) SetTag(ctx context.Context, id, key, value string) error {
	if err := required("experiment_id", id); err != nil {
		return err
	}
	if err := validateExperimentTag(key, value); err != nil {
		return err
	}
	return s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/experiments/set-experiment-tag"},
		map[string]string{"experiment_id": id, "key": key, "value": value}, nil)
}

// DeleteTag removes a tag from an experiment.
func (s *ExperimentsService) DeleteTag(ctx context.Context, id, key string) error {
	if err := required("experiment_id", id); err != nil {
		return err
	}
	if err := required("tag key", key); err != nil {
		return err
	}
	return s.c.call(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/experiments/delete-experiment-tag"},
		map[string]string{"experiment_id": id, "key": key}, nil)
}

func validateExperimentName(name string) error {
	if err := required("experiment name", name); err != nil {
		return err
	}
	if len(name) > maxExperimentNameLength {
		return &ValidationError{Field: "experiment name", Value: shorten(name),
			Reason: "longer than " + strconv.Itoa(maxExperimentNameLength) + " characters"}
	}
	return nil
}

func validateExperimentTag(key, value string) error {
	if err := required("experiment tag key", key); err != nil {
		return err
	}
	if len(key) > maxEntityKeyLength {
		return &ValidationError{Field: "experiment tag key", Value: shorten(key), Reason: "longer than 250 characters"}
	}
	if len(value) > maxExperimentTagValueLength {
		return &ValidationError{Field: "experiment tag value", Value: shorten(key),
			Reason: "longer than " + strconv.Itoa(maxExperimentTagValueLength) + " characters"}
	}
	return nil
}
