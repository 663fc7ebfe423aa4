package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/mlflowclient"
)

// Stage is one step of a pipeline.
type Stage interface {
	// Name is short and stable ("features", "train"): it names the stage's
	// MLflow run and prefixes its log lines.
	Name() string
	// Run does the stage's work. Everything it reads and writes goes through
	// env; an error stops the pipeline.
	Run(ctx context.Context, env *Env) error
}

// StageFunc adapts a function to a Stage.
func StageFunc(name string, run func(ctx context.Context, env *Env) error) Stage {
	return stageFunc{name, run}
}

type stageFunc struct {
	name string
	run  func(context.Context, *Env) error
}

func (s stageFunc) Name() string                            { return s.name }
func (s stageFunc) Run(ctx context.Context, env *Env) error { return s.run(ctx, env) }

// Env is what a stage works with.
type Env struct {
	Store   featurestore.Store
	Tracker Tracker // the stage's own MLflow run (Discard when not tracking)
	// Client is the MLflow client of a tracked run (nil when not tracking),
	// for what a Tracker does not cover: logged models, the registry.
	Client   *mlflowclient.Client
	Logger   *slog.Logger
	Progress Progress

	values *values // shared by every stage of one Runner.Run
}

// Set publishes a value for later stages (e.g. "feature_version") and
// records it on the parent run as the tag "capflow.<key>".
func (e *Env) Set(key, value string) {
	if e.values != nil {
		e.values.set(key, value)
	}
}

// Value returns what an earlier stage Set, or what the Runner was given in
// Values.
func (e *Env) Value(key string) (string, bool) {
	if e.values == nil {
		return "", false
	}
	return e.values.get(key)
}

type values struct {
	mu  sync.Mutex
	m   map[string]string
	new map[string]string // set since the last drain, to tag the parent run
}

func newValues(init map[string]string) *values {
	return &values{m: maps.Clone(init), new: map[string]string{}}
}

func (v *values) set(key, value string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[string]string{}
	}
	v.m[key] = value
	v.new[key] = value
}

func (v *values) get(key string) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.m[key]
	return s, ok
}

func (v *values) drain() map[string]string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := v.new
	v.new = map[string]string{}
	return out
}

func (v *values) all() map[string]string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return maps.Clone(v.m)
}

// StageError is a stage that failed, naming it.
type StageError struct {
	Stage string
	Err   error
}

func (e *StageError) Error() string { return fmt.Sprintf("pipeline: stage %s: %v", e.Stage, e.Err) }
func (e *StageError) Unwrap() error { return e.Err }
