package features

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
)

var asOf = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

var smallCfg = featurestore.Config{TextDim: 32, GraphDim: 8, HybridDim: 32}

func randUnit(rng *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	var s float64
	for i := range v {
		x := rng.NormFloat64()
		v[i] = float32(x)
		s += x * x
	}
	for i := range v {
		v[i] /= float32(math.Sqrt(s))
	}
	return v
}

// goodRows returns n well-spread, normalized, fresh rows.
func goodRows(n int, cfg featurestore.Config) []featurestore.CapabilityFeatures {
	cfg = cfg.WithDefaults()
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([]featurestore.CapabilityFeatures, n)
	for i := range rows {
		n2v := randUnit(rng, cfg.GraphDim)
		for j := range n2v {
			n2v[j] *= 3 // Node2Vec vectors need not be unit
		}
		rows[i] = featurestore.CapabilityFeatures{
			CapabilityID:    fmt.Sprintf("cap-%03d", i),
			TextEmbedding:   randUnit(rng, cfg.TextDim),
			N2VEmbedding:    n2v,
			HybridEmbedding: randUnit(rng, cfg.HybridDim),
			SuccessRate:     0.9,
			ComputedAt:      asOf.Add(-time.Duration(i) * time.Minute),
		}
	}
	return rows
}

func opts() ValidationOptions { return ValidationOptions{AsOf: asOf} }

func check(t *testing.T, r Report, name string) CheckResult {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %s in report", name)
	return CheckResult{}
}

func TestValidateGoodRowsPass(t *testing.T) {
	r, err := Validate(goodRows(100, smallCfg), smallCfg, opts())
	require.NoError(t, err)
	assert.True(t, r.Passed)
	assert.Equal(t, 100, r.Rows)
	require.Len(t, r.Checks, 5)
	for _, c := range r.Checks {
		assert.True(t, c.Passed, c.Name)
		assert.Zero(t, c.OffendingCount, c.Name)
	}
	c := check(t, r, CheckNotCollapsed)
	// Random directions in 32-d: mean cosine near 0 (sd ≈ 1/(√32·100)).
	assert.InDelta(t, 0, c.Figures["text_mean_cosine"], 0.02)
	assert.InDelta(t, 1, c.Figures["text_total_variance"], 0.05)
}

// failOnly asserts that exactly the named check failed, with these ids.
func failOnly(t *testing.T, rows []featurestore.CapabilityFeatures, cfg featurestore.Config, o ValidationOptions, name string, ids ...string) Report {
	t.Helper()
	r, err := Validate(rows, cfg, o)
	var ve *ValidationError
	require.True(t, errors.As(err, &ve), "got %v", err)
	require.Len(t, ve.Failed, 1, "%v", err)
	assert.Equal(t, name, ve.Failed[0].Name)
	assert.Contains(t, err.Error(), name)
	for _, id := range ids {
		assert.Contains(t, err.Error(), id)
	}
	if ids == nil {
		ids = []string{}
	}
	assert.Equal(t, ids, check(t, r, name).OffendingIDs)
	assert.False(t, r.Passed)
	return r
}

func TestCheckDimensionsFails(t *testing.T) {
	rows := goodRows(50, smallCfg)
	rows[3].N2VEmbedding = rows[3].N2VEmbedding[:7]
	rows[9].HybridEmbedding = append(rows[9].HybridEmbedding, 0) // still unit norm
	r := failOnly(t, rows, smallCfg, opts(), CheckDimensions, "cap-003", "cap-009")
	c := check(t, r, CheckDimensions)
	assert.Equal(t, 1.0, c.Figures["n2v_mismatches"])
	assert.Equal(t, 1.0, c.Figures["hybrid_mismatches"])
	assert.Equal(t, 0.0, c.Figures["text_mismatches"])
}

func TestCheckNormalizedFails(t *testing.T) {
	rows := goodRows(50, smallCfg)
	for i := range rows[4].TextEmbedding {
		rows[4].TextEmbedding[i] *= 1.02 // norm 1.02, outside 0.01
	}
	for i := range rows[5].HybridEmbedding {
		rows[5].HybridEmbedding[i] *= 1.005 // inside the tolerance
	}
	rows[6].HybridEmbedding = make([]float32, smallCfg.HybridDim) // zero: both parts were zero
	r := failOnly(t, rows, smallCfg, opts(), CheckNormalized, "cap-004", "cap-006")
	c := check(t, r, CheckNormalized)
	assert.InDelta(t, 0, c.Figures["min_norm"], 1e-9)
	assert.InDelta(t, 1.02, c.Figures["max_norm"], 1e-5)
}

func TestCheckNotCollapsedFails(t *testing.T) {
	rows := goodRows(50, smallCfg)
	rng := rand.New(rand.NewPCG(9, 9))
	base := randUnit(rng, smallCfg.HybridDim)
	for i := range rows {
		// Every hybrid vector within a small angle of one direction.
		v := make([]float32, len(base))
		noise := randUnit(rng, len(base))
		var s float64
		for j := range v {
			v[j] = base[j] + 0.1*noise[j]
			s += float64(v[j]) * float64(v[j])
		}
		for j := range v {
			v[j] /= float32(math.Sqrt(s))
		}
		rows[i].HybridEmbedding = v
	}
	r := failOnly(t, rows, smallCfg, opts(), CheckNotCollapsed)
	c := check(t, r, CheckNotCollapsed)
	assert.Greater(t, c.Figures["hybrid_mean_cosine"], 0.98)
	assert.Less(t, c.Figures["text_mean_cosine"], 0.1)
	assert.Contains(t, c.Note, "hybrid mean cosine")
	assert.NotContains(t, c.Note, "text")

	// Total variance (≈ 1 − ‖mean‖² ≈ 0.01 here) is the weaker test.
	o := opts()
	o.Collapse = CollapseTotalVariance
	o.MinVariance = 0.05
	failOnly(t, rows, smallCfg, o, CheckNotCollapsed)
}

func TestCheckNotCollapsedMeanCosineExact(t *testing.T) {
	// Three 2-d vectors: (1,0), (0,2), (1,1). Pairwise cosines 0, 1/√2, 1/√2
	// → mean (√2)/3 = 0.4714045.
	vs := [][]float32{{1, 0}, {0, 2}, {1, 1}}
	s := spread(vs, 2)
	assert.InDelta(t, math.Sqrt2/3, s.meanCos, 1e-12)
	// Per-dimension variance: dim 0 values (1,0,1) → 2/9; dim 1 (0,2,1) → 2/3.
	assert.InDelta(t, 2.0/9, s.minDimVar, 1e-12)
	assert.InDelta(t, 2.0/9+2.0/3, s.totalVar, 1e-12)
}

func TestCheckNotCollapsedLiteralReadingFailsHealthyHighDim(t *testing.T) {
	// Well-spread unit vectors in 1024-d: per-dimension variance ≈ 1/1024,
	// so the design's literal threshold 0.01 fails although nothing collapsed.
	cfg := featurestore.Config{TextDim: 1024, GraphDim: 64}
	rows := goodRows(200, cfg)
	r, err := Validate(rows, cfg, opts())
	require.NoError(t, err)
	c := check(t, r, CheckNotCollapsed)
	assert.InDelta(t, 1.0/1024, c.Figures["text_mean_dim_variance"], 1e-4)

	o := opts()
	o.Collapse = CollapsePerDimVariance
	failOnly(t, rows, cfg, o, CheckNotCollapsed)
}

func TestCheckNotCollapsedAllZero(t *testing.T) {
	rows := goodRows(10, smallCfg)
	for i := range rows {
		rows[i].N2VEmbedding = make([]float32, smallCfg.GraphDim) // all isolated
	}
	r := failOnly(t, rows, smallCfg, opts(), CheckNotCollapsed)
	assert.Equal(t, 1.0, check(t, r, CheckNotCollapsed).Figures["n2v_mean_cosine"])
}

func TestCheckNoNaNFails(t *testing.T) {
	rows := goodRows(50, smallCfg)
	rows[2].N2VEmbedding[0] = float32(math.NaN()) // N2V is not norm-checked
	rows[7].PageRank = math.Inf(1)
	r := failOnly(t, rows, smallCfg, opts(), CheckNoNaN, "cap-002", "cap-007")
	_, err := json.Marshal(r)
	require.NoError(t, err)
}

func TestCheckNoNaNInTextAlsoFailsNormalized(t *testing.T) {
	rows := goodRows(20, smallCfg)
	rows[1].TextEmbedding[3] = float32(math.NaN())
	r, err := Validate(rows, smallCfg, opts())
	var ve *ValidationError
	require.True(t, errors.As(err, &ve))
	names := []string{}
	for _, c := range ve.Failed {
		names = append(names, c.Name)
	}
	assert.Equal(t, []string{CheckNormalized, CheckNoNaN}, names)
	// The NaN row is left out of the collapse statistics, which stay finite.
	assert.True(t, check(t, r, CheckNotCollapsed).Passed)
	_, err = json.Marshal(r)
	require.NoError(t, err, "report with NaN input must still marshal")
}

func TestCheckStalenessFails(t *testing.T) {
	rows := goodRows(30, smallCfg)
	rows[0].ComputedAt = asOf.Add(-25 * time.Hour)
	rows[1].ComputedAt = time.Time{}
	rows[2].ComputedAt = asOf.Add(48 * time.Hour)
	rows[3].ComputedAt = asOf.Add(-24 * time.Hour) // exactly 24 h: allowed
	r := failOnly(t, rows, smallCfg, opts(), CheckStaleness, "cap-000", "cap-001", "cap-002")
	assert.Equal(t, 24.0, check(t, r, CheckStaleness).Figures["oldest_valid_age_hours"])
}

func TestOffendingIDsCapped(t *testing.T) {
	rows := goodRows(30, smallCfg)
	for i := range rows {
		rows[i].ComputedAt = asOf.Add(-48 * time.Hour)
	}
	r, err := Validate(rows, smallCfg, opts())
	require.Error(t, err)
	c := check(t, r, CheckStaleness)
	assert.Len(t, c.OffendingIDs, 20)
	assert.Equal(t, 30, c.OffendingCount)
	assert.Contains(t, err.Error(), "30 rows")
	assert.Contains(t, err.Error(), "...")
}

func TestValidateOptionsErrors(t *testing.T) {
	rows := goodRows(3, smallCfg)
	for _, tc := range []struct {
		field string
		o     ValidationOptions
		cfg   featurestore.Config
	}{
		{"AsOf", ValidationOptions{}, smallCfg},
		{"NormTolerance", ValidationOptions{AsOf: asOf, NormTolerance: math.NaN()}, smallCfg},
		{"MaxMeanCosine", ValidationOptions{AsOf: asOf, MaxMeanCosine: 2}, smallCfg},
		{"Collapse", ValidationOptions{AsOf: asOf, Collapse: "entropy"}, smallCfg},
		{"Config", ValidationOptions{AsOf: asOf}, featurestore.Config{TextDim: -1}},
	} {
		_, err := Validate(rows, tc.cfg, tc.o)
		var oe *OptionsError
		require.True(t, errors.As(err, &oe), "%s: %v", tc.field, err)
		assert.Equal(t, tc.field, oe.Field)
	}
}

func TestReportJSONShape(t *testing.T) {
	rows := goodRows(10, smallCfg)
	rows[0].ComputedAt = asOf.Add(-30 * time.Hour)
	r, _ := Validate(rows, smallCfg, opts())
	b, err := json.Marshal(r)
	require.NoError(t, err)

	var got struct {
		Rows   int    `json:"rows"`
		AsOf   string `json:"as_of"`
		Passed *bool  `json:"passed"`
		Checks []map[string]json.RawMessage
	}
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, 10, got.Rows)
	assert.Equal(t, "2026-11-25T12:00:00Z", got.AsOf)
	require.NotNil(t, got.Passed)
	assert.False(t, *got.Passed)
	require.Len(t, got.Checks, 5)
	names := []string{}
	for _, c := range got.Checks {
		for _, k := range []string{"name", "passed", "figures", "offending_ids", "offending_count"} {
			assert.Contains(t, c, k)
		}
		var n string
		require.NoError(t, json.Unmarshal(c["name"], &n))
		names = append(names, n)
	}
	assert.Equal(t, []string{CheckDimensions, CheckNormalized, CheckNotCollapsed, CheckNoNaN, CheckStaleness}, names)
	assert.JSONEq(t, `["cap-000"]`, string(got.Checks[4]["offending_ids"]))
	// A passing check lists an empty array, not null.
	assert.JSONEq(t, `[]`, string(got.Checks[0]["offending_ids"]))
}
