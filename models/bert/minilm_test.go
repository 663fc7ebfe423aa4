package bert_test

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/models/bert"
	"github.com/capflow/capflow/models/safetensors"
)

// miniLMDir is the unpacked all-MiniLM-L6-v2: CAPFLOW_MINILM_SRC, else
// .local/models/src/all-MiniLM-L6-v2 under the repository root.
func miniLMDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CAPFLOW_MINILM_SRC")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for dir = wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
			if filepath.Dir(dir) == dir {
				testenv.Missing(t, "all-MiniLM-L6-v2: no go.mod above %s", wd)
			}
		}
		dir = filepath.Join(dir, ".local", "models", "src", "all-MiniLM-L6-v2")
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err != nil {
		testenv.Missing(t, "all-MiniLM-L6-v2 checkpoint: %v (set CAPFLOW_MINILM_SRC)", err)
	}
	return dir
}

// wordIDs maps whole lower-case words through vocab.txt; a stand-in for the
// tokenizer (not under test here) that still gives realistic ids.
func wordIDs(t *testing.T, dir string, sentences []string) [][]int64 {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "vocab.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vocab := map[string]int64{}
	sc := bufio.NewScanner(f)
	for id := int64(0); sc.Scan(); id++ {
		vocab[sc.Text()] = id
	}
	var out [][]int64
	for _, s := range sentences {
		ids := []int64{vocab["[CLS]"]}
		for _, w := range strings.Fields(s) {
			id, ok := vocab[w]
			if !ok {
				id = vocab["[UNK]"]
			}
			ids = append(ids, id)
		}
		out = append(out, append(ids, vocab["[SEP]"]))
	}
	return out
}

// meanPoolNorm is sentence-transformers' mean pooling over unmasked tokens
// followed by L2 normalisation.
func meanPoolNorm(rows [][]float64, n int) []float64 {
	v := make([]float64, len(rows[0]))
	for s := range n {
		for h, a := range rows[s] {
			v[h] += a / float64(n)
		}
	}
	norm := 0.0
	for _, a := range v {
		norm += a * a
	}
	for h := range v {
		v[h] /= math.Sqrt(norm)
	}
	return v
}

func TestConvertMiniLM(t *testing.T) {
	if testing.Short() {
		t.Skip("converts a 90 MB checkpoint")
	}
	src := miniLMDir(t)
	cfg, err := bert.ReadConfig(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "all-MiniLM-L6-v2")
	start := time.Now()
	if err := bert.Convert(context.Background(), src, dst); err != nil {
		t.Fatalf("Convert: %v", err)
	}
	took := time.Since(start)
	fi, err := os.Stat(filepath.Join(dst, bert.ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("converted in %v; model.onnx %d bytes (%.1f MB); version %s", took.Round(time.Millisecond), fi.Size(), float64(fi.Size())/1e6, readManifest(t, dst).Version)
	for _, f := range []string{"tokenizer.json", "vocab.txt", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Errorf("output lacks %s: %v", f, err)
		}
	}

	sentences := []string{
		"the quick brown fox jumps over the lazy dog",
		"send an email to the team",
		"hello world",
	}
	seqs := wordIDs(t, src, sentences)
	batch, seq := len(seqs), 0
	for _, s := range seqs {
		seq = max(seq, len(s))
	}
	ids, mask, types := make([]int64, batch*seq), make([]int64, batch*seq), make([]int64, batch*seq)
	for i, s := range seqs {
		for j, id := range s {
			ids[i*seq+j], mask[i*seq+j] = id, 1
		}
	}
	got, shape := runEncoder(t, filepath.Join(dst, bert.ModelFile), batch, seq, ids, mask, types)
	if fmt.Sprint(shape) != fmt.Sprint([]int64{int64(batch), int64(seq), int64(cfg.HiddenSize)}) {
		t.Fatalf("shape %v", shape)
	}

	st, err := safetensors.Read(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	ref := reference{cfg: cfg, f: st}
	H := cfg.HiddenSize
	embs := make([][]float64, batch)
	for i, s := range seqs {
		want := ref.forward(t, s, types[i*seq:i*seq+len(s)], mask[i*seq:i*seq+len(s)])
		rows := make([][]float64, len(s))
		worst := 0.0
		for j := range s {
			rows[j] = make([]float64, H)
			for h := range H {
				rows[j][h] = float64(got[(i*seq+j)*H+h])
				worst = max(worst, math.Abs(rows[j][h]-want[j][h]))
			}
		}
		a, b := meanPoolNorm(rows, len(s)), meanPoolNorm(want, len(s))
		cos := 0.0
		for h := range a {
			cos += a[h] * b[h]
		}
		embs[i] = a
		t.Logf("%q: cosine(ORT, reference) = %.9f, max |hidden diff| = %.3g", sentences[i], cos, worst)
		if !(cos >= 0.9999) {
			t.Errorf("%q: cosine %v < 0.9999", sentences[i], cos)
		}
	}
	// Padding must not leak: the short sentences, padded in the batch, were
	// compared above with references computed on their unpadded tokens.
	// Different sentences must also give different embeddings.
	if d := dot(embs[0], embs[2]); !(d < 0.99) {
		t.Errorf("unrelated sentences have cosine %v", d)
	}
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
