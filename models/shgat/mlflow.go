package shgat

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/capflow/capflow/models/mlmodel"
)

// Extra files of a packaged model (under extra_files/ in the MLflow Model
// folder): the full weights, the catalog the scorer needs, the config and
// the scores Go computed for the input example.
const (
	FileCheckpoint    = "capflow/shgat.safetensors"
	FileCatalog       = "capflow/catalog.safetensors"
	FileConfig        = "capflow/config.json"
	FileMetrics       = "capflow/metrics.json"
	FileExampleScores = "capflow/example_scores.json"
)

// PackageOptions are what a packaged model records besides its weights.
type PackageOptions struct {
	// Metadata goes to MLmodel's metadata (mlmodel.MetaFeatureVersion,
	// MetaGitCommit, MetaDatasetDigest, ...). feature_version defaults to
	// the catalog's.
	Metadata map[string]string
	Metrics  map[string]float64
	// ExampleIntent is the intent of the input example (unit vector, [D]);
	// nil uses the first capability's key direction, so the example is
	// deterministic without real data.
	ExampleIntent []float64
}

// WriteMLflowModel writes m as an MLflow Model folder at dir (which must not
// exist or be empty): the ONNX scorer, its signature, an input example of
// real catalog rows, and the capflow files serving needs. Nothing is left
// behind on error.
func WriteMLflowModel(dir string, m *Model, cat *Catalog, opts PackageOptions) error {
	d := m.Config.Dim
	if cat == nil || cat.Dim != d || len(cat.CapabilityIDs) == 0 {
		return &InputError{Field: "catalog", Reason: fmt.Sprintf("missing or not %d-d", d)}
	}
	sc := m.Scorer()
	onnx, err := ExportScorer(sc)
	if err != nil {
		return err
	}
	model, err := onnx.Marshal()
	if err != nil {
		return fmt.Errorf("shgat: marshal scorer: %w", err)
	}
	example, scores, err := inputExample(sc, cat, opts.ExampleIntent)
	if err != nil {
		return err
	}
	ckpt, err := m.Encode()
	if err != nil {
		return err
	}
	catBytes, err := cat.Encode()
	if err != nil {
		return err
	}
	cfg, _ := json.MarshalIndent(map[string]any{"model": m.Config, "levels": m.Levels, "feature_version": cat.FeatureVersion}, "", "  ")
	metrics, err := json.MarshalIndent(finiteMetrics(opts.Metrics), "", "  ")
	if err != nil {
		return fmt.Errorf("shgat: metrics: %w", err)
	}
	exScores, _ := json.Marshal(scores)
	md := map[string]string{"capflow_model": "shgat", MetaContract: strconv.Itoa(Contract)}
	if cat.FeatureVersion != "" {
		md[mlmodel.MetaFeatureVersion] = cat.FeatureVersion
	}
	for k, v := range opts.Metadata {
		md[k] = v
	}
	return mlmodel.Write(dir, &mlmodel.Model{
		ONNX:     model,
		Example:  example,
		Metadata: md,
		Files: map[string][]byte{
			FileCheckpoint: ckpt, FileCatalog: catBytes, FileConfig: cfg, FileMetrics: metrics, FileExampleScores: exScores,
		},
	})
}

// inputExample builds a request of real catalog rows: one intent, two
// context slots (the catalog's first tool, then a masked-out slot), the
// catalog's first five capabilities with a spread of evidence values; it
// returns the example and Go's scores. ReadMLflowModel relies on the rows
// being the catalog's first ones.
func inputExample(sc *Scorer, cat *Catalog, intent []float64) (map[string]mlmodel.Tensor, []float32, error) {
	d := cat.Dim
	n := min(5, len(cat.CapabilityIDs))
	if intent == nil {
		intent = make([]float64, d)
		var norm float64
		for k := range d {
			intent[k] = float64(cat.Keys[k])
			norm += intent[k] * intent[k]
		}
		for k := range intent {
			intent[k] /= math.Sqrt(max(norm, 1e-300))
		}
	}
	if len(intent) != d {
		return nil, nil, &InputError{Field: "example_intent", Reason: fmt.Sprintf("has dimension %d, want %d", len(intent), d)}
	}
	ctx := make([]float32, 2*d)
	mask := []float32{0, 0}
	var ctxRows [][]float64
	if len(cat.ToolIDs) > 0 {
		copy(ctx, cat.Tools[:d])
		mask[0] = 1
		ctxRows = append(ctxRows, to64(cat.Tools[:d]))
	}
	x := to32(intent)
	keys := cat.Keys[:n*d]
	rel := cat.Reliability[:n]
	// The example feeds the ONNX scorer, so it holds the projected rows;
	// Go's reference scores the raw ones.
	candidates, err := sc.ProjectKeys(keys)
	if err != nil {
		return nil, nil, err
	}
	ctxKeys, err := sc.ProjectContext(ctx)
	if err != nil {
		return nil, nil, err
	}
	nf := len(sc.Evidence)
	ev := make([]float32, n*nf) // a spread of evidence, so the example exercises the fusion
	for j := range ev {
		ev[j] = float32(j%7) / 4
	}
	// Go's reference scores, on exactly the float32 values the example holds.
	got, err := sc.Score(Request{Intent: to64(x), Context: ctxRows, Evidence: to64(ev)}, to64(keys), to64(rel))
	if err != nil {
		return nil, nil, err
	}
	return map[string]mlmodel.Tensor{
		InputIntent:      {Shape: []int64{1, int64(d)}, Data: x},
		InputContext:     {Shape: []int64{1, 2, int64(d)}, Data: ctx},
		InputContextKeys: {Shape: []int64{1, 2, int64(d)}, Data: ctxKeys},
		InputContextMask: {Shape: []int64{1, 2}, Data: mask},
		InputCandidates:  {Shape: []int64{int64(n), int64(d)}, Data: candidates},
		InputReliability: {Shape: []int64{int64(n)}, Data: rel},
		InputEvidence:    {Shape: []int64{1, int64(n), int64(nf)}, Data: ev},
	}, to32(got), nil
}

// Contract is the version of the exported scorer's input contract this
// build writes and reads; packages record it under MetaContract. Version 2
// added context_keys and takes projected candidates (Scorer.Project);
// folders without the entry are version 1.
const Contract = 2

// MetaContract is the MLmodel metadata entry holding a package's Contract.
const MetaContract = "capflow_scorer_contract"

// ContractError is a package written for another scorer contract: a model
// an older (or newer) capflow packaged, which this build cannot serve.
// Re-train it, or serve it with the capflow that wrote it.
type ContractError struct {
	Dir        string
	Have, Want int
}

func (e *ContractError) Error() string {
	return fmt.Sprintf("shgat: %s: the model was packaged for scorer contract %d, this capflow reads contract %d (re-train it, or serve it with the capflow that packaged it)", e.Dir, e.Have, e.Want)
}

// Package is a packaged model read back: the folder, the full model, its
// catalog and the scores expected for the input example.
type Package struct {
	Folder        *mlmodel.Folder
	Model         *Model
	Catalog       *Catalog
	ExampleScores []float32
}

// ReadMLflowModel reads and checks a folder written by WriteMLflowModel:
// the folder itself (mlmodel.Read), the checkpoint, the catalog, and that
// the model's scorer reproduces the stored example scores — so weights,
// catalog and ONNX graph belong together.
func ReadMLflowModel(dir string) (*Package, error) {
	f, err := mlmodel.Read(dir)
	if err != nil {
		return nil, err
	}
	bad := func(format string, a ...any) error {
		return &FormatError{What: dir, Reason: fmt.Sprintf(format, a...)}
	}
	if f.Metadata["capflow_model"] == "shgat" {
		have := 1
		if v, ok := f.Metadata[MetaContract]; ok {
			if have, err = strconv.Atoi(v); err != nil {
				return nil, bad("metadata %s is %q, not a number", MetaContract, v)
			}
		}
		if have != Contract {
			return nil, &ContractError{Dir: dir, Have: have, Want: Contract}
		}
	}
	read := func(name string) ([]byte, error) {
		b, err := f.ReadFile(name)
		if err != nil {
			return nil, bad("%s: %v", name, err)
		}
		return b, nil
	}
	b, err := read(FileCheckpoint)
	if err != nil {
		return nil, err
	}
	m, err := Decode(FileCheckpoint, b)
	if err != nil {
		return nil, err
	}
	if b, err = read(FileCatalog); err != nil {
		return nil, err
	}
	cat, err := DecodeCatalog(FileCatalog, b)
	if err != nil {
		return nil, err
	}
	if cat.Dim != m.Config.Dim {
		return nil, bad("catalog is %d-d, the model %d-d", cat.Dim, m.Config.Dim)
	}
	if b, err = read(FileExampleScores); err != nil {
		return nil, err
	}
	p := &Package{Folder: f, Model: m, Catalog: cat}
	if err := json.Unmarshal(b, &p.ExampleScores); err != nil {
		return nil, bad("%s: %v", FileExampleScores, err)
	}
	ex := f.Example
	if ex == nil {
		return nil, bad("no input example")
	}
	// The example is the catalog's first rows, projected (inputExample):
	// the checkpoint's scorer must give the stored scores on the raw rows,
	// and its projection of them must be what the example holds.
	d, sc := m.Config.Dim, m.Scorer()
	n := len(ex[InputCandidates].Data) / d
	if n > len(cat.CapabilityIDs) || len(ex[InputContext].Data) != len(ex[InputContextKeys].Data) {
		return nil, bad("the input example does not match the catalog's first rows")
	}
	keys := cat.Keys[:n*d]
	for _, pr := range []struct {
		name      string
		raw, want []float32
		project   func([]float32) ([]float32, error)
	}{{InputCandidates, keys, ex[InputCandidates].Data, sc.ProjectKeys}, {InputContextKeys, ex[InputContext].Data, ex[InputContextKeys].Data, sc.ProjectContext}} {
		got, err := pr.project(pr.raw)
		if err != nil {
			return nil, bad("input example: %v", err)
		}
		for i, v := range got {
			if math.Abs(float64(v-pr.want[i])) > 1e-4*math.Max(1, math.Abs(float64(v))) {
				return nil, bad("input example %s[%d] is %v, the checkpoint projects the catalog's row to %v", pr.name, i, pr.want[i], v)
			}
		}
	}
	var ctxRows [][]float64
	c := ex[InputContextMask].Shape[len(ex[InputContextMask].Shape)-1]
	for j := range int(c) {
		if ex[InputContextMask].Data[j] == 1 {
			ctxRows = append(ctxRows, to64(ex[InputContext].Data[j*d:(j+1)*d]))
		}
	}
	got, err := sc.Score(Request{Intent: to64(ex[InputIntent].Data), Context: ctxRows, Evidence: to64(ex[InputEvidence].Data)},
		to64(keys), to64(ex[InputReliability].Data))
	if err != nil {
		return nil, bad("input example: %v", err)
	}
	if len(got) != len(p.ExampleScores) {
		return nil, bad("%d example scores stored, the example has %d candidates", len(p.ExampleScores), len(got))
	}
	for i, v := range got {
		if math.Abs(v-float64(p.ExampleScores[i])) > 1e-4*math.Max(1, math.Abs(v)) {
			return nil, bad("the checkpoint scores the input example %v, the folder says %v: weights and example do not belong together", got, p.ExampleScores)
		}
	}
	return p, nil
}

func finiteMetrics(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[k] = v
		}
	}
	return out
}

func to64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
