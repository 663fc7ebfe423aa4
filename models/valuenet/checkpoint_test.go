package valuenet

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/capflow/capflow/models/safetensors"
)

func trajectory(rng *rand.Rand, dim, steps int) ([][]float64, []float64) {
	var xs [][]float64
	for range steps {
		xs = append(xs, randVec(rng, dim))
	}
	return xs, randVec(rng, steps)
}

// TestCheckpointRoundTrip: a decoded net has the same config and the same
// weights bit for bit, and training it continues exactly as the original.
func TestCheckpointRoundTrip(t *testing.T) {
	for _, cfg := range []Config{
		{InputDim: 10, Hidden: []int{16, 8}, Gamma: 0.99, Lambda: 0.95, LR: 0.01, Seed: 5},
		{InputDim: 4, Gamma: 1, Lambda: 0.3, LR: 0.1, NoBias: true, ZeroOutput: true},
	} {
		a, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 1))
		xs, rs := trajectory(rng, cfg.InputDim, 12)
		if _, err := a.Episode(xs, rs); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "value.safetensors")
		if err := a.Save(path); err != nil {
			t.Fatal(err)
		}
		b, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a.Config(), b.Config()) {
			t.Fatalf("config %+v, want %+v", b.Config(), a.Config())
		}
		if !slices.Equal(a.params, b.params) {
			t.Fatal("weights differ after a round trip")
		}
		xs, rs = trajectory(rng, cfg.InputDim, 9)
		da, _ := a.Episode(xs, rs)
		db, _ := b.Episode(xs, rs)
		if !slices.Equal(da, db) || !slices.Equal(a.params, b.params) {
			t.Fatal("training diverges after a round trip")
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	cfg := Config{InputDim: 3, Hidden: []int{2}, Gamma: 0.9, Lambda: 0.5, LR: 0.1}
	n, _ := New(cfg)
	good, _ := json.Marshal(cfg)
	huge := cfg
	huge.InputDim, huge.Hidden = 1<<20, []int{1 << 10}
	hugeJSON, _ := json.Marshal(huge)
	w0 := safetensors.Tensor{Name: "layers.0.weight", Shape: []int64{2, 3}, F64: n.layers[0].w}
	b0 := safetensors.Tensor{Name: "layers.0.bias", Shape: []int64{2}, F64: n.layers[0].b}
	w1 := safetensors.Tensor{Name: "layers.1.weight", Shape: []int64{1, 2}, F64: n.layers[1].w}
	b1 := safetensors.Tensor{Name: "layers.1.bias", Shape: []int64{1}, F64: n.layers[1].b}
	md := map[string]string{"format": Format, "config": string(good)}
	enc := func(ts []safetensors.Tensor, md map[string]string) []byte {
		b, err := safetensors.Encode(ts, md)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := Decode("ok", enc([]safetensors.Tensor{w0, b0, w1, b1}, md)); err != nil {
		t.Fatalf("hand-built checkpoint: %v", err)
	}
	nanW := w1
	nanW.F64 = []float64{1, math.NaN()}
	wrongShape := w0
	wrongShape.Shape = []int64{3, 2}
	for name, b := range map[string][]byte{
		"garbage":       []byte("not a checkpoint"),
		"format":        enc([]safetensors.Tensor{w0, b0, w1, b1}, map[string]string{"format": "other/1", "config": string(good)}),
		"config json":   enc([]safetensors.Tensor{w0, b0, w1, b1}, map[string]string{"format": Format, "config": "{"}),
		"config values": enc([]safetensors.Tensor{w0, b0, w1, b1}, map[string]string{"format": Format, "config": `{"input_dim":3,"gamma":2,"lambda":0.5,"lr":0.1}`}),
		"huge config":   enc([]safetensors.Tensor{w0, b0, w1, b1}, map[string]string{"format": Format, "config": string(hugeJSON)}),
		"missing":       enc([]safetensors.Tensor{w0, b0, w1}, md),
		"extra":         enc([]safetensors.Tensor{w0, b0, w1, b1, {Name: "x", Shape: []int64{1}, F64: []float64{0}}}, md),
		"shape":         enc([]safetensors.Tensor{wrongShape, b0, w1, b1}, md),
		"nan":           enc([]safetensors.Tensor{w0, b0, nanW, b1}, md),
	} {
		_, err := Decode(name, b)
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%s: error %v, want a FormatError", name, err)
		}
	}
}
