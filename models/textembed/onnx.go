package textembed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ORT input and output names of HuggingFace/sentence-transformers exports.
const (
	inputIDs      = "input_ids"
	attentionMask = "attention_mask"
	tokenTypeIDs  = "token_type_ids"

	outputHidden   = "last_hidden_state"  // [batch, seq, hidden]: pooled here
	outputSentence = "sentence_embedding" // [batch, hidden]: pooled by the model
)

// ModelFileError is a model folder file that is missing, unreadable or
// invalid.
type ModelFileError struct {
	Dir, File string
	Err       error
}

func (e *ModelFileError) Error() string {
	return fmt.Sprintf("textembed: model %s: %s: %v", e.Dir, e.File, e.Err)
}

func (e *ModelFileError) Unwrap() error { return e.Err }

// ModelIOError is an ONNX model whose inputs or outputs are not those of a
// text encoder: input_ids and attention_mask (token_type_ids optional), all
// int64 [batch, seq], and last_hidden_state or sentence_embedding as float32.
type ModelIOError struct {
	Path, Reason    string
	Inputs, Outputs []string
}

func (e *ModelIOError) Error() string {
	return fmt.Sprintf("textembed: model %s: %s (inputs %v, outputs %v)", e.Path, e.Reason, e.Inputs, e.Outputs)
}

// ErrClosed is returned by Encode after Close.
var ErrClosed = errors.New("textembed: encoder is closed")

// ortState is the process's ONNX Runtime environment. It is package state
// because ORT's is process state: one environment per process, created once.
var ortState struct {
	mu   sync.Mutex
	done bool
	err  error
}

// InitORT initialises the ONNX Runtime environment for the process from
// the shared library at libPath (default $ONNXRUNTIME_SHARED_LIBRARY_PATH).
// The first call that has a path does the work; every later call returns
// its result, whatever path it passes. OpenONNX calls it. It succeeds
// without loading anything if another package of the process already
// initialised onnxruntime_go.
func InitORT(libPath string) error {
	ortState.mu.Lock()
	defer ortState.mu.Unlock()
	if ortState.done {
		return ortState.err
	}
	if ort.IsInitialized() {
		ortState.done = true
		return nil
	}
	if libPath == "" {
		libPath = os.Getenv("ONNXRUNTIME_SHARED_LIBRARY_PATH")
	}
	if libPath == "" {
		// Not final: a later call may bring a path.
		return &ConfigError{Field: "LibraryPath", Reason: "is empty and ONNXRUNTIME_SHARED_LIBRARY_PATH is not set"}
	}
	ort.SetSharedLibraryPath(libPath)
	if err := ort.InitializeEnvironment(); err != nil {
		ortState.err = fmt.Errorf("textembed: initialising ONNX Runtime from %s: %w", libPath, err)
	}
	ortState.done = true
	return ortState.err
}

// ONNXOptions configures OpenONNX. Zero fields take defaults.
type ONNXOptions struct {
	// Name is ModelInfo.Name (default: the folder's base name).
	Name string
	// LibraryPath is the ONNX Runtime shared library, used if this is the
	// process's first InitORT (default $ONNXRUNTIME_SHARED_LIBRARY_PATH).
	LibraryPath string
	// MaxLength lowers the tokens kept per text, special tokens included;
	// longer texts are truncated. The model's own limit (the smaller of
	// sentence_bert_config.json max_seq_length and config.json
	// max_position_embeddings) always applies.
	MaxLength int
	// BatchSize is the most texts per model run (default 32); each batch is
	// padded to its longest text.
	BatchSize int
	// IntraOpThreads is ONNX Runtime's thread count per run (default: the
	// number of CPUs; ORT's own default measured 3x slower on a 2-core VM).
	IntraOpThreads int
}

// pooling is how token vectors become one text vector.
type pooling string

const (
	poolMean pooling = "mean" // average of the attended tokens
	poolCLS  pooling = "cls"  // the first token
	poolMax  pooling = "max"  // element-wise max of the attended tokens
	poolNone pooling = "none" // the model outputs sentence_embedding
)

// ONNX encodes with a sentence-transformers model exported to ONNX and run
// by ONNX Runtime in-process: tokenizer.json (Tokenizer), model.onnx,
// pooling from 1_Pooling/config.json, then L2 normalisation (always: the
// Encoder contract asks for unit vectors, and for a model with a Normalize
// module that is the model's own last step).
//
// It is safe for concurrent use: ORT sessions allow concurrent Run calls.
type ONNX struct {
	info     ModelInfo
	tok      *Tokenizer
	maxLen   int
	batch    int
	padID    int64
	pool     pooling
	inputs   []string // the model's inputs, in the session's order
	output   string
	hasTypes bool

	mu     sync.RWMutex // Close waits for runs in flight
	sess   *ort.DynamicAdvancedSession
	closed bool
}

// modelConfig is what OpenONNX reads from the folder's JSON files.
type modelConfig struct {
	maxLen  int // 0: unknown
	padID   int64
	dim     int // 0: unknown
	pool    pooling
	modules []string
}

// OpenONNX opens the model folder dir: model.onnx, tokenizer.json and the
// sentence-transformers files beside them (config.json, modules.json,
// 1_Pooling/config.json, sentence_bert_config.json). It initialises ONNX
// Runtime (InitORT) if needed.
func OpenONNX(ctx context.Context, dir string, opts ONNXOptions) (*ONNX, error) {
	if opts.BatchSize == 0 {
		opts.BatchSize = 32
	}
	if opts.IntraOpThreads == 0 {
		opts.IntraOpThreads = runtime.NumCPU()
	}
	switch {
	case opts.BatchSize < 1:
		return nil, &ConfigError{Field: "BatchSize", Reason: fmt.Sprintf("is %d, must be positive", opts.BatchSize)}
	case opts.MaxLength < 0:
		return nil, &ConfigError{Field: "MaxLength", Reason: fmt.Sprintf("is %d, must not be negative", opts.MaxLength)}
	case opts.IntraOpThreads < 0:
		return nil, &ConfigError{Field: "IntraOpThreads", Reason: fmt.Sprintf("is %d, must not be negative", opts.IntraOpThreads)}
	}
	modelPath := filepath.Join(dir, "model.onnx")
	tokPath := filepath.Join(dir, "tokenizer.json")
	for _, p := range []string{modelPath, tokPath} {
		if _, err := os.Stat(p); err != nil {
			return nil, &ModelFileError{Dir: dir, File: filepath.Base(p), Err: err}
		}
	}
	cfg, err := readModelConfig(dir)
	if err != nil {
		return nil, err
	}
	maxLen := cfg.maxLen
	if opts.MaxLength > 0 && (maxLen == 0 || opts.MaxLength < maxLen) {
		maxLen = opts.MaxLength
	}
	if maxLen == 0 {
		return nil, &ConfigError{Field: "MaxLength", Reason: fmt.Sprintf("must be set: model %s declares no length limit", dir)}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tok, err := LoadTokenizer(tokPath, maxLen)
	if err != nil {
		return nil, err
	}
	if err := InitORT(opts.LibraryPath); err != nil {
		return nil, err
	}

	ins, outs, err := ort.GetInputOutputInfo(modelPath)
	if err != nil {
		return nil, &ModelFileError{Dir: dir, File: "model.onnx", Err: err}
	}
	e := &ONNX{tok: tok, maxLen: maxLen, batch: opts.BatchSize, padID: cfg.padID, pool: cfg.pool}
	if err := e.bindIO(modelPath, ins, outs); err != nil {
		return nil, err
	}
	if e.output == outputSentence {
		e.pool = poolNone
	} else if e.pool == "" {
		return nil, &ModelFileError{Dir: dir, File: "1_Pooling/config.json", Err: errors.New("required to pool last_hidden_state")}
	} else if bad := unsupportedModules(cfg.modules); len(bad) > 0 {
		return nil, &ModelFileError{Dir: dir, File: "modules.json", Err: fmt.Errorf("modules %v after pooling are not in model.onnx and not supported", bad)}
	}

	// The hidden size must match the token vectors; a pooled output may be
	// projected (Dense modules inside the graph), so its own size rules.
	dim := cfg.dim
	if d := outputInfo(outs, e.output).Dimensions; d[len(d)-1] > 0 {
		got := int(d[len(d)-1])
		if e.output == outputHidden && dim != 0 && got != dim {
			return nil, &DimensionError{Model: dir, Got: got, Want: dim}
		}
		dim = got
	}
	if dim == 0 {
		return nil, &ModelFileError{Dir: dir, File: "config.json", Err: errors.New("no hidden_size, and model.onnx does not fix the output dimension")}
	}

	version, err := modelVersion(dir, fmt.Sprintf("maxlen=%d pool=%s", maxLen, e.pool))
	if err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("textembed: model %s: %w", dir, err)
		}
		name = filepath.Base(abs)
	}
	e.info = ModelInfo{Name: name, Version: version, Dim: dim}

	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("textembed: ORT session options: %w", err)
	}
	defer so.Destroy()
	if opts.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
			return nil, fmt.Errorf("textembed: ORT intra-op threads: %w", err)
		}
	}
	e.sess, err = ort.NewDynamicAdvancedSession(modelPath, e.inputs, []string{e.output}, so)
	if err != nil {
		return nil, &ModelFileError{Dir: dir, File: "model.onnx", Err: err}
	}
	return e, nil
}

// bindIO picks the inputs to feed and the output to read, checking types.
func (e *ONNX) bindIO(path string, ins, outs []ort.InputOutputInfo) error {
	names := func(l []ort.InputOutputInfo) []string {
		s := make([]string, len(l))
		for i, x := range l {
			s[i] = x.Name
		}
		return s
	}
	ioErr := func(format string, args ...any) error {
		return &ModelIOError{Path: path, Reason: fmt.Sprintf(format, args...), Inputs: names(ins), Outputs: names(outs)}
	}
	for _, in := range ins {
		switch in.Name {
		case inputIDs, attentionMask, tokenTypeIDs:
		default:
			return ioErr("input %q is not one of %s, %s, %s", in.Name, inputIDs, attentionMask, tokenTypeIDs)
		}
		if in.OrtValueType != ort.ONNXTypeTensor || in.DataType != ort.TensorElementDataTypeInt64 || len(in.Dimensions) != 2 {
			return ioErr("input %q is %s, want an int64 tensor [batch, seq]", in.Name, in.String())
		}
		e.inputs = append(e.inputs, in.Name)
	}
	for _, need := range []string{inputIDs, attentionMask} {
		if !slices.Contains(e.inputs, need) {
			return ioErr("input %q is missing", need)
		}
	}
	e.hasTypes = slices.Contains(e.inputs, tokenTypeIDs)
	for _, want := range []struct {
		name string
		rank int
	}{{outputSentence, 2}, {outputHidden, 3}} {
		o := outputInfo(outs, want.name)
		if o == nil {
			continue
		}
		if o.OrtValueType != ort.ONNXTypeTensor || o.DataType != ort.TensorElementDataTypeFloat || len(o.Dimensions) != want.rank {
			return ioErr("output %q is %s, want a float32 tensor of rank %d", o.Name, o.String(), want.rank)
		}
		e.output = want.name
		return nil
	}
	return ioErr("no output %q or %q", outputSentence, outputHidden)
}

func outputInfo(outs []ort.InputOutputInfo, name string) *ort.InputOutputInfo {
	for i := range outs {
		if outs[i].Name == name {
			return &outs[i]
		}
	}
	return nil
}

// unsupportedModules lists sentence-transformers modules other than the
// transformer, pooling and normalisation (Dense projections, ...), which a
// last_hidden_state export does not contain.
func unsupportedModules(types []string) []string {
	var bad []string
	for _, t := range types {
		switch t[strings.LastIndex(t, ".")+1:] {
		case "Transformer", "Pooling", "Normalize":
		default:
			bad = append(bad, t)
		}
	}
	return bad
}

// readModelConfig reads the optional JSON files of the folder. A file that
// exists must parse.
func readModelConfig(dir string) (modelConfig, error) {
	var cfg modelConfig
	read := func(rel string, v any) (bool, error) {
		data, err := os.ReadFile(filepath.Join(dir, rel))
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		if err == nil {
			err = json.Unmarshal(data, v)
		}
		if err != nil {
			return false, &ModelFileError{Dir: dir, File: rel, Err: err}
		}
		return true, nil
	}

	var hf struct {
		ModelType             string `json:"model_type"`
		HiddenSize            int    `json:"hidden_size"`
		MaxPositionEmbeddings int    `json:"max_position_embeddings"`
		PadTokenID            *int64 `json:"pad_token_id"`
	}
	if _, err := read("config.json", &hf); err != nil {
		return cfg, err
	}
	cfg.dim = hf.HiddenSize
	if hf.PadTokenID != nil {
		cfg.padID = *hf.PadTokenID
	}
	if n := hf.MaxPositionEmbeddings; n > 0 {
		// RoBERTa-family positions start after the padding index, so two of
		// the declared positions are unusable (XLM-R: 514 → 512).
		if strings.Contains(hf.ModelType, "roberta") && hf.PadTokenID != nil {
			n -= int(*hf.PadTokenID) + 1
		}
		cfg.maxLen = n
	}

	// The truncation length, as sentence-transformers takes it: its own
	// max_seq_length (sentence_bert_config.json up to v5, the tokenizer's
	// model_max_length from v6 on), never past the position embeddings.
	var sb struct {
		MaxSeqLength int `json:"max_seq_length"`
	}
	if _, err := read("sentence_bert_config.json", &sb); err != nil {
		return cfg, err
	}
	seqLen := sb.MaxSeqLength
	if seqLen <= 0 {
		var tc struct {
			ModelMaxLength float64 `json:"model_max_length"` // often 1e30 for "none"
		}
		if _, err := read("tokenizer_config.json", &tc); err != nil {
			return cfg, err
		}
		if tc.ModelMaxLength > 0 && tc.ModelMaxLength < 1<<20 {
			seqLen = int(tc.ModelMaxLength)
		}
	}
	if seqLen > 0 && (cfg.maxLen == 0 || seqLen < cfg.maxLen) {
		cfg.maxLen = seqLen
	}

	var modules []struct {
		Path string `json:"path"`
		Type string `json:"type"`
	}
	found, err := read("modules.json", &modules)
	if err != nil {
		return cfg, err
	}
	poolDir := "1_Pooling"
	if found {
		poolDir = ""
		for _, m := range modules {
			cfg.modules = append(cfg.modules, m.Type)
			if strings.HasSuffix(m.Type, ".Pooling") {
				poolDir = m.Path
			}
		}
	}
	if poolDir == "" {
		return cfg, nil
	}
	var pc map[string]any
	rel := filepath.Join(poolDir, "config.json")
	if found, err := read(rel, &pc); err != nil || !found {
		return cfg, err
	}
	// Up to v5 one boolean per mode; from v6 "pooling_mode": "cls".
	modeNames := map[string]pooling{
		"pooling_mode_mean_tokens": poolMean, "mean": poolMean,
		"pooling_mode_cls_token": poolCLS, "cls": poolCLS,
		"pooling_mode_max_tokens": poolMax, "max": poolMax,
	}
	var modes []pooling
	for key, v := range pc {
		name := key
		if key == "pooling_mode" {
			name, _ = v.(string)
		} else if on, _ := v.(bool); !on || !strings.HasPrefix(key, "pooling_mode_") {
			continue
		}
		mode, ok := modeNames[name]
		if !ok {
			return cfg, &ModelFileError{Dir: dir, File: rel, Err: fmt.Errorf("pooling %s is not supported (mean, cls and max are)", name)}
		}
		modes = append(modes, mode)
	}
	if len(modes) != 1 {
		return cfg, &ModelFileError{Dir: dir, File: rel, Err: fmt.Errorf("want exactly one pooling mode, got %v", modes)}
	}
	cfg.pool = modes[0]
	for _, key := range []string{"word_embedding_dimension", "embedding_dimension"} {
		if d, ok := pc[key].(float64); ok && cfg.dim == 0 {
			cfg.dim = int(d)
		}
	}
	return cfg, nil
}

// modelVersion is a short content hash of what decides the vectors: the
// weights (model.onnx, or capflow_convert.json when the converter wrote one,
// which names its source and so spares hashing gigabytes), tokenizer.json,
// and settings such as the truncation length.
func modelVersion(dir, settings string) (string, error) {
	h := sha256.New()
	files := []string{"model.onnx", "tokenizer.json"}
	if _, err := os.Stat(filepath.Join(dir, "capflow_convert.json")); err == nil {
		files[0] = "capflow_convert.json"
	}
	for _, name := range files {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return "", &ModelFileError{Dir: dir, File: name, Err: err}
		}
		fmt.Fprintf(h, "%s\x00", name)
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", &ModelFileError{Dir: dir, File: name, Err: err}
		}
	}
	h.Write([]byte(settings))
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// Dim is the embedding dimension.
func (e *ONNX) Dim() int { return e.info.Dim }

// Model names the model; Version is a content hash of the folder.
func (e *ONNX) Model() ModelInfo { return e.info }

// MaxLength is the number of tokens kept per text, special tokens included.
func (e *ONNX) MaxLength() int { return e.maxLen }

// Close releases the ORT session after runs in flight finish. Encode then
// returns ErrClosed. Close is idempotent.
func (e *ONNX) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	return e.sess.Destroy()
}

// Encode tokenizes texts, runs them through the model in batches of
// BatchSize and returns unit vectors in the order of texts. Batches are
// formed from texts of similar token length (as sentence-transformers does),
// which cuts padding; vectors do not depend on the batching.
func (e *ONNX) Encode(ctx context.Context, texts []string) ([][]float32, error) {
	ids := make([][]int, len(texts))
	types := make([][]int, len(texts))
	for i, t := range texts {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		var err error
		if ids[i], types[i], err = e.tok.Encode(t); err != nil {
			return nil, fmt.Errorf("textembed: text %d: %w", i, err)
		}
	}
	order := make([]int, len(texts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return len(ids[b]) - len(ids[a]) })

	out := make([][]float32, len(texts))
	bIDs := make([][]int, 0, e.batch)
	bTypes := make([][]int, 0, e.batch)
	for start := 0; start < len(order); start += e.batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		idx := order[start:min(start+e.batch, len(order))]
		bIDs, bTypes = bIDs[:0], bTypes[:0]
		for _, i := range idx {
			bIDs = append(bIDs, ids[i])
			bTypes = append(bTypes, types[i])
		}
		vecs, err := e.encodeBatch(bIDs, bTypes)
		if err != nil {
			return nil, fmt.Errorf("textembed: batch of %d texts with text %d: %w", len(idx), idx[0], err)
		}
		for k, i := range idx {
			out[i] = vecs[k]
		}
	}
	return out, nil
}

// encodeBatch runs the model on one batch of tokenized texts.
func (e *ONNX) encodeBatch(ids, types [][]int) ([][]float32, error) {
	seq := 0
	for _, x := range ids {
		seq = max(seq, len(x))
	}
	if seq == 0 {
		// A tokenizer without special tokens on empty texts: nothing to run.
		out := make([][]float32, len(ids))
		for i := range out {
			out[i] = make([]float32, e.info.Dim)
		}
		return out, nil
	}

	// Right-pad to the longest text; the mask hides the padding from
	// attention and from pooling.
	n := len(ids) * seq
	idData, maskData, typeData := make([]int64, n), make([]int64, n), make([]int64, n)
	for i := range ids {
		row := i * seq
		for j := range seq {
			if j < len(ids[i]) {
				idData[row+j] = int64(ids[i][j])
				maskData[row+j] = 1
				typeData[row+j] = int64(types[i][j])
			} else {
				idData[row+j] = e.padID
			}
		}
	}
	shape := ort.NewShape(int64(len(ids)), int64(seq))
	inputs := make([]ort.Value, len(e.inputs))
	defer func() {
		for _, v := range inputs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for k, name := range e.inputs {
		data := idData
		switch name {
		case attentionMask:
			data = maskData
		case tokenTypeIDs:
			data = typeData
		}
		t, err := ort.NewTensor(shape, data)
		if err != nil {
			return nil, fmt.Errorf("ORT input %s: %w", name, err)
		}
		inputs[k] = t
	}

	outputs := []ort.Value{nil}
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return nil, ErrClosed
	}
	err := e.sess.Run(inputs, outputs)
	e.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("ORT run: %w", err)
	}
	defer outputs[0].Destroy()
	t, ok := outputs[0].(*ort.Tensor[float32])
	if !ok {
		return nil, &ModelIOError{Path: e.info.Name, Reason: fmt.Sprintf("output %s is not float32", e.output)}
	}
	return e.pooled(t.GetData(), t.GetShape(), maskData, seq)
}

// pooled turns the output into one unit vector per text.
func (e *ONNX) pooled(data []float32, shape ort.Shape, mask []int64, seq int) ([][]float32, error) {
	b := len(mask) / seq
	want := ort.NewShape(int64(b), int64(seq), int64(e.info.Dim))
	if e.pool == poolNone {
		want = ort.NewShape(int64(b), int64(e.info.Dim))
	}
	if !shape.Equals(want) {
		if len(shape) == len(want) && slices.Equal(shape[:len(shape)-1], want[:len(want)-1]) {
			return nil, &DimensionError{Model: e.info.Name, Got: int(shape[len(shape)-1]), Want: e.info.Dim}
		}
		return nil, &ModelIOError{Path: e.info.Name, Reason: fmt.Sprintf("output %s has shape %v, want %v", e.output, shape, want)}
	}
	dim := e.info.Dim
	out := make([][]float32, b)
	v := make([]float64, dim)
	for i := range b {
		clear(v)
		switch e.pool {
		case poolNone:
			for k := range dim {
				v[k] = float64(data[i*dim+k])
			}
		case poolCLS:
			for k := range dim {
				v[k] = float64(data[i*seq*dim+k])
			}
		case poolMean, poolMax:
			count := 0
			for j := range seq {
				if mask[i*seq+j] == 0 {
					continue
				}
				tok := data[(i*seq+j)*dim : (i*seq+j+1)*dim]
				for k, x := range tok {
					switch {
					case e.pool == poolMean:
						v[k] += float64(x)
					case count == 0 || float64(x) > v[k]:
						v[k] = float64(x)
					}
				}
				count++
			}
			if e.pool == poolMean && count > 0 {
				for k := range v {
					v[k] /= float64(count)
				}
			}
		}
		for _, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, &ModelIOError{Path: e.info.Name, Reason: fmt.Sprintf("text %d: output has NaN or Inf", i)}
			}
		}
		out[i] = normalize(v)
	}
	return out, nil
}
