// Package safetensors reads (and, for tests and exports, writes) the
// safetensors format: an 8-byte little-endian header length, a JSON header
// mapping tensor names to dtype, shape and data_offsets, then the raw
// little-endian tensor bytes. F32, F16 and BF16 tensors read as float32.
//
// Why in memory: converters read every tensor once, and checkpoints of the
// size served here (tens to hundreds of MB) fit; no mmap or cgo needed.
package safetensors
