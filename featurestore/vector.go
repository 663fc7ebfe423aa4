package featurestore

import (
	"fmt"
	"math"
)

// checkVector rejects a vector of the wrong dimension or with NaN/Inf,
// naming the record. A nil vector is allowed when optional.
func checkVector(kind, id, field string, v []float32, dim int, optional bool) *RecordError {
	if v == nil && optional {
		return nil
	}
	if len(v) != dim {
		return &RecordError{Kind: kind, ID: id, Field: field, Reason: fmt.Sprintf("has dimension %d, want %d", len(v), dim)}
	}
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return &RecordError{Kind: kind, ID: id, Field: field, Reason: fmt.Sprintf("element %d is %v", i, x)}
		}
	}
	return nil
}

// CheckFeatures validates one capability feature row against cfg.
func (c Config) CheckFeatures(r CapabilityFeatures) error {
	const kind = "capability features"
	if r.CapabilityID == "" {
		return &RecordError{Kind: kind, Field: "capability_id", Reason: "is required"}
	}
	for _, v := range []struct {
		field string
		vec   []float32
		dim   int
	}{{"text_embedding", r.TextEmbedding, c.TextDim}, {"n2v_embedding", r.N2VEmbedding, c.GraphDim}, {"hybrid_embedding", r.HybridEmbedding, c.HybridDim}} {
		if err := checkVector(kind, r.CapabilityID, v.field, v.vec, v.dim, true); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		field string
		x     float64
	}{{"avg_execution_time_ms", r.AvgExecutionTimeMs}, {"success_rate", r.SuccessRate}, {"pagerank_score", r.PageRank}, {"clustering_coefficient", r.ClusteringCoefficient}} {
		if math.IsNaN(f.x) || math.IsInf(f.x, 0) {
			return &RecordError{Kind: kind, ID: r.CapabilityID, Field: f.field, Reason: fmt.Sprintf("is %v", f.x)}
		}
	}
	if r.SuccessRate < 0 || r.SuccessRate > 1 {
		return &RecordError{Kind: kind, ID: r.CapabilityID, Field: "success_rate", Reason: "must be in [0, 1]"}
	}
	return nil
}

// CheckQueryVector validates an ANN query in space: a known space, and a
// vector of its dimension with finite elements, not all zero (the cosine
// distance to a zero vector is undefined). The error is a *RecordError.
func (c Config) CheckQueryVector(space Space, v []float32) error {
	const kind = "ann query"
	dim := c.Dim(space)
	if dim == 0 {
		return &RecordError{Kind: kind, Field: "space", Reason: fmt.Sprintf("%q is not a space (want %q or %q)", space, SpaceText, SpaceHybrid)}
	}
	if err := checkVector(kind, string(space), "vector", v, dim, false); err != nil {
		return err
	}
	for _, x := range v {
		if x != 0 {
			return nil
		}
	}
	return &RecordError{Kind: kind, ID: string(space), Field: "vector", Reason: "is the zero vector; cosine distance is undefined"}
}

// CheckVector is the one vector rule for backends that validate vectors of
// their own (intent features, cached embeddings): v must have dim finite
// elements. The error is a *RecordError naming kind, id and field.
func CheckVector(kind, id, field string, v []float32, dim int) error {
	if e := checkVector(kind, id, field, v, dim, false); e != nil {
		return e
	}
	return nil
}
