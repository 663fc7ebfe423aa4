package mlmodel

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// MLmodel is the MLmodel file of an MLflow Model folder, with the fields
// MLflow 3 writes for an ONNX model. Fields are declared in alphabetical
// order because PyYAML's safe_dump sorts keys: the file reads like one the
// official client wrote. Keys this struct does not know are kept in Extra and
// written back unchanged.
type MLmodel struct {
	// ArtifactPath and RunID are set for a logged model (the model's artifact
	// location and source run), absent for a saved folder.
	ArtifactPath            string          `yaml:"artifact_path,omitempty"`
	Flavors                 Flavors         `yaml:"flavors"`
	IsSignatureFromTypeHint *bool           `yaml:"is_signature_from_type_hint,omitempty"`
	Metadata                map[string]any  `yaml:"metadata,omitempty"`
	MLflowVersion           string          `yaml:"mlflow_version,omitempty"`
	ModelID                 *string         `yaml:"model_id"` // null until logged
	ModelSizeBytes          *int64          `yaml:"model_size_bytes,omitempty"`
	ModelUUID               string          `yaml:"model_uuid"`
	Prompts                 any             `yaml:"prompts"`
	RunID                   string          `yaml:"run_id,omitempty"`
	SavedInputExampleInfo   *ExampleInfo    `yaml:"saved_input_example_info,omitempty"`
	Signature               *SignatureField `yaml:"signature,omitempty"`
	TypeHintFromExample     *bool           `yaml:"type_hint_from_example,omitempty"`
	UTCTimeCreated          string          `yaml:"utc_time_created"`
	Extra                   map[string]any  `yaml:",inline"`
}

// Flavors are the ways to load the model: onnx (the model itself) and
// python_function (mlflow.pyfunc, which mlflow.onnx implements).
type Flavors struct {
	ONNX   *ONNXFlavor    `yaml:"onnx,omitempty"`
	PyFunc *PyFuncFlavor  `yaml:"python_function,omitempty"`
	Other  map[string]any `yaml:",inline"`
}

// ONNXFlavor is flavors.onnx.
type ONNXFlavor struct {
	Code               *string        `yaml:"code"`
	Data               string         `yaml:"data"` // the model file, relative to the folder
	ExtraFiles         []ExtraFile    `yaml:"extra_files,omitempty"`
	ONNXSessionOptions any            `yaml:"onnx_session_options"`
	ONNXVersion        string         `yaml:"onnx_version"`
	Providers          []string       `yaml:"providers"`
	Extra              map[string]any `yaml:",inline"`
}

// ExtraFile is one entry of flavors.onnx.extra_files.
type ExtraFile struct {
	Path string `yaml:"path"` // relative to the folder, e.g. extra_files/config.json
}

// PyFuncFlavor is flavors.python_function.
type PyFuncFlavor struct {
	Code          *string        `yaml:"code,omitempty"`
	Data          string         `yaml:"data"`
	Env           *PyFuncEnv     `yaml:"env,omitempty"`
	LoaderModule  string         `yaml:"loader_module"`
	PythonVersion string         `yaml:"python_version"`
	Extra         map[string]any `yaml:",inline"`
}

// PyFuncEnv names the environment files.
type PyFuncEnv struct {
	Conda      string `yaml:"conda"`
	Virtualenv string `yaml:"virtualenv"`
}

// ExampleInfo is saved_input_example_info.
type ExampleInfo struct {
	ArtifactPath     string         `yaml:"artifact_path"`
	ServingInputPath string         `yaml:"serving_input_path,omitempty"`
	Type             string         `yaml:"type"`
	Extra            map[string]any `yaml:",inline"`
}

// SignatureField is the signature as stored: each side a JSON string.
type SignatureField struct {
	Inputs  string  `yaml:"inputs"`
	Outputs string  `yaml:"outputs"`
	Params  *string `yaml:"params"`
}

// ParseMLmodel parses the contents of an MLmodel file.
func ParseMLmodel(b []byte) (*MLmodel, error) {
	var m MLmodel
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMLmodel, err)
	}
	return &m, nil
}

// Marshal renders the MLmodel file, indented as PyYAML indents it.
func (m *MLmodel) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	enc.CompactSeqIndent()
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("mlmodel: encoding MLmodel: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("mlmodel: encoding MLmodel: %w", err)
	}
	return b.Bytes(), nil
}
