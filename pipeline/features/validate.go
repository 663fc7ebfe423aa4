package features

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/capflow/capflow/featurestore"
)

// Check names, as in the design (section 1.3).
const (
	CheckDimensions   = "checkDimensions"
	CheckNormalized   = "checkNormalized"
	CheckNotCollapsed = "checkNotCollapsed"
	CheckNoNaN        = "checkNoNaN"
	CheckStaleness    = "checkStaleness"
)

// CollapseStatistic selects what checkNotCollapsed thresholds.
//
// The design's literal reading, per-dimension variance across embeddings
// ≥ 0.01, cannot be met by healthy unit vectors in high dimension: the
// per-dimension variances of n unit vectors in d dimensions sum to at most 1,
// so perfectly spread 1024-d vectors have per-dimension variance ≈ 1/1024 ≈
// 0.001. "Collapsed" means the embeddings are (nearly) all the same
// direction, which the mean pairwise cosine measures directly; it is the
// default. It is computed exactly, not sampled: for unit vectors u_i,
// Σ_{i≠j} ⟨u_i,u_j⟩ = ‖Σu_i‖² − n, so it costs one pass.
type CollapseStatistic string

const (
	// CollapseMeanCosine fails when the mean cosine over distinct pairs
	// exceeds MaxMeanCosine (default).
	CollapseMeanCosine CollapseStatistic = "mean-cosine"
	// CollapseTotalVariance fails when the total variance (sum over
	// dimensions) is below MinVariance. For unit vectors it equals
	// 1 − ‖mean‖², so 0.01 only catches near-total collapse.
	CollapseTotalVariance CollapseStatistic = "total-variance"
	// CollapsePerDimVariance is the design's literal reading: fails when any
	// dimension's variance is below MinVariance. See the type's comment for
	// why it fails healthy high-dimensional unit vectors.
	CollapsePerDimVariance CollapseStatistic = "per-dimension-variance"
)

// ValidationOptions configures Validate. Zero fields take defaults except
// AsOf, which is required (staleness is relative to it, and reading the
// clock here would make validation non-deterministic).
type ValidationOptions struct {
	AsOf          time.Time         // reference time for checkStaleness (required)
	MaxAge        time.Duration     // default 24h; |AsOf − ComputedAt| must not exceed it
	NormTolerance float64           // default 0.01; |‖v‖ − 1| must not exceed it
	Collapse      CollapseStatistic // default CollapseMeanCosine
	MaxMeanCosine float64           // default 0.9
	MinVariance   float64           // default 0.01 (total or per-dimension)
	MaxListed     int               // default 20 offending ids listed per check
}

func (o ValidationOptions) withDefaults() ValidationOptions {
	if o.MaxAge == 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.NormTolerance == 0 {
		o.NormTolerance = 0.01
	}
	if o.Collapse == "" {
		o.Collapse = CollapseMeanCosine
	}
	if o.MaxMeanCosine == 0 {
		o.MaxMeanCosine = 0.9
	}
	if o.MinVariance == 0 {
		o.MinVariance = 0.01
	}
	if o.MaxListed == 0 {
		o.MaxListed = 20
	}
	return o
}

// OptionsError reports unusable validation options or configuration.
type OptionsError struct {
	Field  string
	Reason string
}

func (e *OptionsError) Error() string {
	return fmt.Sprintf("features: validation option %s: %s", e.Field, e.Reason)
}

func (o ValidationOptions) check(cfg featurestore.Config) error {
	bad := func(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) || x < 0 }
	switch {
	case o.AsOf.IsZero():
		return &OptionsError{"AsOf", "required"}
	case o.MaxAge < 0:
		return &OptionsError{"MaxAge", "negative"}
	case bad(o.NormTolerance):
		return &OptionsError{"NormTolerance", "must be finite and non-negative"}
	case bad(o.MinVariance):
		return &OptionsError{"MinVariance", "must be finite and non-negative"}
	case math.IsNaN(o.MaxMeanCosine) || o.MaxMeanCosine > 1 || o.MaxMeanCosine < -1:
		return &OptionsError{"MaxMeanCosine", "must be in [-1, 1]"}
	case o.MaxListed < 0:
		return &OptionsError{"MaxListed", "negative"}
	case cfg.TextDim < 1 || cfg.GraphDim < 1 || cfg.HybridDim < 1:
		return &OptionsError{"Config", fmt.Sprintf("dimensions must be positive (text %d, graph %d, hybrid %d)", cfg.TextDim, cfg.GraphDim, cfg.HybridDim)}
	}
	switch o.Collapse {
	case CollapseMeanCosine, CollapseTotalVariance, CollapsePerDimVariance:
	default:
		return &OptionsError{"Collapse", fmt.Sprintf("unknown statistic %q", o.Collapse)}
	}
	return nil
}

// Report is what Validate found; it is written as the stage's validation
// artifact. Figures hold only finite numbers, so it always marshals to JSON.
type Report struct {
	Rows   int           `json:"rows"`
	AsOf   time.Time     `json:"as_of"`
	Passed bool          `json:"passed"`
	Checks []CheckResult `json:"checks"`
}

// CheckResult is one check's outcome. OffendingIDs lists at most
// ValidationOptions.MaxListed capability ids in row order; OffendingCount is
// the full count.
type CheckResult struct {
	Name           string             `json:"name"`
	Passed         bool               `json:"passed"`
	Figures        map[string]float64 `json:"figures"`
	OffendingIDs   []string           `json:"offending_ids"`
	OffendingCount int                `json:"offending_count"`
	Note           string             `json:"note,omitempty"`
}

// ValidationError is returned when any check fails; nothing may be written.
type ValidationError struct {
	Failed []CheckResult
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Failed))
	for i, c := range e.Failed {
		s := c.Name
		if c.OffendingCount > 0 {
			s += fmt.Sprintf(" (%d rows: %s", c.OffendingCount, strings.Join(c.OffendingIDs, ", "))
			if c.OffendingCount > len(c.OffendingIDs) {
				s += ", ..."
			}
			s += ")"
		}
		if c.Note != "" {
			s += ": " + c.Note
		}
		parts[i] = s
	}
	return "features: validation failed: " + strings.Join(parts, "; ")
}

// Validate runs the design's feature checks on rows before they are written.
// It returns the report and, when any check fails, a *ValidationError naming
// the failed checks and offending ids; bad options give an *OptionsError and
// an empty report. Every check runs even after one fails, so the report is
// complete.
func Validate(rows []featurestore.CapabilityFeatures, cfg featurestore.Config, opts ValidationOptions) (Report, error) {
	cfg = cfg.WithDefaults()
	opts = opts.withDefaults()
	if err := opts.check(cfg); err != nil {
		return Report{}, err
	}
	r := Report{Rows: len(rows), AsOf: opts.AsOf, Checks: []CheckResult{
		checkDimensions(rows, cfg, opts),
		checkNormalized(rows, opts),
		checkNotCollapsed(rows, cfg, opts),
		checkNoNaN(rows, opts),
		checkStaleness(rows, opts),
	}}
	r.Passed = true
	var failed []CheckResult
	for _, c := range r.Checks {
		if !c.Passed {
			r.Passed = false
			failed = append(failed, c)
		}
	}
	if failed != nil {
		return r, &ValidationError{Failed: failed}
	}
	return r, nil
}

// result accumulates one check's offending ids and figures.
type result struct {
	CheckResult
	max int
}

func newResult(name string, opts ValidationOptions) *result {
	return &result{CheckResult: CheckResult{Name: name, Figures: map[string]float64{}, OffendingIDs: []string{}}, max: opts.MaxListed}
}

func (r *result) offend(id string) {
	if r.OffendingCount < r.max {
		r.OffendingIDs = append(r.OffendingIDs, id)
	}
	r.OffendingCount++
}

// fig records a figure if it is finite (JSON has no NaN or Inf).
func (r *result) fig(name string, x float64) {
	if !math.IsNaN(x) && !math.IsInf(x, 0) {
		r.Figures[name] = x
	}
}

func (r *result) done() CheckResult {
	r.Passed = r.OffendingCount == 0 && r.Note == ""
	return r.CheckResult
}

func checkDimensions(rows []featurestore.CapabilityFeatures, cfg featurestore.Config, opts ValidationOptions) CheckResult {
	r := newResult(CheckDimensions, opts)
	var text, n2v, hyb float64
	for _, row := range rows {
		bad := false
		if len(row.TextEmbedding) != cfg.TextDim {
			text++
			bad = true
		}
		if len(row.N2VEmbedding) != cfg.GraphDim {
			n2v++
			bad = true
		}
		if len(row.HybridEmbedding) != cfg.HybridDim {
			hyb++
			bad = true
		}
		if bad {
			r.offend(row.CapabilityID)
		}
	}
	r.fig("text_dim", float64(cfg.TextDim))
	r.fig("graph_dim", float64(cfg.GraphDim))
	r.fig("hybrid_dim", float64(cfg.HybridDim))
	r.fig("text_mismatches", text)
	r.fig("n2v_mismatches", n2v)
	r.fig("hybrid_mismatches", hyb)
	return r.done()
}

// checkNormalized checks the text and hybrid embeddings (Node2Vec vectors are
// not normalized by design). A zero or non-finite vector fails.
func checkNormalized(rows []featurestore.CapabilityFeatures, opts ValidationOptions) CheckResult {
	r := newResult(CheckNormalized, opts)
	minN, maxN, worst := math.Inf(1), math.Inf(-1), 0.0
	for _, row := range rows {
		bad := false
		for _, v := range [][]float32{row.TextEmbedding, row.HybridEmbedding} {
			n := norm(v)
			dev := math.Abs(n - 1)
			if !(dev <= opts.NormTolerance) { // NaN fails too
				bad = true
			}
			if !math.IsNaN(n) && !math.IsInf(n, 0) {
				minN, maxN, worst = math.Min(minN, n), math.Max(maxN, n), math.Max(worst, dev)
			}
		}
		if bad {
			r.offend(row.CapabilityID)
		}
	}
	r.fig("tolerance", opts.NormTolerance)
	r.fig("min_norm", minN)
	r.fig("max_norm", maxN)
	r.fig("max_deviation", worst)
	return r.done()
}

// checkNotCollapsed looks at each embedding kind across all rows that have
// the right dimension and only finite values (the other checks report the
// rest). It is a property of the population, so it lists no ids. Fewer than
// two usable rows cannot collapse and pass.
func checkNotCollapsed(rows []featurestore.CapabilityFeatures, cfg featurestore.Config, opts ValidationOptions) CheckResult {
	r := newResult(CheckNotCollapsed, opts)
	kinds := []struct {
		name string
		dim  int
		get  func(featurestore.CapabilityFeatures) []float32
	}{
		{"text", cfg.TextDim, func(c featurestore.CapabilityFeatures) []float32 { return c.TextEmbedding }},
		{"n2v", cfg.GraphDim, func(c featurestore.CapabilityFeatures) []float32 { return c.N2VEmbedding }},
		{"hybrid", cfg.HybridDim, func(c featurestore.CapabilityFeatures) []float32 { return c.HybridEmbedding }},
	}
	var notes []string
	for _, k := range kinds {
		var vs [][]float32
		for _, row := range rows {
			if v := k.get(row); len(v) == k.dim && finite(v) {
				vs = append(vs, v)
			}
		}
		s := spread(vs, k.dim)
		r.fig(k.name+"_rows", float64(len(vs)))
		if len(vs) < 2 {
			continue
		}
		r.fig(k.name+"_mean_cosine", s.meanCos)
		r.fig(k.name+"_total_variance", s.totalVar)
		r.fig(k.name+"_min_dim_variance", s.minDimVar)
		r.fig(k.name+"_mean_dim_variance", s.totalVar/float64(k.dim))
		switch opts.Collapse {
		case CollapseMeanCosine:
			if !(s.meanCos <= opts.MaxMeanCosine) {
				notes = append(notes, fmt.Sprintf("%s mean cosine %.4g > %g", k.name, s.meanCos, opts.MaxMeanCosine))
			}
		case CollapseTotalVariance:
			if !(s.totalVar >= opts.MinVariance) {
				notes = append(notes, fmt.Sprintf("%s total variance %.4g < %g", k.name, s.totalVar, opts.MinVariance))
			}
		case CollapsePerDimVariance:
			if !(s.minDimVar >= opts.MinVariance) {
				notes = append(notes, fmt.Sprintf("%s min per-dimension variance %.4g < %g", k.name, s.minDimVar, opts.MinVariance))
			}
		}
	}
	switch opts.Collapse {
	case CollapseMeanCosine:
		r.fig("max_mean_cosine", opts.MaxMeanCosine)
	default:
		r.fig("min_variance", opts.MinVariance)
	}
	r.Note = strings.Join(notes, "; ")
	return r.done()
}

type spreadStats struct {
	meanCos   float64 // mean cosine over distinct pairs of non-zero vectors
	totalVar  float64 // Σ_d Var_d, population variance
	minDimVar float64
}

func spread(vs [][]float32, dim int) spreadStats {
	n := float64(len(vs))
	if len(vs) < 2 {
		return spreadStats{}
	}
	sum := make([]float64, dim)   // Σ v
	sumSq := make([]float64, dim) // Σ v²
	unit := make([]float64, dim)  // Σ v/‖v‖
	var nonZero float64
	for _, v := range vs {
		nv := norm(v)
		if nv > 0 {
			nonZero++
		}
		for d, x := range v {
			f := float64(x)
			sum[d] += f
			sumSq[d] += f * f
			if nv > 0 {
				unit[d] += f / nv
			}
		}
	}
	s := spreadStats{minDimVar: math.Inf(1)}
	for d := range dim {
		mean := sum[d] / n
		v := math.Max(sumSq[d]/n-mean*mean, 0) // clamp rounding below zero
		s.totalVar += v
		s.minDimVar = math.Min(s.minDimVar, v)
	}
	if nonZero >= 2 {
		var u2 float64
		for _, x := range unit {
			u2 += x * x
		}
		s.meanCos = (u2 - nonZero) / (nonZero * (nonZero - 1))
	} else {
		// All (or all but one) vectors are zero: as collapsed as it gets.
		s.meanCos = 1
	}
	return s
}

// checkNoNaN flags NaN or ±Inf in any embedding or numeric feature.
func checkNoNaN(rows []featurestore.CapabilityFeatures, opts ValidationOptions) CheckResult {
	r := newResult(CheckNoNaN, opts)
	for _, row := range rows {
		ok := finite(row.TextEmbedding) && finite(row.N2VEmbedding) && finite(row.HybridEmbedding)
		for _, x := range []float64{row.AvgExecutionTimeMs, row.SuccessRate, row.PageRank, row.ClusteringCoefficient} {
			ok = ok && !math.IsNaN(x) && !math.IsInf(x, 0)
		}
		if !ok {
			r.offend(row.CapabilityID)
		}
	}
	return r.done()
}

// checkStaleness flags rows computed more than MaxAge away from AsOf, in
// either direction (a computed_at far in the future is a clock error), and
// rows with no computed_at.
func checkStaleness(rows []featurestore.CapabilityFeatures, opts ValidationOptions) CheckResult {
	r := newResult(CheckStaleness, opts)
	var oldest time.Duration
	for _, row := range rows {
		age := opts.AsOf.Sub(row.ComputedAt)
		if row.ComputedAt.IsZero() || age > opts.MaxAge || -age > opts.MaxAge {
			r.offend(row.CapabilityID)
			continue
		}
		oldest = max(oldest, age)
	}
	r.fig("max_age_hours", opts.MaxAge.Hours())
	r.fig("oldest_valid_age_hours", oldest.Hours())
	return r.done()
}

func finite(v []float32) bool {
	for _, x := range v {
		if f := float64(x); math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
	}
	return true
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}
