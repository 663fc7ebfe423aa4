package shgat

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
)

func TestCheckpointRoundTrip(t *testing.T) {
	m, err := New(Config{Dim: 16, Seed: 5, Dropout: 0.1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range m.Params.Data {
		m.Params.Data[i] += rng.NormFloat64() * 1e-3 // not just the init
	}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Config, m.Config) || got.Levels != m.Levels {
		t.Fatalf("config %+v levels %d, want %+v %d", got.Config, got.Levels, m.Config, m.Levels)
	}
	for i, v := range m.Params.Data {
		if got.Params.Data[i] != v {
			t.Fatalf("parameter %d: %v, want %v (bit-exact)", i, got.Params.Data[i], v)
		}
	}
	b, _ := m.Encode()
	for name, bad := range map[string][]byte{
		"truncated": b[:len(b)/2],
		"garbage":   []byte("not a checkpoint at all"),
		"empty":     nil,
	} {
		var fe *FormatError
		if _, err := Decode(name, bad); !errors.As(err, &fe) {
			t.Errorf("%s: got %v, want a FormatError", name, err)
		}
	}
	cat := &Catalog{Dim: 2, CapabilityIDs: []string{"a"}, Keys: []float32{1, 2}, Reliability: []float32{1}}
	cb, _ := cat.Encode()
	var fe *FormatError
	if _, err := Decode("catalog", cb); !errors.As(err, &fe) {
		t.Errorf("a catalog decoded as a model: %v", err)
	}
}

func TestCatalogRoundTrip(t *testing.T) {
	f := newFixture(t, Config{Dim: 8, Heads: 2, Seed: 1}, false)
	reps, err := f.m.Represent(f.in.Graph, f.in.Features)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCatalog(f.in.Graph, reps, f.in.Reliability, "fv-1")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "catalog.safetensors")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCatalog(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Dim != 8 || len(got.CapabilityIDs) != len(f.in.Graph.Caps) || got.FeatureVersion != "fv-1" ||
		got.CapabilityIDs[3] != "c3" || got.ToolIDs[7] != "t7" || got.Reliability[1] != 0.5 || got.Keys[17] != c.Keys[17] {
		t.Fatalf("catalog did not round-trip: %+v", got)
	}
	c.Reliability[0] = 0
	b, _ := c.Encode()
	var fe *FormatError
	if _, err := DecodeCatalog("zero", b); !errors.As(err, &fe) {
		t.Errorf("zero reliability: got %v, want a FormatError", err)
	}
}
