package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline"
)

// CVStageName names the cross-validation stage's nested run.
const CVStageName = "cross-validation"

// CVStageConfig configures the cross-validation stage.
type CVStageConfig struct {
	Train Config
	// Source says what to load; its Store is taken from the pipeline. An
	// empty PseudoPrefix cross-validates the store's logged experiences.
	// ValidFraction and SplitSeed choose the sessions each fold holds out
	// of its training side for early stopping and the fusion fit.
	Source  Source
	Encoder textembed.Encoder
	K       int    // folds, at least 2
	Seed    uint64 // the fold assignment's (AssignFolds)
}

// CVStage cross-validates training on a store's sessions (CrossValidate)
// and logs the result: the stage's run gets the training params, each
// fold's metrics at step = fold index (fold_<system>_<metric>), the summary
// (CrossValidation.Metrics: cv_<system>_<metric>_mean/_sd and the paired
// differences) and the artifacts cv/cv.md (the table) and cv/cv.json.
// Nothing is registered: the models only measure the procedure.
type CVStage struct{ cfg CVStageConfig }

// NewCVStage checks cfg: an encoder, a valid training config, K ≥ 2 (a
// *ConfigError on "cv"; K above the sessions is found once they are
// loaded).
func NewCVStage(cfg CVStageConfig) (*CVStage, error) {
	if err := CheckFolds(cfg.K); err != nil {
		return nil, err
	}
	if cfg.Encoder == nil {
		return nil, &ConfigError{Field: "encoder", Reason: "missing"}
	}
	// A fold is short and never resumed: checkpoints would only cost
	// writes, and every fold would overwrite the last one's.
	cfg.Train.CheckpointEvery = 0
	if err := cfg.Train.check(); err != nil {
		return nil, err
	}
	return &CVStage{cfg: cfg}, nil
}

// Name is CVStageName.
func (s *CVStage) Name() string { return CVStageName }

// Run cross-validates and logs (see CVStage).
func (s *CVStage) Run(ctx context.Context, env *pipeline.Env) error {
	_, err := s.CrossValidate(ctx, env)
	return err
}

// CrossValidate is Run returning the result. A store without experiences
// is a *DataError wrapping ErrNoExperiences, one without capability
// features a *DataError wrapping ErrNoFeatures.
func (s *CVStage) CrossValidate(ctx context.Context, env *pipeline.Env) (*CrossValidation, error) {
	cfg := s.cfg
	src, err := stageSource(env, cfg.Source, cfg.Encoder, cfg.Train.Reward)
	if err != nil {
		return nil, err
	}
	data, err := Load(ctx, src, cfg.Train.Model)
	if err != nil {
		return nil, err
	}
	env.Logger.Info("cross-validation data", "transitions", len(data.Train)+len(data.Valid),
		"sessions", len(Sessions(data.Split.Train))+len(Sessions(data.Split.Valid)), "pool", len(data.Pool),
		"capabilities", len(data.Graph.Caps), "tools", len(data.Graph.Tools), "folds", cfg.K)
	params := flatten("", cfg.Train)
	params["cv.k"] = strconv.Itoa(cfg.K)
	params["cv.seed"] = strconv.FormatUint(cfg.Seed, 10)
	params[ParamPseudoPrefix] = src.PseudoPrefix
	params[ParamValidFraction] = strconv.FormatFloat(src.validFraction(), 'g', -1, 64)
	params[ParamSplitSeed] = strconv.FormatUint(src.SplitSeed, 10)
	params["data.transitions"] = strconv.Itoa(len(data.Train) + len(data.Valid))
	params["data.pool"] = strconv.Itoa(len(data.Pool))
	params["data.evidence"] = strconv.FormatBool(!src.NoEvidence)
	params["encoder"] = cfg.Encoder.Model().Name
	params["encoder.version"] = cfg.Encoder.Model().Version
	if err := env.Tracker.LogParams(ctx, params); err != nil {
		return nil, fmt.Errorf("train: cross-validation: log params: %w", err)
	}

	cv, err := CrossValidate(ctx, data, cfg.Train, CVOptions{K: cfg.K, Seed: cfg.Seed, Logger: env.Logger, Progress: env.Progress})
	if err != nil {
		return nil, err
	}
	for _, f := range cv.Folds {
		m := map[string]float64{"fold_steps": float64(f.Steps), "fold_seconds": f.Seconds, "fold_test_sessions": float64(len(f.Sessions))}
		for name, v := range f.Systems {
			for k, x := range v.metrics("fold_" + name + "_") {
				m[k] = x
			}
		}
		if err := env.Tracker.LogMetrics(ctx, int64(f.Index), m); err != nil {
			return nil, fmt.Errorf("train: cross-validation: log fold %d: %w", f.Index+1, err)
		}
	}
	if err := env.Tracker.LogMetrics(ctx, 0, cv.Metrics()); err != nil {
		return nil, fmt.Errorf("train: cross-validation: log metrics: %w", err)
	}
	var md bytes.Buffer
	if err := cv.WriteMarkdown(&md); err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(cv, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("train: cross-validation: %w", err)
	}
	if err := errors.Join(env.Tracker.LogArtifactBytes(ctx, "cv/cv.md", md.Bytes()), env.Tracker.LogArtifactBytes(ctx, "cv/cv.json", js)); err != nil {
		return nil, fmt.Errorf("train: cross-validation: artifacts: %w", err)
	}
	return cv, nil
}
