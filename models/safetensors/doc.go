// Package safetensors reads and writes the safetensors format: an 8-byte
// little-endian header length, a JSON header mapping tensor names to dtype,
// shape and data_offsets, then the raw little-endian tensor bytes. F32, F16,
// BF16 and F64 tensors read as float32; F64 and F32 as float64 (exact).
// The BERT converter reads checkpoints with it; SHGAT and the value network
// write their checkpoints and catalogs with it.
//
// Why in memory: converters read every tensor once, and checkpoints of the
// size served here (tens to hundreds of MB) fit; no mmap or cgo needed.
package safetensors
