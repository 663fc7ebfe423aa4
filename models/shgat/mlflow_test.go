package shgat

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/models/mlmodel"
)

// packagedModel is a small model and its catalog, ready to package.
func packagedModel(t *testing.T) (*Model, *Catalog) {
	t.Helper()
	f := newFixture(t, Config{Dim: 8, Heads: 2, Seed: 1, InitNoise: 0.2, EvidenceInit: []float64{0.7, -0.2, 1.1}}, false)
	reps, err := f.m.Represent(f.in.Graph, f.in.Features)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := NewCatalog(f.in.Graph, reps, f.in.Reliability, "fv-test")
	if err != nil {
		t.Fatal(err)
	}
	return f.m, cat
}

func packaged(t *testing.T) (string, *Model, *Catalog) {
	t.Helper()
	m, cat := packagedModel(t)
	dir := filepath.Join(t.TempDir(), "model")
	err := WriteMLflowModel(dir, m, cat, PackageOptions{
		Metadata: map[string]string{mlmodel.MetaGitCommit: "abc123"},
		Metrics:  map[string]float64{"valid_mrr": 0.5, "bad": math.NaN()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir, m, cat
}

func TestMLflowModelRoundTrip(t *testing.T) {
	dir, m, cat := packaged(t)
	p, err := ReadMLflowModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Folder.Metadata[mlmodel.MetaFeatureVersion] != "fv-test" || p.Folder.Metadata[mlmodel.MetaGitCommit] != "abc123" {
		t.Errorf("metadata %v", p.Folder.Metadata)
	}
	for i, v := range m.Params.Data {
		if p.Model.Params.Data[i] != v {
			t.Fatal("checkpoint did not round-trip")
		}
	}
	if len(p.Catalog.CapabilityIDs) != len(cat.CapabilityIDs) || len(p.ExampleScores) != 5 {
		t.Fatalf("catalog %d ids, %d example scores", len(p.Catalog.CapabilityIDs), len(p.ExampleScores))
	}

	// Another model's weights in the same folder: refused.
	other, _ := New(Config{Dim: 8, Heads: 2, Seed: 99, Init: "xavier"}, m.Levels)
	b, _ := other.Encode()
	if err := os.WriteFile(filepath.Join(dir, mlmodel.ExtraFilesDir, FileCheckpoint), b, 0o644); err != nil {
		t.Fatal(err)
	}
	var fe *FormatError
	if _, err := ReadMLflowModel(dir); !errors.As(err, &fe) {
		t.Fatalf("mismatched weights: got %v, want a FormatError", err)
	}
}

// TestMLflowModelORT: ONNX Runtime scores the folder's own input example as
// the Go scorer did when packaging.
func TestMLflowModelORT(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	dir, _, _ := packaged(t)
	p, err := ReadMLflowModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenORT(context.Background(), p.Folder.ModelPath(), ORTOptions{LibraryPath: lib, Dim: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ex := p.Folder.Example
	got, err := s.Score(Batch{B: 1, C: 2, N: 5, Intent: ex[InputIntent].Data, Context: ex[InputContext].Data, ContextKeys: ex[InputContextKeys].Data,
		ContextMask: ex[InputContextMask].Data, Candidates: ex[InputCandidates].Data, Reliability: ex[InputReliability].Data,
		Evidence: ex[InputEvidence].Data})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if math.Abs(float64(v-p.ExampleScores[i])) > 1e-5 {
			t.Fatalf("ORT %v, stored %v", got, p.ExampleScores)
		}
	}
}

// TestMLflowModelContract: a package recorded for another scorer contract
// (or, like those written before contract 2, for none) is a *ContractError,
// so callers can tell an old model from a broken one.
func TestMLflowModelContract(t *testing.T) {
	m, cat := packagedModel(t)
	for _, tc := range []struct {
		contract string
		want     int // 0: readable
	}{{"2", 0}, {"1", 1}, {"3", 3}, {"two", -1}} {
		dir := filepath.Join(t.TempDir(), "model")
		if err := WriteMLflowModel(dir, m, cat, PackageOptions{Metadata: map[string]string{MetaContract: tc.contract}}); err != nil {
			t.Fatal(err)
		}
		_, err := ReadMLflowModel(dir)
		var ce *ContractError
		var fe *FormatError
		switch {
		case tc.want == 0 && err != nil:
			t.Errorf("contract %s: %v", tc.contract, err)
		case tc.want > 0 && (!errors.As(err, &ce) || ce.Have != tc.want || ce.Want != Contract):
			t.Errorf("contract %s: %v, want a *ContractError with Have %d", tc.contract, err, tc.want)
		case tc.want < 0 && !errors.As(err, &fe):
			t.Errorf("contract %q: %v, want a *FormatError", tc.contract, err)
		}
	}
}
