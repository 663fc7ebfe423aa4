package shgat

import (
	"github.com/capflow/capflow/internal/atomicfile"

	"encoding/json"
	"fmt"
	"math"
	"os"

	"github.com/capflow/capflow/models/safetensors"
)

// CatalogFormat names the catalog layout.
const CatalogFormat = "capflow-shgat-catalog/1"

// Catalog is what one model version precomputes for serving a catalog:
// the capability keys W_k·e_c the scorer takes as candidates, the tool
// representations context tools are looked up in, and the reliability
// factors, in float32 as the ONNX scorer consumes them.
type Catalog struct {
	Dim           int
	CapabilityIDs []string
	ToolIDs       []string
	Keys          []float32 // [C×D]
	Tools         []float32 // [T×D]
	Reliability   []float32 // [C]
	// ToolText are the tools' unit text embeddings [T×D] (optional): serving
	// needs them for the evidence features (models/evidence).
	ToolText       []float32
	FeatureVersion string
}

// NewCatalog collects a catalog from representations computed by Represent
// on g, with one reliability factor per capability (nil: all 1).
func NewCatalog(g *Graph, reps *Reps, reliability []float64, featureVersion string) (*Catalog, error) {
	d := reps.Dim
	if len(reps.Keys) != len(g.Caps)*d || len(reps.Tools) != len(g.Tools)*d {
		return nil, &InputError{Field: "reps", Reason: "were not computed on this graph"}
	}
	if reliability != nil && len(reliability) != len(g.Caps) {
		return nil, &InputError{Field: "reliability", Reason: fmt.Sprintf("has %d values, want %d", len(reliability), len(g.Caps))}
	}
	c := &Catalog{
		Dim: d, CapabilityIDs: append([]string(nil), g.Caps...), ToolIDs: append([]string(nil), g.Tools...),
		Keys: to32(reps.Keys), Tools: to32(reps.Tools), Reliability: make([]float32, len(g.Caps)),
		FeatureVersion: featureVersion,
	}
	for i := range c.Reliability {
		c.Reliability[i] = 1
		if reliability != nil {
			c.Reliability[i] = float32(reliability[i])
		}
	}
	return c, nil
}

// Encode serialises the catalog as safetensors (ids in the metadata).
func (c *Catalog) Encode() ([]byte, error) {
	caps, _ := json.Marshal(c.CapabilityIDs)
	tools, _ := json.Marshal(c.ToolIDs)
	nc, nt, d := int64(len(c.CapabilityIDs)), int64(len(c.ToolIDs)), int64(c.Dim)
	ts := []safetensors.Tensor{
		{Name: "keys", Shape: []int64{nc, d}, F32: c.Keys},
		{Name: "tools", Shape: []int64{nt, d}, F32: c.Tools},
		{Name: "reliability", Shape: []int64{nc}, F32: c.Reliability},
	}
	if c.ToolText != nil {
		ts = append(ts, safetensors.Tensor{Name: "tool_text", Shape: []int64{nt, int64(len(c.ToolText)) / max(nt, 1)}, F32: c.ToolText})
	}
	return safetensors.Encode(ts, map[string]string{
		"format": CatalogFormat, "capability_ids": string(caps), "tool_ids": string(tools),
		"feature_version": c.FeatureVersion,
	})
}

// DecodeCatalog reads a catalog written by Encode and checks it.
func DecodeCatalog(name string, b []byte) (*Catalog, error) {
	bad := func(format string, a ...any) error {
		return &FormatError{What: name, Reason: fmt.Sprintf(format, a...)}
	}
	f, err := safetensors.Parse(name, b)
	if err != nil {
		return nil, bad("%v", err)
	}
	md := f.Metadata()
	if md["format"] != CatalogFormat {
		return nil, bad("format %q, want %q", md["format"], CatalogFormat)
	}
	c := &Catalog{FeatureVersion: md["feature_version"]}
	if err := json.Unmarshal([]byte(md["capability_ids"]), &c.CapabilityIDs); err != nil {
		return nil, bad("capability_ids: %v", err)
	}
	if err := json.Unmarshal([]byte(md["tool_ids"]), &c.ToolIDs); err != nil {
		return nil, bad("tool_ids: %v", err)
	}
	var shape []int64
	if c.Keys, shape, err = f.Float32("keys"); err != nil {
		return nil, bad("%v", err)
	}
	if len(shape) != 2 || shape[0] != int64(len(c.CapabilityIDs)) || shape[1] < 1 {
		return nil, bad("keys have shape %v for %d capabilities", shape, len(c.CapabilityIDs))
	}
	c.Dim = int(shape[1])
	if c.Tools, shape, err = f.Float32("tools"); err != nil {
		return nil, bad("%v", err)
	}
	if len(shape) != 2 || shape[0] != int64(len(c.ToolIDs)) || shape[1] != int64(c.Dim) {
		return nil, bad("tools have shape %v for %d tools of dimension %d", shape, len(c.ToolIDs), c.Dim)
	}
	if c.Reliability, shape, err = f.Float32("reliability"); err != nil {
		return nil, bad("%v", err)
	}
	if len(shape) != 1 || shape[0] != int64(len(c.CapabilityIDs)) {
		return nil, bad("reliability has shape %v for %d capabilities", shape, len(c.CapabilityIDs))
	}
	if _, ok := f.Info("tool_text"); ok {
		if c.ToolText, shape, err = f.Float32("tool_text"); err != nil {
			return nil, bad("%v", err)
		}
		if len(shape) != 2 || shape[0] != int64(len(c.ToolIDs)) {
			return nil, bad("tool_text has shape %v for %d tools", shape, len(c.ToolIDs))
		}
	}
	for i, r := range c.Reliability {
		if !(r > 0) || math.IsInf(float64(r), 0) {
			return nil, bad("capability %q has reliability %v", c.CapabilityIDs[i], r)
		}
	}
	for _, xs := range [][]float32{c.Keys, c.Tools} {
		for _, v := range xs {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, bad("non-finite representation value")
			}
		}
	}
	return c, nil
}

// Save writes the catalog to path atomically.
func (c *Catalog) Save(path string) error {
	b, err := c.Encode()
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b)
}

// LoadCatalog reads a catalog written by Save.
func LoadCatalog(path string) (*Catalog, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("shgat: %w", err)
	}
	return DecodeCatalog(path, b)
}

func to32(xs []float64) []float32 {
	out := make([]float32, len(xs))
	for i, v := range xs {
		out[i] = float32(v)
	}
	return out
}
