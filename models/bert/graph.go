package bert

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/capflow/capflow/models/onnxgraph"
	"github.com/capflow/capflow/models/safetensors"
)

// The ONNX contract of the exported encoder, the same as HF optimum's
// feature-extraction export, so any such folder runs in the same encoder.
const (
	InputIDs        = "input_ids"
	AttentionMask   = "attention_mask"
	TokenTypeIDs    = "token_type_ids"
	LastHiddenState = "last_hidden_state"
	// Opset 17 is the first with LayerNormalization.
	Opset = 17
)

// maskBias is added to attention scores of padding keys: float32's lowest
// value, as transformers' get_extended_attention_mask does, so padding gets
// exactly zero weight after Softmax.
const maskBias = -math.MaxFloat32

// WeightError names a checkpoint tensor that is missing or has the wrong shape.
type WeightError struct {
	Tensor  string
	Problem string
}

func (e *WeightError) Error() string { return "bert: weight " + e.Tensor + ": " + e.Problem }

// weights reads BertModel tensors whether or not they carry the "bert."
// prefix BertFor* checkpoints use, and the gamma/beta LayerNorm names of old
// TF conversions.
type weights struct {
	f      *safetensors.File
	prefix string
}

func newWeights(f *safetensors.File) weights {
	if _, ok := f.Info("bert.embeddings.word_embeddings.weight"); ok {
		return weights{f: f, prefix: "bert."}
	}
	return weights{f: f}
}

// get returns a tensor, checking its shape.
func (w weights) get(name string, shape ...int64) ([]float32, error) {
	full := w.prefix + name
	if _, ok := w.f.Info(full); !ok {
		legacy := strings.NewReplacer("LayerNorm.weight", "LayerNorm.gamma", "LayerNorm.bias", "LayerNorm.beta").Replace(full)
		if _, ok := w.f.Info(legacy); ok {
			full = legacy
		}
	}
	info, ok := w.f.Info(full)
	if !ok {
		return nil, &WeightError{Tensor: full, Problem: "not in the checkpoint"}
	}
	if fmt.Sprint(info.Shape) != fmt.Sprint(shape) {
		return nil, &WeightError{Tensor: full, Problem: fmt.Sprintf("shape %v, config implies %v", info.Shape, shape)}
	}
	data, _, err := w.f.Float32(full)
	if err != nil {
		return nil, fmt.Errorf("bert: %w", err)
	}
	return data, nil
}

// builder carries the graph, the weights and the first error, so the layer
// code reads as the model does.
type builder struct {
	g   *onnxgraph.Graph
	w   weights
	cfg Config
	err error
}

func (b *builder) weight(name string, shape ...int64) string {
	data, err := b.w.get(name, shape...)
	if err != nil {
		if b.err == nil {
			b.err = err
		}
		data = make([]float32, product(shape)) // keep building; the error wins
	}
	return b.g.Initializer(name, shape, data)
}

func product(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

func (b *builder) op(op string, inputs ...string) string { return b.g.Op(op, inputs) }

// linear is x·Wᵀ + b for a PyTorch Linear: the [out, in] weight is stored
// transposed once here rather than transposed at every run.
func (b *builder) linear(x, name string, in, out int) string {
	w, err := b.w.get(name+".weight", int64(out), int64(in))
	if err != nil && b.err == nil {
		b.err = err
	}
	wt := make([]float32, in*out)
	if err == nil {
		for o := range out {
			for i := range in {
				wt[i*out+o] = w[o*in+i]
			}
		}
	}
	wname := b.g.Initializer(name+".weight_t", []int64{int64(in), int64(out)}, wt)
	return b.op("Add", b.op("MatMul", x, wname), b.weight(name+".bias", int64(out)))
}

func (b *builder) layerNorm(x, name string) string {
	h := int64(b.cfg.HiddenSize)
	return b.g.Op("LayerNormalization", []string{x, b.weight(name+".weight", h), b.weight(name+".bias", h)},
		onnxgraph.AttrInt("axis", -1), onnxgraph.AttrFloat("epsilon", float32(b.cfg.LayerNormEps)))
}

// gelu is the exact (erf) GELU transformers calls "gelu".
func (b *builder) gelu(x string) string {
	erf := b.op("Erf", b.op("Div", x, b.g.FloatScalar(math.Sqrt2)))
	return b.op("Mul", b.op("Mul", x, b.g.FloatScalar(0.5)), b.op("Add", erf, b.g.FloatScalar(1)))
}

// Build turns BertModel weights into an ONNX model with inputs input_ids,
// attention_mask and token_type_ids (int64 [batch, sequence]) and output
// last_hidden_state (float32 [batch, sequence, hidden]).
func Build(ctx context.Context, cfg Config, f *safetensors.File) (*onnxgraph.Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &builder{g: onnxgraph.New("bert"), w: newWeights(f), cfg: cfg}
	g := b.g
	H, nh := int64(cfg.HiddenSize), int64(cfg.NumAttentionHeads)
	dh := H / nh

	ids := g.Input(InputIDs, onnxgraph.Int64, "batch", "sequence")
	mask := g.Input(AttentionMask, onnxgraph.Int64, "batch", "sequence")
	types := g.Input(TokenTypeIDs, onnxgraph.Int64, "batch", "sequence")

	// Embeddings: word + token type + the first `sequence` positions.
	word := b.op("Gather", b.weight("embeddings.word_embeddings.weight", int64(cfg.VocabSize), H), ids)
	typ := b.op("Gather", b.weight("embeddings.token_type_embeddings.weight", int64(cfg.TypeVocabSize), H), types)
	seqLen := g.Op("Shape", []string{ids}, onnxgraph.AttrInt("start", 1), onnxgraph.AttrInt("end", 2))
	pos := b.op("Slice", b.weight("embeddings.position_embeddings.weight", int64(cfg.MaxPositionEmbeddings), H),
		g.IntVector(0), seqLen, g.IntVector(0))
	x := b.layerNorm(b.op("Add", b.op("Add", word, typ), pos), "embeddings.LayerNorm")

	// Additive mask [batch, 1, 1, sequence]: 0 for tokens, maskBias for padding.
	maskF := g.Op("Cast", []string{mask}, onnxgraph.AttrInt("to", int64(onnxgraph.Float)))
	maskF = b.op("Unsqueeze", maskF, g.IntVector(1, 2))
	bias := b.op("Mul", b.op("Sub", g.FloatScalar(1), maskF), g.FloatScalar(maskBias))

	splitHeads := g.IntVector(0, 0, nh, dh) // Reshape's 0 copies batch and sequence
	mergeHeads := g.IntVector(0, 0, H)
	scale := g.FloatScalar(float32(math.Sqrt(float64(dh))))
	heads := func(t string, perm ...int64) string {
		return g.Op("Transpose", []string{b.op("Reshape", t, splitHeads)}, onnxgraph.AttrInts("perm", perm...))
	}
	for l := range cfg.NumHiddenLayers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := "encoder.layer." + strconv.Itoa(l) + "."
		q := heads(b.linear(x, p+"attention.self.query", int(H), int(H)), 0, 2, 1, 3) // [b,nh,s,dh]
		k := heads(b.linear(x, p+"attention.self.key", int(H), int(H)), 0, 2, 3, 1)   // [b,nh,dh,s]
		v := heads(b.linear(x, p+"attention.self.value", int(H), int(H)), 0, 2, 1, 3) // [b,nh,s,dh]
		scores := b.op("Add", b.op("Div", b.op("MatMul", q, k), scale), bias)
		probs := g.Op("Softmax", []string{scores}, onnxgraph.AttrInt("axis", -1))
		ctxv := g.Op("Transpose", []string{b.op("MatMul", probs, v)}, onnxgraph.AttrInts("perm", 0, 2, 1, 3))
		ctxv = b.op("Reshape", ctxv, mergeHeads)
		attn := b.linear(ctxv, p+"attention.output.dense", int(H), int(H))
		x = b.layerNorm(b.op("Add", attn, x), p+"attention.output.LayerNorm")

		inter := b.gelu(b.linear(x, p+"intermediate.dense", int(H), cfg.IntermediateSize))
		out := b.linear(inter, p+"output.dense", cfg.IntermediateSize, int(H))
		x = b.layerNorm(b.op("Add", out, x), p+"output.LayerNorm")
		if b.err != nil {
			return nil, b.err
		}
	}
	if b.err != nil {
		return nil, b.err
	}
	g.Node("Identity", []string{x}, []string{LastHiddenState})
	g.Output(LastHiddenState, onnxgraph.Float, "batch", "sequence", int(H))
	return &onnxgraph.Model{Graph: g, Opset: Opset, Producer: "capflow", ProducerVersion: ConverterVersion}, nil
}
