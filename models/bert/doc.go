// Package bert converts a HuggingFace BERT checkpoint folder (config.json +
// model.safetensors, e.g. a sentence-transformers model such as
// all-MiniLM-L6-v2) into an ONNX model folder, in Go, without PyTorch.
//
// The model follows the HF optimum feature-extraction contract: int64 inputs
// input_ids, attention_mask and token_type_ids of shape [batch, sequence]
// (both dynamic) and float32 output last_hidden_state [batch, sequence,
// hidden]. Pooling and normalisation stay outside the graph, driven by the
// copied 1_Pooling/config.json and modules.json, so one encoder runs any such
// folder, ours or optimum's.
//
// The graph is opset 17 (LayerNormalization), built with models/onnxgraph:
// embeddings (word + token type + absolute position, LayerNorm), then per
// layer multi-head self-attention with an additive padding mask, residual +
// LayerNorm, and an erf-GELU feed-forward block. PyTorch Linear weights
// ([out, in]) are transposed once at conversion. Tensor names may carry the
// "bert." prefix of BertFor* checkpoints or not.
//
// Convert writes the folder atomically (built beside dstDir, then renamed)
// with capflow_convert.json recording the sha256 of every source file and a
// Version derived from them and ConverterVersion.
//
// Not supported (typed errors): model types other than bert, hidden_act other
// than "gelu", relative position embeddings, pytorch_model.bin checkpoints.
package bert
