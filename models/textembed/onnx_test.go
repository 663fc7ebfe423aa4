package textembed

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/models/bert"
)

type minilmGolden struct {
	Reference    string `json:"reference"`
	MaxSeqLength int    `json:"max_seq_length"`
	Dim          int    `json:"dim"`
	Cases        []struct {
		Text      string    `json:"text"`
		IDs       []int     `json:"ids"`
		Embedding []float32 `json:"embedding"`
	} `json:"cases"`
}

func loadMiniLMGolden(t *testing.T) minilmGolden {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "minilm_golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g minilmGolden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) < 10 || g.Dim != 384 {
		t.Fatalf("golden file: %d cases, dim %d", len(g.Cases), g.Dim)
	}
	return g
}

func (g minilmGolden) texts() []string {
	out := make([]string, len(g.Cases))
	for i, c := range g.Cases {
		out[i] = c.Text
	}
	return out
}

// repoRoot is the nearest directory above the working directory with go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// converted is the MiniLM folder converted by this test process, shared by
// the tests and removed by TestMain.
var converted struct {
	once     sync.Once
	dir, tmp string
	err      error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if converted.tmp != "" {
		os.RemoveAll(converted.tmp)
	}
	os.Exit(code)
}

// minilmDir is the all-MiniLM-L6-v2 ONNX folder: CAPFLOW_MINILM_DIR, else
// <repo>/.local/models/all-MiniLM-L6-v2; when that has no model.onnx, the
// source checkpoint (CAPFLOW_MINILM_SRC, else
// <repo>/.local/models/src/all-MiniLM-L6-v2) converted by models/bert.
func minilmDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CAPFLOW_MINILM_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), ".local", "models", "all-MiniLM-L6-v2")
	}
	if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err == nil {
		return dir
	}
	src := os.Getenv("CAPFLOW_MINILM_SRC")
	if src == "" {
		src = filepath.Join(repoRoot(t), ".local", "models", "src", "all-MiniLM-L6-v2")
	}
	if _, err := os.Stat(filepath.Join(src, "model.safetensors")); err != nil {
		testenv.Missing(t, "all-MiniLM-L6-v2: no model.onnx in %s and no checkpoint to convert: %v (set CAPFLOW_MINILM_DIR or CAPFLOW_MINILM_SRC)", dir, err)
	}
	converted.once.Do(func() {
		converted.tmp, converted.err = os.MkdirTemp("", "textembed-minilm-")
		if converted.err == nil {
			converted.dir = filepath.Join(converted.tmp, "all-MiniLM-L6-v2")
			converted.err = bert.Convert(context.Background(), src, converted.dir)
		}
	})
	if converted.err != nil {
		t.Fatalf("converting %s: %v", src, converted.err)
	}
	return converted.dir
}

func openMiniLM(t *testing.T, opts ONNXOptions) *ONNX {
	t.Helper()
	dir := minilmDir(t)
	opts.LibraryPath = testenv.ORTLibrary(t)
	e, err := OpenONNX(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestONNXMiniLMGolden(t *testing.T) {
	g := loadMiniLMGolden(t)
	e := openMiniLM(t, ONNXOptions{})
	if e.Dim() != g.Dim || e.MaxLength() != g.MaxSeqLength {
		t.Fatalf("dim %d max length %d, want %d %d", e.Dim(), e.MaxLength(), g.Dim, g.MaxSeqLength)
	}
	info := e.Model()
	if info.Name == "" || len(info.Version) != 12 || info.Dim != g.Dim {
		t.Errorf("ModelInfo %+v", info)
	}

	// The tokenizer, truncation included, matches the reference's ids.
	for _, c := range g.Cases {
		ids, _, err := e.tok.Encode(c.Text)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, c.IDs) {
			t.Errorf("ids of %.40q:\n got  %v\n want %v", c.Text, ids, c.IDs)
		}
	}

	vecs, err := e.Encode(context.Background(), g.texts())
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != len(g.Cases) {
		t.Fatalf("%d vectors for %d texts", len(vecs), len(g.Cases))
	}
	minCos := 1.0
	for i, c := range g.Cases {
		if len(vecs[i]) != g.Dim {
			t.Fatalf("vector %d has length %d", i, len(vecs[i]))
		}
		if n := Norm(vecs[i]); math.Abs(n-1) > 1e-5 {
			t.Errorf("%.40q: norm %v", c.Text, n)
		}
		cos := Cosine(vecs[i], c.Embedding)
		minCos = min(minCos, cos)
		if cos < 0.999 {
			t.Errorf("%.40q: cosine with the reference %.6f < 0.999", c.Text, cos)
		}
	}
	t.Logf("min cosine vs %s: 1 - %.1e", g.Reference, 1-minCos)

	again, err := e.Encode(context.Background(), g.texts())
	if err != nil {
		t.Fatal(err)
	}
	for i := range vecs {
		if !slices.Equal(vecs[i], again[i]) {
			t.Errorf("text %d: encoding twice differs", i)
		}
	}
}

// TestONNXBatchIndependent checks padding does not leak into the vectors:
// batch size 1 (no padding) and 8 (padding to the batch's longest text)
// agree.
func TestONNXBatchIndependent(t *testing.T) {
	g := loadMiniLMGolden(t)
	one := openMiniLM(t, ONNXOptions{BatchSize: 1})
	eight := openMiniLM(t, ONNXOptions{BatchSize: 8})
	a, err := one.Encode(context.Background(), g.texts())
	if err != nil {
		t.Fatal(err)
	}
	b, err := eight.Encode(context.Background(), g.texts())
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		for k := range a[i] {
			if d := math.Abs(float64(a[i][k] - b[i][k])); d > 1e-5 {
				t.Errorf("text %d dim %d: batch 1 %v, batch 8 %v", i, k, a[i][k], b[i][k])
				break
			}
		}
	}
	if one.Model() != eight.Model() {
		t.Errorf("batch size changed ModelInfo: %+v vs %+v", one.Model(), eight.Model())
	}
}

// TestONNXConcurrent runs encoders in parallel on one ONNX (meant for -race).
func TestONNXConcurrent(t *testing.T) {
	g := loadMiniLMGolden(t)
	e := openMiniLM(t, ONNXOptions{BatchSize: 4, MaxLength: 32})
	texts := g.texts()
	want, err := e.Encode(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			// Each worker starts at a different text so batches differ.
			rot := append(slices.Clone(texts[w:]), texts[:w]...)
			got, err := e.Encode(context.Background(), rot)
			if err != nil {
				errs <- err
				return
			}
			for i := range got {
				j := (i + w) % len(texts)
				if Cosine(got[i], want[j]) < 0.99999 {
					errs <- errors.New("concurrent encoding differs from sequential")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestONNXMaxLengthChangesVersion(t *testing.T) {
	full := openMiniLM(t, ONNXOptions{})
	short := openMiniLM(t, ONNXOptions{MaxLength: 16, Name: "minilm-16"})
	if short.MaxLength() != 16 || short.Model().Name != "minilm-16" {
		t.Fatalf("options ignored: max length %d, %+v", short.MaxLength(), short.Model())
	}
	if full.Model().Version == short.Model().Version {
		t.Error("truncation length does not change Version, so cached vectors would be reused")
	}
	big := openMiniLM(t, ONNXOptions{MaxLength: 100000})
	if big.MaxLength() != full.MaxLength() {
		t.Errorf("MaxLength above the model's limit: got %d, want the model's %d", big.MaxLength(), full.MaxLength())
	}
}

func TestONNXClose(t *testing.T) {
	e := openMiniLM(t, ONNXOptions{})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := e.Encode(context.Background(), []string{"x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Encode after Close: %v, want ErrClosed", err)
	}
}

func TestONNXEncodeCancelled(t *testing.T) {
	e := openMiniLM(t, ONNXOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Encode(ctx, []string{"x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestOpenONNXErrors(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	ctx := context.Background()

	_, err := OpenONNX(ctx, filepath.Join(t.TempDir(), "nope"), ONNXOptions{LibraryPath: lib})
	var fe *ModelFileError
	if !errors.As(err, &fe) || !errors.Is(err, os.ErrNotExist) || fe.File != "model.onnx" {
		t.Errorf("missing folder: %v", err)
	}

	_, err = OpenONNX(ctx, t.TempDir(), ONNXOptions{BatchSize: -1})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "BatchSize" {
		t.Errorf("bad batch size: %v", err)
	}

	// A model whose input is not a text encoder's.
	dir := toyFolder(t, "onnx_bad_io.onnx", `{"max_position_embeddings": 8}`)
	_, err = OpenONNX(ctx, dir, ONNXOptions{LibraryPath: lib})
	var ie *ModelIOError
	if !errors.As(err, &ie) || !slices.Equal(ie.Inputs, []string{"pixels"}) {
		t.Errorf("bad inputs: %v, want *ModelIOError naming the input", err)
	}

	// A config whose hidden size disagrees with the model's token vectors.
	dir = t.TempDir()
	for _, f := range []string{"model.onnx", "modules.json", "tokenizer_config.json", "1_Pooling/config.json"} {
		copyTestdata(t, filepath.Join("tiny_xlmr", f), filepath.Join(dir, f))
	}
	copyTestdata(t, "xlmr_spm_tokenizer.json", filepath.Join(dir, "tokenizer.json"))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"hidden_size": 48, "max_position_embeddings": 66}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = OpenONNX(ctx, dir, ONNXOptions{LibraryPath: lib})
	var de *DimensionError
	if !errors.As(err, &de) || de.Got != 32 || de.Want != 48 {
		t.Errorf("dimension mismatch: %v, want *DimensionError 32 vs 48", err)
	}

	// A pooled output may be projected: its size wins over hidden_size.
	dir = toyFolder(t, "onnx_pooled.onnx", `{"max_position_embeddings": 8, "hidden_size": 3}`)
	e, err := OpenONNX(ctx, dir, ONNXOptions{LibraryPath: lib})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if e.Dim() != 2 {
		t.Errorf("pooled output of size 2 with hidden_size 3: Dim %d, want 2", e.Dim())
	}

	// No length limit anywhere.
	dir = toyFolder(t, "onnx_pooled.onnx", "")
	_, err = OpenONNX(ctx, dir, ONNXOptions{LibraryPath: lib})
	if !errors.As(err, &ce) || ce.Field != "MaxLength" {
		t.Errorf("no length limit: %v, want ConfigError on MaxLength", err)
	}
}

// toyFolder makes a model folder from a hand-built graph in testdata (see
// scripts/golden_minilm.py), the MiniLM tokenizer and config.json (none if
// empty).
func toyFolder(t *testing.T, model, config string) string {
	t.Helper()
	dir := t.TempDir()
	copyTestdata(t, model, filepath.Join(dir, "model.onnx"))
	copyTestdata(t, filepath.Join("minilm", "tokenizer.json"), filepath.Join(dir, "tokenizer.json"))
	if config != "" {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// copyTestdata copies testdata/src to dst, making dst's folder.
func copyTestdata(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", src))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestONNXSentenceEmbeddingOutput runs a graph that pools itself: its
// sentence_embedding is [sum of attended ids, attended count], so padding
// mistakes (wrong mask, pad ids counted) show in the vectors.
func TestONNXSentenceEmbeddingOutput(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	dir := toyFolder(t, "onnx_pooled.onnx", "")
	e, err := OpenONNX(context.Background(), dir, ONNXOptions{LibraryPath: lib, MaxLength: 6, BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Dim() != 2 {
		t.Fatalf("Dim %d, want 2", e.Dim())
	}
	texts := []string{"a", "hello world", "", "one two three four five six seven", "tools"}
	got, err := e.Encode(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range texts {
		ids, _, err := e.tok.Encode(text)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) > 6 {
			t.Fatalf("%q: %d ids past MaxLength 6", text, len(ids))
		}
		sum := 0.0
		for _, id := range ids {
			sum += float64(id)
		}
		want := normalize([]float64{sum, float64(len(ids))})
		if math.Abs(float64(got[i][0]-want[0])) > 1e-6 || math.Abs(float64(got[i][1]-want[1])) > 1e-6 {
			t.Errorf("%q: got %v, want %v", text, got[i], want)
		}
	}
}

// BenchmarkONNXSealTools encodes Seal-Tools tool descriptions
// ("name: description") with MiniLM in batches of 32 and reports texts/s.
func BenchmarkONNXSealTools(b *testing.B) {
	f, err := os.Open(filepath.Join(testenv.SealToolsDir(b), "tool.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var texts []string
	dec := json.NewDecoder(f)
	for len(texts) < 512 {
		var tool struct {
			Name        string `json:"api_name"`
			Description string `json:"api_description"`
		}
		if err := dec.Decode(&tool); err != nil {
			b.Fatal(err)
		}
		texts = append(texts, tool.Name+": "+tool.Description)
	}
	dir := minilmDir(b)
	e, err := OpenONNX(context.Background(), dir, ONNXOptions{LibraryPath: testenv.ORTLibrary(b), BatchSize: 32})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Encode(context.Background(), texts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(texts))/b.Elapsed().Seconds(), "texts/s")
}

// TestONNXTinyXLMRGolden runs the XLM-RoBERTa family end to end (the
// BGE-M3 pipeline: SentencePiece Unigram with a Precompiled normalizer,
// <pad>=1, CLS pooling, no token_type_ids input, sentence-transformers v6
// config files) on a tiny random-weight model against sentence-transformers'
// embeddings (scripts/golden_tokenizers.py).
func TestONNXTinyXLMRGolden(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	data, err := os.ReadFile(filepath.Join("testdata", "tiny_xlmr_golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases []struct {
			Text      string    `json:"text"`
			IDs       []int     `json:"ids"`
			Embedding []float32 `json:"embedding"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{"model.onnx", "config.json", "modules.json", "sentence_bert_config.json", "tokenizer_config.json", "1_Pooling/config.json"} {
		copyTestdata(t, filepath.Join("tiny_xlmr", f), filepath.Join(dir, f))
	}
	copyTestdata(t, "xlmr_spm_tokenizer.json", filepath.Join(dir, "tokenizer.json"))

	e, err := OpenONNX(context.Background(), dir, ONNXOptions{LibraryPath: lib, BatchSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Dim() != 32 || e.MaxLength() != 32 || e.pool != poolCLS || e.padID != 1 || e.hasTypes {
		t.Fatalf("dim %d, max length %d, pooling %s, pad %d, token types %v; want 32, 32, cls, 1, false",
			e.Dim(), e.MaxLength(), e.pool, e.padID, e.hasTypes)
	}
	texts := make([]string, len(g.Cases))
	for i, c := range g.Cases {
		texts[i] = c.Text
		ids, _, err := e.tok.Encode(c.Text)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, c.IDs) {
			t.Errorf("ids of %q:\n got  %v\n want %v", c.Text, ids, c.IDs)
		}
	}
	vecs, err := e.Encode(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	worst := 1.0
	for i, c := range g.Cases {
		cos := Cosine(vecs[i], c.Embedding)
		worst = min(worst, cos)
		if cos < 0.999 {
			t.Errorf("%q: cosine with the reference %.6f < 0.999", c.Text, cos)
		}
	}
	t.Logf("min cosine vs sentence-transformers: 1 - %.1e", 1-worst)
}

func TestInitORTOnce(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	if err := InitORT(lib); err != nil {
		t.Fatal(err)
	}
	if err := InitORT(filepath.Join(t.TempDir(), "libonnxruntime.so")); err != nil {
		t.Fatalf("InitORT again with another path: %v, want the first call's result", err)
	}
}
