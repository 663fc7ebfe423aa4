package mlmodel

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File names of an MLflow Model folder, as mlflow.onnx.save_model writes them.
const (
	MLmodelFile      = "MLmodel"
	ModelFile        = "model.onnx"
	ExampleFile      = "input_example.json"
	ServingInputFile = "serving_input_example.json"
	RequirementsFile = "requirements.txt"
	PythonEnvFile    = "python_env.yaml"
	CondaFile        = "conda.yaml"
	ExtraFilesDir    = "extra_files" // the producing model's own files (flavors.onnx.extra_files)
)

// Defaults of the Python environment a folder declares: the versions of
// scripts/requirements.txt and the project's venv, which the interop tests
// load the folders with. mlflow_version and onnx_version in MLmodel follow
// the mlflow== and onnx== pins of the requirements.
const (
	DefaultPythonVersion = "3.11"
	DefaultMLflowVersion = "3.17.2"
	DefaultONNXVersion   = "1.23.2"
	DefaultORTVersion    = "1.24.1"
)

// DefaultProviders are mlflow.onnx's default execution providers (ONNX
// Runtime falls back to the CPU when CUDA is missing).
var DefaultProviders = []string{"CUDAExecutionProvider", "CPUExecutionProvider"}

// Environment is the Python environment a folder declares for pyfunc
// loading: requirements.txt, python_env.yaml and conda.yaml.
type Environment struct {
	Python string   // python_version, e.g. "3.11"; default DefaultPythonVersion
	Pip    []string // requirements.txt lines; default mlflow, numpy, onnx and onnxruntime pinned as above
}

// DefaultPip returns the default requirements.txt lines, sorted as MLflow sorts them.
func DefaultPip() []string {
	return []string{
		"mlflow==" + DefaultMLflowVersion,
		"numpy",
		"onnx==" + DefaultONNXVersion,
		"onnxruntime==" + DefaultORTVersion,
	}
}

// pinned returns the version pkg is pinned to with == in pip, or def.
func pinned(pip []string, pkg, def string) string {
	for _, line := range pip {
		name, v, ok := strings.Cut(strings.TrimSpace(line), "==")
		if ok && strings.EqualFold(strings.TrimSpace(name), pkg) {
			return strings.TrimSpace(v)
		}
	}
	return def
}

// Model is what Write packages: an ONNX model, its signature, an optional
// input example and the producing model's own files.
type Model struct {
	// ONNX is the serialized ModelProto (onnxgraph.Model.Marshal's output).
	ONNX []byte
	// Inputs and Outputs are the signature. Nil takes them from the ONNX
	// graph (symbolic axes become -1); given, their names and dtypes must
	// match the graph's.
	Inputs, Outputs []TensorSpec
	// Example is an input example, one float32 tensor per input (optional).
	Example map[string]Tensor
	// Files are extra files of the producing model (config, capability ids
	// and representations, metrics…), by slash-separated relative path; they
	// land under extra_files/ and are listed in flavors.onnx.extra_files.
	Files map[string][]byte
	// Metadata goes to MLmodel's metadata (feature_version, git_commit,
	// dataset_digest… see the Meta* keys).
	Metadata map[string]string
	Env      Environment
	// Providers are the ONNX Runtime execution providers pyfunc tries in
	// order; default DefaultProviders.
	Providers []string
	// Created is utc_time_created (default now); UUID is model_uuid
	// (default random).
	Created time.Time
	UUID    string
}

// Metadata keys capflow records in MLmodel's metadata and copies to model
// version tags (see VersionTags).
const (
	MetaFeatureVersion = "feature_version"
	MetaGitCommit      = "git_commit"
	MetaDatasetDigest  = "dataset_digest"
)

// checkRel validates a relative, slash-separated file path of Files.
func checkRel(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: empty path", ErrBadPath)
	case strings.Contains(p, `\`):
		return fmt.Errorf("%w: %q has a backslash (use /)", ErrBadPath, p)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("%w: %q is absolute", ErrBadPath, p)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("%w: %q has a NUL byte", ErrBadPath, p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q has an empty, '.' or '..' segment", ErrBadPath, p)
		}
	}
	if !filepath.IsLocal(filepath.FromSlash(p)) {
		return fmt.Errorf("%w: %q is not a local path", ErrBadPath, p)
	}
	return nil
}

// resolved is a Model checked and with its defaults filled in.
type resolved struct {
	Model
	files []string // sorted keys of Files
}

// resolve checks m and fills in defaults; errors are *FolderError.
func (m *Model) resolve() (*resolved, error) {
	bad := func(file string, err error) error { return &FolderError{File: file, Err: err} }
	if m == nil {
		return nil, bad("", fmt.Errorf("%w: nil model", ErrBadModel))
	}
	r := &resolved{Model: *m}
	if len(m.ONNX) == 0 {
		return nil, bad(ModelFile, ErrEmptyModelFile)
	}
	gin, gout, err := graphIO(m.ONNX)
	if err != nil {
		return nil, bad(ModelFile, err)
	}
	if r.Inputs == nil {
		r.Inputs = gin
	}
	if r.Outputs == nil {
		r.Outputs = gout
	}
	if err := checkSpecs("inputs", r.Inputs); err != nil {
		return nil, bad(MLmodelFile, err)
	}
	if err := checkSpecs("outputs", r.Outputs); err != nil {
		return nil, bad(MLmodelFile, err)
	}
	if err := matchGraph("inputs", r.Inputs, gin); err != nil {
		return nil, bad(MLmodelFile, err)
	}
	if err := matchGraph("outputs", r.Outputs, gout); err != nil {
		return nil, bad(MLmodelFile, err)
	}
	if r.Example != nil {
		if err := checkExample(r.Inputs, r.Example); err != nil {
			return nil, bad(ExampleFile, err)
		}
	}
	seen := map[string]string{}
	for _, p := range slices.Sorted(maps.Keys(m.Files)) {
		if err := checkRel(p); err != nil {
			return nil, bad(path.Join(ExtraFilesDir, p), err)
		}
		// "a" and "a/b" cannot both be files.
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if _, ok := m.Files[dir]; ok {
				return nil, bad(path.Join(ExtraFilesDir, p), fmt.Errorf("%w: %q is also a file", ErrBadPath, dir))
			}
		}
		if other, ok := seen[strings.ToLower(p)]; ok { // would collide on case-insensitive file systems
			return nil, bad(path.Join(ExtraFilesDir, p), fmt.Errorf("%w: differs from %q only in case", ErrBadPath, other))
		}
		seen[strings.ToLower(p)] = p
		r.files = append(r.files, p)
	}
	for k := range m.Metadata {
		if k == "" {
			return nil, bad(MLmodelFile, fmt.Errorf("%w: empty metadata key", ErrBadModel))
		}
	}
	if r.Env.Python == "" {
		r.Env.Python = DefaultPythonVersion
	}
	if r.Env.Pip == nil {
		r.Env.Pip = DefaultPip()
	}
	for _, line := range r.Env.Pip {
		if strings.ContainsAny(line, "\n\r") || strings.TrimSpace(line) == "" {
			return nil, bad(RequirementsFile, fmt.Errorf("%w: requirement %q is empty or spans lines", ErrBadModel, line))
		}
	}
	if r.Providers == nil {
		r.Providers = DefaultProviders
	}
	if r.Created.IsZero() {
		r.Created = time.Now()
	}
	if r.UUID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		r.UUID = hex.EncodeToString(b[:])
	}
	return r, nil
}

// matchGraph checks that specs name the graph's tensors with their dtypes.
func matchGraph(side string, specs, graph []TensorSpec) error {
	if len(specs) != len(graph) {
		return fmt.Errorf("%w: %d %s in the signature, %d in the ONNX graph (%v)", ErrBadSignature, len(specs), side, len(graph), graph)
	}
	for _, s := range specs {
		i := slices.IndexFunc(graph, func(g TensorSpec) bool { return g.Name == s.Name })
		if i < 0 {
			return fmt.Errorf("%w: %s %q is not in the ONNX graph (%v)", ErrBadSignature, side, s.Name, graph)
		}
		if graph[i].DType != s.DType {
			return fmt.Errorf("%w: %s %q is %s in the signature, %s in the ONNX graph", ErrBadSignature, side, s.Name, s.DType, graph[i].DType)
		}
		if len(graph[i].Shape) != len(s.Shape) {
			return fmt.Errorf("%w: %s %q has rank %d in the signature, %d in the ONNX graph", ErrBadSignature, side, s.Name, len(s.Shape), len(graph[i].Shape))
		}
		for j, d := range graph[i].Shape {
			if d >= 0 && s.Shape[j] >= 0 && d != s.Shape[j] {
				return fmt.Errorf("%w: %s %q has shape %v in the signature, %v in the ONNX graph", ErrBadSignature, side, s.Name, s.Shape, graph[i].Shape)
			}
		}
	}
	return nil
}

// mlmodel builds the MLmodel document of r; size is model_size_bytes.
func (r *resolved) mlmodel(size int64) *MLmodel {
	f := false
	m := &MLmodel{
		Flavors: Flavors{
			ONNX: &ONNXFlavor{
				Data:        ModelFile,
				ONNXVersion: pinned(r.Env.Pip, "onnx", DefaultONNXVersion),
				Providers:   r.Providers,
			},
			PyFunc: &PyFuncFlavor{
				Data:          ModelFile,
				Env:           &PyFuncEnv{Conda: CondaFile, Virtualenv: PythonEnvFile},
				LoaderModule:  "mlflow.onnx",
				PythonVersion: r.Env.Python,
			},
		},
		IsSignatureFromTypeHint: &f,
		MLflowVersion:           pinned(r.Env.Pip, "mlflow", DefaultMLflowVersion),
		ModelSizeBytes:          &size,
		ModelUUID:               r.UUID,
		Signature:               &SignatureField{Inputs: encodeSpecs(r.Inputs), Outputs: encodeSpecs(r.Outputs)},
		TypeHintFromExample:     &f,
		UTCTimeCreated:          r.Created.UTC().Format("2006-01-02 15:04:05.000000"),
	}
	for _, p := range r.files {
		m.Flavors.ONNX.ExtraFiles = append(m.Flavors.ONNX.ExtraFiles, ExtraFile{Path: ExtraFilesDir + "/" + p})
	}
	if len(r.Metadata) > 0 {
		m.Metadata = make(map[string]any, len(r.Metadata))
		for k, v := range r.Metadata {
			m.Metadata[k] = v
		}
	}
	if r.Example != nil {
		m.SavedInputExampleInfo = &ExampleInfo{ArtifactPath: ExampleFile, ServingInputPath: ServingInputFile, Type: exampleTypeNDArray}
	}
	return m
}

// envFiles returns requirements.txt, python_env.yaml and conda.yaml as
// mlflow.onnx.save_model writes them (pip, setuptools and wheel unpinned:
// the writer is not a Python environment).
func (r *resolved) envFiles() map[string][]byte {
	var pyEnv, conda strings.Builder
	fmt.Fprintf(&pyEnv, "python: %s\nbuild_dependencies:\n- pip\n- setuptools\n- wheel\ndependencies:\n- -r %s\n", r.Env.Python, RequirementsFile)
	fmt.Fprintf(&conda, "channels:\n- conda-forge\ndependencies:\n- python=%s\n- pip\n- pip:\n", r.Env.Python)
	for _, line := range r.Env.Pip {
		fmt.Fprintf(&conda, "  - %s\n", yamlScalar(line))
	}
	conda.WriteString("name: mlflow-env\n")
	return map[string][]byte{
		RequirementsFile: []byte(strings.Join(r.Env.Pip, "\n")),
		PythonEnvFile:    []byte(pyEnv.String()),
		CondaFile:        []byte(conda.String()),
	}
}

// yamlScalar quotes s when YAML would not read it back as the same string.
func yamlScalar(s string) string {
	if strings.ContainsAny(s, ":#'\"{}[],&*!|>%@`") || strings.HasPrefix(s, "-") || strings.TrimSpace(s) != s {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return s
}

// Write packages m as an MLflow Model folder at dir. The folder is built in a
// temporary sibling and renamed into place, so dir is either absent or
// complete. dir must not exist, or be an empty directory. Errors are
// *FolderError (errors.Is with ErrExists, ErrBadSignature, ErrBadExample,
// ErrBadPath…) or I/O errors.
func Write(dir string, m *Model) error {
	r, err := m.resolve()
	if err != nil {
		var fe *FolderError
		if errors.As(err, &fe) {
			fe.Dir = dir
		}
		return err
	}
	if err := checkTarget(dir); err != nil {
		return err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("mlmodel: write %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return fmt.Errorf("mlmodel: write %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := r.writeTo(tmp); err != nil {
		return fmt.Errorf("mlmodel: write %s: %w", dir, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("mlmodel: write %s: %w", dir, err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) { // an empty dir
		return &FolderError{Dir: dir, Err: fmt.Errorf("%w: %v", ErrExists, err)}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("mlmodel: write %s: %w", dir, err)
	}
	return nil
}

// checkTarget refuses a dir that exists and is not an empty directory.
func checkTarget(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mlmodel: %s: %w", dir, err)
	}
	if !st.IsDir() {
		return &FolderError{Dir: dir, Err: fmt.Errorf("%w: a file is there", ErrExists)}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("mlmodel: %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return &FolderError{Dir: dir, Err: ErrExists}
	}
	return nil
}

// writeTo writes the folder's files into the empty directory dir.
func (r *resolved) writeTo(dir string) error {
	// model_size_bytes is, as in mlflow.onnx.save_model, the size of what
	// exists before MLmodel and the environment files: model, examples,
	// extra files.
	var size int64
	put := func(rel string, b []byte) error {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		size += int64(len(b))
		return writeFileSync(p, b)
	}
	if err := put(ModelFile, r.ONNX); err != nil {
		return err
	}
	if r.Example != nil {
		ex, serving := encodeExample(r.Inputs, r.Example)
		if err := put(ExampleFile, ex); err != nil {
			return err
		}
		if err := put(ServingInputFile, serving); err != nil {
			return err
		}
	}
	for _, p := range r.files {
		if err := put(ExtraFilesDir+"/"+p, r.Files[p]); err != nil {
			return err
		}
	}
	doc, err := r.mlmodel(size).Marshal()
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(dir, MLmodelFile), doc); err != nil {
		return err
	}
	for name, b := range r.envFiles() {
		if err := writeFileSync(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	return nil
}

// writeFileSync writes and syncs a file, so that a folder renamed into place
// after a crash holds whole files.
func writeFileSync(p string, b []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
