// Package hybrid combines a capability's text embedding and its Node2Vec
// graph embedding into the hybrid embedding of the design:
//
//	hybrid = normalize(w_text·normalize(text) + w_graph·normalize(lift(graph)))
//
// in the text dimension. Lift maps the (64-d) graph vector into the text
// dimension by a fixed, documented rule (ZeroPad or Orthonormal), so the
// hybrid vector can be searched in the same index as text queries.
//
// Zero vectors are legal inputs: an isolated node has a zero graph vector
// and an empty text can hash to a zero vector. normalize(0) is defined as 0,
// so a zero part contributes nothing, and when both parts are zero the result
// is the zero vector (never NaN). Feature validation then flags it as not
// normalized.
package hybrid

import (
	"fmt"
	"math"
)

// Design defaults (bgeWeight, n2vWeight).
const (
	DefaultTextWeight  = 0.3
	DefaultGraphWeight = 0.7
)

// Combiner computes hybrid embeddings. The zero value is not usable (both
// weights zero); start from Default. A Combiner is immutable and safe for
// concurrent use if its Lift is (ZeroPad and *OrthonormalLift are).
type Combiner struct {
	TextWeight  float64
	GraphWeight float64
	// Lift maps the graph vector into the text dimension; nil means ZeroPad.
	Lift Lift
}

// Default returns the design's combiner: weights 0.3 and 0.7, zero padding.
func Default() Combiner {
	return Combiner{TextWeight: DefaultTextWeight, GraphWeight: DefaultGraphWeight, Lift: ZeroPad{}}
}

// WeightError reports unusable combiner weights.
type WeightError struct {
	TextWeight, GraphWeight float64
	Reason                  string
}

func (e *WeightError) Error() string {
	return fmt.Sprintf("hybrid: weights text=%v graph=%v: %s", e.TextWeight, e.GraphWeight, e.Reason)
}

// DimensionError reports a vector whose length is not the one required.
type DimensionError struct {
	What      string // which vector, e.g. "lifted graph vector"
	Got, Want int
}

func (e *DimensionError) Error() string {
	return fmt.Sprintf("hybrid: %s has dimension %d, want %d", e.What, e.Got, e.Want)
}

// Check reports whether the weights are usable: finite, non-negative and not
// both zero (a zero total weight would make every hybrid vector zero).
func (c Combiner) Check() error {
	t, g := c.TextWeight, c.GraphWeight
	switch {
	case math.IsNaN(t) || math.IsNaN(g) || math.IsInf(t, 0) || math.IsInf(g, 0):
		return &WeightError{t, g, "weights must be finite"}
	case t < 0 || g < 0:
		return &WeightError{t, g, "weights must be non-negative"}
	case t == 0 && g == 0:
		return &WeightError{t, g, "weights must not both be zero"}
	}
	return nil
}

// Combine returns the hybrid embedding of one capability, of dimension
// len(text). graph is lifted into that dimension first. Non-finite input
// values are not rejected here; they propagate so that validation's NaN
// check names the capability.
func (c Combiner) Combine(text, graph []float32) ([]float32, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	dim := len(text)
	if dim == 0 {
		return nil, &DimensionError{What: "text vector", Got: 0, Want: 1}
	}
	lift := c.Lift
	if lift == nil {
		lift = ZeroPad{}
	}
	g := make([]float64, len(graph))
	for i, x := range graph {
		g[i] = float64(x)
	}
	lifted := make([]float64, dim)
	if err := lift.Lift(lifted, g); err != nil {
		return nil, err
	}
	t := make([]float64, dim)
	for i, x := range text {
		t[i] = float64(x)
	}
	scale(t, c.TextWeight/norm(t))
	scale(lifted, c.GraphWeight/norm(lifted))
	for i := range t {
		t[i] += lifted[i]
	}
	scale(t, 1/norm(t))
	out := make([]float32, dim)
	for i, x := range t {
		out[i] = float32(x)
	}
	return out, nil
}

// norm is the Euclidean norm, scaled to avoid overflow on large entries.
func norm(v []float64) float64 {
	var m float64
	for _, x := range v {
		m = math.Max(m, math.Abs(x))
	}
	if m == 0 || math.IsInf(m, 0) || math.IsNaN(m) {
		return m
	}
	var s float64
	for _, x := range v {
		s += (x / m) * (x / m)
	}
	return m * math.Sqrt(s)
}

// scale multiplies v by f, except that a zero vector (f = w/0 = +Inf, or
// 0/0) stays zero: a zero part contributes nothing.
func scale(v []float64, f float64) {
	if math.IsInf(f, 0) || (math.IsNaN(f) && allZero(v)) {
		for i := range v {
			v[i] = 0
		}
		return
	}
	for i := range v {
		v[i] *= f
	}
}

func allZero(v []float64) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}
