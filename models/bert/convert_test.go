package bert_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/capflow/capflow/models/bert"
	"github.com/capflow/capflow/models/safetensors"
)

var tinyConfig = bert.Config{
	ModelType: "bert", VocabSize: 30, HiddenSize: 8, NumHiddenLayers: 2, NumAttentionHeads: 2,
	IntermediateSize: 16, HiddenAct: "gelu", MaxPositionEmbeddings: 16, TypeVocabSize: 2,
	LayerNormEps: 1e-12, PositionEmbeddingType: "absolute",
}

// tinyTensors is a random BertModel under prefix, plus tensors a real
// checkpoint also holds and the converter must ignore.
func tinyTensors(c bert.Config, prefix string, seed uint64) []safetensors.Tensor {
	r := rand.New(rand.NewPCG(seed, 99))
	var ts []safetensors.Tensor
	add := func(name string, scale, offset float64, shape ...int64) {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(offset + scale*r.NormFloat64())
		}
		ts = append(ts, safetensors.Tensor{Name: prefix + name, Shape: shape, F32: v})
	}
	H, I := int64(c.HiddenSize), int64(c.IntermediateSize)
	linear := func(name string, in, out int64) {
		add(name+".weight", 1/math.Sqrt(float64(in)), 0, out, in)
		add(name+".bias", 0.1, 0, out)
	}
	norm := func(name string) {
		add(name+".weight", 0.1, 1, H)
		add(name+".bias", 0.1, 0, H)
	}
	add("embeddings.word_embeddings.weight", 1, 0, int64(c.VocabSize), H)
	add("embeddings.position_embeddings.weight", 0.5, 0, int64(c.MaxPositionEmbeddings), H)
	add("embeddings.token_type_embeddings.weight", 0.5, 0, int64(c.TypeVocabSize), H)
	norm("embeddings.LayerNorm")
	for l := range c.NumHiddenLayers {
		p := "encoder.layer." + strconv.Itoa(l) + "."
		linear(p+"attention.self.query", H, H)
		linear(p+"attention.self.key", H, H)
		linear(p+"attention.self.value", H, H)
		linear(p+"attention.output.dense", H, H)
		norm(p + "attention.output.LayerNorm")
		linear(p+"intermediate.dense", H, I)
		linear(p+"output.dense", I, H)
		norm(p + "output.LayerNorm")
	}
	linear("pooler.dense", H, H)
	pos := make([]byte, 8*c.MaxPositionEmbeddings)
	for i := range c.MaxPositionEmbeddings {
		pos[8*i] = byte(i)
	}
	ts = append(ts, safetensors.Tensor{Name: prefix + "embeddings.position_ids", Shape: []int64{1, int64(c.MaxPositionEmbeddings)}, DType: "I64", Raw: pos})
	return ts
}

// writeCheckpoint writes a sentence-transformers-like folder.
func writeCheckpoint(t *testing.T, dir string, c bert.Config, tensors []safetensors.Tensor) {
	t.Helper()
	b, err := safetensors.Encode(tensors, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	cj, _ := json.Marshal(c)
	files := map[string][]byte{
		"model.safetensors":     b,
		"config.json":           cj,
		"tokenizer.json":        []byte(`{"version":"1.0"}`),
		"modules.json":          []byte(`[]`),
		"1_Pooling/config.json": []byte(`{"pooling_mode_mean_tokens": true}`),
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readManifest(t *testing.T, dir string) bert.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, bert.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m bert.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestConvertTinyMatchesReference(t *testing.T) {
	src := t.TempDir()
	writeCheckpoint(t, src, tinyConfig, tinyTensors(tinyConfig, "bert.", 1))
	dst := filepath.Join(t.TempDir(), "out", "tiny")
	if err := bert.Convert(context.Background(), src, dst); err != nil {
		t.Fatalf("Convert: %v", err)
	}
	for _, f := range []string{"model.onnx", "config.json", "tokenizer.json", "modules.json", "1_Pooling/config.json", bert.ManifestFile} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Errorf("output lacks %s: %v", f, err)
		}
	}
	m := readManifest(t, dst)
	onnx, err := os.ReadFile(filepath.Join(dst, bert.ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(onnx)
	if m.ModelSHA256 != hex.EncodeToString(sum[:]) || m.Version == "" || m.ConverterVersion != bert.ConverterVersion {
		t.Errorf("manifest %+v", m)
	}
	for _, f := range []string{"model.safetensors", "config.json", "tokenizer.json", "1_Pooling/config.json"} {
		if len(m.SourceSHA256[f]) != 64 {
			t.Errorf("manifest lacks the sha256 of %s: %v", f, m.SourceSHA256)
		}
	}

	st, err := safetensors.Read(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	ref := reference{cfg: tinyConfig, f: st, prefix: "bert."}
	r := rand.New(rand.NewPCG(2, 3))
	// Two shapes through the same model: the batch and sequence are dynamic.
	for _, bs := range [][2]int{{3, 5}, {1, 9}} {
		batch, seq := bs[0], bs[1]
		ids, mask, types := make([]int64, batch*seq), make([]int64, batch*seq), make([]int64, batch*seq)
		for i := range batch {
			n := seq - i // row i has i padding tokens at the end
			for j := range seq {
				if j < n {
					ids[i*seq+j] = 1 + r.Int64N(int64(tinyConfig.VocabSize-1))
					mask[i*seq+j] = 1
					types[i*seq+j] = int64(j * 2 / seq)
				}
			}
		}
		got, shape := runEncoder(t, filepath.Join(dst, bert.ModelFile), batch, seq, ids, mask, types)
		if len(shape) != 3 || shape[0] != int64(batch) || shape[1] != int64(seq) || shape[2] != int64(tinyConfig.HiddenSize) {
			t.Fatalf("shape %v", shape)
		}
		worst := 0.0
		for i := range batch {
			want := ref.forward(t, ids[i*seq:(i+1)*seq], types[i*seq:(i+1)*seq], mask[i*seq:(i+1)*seq])
			for s := range seq {
				for h := range tinyConfig.HiddenSize {
					d := math.Abs(float64(got[(i*seq+s)*tinyConfig.HiddenSize+h]) - want[s][h])
					if !(d <= worst) {
						worst = d
					}
				}
			}
		}
		t.Logf("batch %d seq %d: max |ORT - reference| = %.3g", batch, seq, worst)
		if !(worst <= 1e-4) {
			t.Fatalf("max abs diff %g > 1e-4", worst)
		}
	}

	// Converting again replaces the folder and gives identical bytes.
	if err := bert.Convert(context.Background(), src, dst); err != nil {
		t.Fatalf("second Convert: %v", err)
	}
	again, _ := os.ReadFile(filepath.Join(dst, bert.ModelFile))
	if string(again) != string(onnx) || readManifest(t, dst).Version != m.Version {
		t.Fatal("reconverting the same checkpoint changed the output")
	}
	entries, _ := os.ReadDir(filepath.Dir(dst))
	if len(entries) != 1 {
		t.Fatalf("temporary folders left beside the output: %v", entries)
	}
}

func TestConvertErrors(t *testing.T) {
	good := tinyTensors(tinyConfig, "", 4)
	cases := []struct {
		name  string
		setup func(t *testing.T, src string)
		check func(err error) bool
	}{
		{"config", func(t *testing.T, src string) {
			c := tinyConfig
			c.HiddenAct = "swish"
			writeCheckpoint(t, src, c, good)
		}, func(err error) bool { var e *bert.ConfigError; return errors.As(err, &e) && e.Field == "hidden_act" }},
		{"heads", func(t *testing.T, src string) {
			c := tinyConfig
			c.NumAttentionHeads = 3
			writeCheckpoint(t, src, c, good)
		}, func(err error) bool { var e *bert.ConfigError; return errors.As(err, &e) }},
		{"missing weight", func(t *testing.T, src string) {
			writeCheckpoint(t, src, tinyConfig, good[:len(good)-4])
		}, func(err error) bool { var e *bert.WeightError; return errors.As(err, &e) }},
		{"wrong shape", func(t *testing.T, src string) {
			c := tinyConfig
			c.IntermediateSize = 12
			writeCheckpoint(t, src, c, good)
		}, func(err error) bool { var e *bert.WeightError; return errors.As(err, &e) }},
		{"truncated", func(t *testing.T, src string) {
			writeCheckpoint(t, src, tinyConfig, good)
			p := filepath.Join(src, "model.safetensors")
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()-100)
		}, func(err error) bool { var e *safetensors.FormatError; return errors.As(err, &e) }},
		{"no safetensors", func(t *testing.T, src string) {
			writeCheckpoint(t, src, tinyConfig, good)
			os.Remove(filepath.Join(src, "model.safetensors"))
		}, func(err error) bool { return errors.Is(err, fs.ErrNotExist) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, out := t.TempDir(), t.TempDir()
			c.setup(t, src)
			err := bert.Convert(context.Background(), src, filepath.Join(out, "m"))
			if err == nil || !c.check(err) {
				t.Fatalf("err = %v (%T)", err, err)
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Fatalf("failed Convert left %v", entries)
			}
		})
	}
	t.Run("canceled", func(t *testing.T) {
		src, out := t.TempDir(), t.TempDir()
		writeCheckpoint(t, src, tinyConfig, good)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := bert.Convert(ctx, src, filepath.Join(out, "m")); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
}
