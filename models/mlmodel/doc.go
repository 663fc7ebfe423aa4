// Package mlmodel writes, reads and publishes MLflow Model folders of
// capflow's ONNX models.
//
// A folder is what mlflow.onnx.save_model writes, field for field (see
// docs/mlmodel.md for the layout), so the official Python client loads it
// with mlflow.pyfunc.load_model and serves it:
//
//	MLmodel                      flavors onnx + python_function (mlflow.onnx), tensor signature, metadata
//	model.onnx
//	input_example.json           a dict of tensors, as MLflow 3 saves one ("ndarray")
//	serving_input_example.json   {"inputs": …}
//	requirements.txt, python_env.yaml, conda.yaml
//	extra_files/…                the producing model's own files (flavors.onnx.extra_files)
//
// Write packages a Model atomically (a temporary sibling renamed into
// place); Read verifies a folder and returns a Folder, or a *FolderError
// naming the file and the problem (test with errors.Is against the Err*
// values).
//
// With an mlflowclient.Client, Log uploads a folder as an MLflow 3 logged
// model linked to its run (as mlflow.onnx.log_model does), Register makes it
// a registered model version, Promote moves versions to Staging or
// Production, Rollback restores the previous Production version, and
// Download fetches a folder by models:/ URI and verifies it.
//
//	dir := "out/shgat"
//	err := mlmodel.Write(dir, &mlmodel.Model{ONNX: onnxBytes, Example: example,
//		Files: map[string][]byte{"config.json": cfg}, Metadata: map[string]string{mlmodel.MetaFeatureVersion: fv}})
//	lm, err := mlmodel.Log(ctx, c, runID, dir, mlmodel.LogOptions{})
//	f, err := mlmodel.Read(dir)
//	mv, err := mlmodel.Register(ctx, c, mlmodel.RegisterOptions{ModelID: lm.ID(), Tags: mlmodel.VersionTags(f)})
//	_, err = mlmodel.Promote(ctx, c, mv.Name, mv.Version, mlflowclient.StageProduction)
//	f, err = mlmodel.Download(ctx, c, "models:/capflow-shgat/Production", "serving/model")
package mlmodel
