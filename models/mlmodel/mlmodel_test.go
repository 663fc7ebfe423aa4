package mlmodel

import (
	"bytes"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/models/onnxgraph"
)

// tinyONNX is scores[b,n] = (intent[b] + ½·Σ_c mask[b,c]·context[b,c])·candidates[n] · reliability[n]:
// the SHGAT scorer's inputs and output with a computation simple enough to
// check by hand.
func tinyONNX(t *testing.T, d int) []byte {
	t.Helper()
	g := onnxgraph.New("tiny")
	intent := g.Input("intent", onnxgraph.Float, "batch", d)
	ctx := g.Input("context", onnxgraph.Float, "batch", "context", d)
	mask := g.Input("context_mask", onnxgraph.Float, "batch", "context")
	cand := g.Input("candidates", onnxgraph.Float, "candidates", d)
	rel := g.Input("reliability", onnxgraph.Float, "candidates")
	m3 := g.Op("Unsqueeze", []string{mask, g.IntVector(2)})
	pooled := g.Op("ReduceSum", []string{g.Op("Mul", []string{ctx, m3}), g.IntVector(1)}, onnxgraph.AttrInt("keepdims", 0))
	x := g.Op("Add", []string{intent, g.Op("Mul", []string{pooled, g.FloatScalar(0.5)})})
	raw := g.Op("MatMul", []string{x, g.Op("Transpose", []string{cand}, onnxgraph.AttrInts("perm", 1, 0))})
	g.Node("Mul", []string{raw, rel}, []string{"scores"})
	g.Output("scores", onnxgraph.Float, "batch", "candidates")
	b, err := (&onnxgraph.Model{Graph: g, Opset: 17, Producer: "capflow-test"}).Marshal()
	require.NoError(t, err)
	return b
}

func tinyExample(d int) map[string]Tensor {
	const b, c, n = 2, 3, 4
	fill := func(shape ...int64) Tensor {
		t := Tensor{Shape: shape, Data: make([]float32, size(shape))}
		for i := range t.Data {
			t.Data[i] = float32(math.Sin(float64(i)*0.7+float64(len(shape)))) / 3
		}
		return t
	}
	mask := Tensor{Shape: []int64{b, c}, Data: []float32{1, 1, 0, 1, 0, 0}}
	rel := Tensor{Shape: []int64{n}, Data: []float32{1, 1.5, 0.5, 2}}
	return map[string]Tensor{
		"intent": fill(b, int64(d)), "context": fill(b, c, int64(d)), "context_mask": mask,
		"candidates": fill(n, int64(d)), "reliability": rel,
	}
}

func tinyModel(t *testing.T) *Model {
	const d = 4
	return &Model{
		ONNX:    tinyONNX(t, d),
		Example: tinyExample(d),
		Files: map[string][]byte{
			"config.json":           []byte(`{"dim":4}`),
			"capabilities/ids.json": []byte(`["c1","c2","c3","c4"]`),
		},
		Metadata: map[string]string{MetaFeatureVersion: "fv-1", MetaGitCommit: "abc123"},
		Created:  time.Date(2026, 11, 26, 1, 2, 3, 456789000, time.UTC),
		UUID:     "0123456789abcdef0123456789abcdef",
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	m := tinyModel(t)
	dir := filepath.Join(t.TempDir(), "model")
	require.NoError(t, Write(dir, m))

	f, err := Read(dir)
	require.NoError(t, err)
	want := []TensorSpec{
		{"intent", "float32", []int64{-1, 4}},
		{"context", "float32", []int64{-1, -1, 4}},
		{"context_mask", "float32", []int64{-1, -1}},
		{"candidates", "float32", []int64{-1, 4}},
		{"reliability", "float32", []int64{-1}},
	}
	assert.Equal(t, want, f.Inputs, "signature taken from the ONNX graph")
	assert.Equal(t, []TensorSpec{{"scores", "float32", []int64{-1, -1}}}, f.Outputs)
	assert.Equal(t, m.Example, f.Example, "the example round-trips exactly")
	assert.Equal(t, []string{"capabilities/ids.json", "config.json"}, f.ExtraFiles)
	b, err := f.ReadFile("capabilities/ids.json")
	require.NoError(t, err)
	assert.Equal(t, m.Files["capabilities/ids.json"], b)
	_, err = f.ReadFile("../MLmodel")
	assert.ErrorIs(t, err, ErrBadPath)
	onnx, err := f.ONNX()
	require.NoError(t, err)
	assert.Equal(t, m.ONNX, onnx)
	assert.Equal(t, map[string]string{"feature_version": "fv-1", "git_commit": "abc123"}, f.Metadata)

	ml := f.MLmodel
	assert.Equal(t, "2026-11-26 01:02:03.456789", ml.UTCTimeCreated)
	assert.Equal(t, m.UUID, ml.ModelUUID)
	assert.Equal(t, DefaultMLflowVersion, ml.MLflowVersion)
	assert.Nil(t, ml.ModelID)
	assert.Equal(t, "mlflow.onnx", ml.Flavors.PyFunc.LoaderModule)
	assert.Equal(t, ModelFile, ml.Flavors.PyFunc.Data)
	assert.Equal(t, &PyFuncEnv{Conda: CondaFile, Virtualenv: PythonEnvFile}, ml.Flavors.PyFunc.Env)
	assert.Equal(t, DefaultONNXVersion, ml.Flavors.ONNX.ONNXVersion)
	assert.Equal(t, DefaultProviders, ml.Flavors.ONNX.Providers)
	assert.Equal(t, []ExtraFile{{"extra_files/capabilities/ids.json"}, {"extra_files/config.json"}}, ml.Flavors.ONNX.ExtraFiles)
	assert.Equal(t, &ExampleInfo{ArtifactPath: ExampleFile, ServingInputPath: ServingInputFile, Type: "ndarray"}, ml.SavedInputExampleInfo)
	assert.Equal(t, `[{"name": "scores", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, -1]}}]`, ml.Signature.Outputs)
	// model_size_bytes counts what mlflow.onnx.save_model counts: model, examples, extra files.
	var size int64
	for _, p := range []string{ModelFile, ExampleFile, ServingInputFile, "extra_files/config.json", "extra_files/capabilities/ids.json"} {
		st, err := os.Stat(filepath.Join(dir, p))
		require.NoError(t, err)
		size += st.Size()
	}
	assert.Equal(t, size, *ml.ModelSizeBytes)

	req, err := os.ReadFile(filepath.Join(dir, RequirementsFile))
	require.NoError(t, err)
	assert.Equal(t, "mlflow==3.17.2\nnumpy\nonnx==1.23.2\nonnxruntime==1.24.1", string(req))
	conda, err := os.ReadFile(filepath.Join(dir, CondaFile))
	require.NoError(t, err)
	assert.Contains(t, string(conda), "- python=3.11\n- pip\n- pip:\n  - mlflow==3.17.2\n")

	var buf bytes.Buffer
	require.NoError(t, f.Summary(&buf))
	assert.Contains(t, buf.String(), "input:     context float32[-1,-1,4]")
	assert.Contains(t, buf.String(), "metadata:  feature_version=fv-1")

	// No temporary directory is left beside the folder.
	entries, err := os.ReadDir(filepath.Dir(dir))
	require.NoError(t, err)
	assert.Len(t, entries, 1)
}

func TestWriteRefusesAnExistingFolder(t *testing.T) {
	dir := t.TempDir() // exists and is empty: allowed
	require.NoError(t, Write(dir, tinyModel(t)))
	err := Write(dir, tinyModel(t))
	assert.ErrorIs(t, err, ErrExists)
	var fe *FolderError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, dir, fe.Dir)
	_, err = Read(dir)
	assert.NoError(t, err, "the first folder is intact")
}

func TestWriteRejectsBadModels(t *testing.T) {
	cases := map[string]struct {
		edit func(m *Model)
		want error
		msg  string
	}{
		"no onnx":            {func(m *Model) { m.ONNX = nil }, ErrEmptyModelFile, "model.onnx"},
		"not onnx":           {func(m *Model) { m.ONNX = []byte("not an onnx model") }, ErrBadONNX, ""},
		"dotdot file":        {func(m *Model) { m.Files["../escape"] = []byte("x") }, ErrBadPath, `"../escape"`},
		"absolute file":      {func(m *Model) { m.Files["/etc/passwd"] = []byte("x") }, ErrBadPath, "absolute"},
		"empty segment":      {func(m *Model) { m.Files["a//b"] = []byte("x") }, ErrBadPath, "segment"},
		"backslash":          {func(m *Model) { m.Files[`a\b`] = []byte("x") }, ErrBadPath, "backslash"},
		"file and dir":       {func(m *Model) { m.Files["capabilities"] = []byte("x") }, ErrBadPath, "also a file"},
		"example name":       {func(m *Model) { m.Example["intnet"] = m.Example["intent"]; delete(m.Example, "intent") }, ErrBadExample, `"intent"`},
		"example extra":      {func(m *Model) { m.Example["extra"] = m.Example["intent"] }, ErrBadExample, `"extra"`},
		"example shape":      {func(m *Model) { m.Example["intent"] = Tensor{Shape: []int64{2, 5}, Data: make([]float32, 10)} }, ErrBadExample, "[-1 4]"},
		"example size":       {func(m *Model) { m.Example["intent"] = Tensor{Shape: []int64{2, 4}, Data: make([]float32, 7)} }, ErrBadExample, "7 values"},
		"example nan":        {func(m *Model) { m.Example["reliability"].Data[1] = float32(math.NaN()) }, ErrBadExample, "NaN"},
		"signature name":     {func(m *Model) { m.Outputs = []TensorSpec{{"score", "float32", []int64{-1, -1}}} }, ErrBadSignature, `"score"`},
		"signature dtype":    {func(m *Model) { m.Outputs = []TensorSpec{{"scores", "float64", []int64{-1, -1}}} }, ErrBadSignature, "float64"},
		"signature bad type": {func(m *Model) { m.Outputs = []TensorSpec{{"scores", "complex", []int64{-1, -1}}} }, ErrBadSignature, "complex"},
		"signature rank":     {func(m *Model) { m.Outputs = []TensorSpec{{"scores", "float32", []int64{-1}}} }, ErrBadSignature, "rank"},
		"signature dim": {func(m *Model) {
			m.Inputs = []TensorSpec{{"intent", "float32", []int64{-1, 5}}, {"context", "float32", []int64{-1, -1, 4}},
				{"context_mask", "float32", []int64{-1, -1}}, {"candidates", "float32", []int64{-1, 4}}, {"reliability", "float32", []int64{-1}}}
		}, ErrBadSignature, "[-1 5]"},
		"empty outputs": {func(m *Model) { m.Outputs = []TensorSpec{} }, ErrBadSignature, "no outputs"},
		"requirement":   {func(m *Model) { m.Env.Pip = []string{"numpy\nevil"} }, ErrBadModel, "spans lines"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m := tinyModel(t)
			tc.edit(m)
			dir := filepath.Join(t.TempDir(), "model")
			err := Write(dir, m)
			require.ErrorIs(t, err, tc.want)
			var fe *FolderError
			require.ErrorAs(t, err, &fe)
			assert.Contains(t, err.Error(), tc.msg)
			_, serr := os.Stat(dir)
			assert.ErrorIs(t, serr, fs.ErrNotExist, "nothing written")
		})
	}
	var fe *FolderError
	require.ErrorAs(t, Write(t.TempDir(), nil), &fe)
}

// badFolder writes a good folder, then breaks it.
func badFolder(t *testing.T, brk func(dir string)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	require.NoError(t, Write(dir, tinyModel(t)))
	brk(dir)
	return dir
}

func editMLmodel(t *testing.T, dir string, edit func(string) string) {
	t.Helper()
	p := filepath.Join(dir, MLmodelFile)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	s := edit(string(b))
	require.NotEqual(t, string(b), s, "the edit changed nothing")
	require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
}

func TestReadRejectsBadFolders(t *testing.T) {
	cases := map[string]struct {
		brk  func(t *testing.T, dir string)
		want error
		file string
	}{
		"missing MLmodel": {func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, MLmodelFile))) }, ErrNoMLmodel, MLmodelFile},
		"bad YAML": {func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, MLmodelFile), []byte("flavors: [onnx\n  : {"), 0o644))
		}, ErrBadMLmodel, MLmodelFile},
		"wrong YAML shape": {func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, MLmodelFile), []byte("flavors: just a string\n"), 0o644))
		}, ErrBadMLmodel, MLmodelFile},
		"no onnx flavor": {func(t *testing.T, dir string) {
			editMLmodel(t, dir, func(s string) string { return strings.Replace(s, "  onnx:\n", "  onnx_old:\n", 1) })
		}, ErrNoONNXFlavor, MLmodelFile},
		"missing model.onnx": {func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, ModelFile))) }, ErrNoModelFile, ModelFile},
		"empty model.onnx": {func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, ModelFile), nil, 0o644))
		}, ErrEmptyModelFile, ModelFile},
		"garbage model.onnx": {func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, ModelFile), []byte("\xff\xff\xff"), 0o644))
		}, ErrBadONNX, ModelFile},
		"model path escapes": {func(t *testing.T, dir string) {
			editMLmodel(t, dir, func(s string) string {
				return strings.Replace(s, "    data: model.onnx\n", "    data: ../model.onnx\n", 1)
			})
		}, ErrBadMLmodel, MLmodelFile},
		"no signature": {func(t *testing.T, dir string) {
			editMLmodel(t, dir, func(s string) string { return strings.Replace(s, "signature:", "signature_old:", 1) })
		}, ErrBadSignature, MLmodelFile},
		"signature not JSON": {func(t *testing.T, dir string) {
			editMLmodel(t, dir, func(s string) string { return strings.Replace(s, `"name": "scores"`, `"name": scores`, 1) })
		}, ErrBadSignature, MLmodelFile},
		"signature not the graph's": {func(t *testing.T, dir string) {
			editMLmodel(t, dir, func(s string) string { return strings.Replace(s, `"name": "scores"`, `"name": "logits"`, 1) })
		}, ErrBadSignature, MLmodelFile},
		"column signature": {func(t *testing.T, dir string) {
			editMLmodel(t, dir, func(s string) string {
				return strings.Replace(s, `"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, -1]}}]`, `"type": "double"}]`, 1)
			})
		}, ErrBadSignature, MLmodelFile},
		"example names differ": {func(t *testing.T, dir string) {
			p := filepath.Join(dir, ExampleFile)
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(p, bytes.Replace(b, []byte(`"intent"`), []byte(`"query"`), 1), 0o644))
		}, ErrBadExample, ExampleFile},
		"example shape differs": {func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, ExampleFile), []byte(`{"intent": [[1.0, 2.0]], "context": [[[1.0, 2.0, 3.0, 4.0]]], "context_mask": [[1.0]], "candidates": [[1.0, 2.0, 3.0, 4.0]], "reliability": [1.0]}`), 0o644))
		}, ErrBadExample, ExampleFile},
		"example ragged": {func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, ExampleFile), []byte(`{"intent": [[1.0, 2.0, 3.0, 4.0], [1.0]]}`), 0o644))
		}, ErrBadExample, ExampleFile},
		"example missing": {func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, ExampleFile))) }, ErrBadExample, ExampleFile},
		"extra file missing": {func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, ExtraFilesDir, "config.json")))
		}, fs.ErrNotExist, "extra_files/config.json"},
		"extra file escapes": {func(t *testing.T, dir string) {
			editMLmodel(t, dir, func(s string) string {
				return strings.Replace(s, "path: extra_files/config.json", "path: /etc/passwd", 1)
			})
		}, ErrBadMLmodel, MLmodelFile},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := badFolder(t, func(dir string) { tc.brk(t, dir) })
			f, err := Read(dir)
			require.Error(t, err)
			assert.Nil(t, f)
			assert.ErrorIs(t, err, tc.want)
			var fe *FolderError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, dir, fe.Dir)
			assert.Equal(t, tc.file, fe.File)
		})
	}
	_, err := Read(filepath.Join(t.TempDir(), "absent"))
	assert.ErrorIs(t, err, ErrNotFolder)
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	_, err = Read(file)
	assert.ErrorIs(t, err, ErrNotFolder)
}

// Python's repr(float), which MLflow's input examples use.
func TestPyFloat(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0.0", 1: "1.0", -2.5: "-2.5", 0.1: "0.1", 1e-4: "0.0001", 1e-5: "1e-05", 1.5e-7: "1.5e-07",
		123456789012345680: "1.2345678901234568e+17", 1e16: "1e+16", 1e15: "1000000000000000.0",
		float64(float32(0.1)): "0.10000000149011612", 12.75: "12.75", -0.00012: "-0.00012",
	} {
		assert.Equal(t, want, pyFloat(v), "%v", v)
	}
	assert.Equal(t, "-0.0", pyFloat(math.Copysign(0, -1)))
}

func TestExampleFormatMatchesPython(t *testing.T) {
	in := []TensorSpec{{"a", "float32", []int64{-1, 2}}, {"b", "float32", []int64{-1}}}
	ex := map[string]Tensor{"b": {Shape: []int64{1}, Data: []float32{3}}, "a": {Shape: []int64{2, 2}, Data: []float32{1, 0.5, 1e-5, -2}}}
	flat, serving := encodeExample(in, ex)
	// What json.dumps(model_input) and json.dumps({"inputs": …}, indent=2) print.
	assert.Equal(t, `{"a": [[1.0, 0.5], [9.999999747378752e-06, -2.0]], "b": [3.0]}`, string(flat))
	assert.Equal(t, "{\n  \"inputs\": {\n    \"a\": [\n      [\n        1.0,\n        0.5\n      ],\n      [\n        9.999999747378752e-06,\n        -2.0\n      ]\n    ],\n    \"b\": [\n      3.0\n    ]\n  }\n}", string(serving))
	back, err := decodeExample(flat, in)
	require.NoError(t, err)
	assert.Equal(t, ex, back)
	_, err = decodeExample([]byte(`{"a": [[1.0, 0.5]]} trailing`), in)
	assert.ErrorIs(t, err, ErrBadExample)
	_, err = decodeExample([]byte(`{"a": [[1.0, "x"]]}`), in)
	assert.ErrorIs(t, err, ErrBadExample)
	_, err = decodeExample([]byte(`{"a": [[1.0, null]]}`), in)
	assert.ErrorIs(t, err, ErrBadExample)
	_, err = decodeExample([]byte(`"a"`), in)
	assert.ErrorIs(t, err, ErrBadExample)
}

func TestGraphIOIgnoresInitializersAndBadBytes(t *testing.T) {
	in, out, err := graphIO(tinyONNX(t, 3))
	require.NoError(t, err)
	assert.Len(t, in, 5)
	assert.Equal(t, []TensorSpec{{"scores", "float32", []int64{-1, -1}}}, out)
	for _, b := range [][]byte{nil, {0x3a}, {0x3a, 0x05, 0x01}, []byte("hello world")} {
		_, _, err := graphIO(b)
		assert.True(t, errors.Is(err, ErrBadONNX), "%q: %v", b, err)
	}
}

// Bad input never panics: the parsers Read relies on, on arbitrary bytes.
func FuzzParsers(f *testing.F) {
	in := []TensorSpec{{"a", "float32", []int64{-1, 2}}}
	f.Add([]byte("flavors:\n  onnx:\n    data: model.onnx\n"))
	f.Add([]byte(`[{"name": "a", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]`))
	f.Add([]byte(`{"a": [[1.0, 2.0]]}`))
	f.Add([]byte{0x3a, 0x04, 0x5a, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseMLmodel(b)
		_, _ = decodeSpecs("inputs", string(b))
		_, _, _ = graphIO(b)
		if ex, err := decodeExample(b, in); err == nil {
			_ = checkExample(in, ex)
		}
	})
}
