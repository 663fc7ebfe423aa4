package mlmodel

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Folder is an MLflow Model folder that Read has verified.
type Folder struct {
	Dir     string
	MLmodel *MLmodel
	// Inputs and Outputs are the parsed signature.
	Inputs, Outputs []TensorSpec
	// Example is the input example by input name, nil when the folder has none.
	Example map[string]Tensor
	// ExtraFiles are the producing model's files, relative to extra_files/
	// (what Model.Files held), sorted.
	ExtraFiles []string
	// Metadata are MLmodel's metadata entries, formatted as strings.
	Metadata map[string]string

	extra map[string]string // ExtraFiles entry → path relative to Dir
}

// maxExampleBytes bounds the input example Read parses: examples are small
// by design; a huge one is a mistake, not something to load into memory.
const maxExampleBytes = 64 << 20

// Read parses and verifies the MLflow Model folder at dir: MLmodel present
// and valid YAML, an onnx flavor whose model file exists and is not empty, a
// tensor-based signature naming the ONNX graph's inputs and outputs, an input
// example (if any) with one fitting tensor per input, and the extra files the
// flavor lists. Errors are *FolderError naming the file and the problem.
func Read(dir string) (*Folder, error) {
	bad := func(file string, err error) error { return &FolderError{Dir: dir, File: file, Err: err} }
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, bad("", fmt.Errorf("%w: %v", ErrNotFolder, err))
		}
		return nil, bad("", err)
	}
	if !st.IsDir() {
		return nil, bad("", ErrNotFolder)
	}
	raw, err := os.ReadFile(filepath.Join(dir, MLmodelFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, bad(MLmodelFile, ErrNoMLmodel)
	}
	if err != nil {
		return nil, bad(MLmodelFile, err)
	}
	m, err := ParseMLmodel(raw)
	if err != nil {
		return nil, bad(MLmodelFile, err)
	}
	f := &Folder{Dir: dir, MLmodel: m}

	onnx := m.Flavors.ONNX
	if onnx == nil {
		return nil, bad(MLmodelFile, ErrNoONNXFlavor)
	}
	if err := checkRel(onnx.Data); err != nil {
		return nil, bad(MLmodelFile, fmt.Errorf("%w: flavors.onnx.data: %v", ErrBadMLmodel, err))
	}
	model, err := readLimited(filepath.Join(dir, filepath.FromSlash(onnx.Data)), -1)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, bad(onnx.Data, ErrNoModelFile)
	case err != nil:
		return nil, bad(onnx.Data, err)
	case len(model) == 0:
		return nil, bad(onnx.Data, ErrEmptyModelFile)
	}
	gin, gout, err := graphIO(model)
	if err != nil {
		return nil, bad(onnx.Data, err)
	}

	if m.Signature == nil {
		return nil, bad(MLmodelFile, fmt.Errorf("%w: no signature", ErrBadSignature))
	}
	if f.Inputs, err = decodeSpecs("inputs", m.Signature.Inputs); err != nil {
		return nil, bad(MLmodelFile, err)
	}
	if f.Outputs, err = decodeSpecs("outputs", m.Signature.Outputs); err != nil {
		return nil, bad(MLmodelFile, err)
	}
	if err := matchGraph("inputs", f.Inputs, gin); err != nil {
		return nil, bad(MLmodelFile, err)
	}
	if err := matchGraph("outputs", f.Outputs, gout); err != nil {
		return nil, bad(MLmodelFile, err)
	}

	if info := m.SavedInputExampleInfo; info != nil {
		if err := f.readExample(info); err != nil {
			return nil, bad(info.ArtifactPath, err)
		}
	}

	for _, e := range onnx.ExtraFiles {
		if err := checkRel(e.Path); err != nil {
			return nil, bad(MLmodelFile, fmt.Errorf("%w: flavors.onnx.extra_files: %v", ErrBadMLmodel, err))
		}
		st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(e.Path)))
		if err != nil {
			return nil, bad(e.Path, err)
		}
		if !st.Mode().IsRegular() {
			return nil, bad(e.Path, fmt.Errorf("%w: not a regular file", ErrBadPath))
		}
		name := strings.TrimPrefix(e.Path, ExtraFilesDir+"/")
		if f.extra == nil {
			f.extra = map[string]string{}
		}
		if _, dup := f.extra[name]; !dup {
			f.ExtraFiles = append(f.ExtraFiles, name)
		}
		f.extra[name] = e.Path
	}
	slices.Sort(f.ExtraFiles)

	if len(m.Metadata) > 0 {
		f.Metadata = make(map[string]string, len(m.Metadata))
		for k, v := range m.Metadata {
			f.Metadata[k] = fmt.Sprint(v)
		}
	}
	return f, nil
}

func (f *Folder) readExample(info *ExampleInfo) error {
	if err := checkRel(info.ArtifactPath); err != nil {
		return fmt.Errorf("%w: saved_input_example_info.artifact_path: %v", ErrBadMLmodel, err)
	}
	if info.Type != exampleTypeNDArray {
		return fmt.Errorf("%w: type %q (capflow reads %q examples: a dict of tensors)", ErrBadExample, info.Type, exampleTypeNDArray)
	}
	b, err := readLimited(filepath.Join(f.Dir, filepath.FromSlash(info.ArtifactPath)), maxExampleBytes)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadExample, err)
	}
	ex, err := decodeExample(b, f.Inputs)
	if err != nil {
		return err
	}
	if err := checkExample(f.Inputs, ex); err != nil {
		return err
	}
	f.Example = ex
	return nil
}

// readLimited reads a regular file, refusing one larger than limit (-1: no limit).
func readLimited(p string, limit int64) ([]byte, error) {
	fh, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", ErrBadPath)
	}
	if limit >= 0 && st.Size() > limit {
		return nil, fmt.Errorf("%d bytes, more than the %d allowed", st.Size(), limit)
	}
	return io.ReadAll(fh)
}

// ONNX reads the model file.
func (f *Folder) ONNX() ([]byte, error) {
	return os.ReadFile(f.ModelPath())
}

// ModelPath is the path of the model file.
func (f *Folder) ModelPath() string {
	return filepath.Join(f.Dir, filepath.FromSlash(f.MLmodel.Flavors.ONNX.Data))
}

// ReadFile reads one of ExtraFiles (a path relative to extra_files/).
func (f *Folder) ReadFile(name string) ([]byte, error) {
	rel, ok := f.extra[name]
	if !ok {
		return nil, &FolderError{Dir: f.Dir, File: path.Join(ExtraFilesDir, name), Err: fmt.Errorf("%w: not an extra file of the model", ErrBadPath)}
	}
	return os.ReadFile(filepath.Join(f.Dir, filepath.FromSlash(rel)))
}

// ModelID is the logged model id the folder was uploaded as, "" for a folder
// never logged.
func (f *Folder) ModelID() string {
	if f.MLmodel.ModelID == nil {
		return ""
	}
	return *f.MLmodel.ModelID
}

// Summary writes a human-readable description: flavors, signature, example,
// files and metadata, one item per line.
func (f *Folder) Summary(w io.Writer) error {
	m := f.MLmodel
	var b strings.Builder
	fmt.Fprintf(&b, "folder:    %s\n", f.Dir)
	if id := f.ModelID(); id != "" {
		fmt.Fprintf(&b, "model id:  %s (run %s)\n", id, orDash(m.RunID))
	}
	fmt.Fprintf(&b, "created:   %s UTC by mlflow %s, uuid %s\n", m.UTCTimeCreated, orDash(m.MLflowVersion), m.ModelUUID)
	flavors := []string{fmt.Sprintf("onnx (onnx %s, %s)", orDash(m.Flavors.ONNX.ONNXVersion), strings.Join(m.Flavors.ONNX.Providers, ", "))}
	if p := m.Flavors.PyFunc; p != nil {
		flavors = append(flavors, fmt.Sprintf("python_function (%s, python %s)", p.LoaderModule, p.PythonVersion))
	}
	flavors = append(flavors, slices.Sorted(maps.Keys(m.Flavors.Other))...)
	fmt.Fprintf(&b, "flavors:   %s\n", strings.Join(flavors, "; "))
	size := int64(-1)
	if st, err := os.Stat(f.ModelPath()); err == nil {
		size = st.Size()
	}
	fmt.Fprintf(&b, "model:     %s (%d bytes)\n", m.Flavors.ONNX.Data, size)
	for _, s := range f.Inputs {
		fmt.Fprintf(&b, "input:     %s\n", s)
	}
	for _, s := range f.Outputs {
		fmt.Fprintf(&b, "output:    %s\n", s)
	}
	if f.Example != nil {
		parts := make([]string, 0, len(f.Inputs))
		for _, s := range f.Inputs {
			parts = append(parts, fmt.Sprintf("%s%v", s.Name, f.Example[s.Name].Shape))
		}
		fmt.Fprintf(&b, "example:   %s\n", strings.Join(parts, " "))
	}
	for _, p := range f.ExtraFiles {
		fmt.Fprintf(&b, "file:      %s/%s\n", ExtraFilesDir, p)
	}
	for _, k := range slices.Sorted(maps.Keys(f.Metadata)) {
		fmt.Fprintf(&b, "metadata:  %s=%s\n", k, f.Metadata[k])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
