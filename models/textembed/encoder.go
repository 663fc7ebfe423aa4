// Package textembed turns text into fixed-size vectors for the feature
// pipeline and the serving path.
//
// Every Encoder returns L2-normalised vectors of length Dim(): each vector
// has unit Euclidean norm, except that a text which carries no signal at all
// (the hashing encoder on an empty or punctuation-only text, or a service
// that answers with all zeros) yields the zero vector. The zero vector is
// the one defined non-unit result: it is finite, its cosine with anything is
// taken as 0, and downstream validation (checkNormalized) reports it by id
// rather than this package inventing a direction. No encoder ever returns
// NaN or Inf.
//
// Implementations here: ONNX (a local model folder run with ONNX Runtime),
// Hashing (offline, no model), HTTP (OpenAI, TEI and
// Ollama embedding services) and Cached (an embedding cache in front of any
// encoder).
package textembed

import (
	"context"
	"fmt"
	"math"
)

// Encoder maps texts to embeddings. Encode returns one vector per text, in
// the order of texts. Implementations are safe for concurrent use.
type Encoder interface {
	Encode(ctx context.Context, texts []string) ([][]float32, error)
	// Dim is the vector length; 0 only for an encoder whose dimension is
	// not known yet (an HTTP encoder before its first response).
	Dim() int
	// Model names the model; (Name, Version) is the embedding cache key, so
	// Version must change whenever the vectors would.
	Model() ModelInfo
}

// ModelInfo identifies the model behind an Encoder.
type ModelInfo struct {
	Name, Version string
	Dim           int
}

// DimensionError is a vector of the wrong length.
type DimensionError struct {
	Model     string
	Got, Want int
}

func (e *DimensionError) Error() string {
	return fmt.Sprintf("textembed: model %q returned dimension %d, want %d", e.Model, e.Got, e.Want)
}

// ConfigError is an invalid encoder configuration.
type ConfigError struct {
	Field, Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("textembed: config %s %s", e.Field, e.Reason)
}

// normalize scales v to unit L2 norm in float64 and returns it as float32.
// A zero (or empty) v stays zero. The caller guarantees v is finite.
func normalize(v []float64) []float32 {
	// Scale by the largest magnitude first so the sum of squares can neither
	// overflow nor underflow, as gonum's floats.Norm does.
	var amax float64
	for _, x := range v {
		amax = math.Max(amax, math.Abs(x))
	}
	out := make([]float32, len(v))
	if amax == 0 {
		return out
	}
	var ss float64
	for _, x := range v {
		s := x / amax
		ss += s * s
	}
	inv := 1 / (amax * math.Sqrt(ss))
	for i, x := range v {
		out[i] = float32(x * inv)
	}
	return out
}

// Norm returns the L2 norm of v computed in float64.
func Norm(v []float32) float64 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	return math.Sqrt(ss)
}

// Cosine returns the cosine similarity of a and b, 0 when either is zero.
// It returns 0 when the lengths differ.
func Cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}
