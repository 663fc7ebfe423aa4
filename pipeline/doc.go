// Package pipeline runs capflow's stages as one tracked pipeline run.
//
// A Stage is a plugin: a name and a Run method. A Runner runs stages in
// order under one MLflow parent run, each stage in its own nested run, and
// hands every stage an Env: the feature store, the stage's Tracker (params,
// metrics, tags, artifacts of its MLflow run), a logger, progress bars, and
// the values earlier stages published (Env.Set / Env.Value), such as the
// feature_version the features stage wrote.
//
// The stages themselves live in subpackages (pipeline/features, ...) so a
// user composes them — or their own — from Go:
//
//	r := &pipeline.Runner{Client: mlflow, Store: store, Experiment: "capflow"}
//	res, err := r.Run(ctx, features.NewStage(cfg), myStage)
//
// A stage that fails ends its run and the parent run FAILED (KILLED when the
// context was cancelled) and stops the pipeline; later stages do not run.
package pipeline
