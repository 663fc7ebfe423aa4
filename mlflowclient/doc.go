// Package mlflowclient is a typed Go client for the MLflow 3.x REST API:
// tracking (experiments, runs, metrics, datasets), artifacts through the
// tracking server's proxy, 3.x logged models, and the Model Registry.
//
// The layout follows google/go-github: one service per resource hangs off
// [Client] (c.Experiments, c.Runs, c.Artifacts, c.LoggedModels, c.Registry),
// requests take option structs, list calls have a page method and an
// auto-paging iterator, and every server error is an [*APIError].
//
//	c, err := mlflowclient.New(mlflowclient.WithTrackingURI("http://127.0.0.1:5000"))
//	exp, err := c.Experiments.GetOrCreate(ctx, "capflow")
//	run, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: exp.ID, RunName: "train"})
//	err = c.Runs.LogBatch(ctx, run.Info.RunID, mlflowclient.Batch{Metrics: points})
//
// Configuration comes from the MLFLOW_* environment variables the official
// client reads (MLFLOW_TRACKING_URI, MLFLOW_REGISTRY_URI, MLFLOW_TRACKING_USERNAME,
// MLFLOW_TRACKING_PASSWORD, MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_INSECURE_TLS,
// MLFLOW_TRACKING_SERVER_CERT_PATH, MLFLOW_EXPERIMENT_NAME, MLFLOW_RUN_ID);
// explicit options passed to [New] override them.
package mlflowclient
