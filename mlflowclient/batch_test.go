package mlflowclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type decodedBatch struct {
	RunID   string   `json:"run_id"`
	Metrics []Metric `json:"metrics"`
	Params  []Param  `json:"params"`
	Tags    []Tag    `json:"tags"`
}

func decodeBodies(t *testing.T, bodies [][]byte) []decodedBatch {
	t.Helper()
	out := make([]decodedBatch, len(bodies))
	for i, b := range bodies {
		require.NoError(t, json.Unmarshal(b, &out[i]), "body %d is not valid JSON", i)
	}
	return out
}

func metrics(n int) []Metric {
	ms := make([]Metric, n)
	for i := range ms {
		ms[i] = Metric{Key: fmt.Sprintf("k%d", i%7), Value: float64(i), Timestamp: 1700000000000, Step: int64(i)}
	}
	return ms
}

func TestChunkBatchMetricBoundary(t *testing.T) {
	for _, tc := range []struct{ n, chunks int }{{1, 1}, {999, 1}, {1000, 1}, {1001, 2}, {2000, 2}, {2001, 3}} {
		bodies, err := chunkBatch("r1", Batch{Metrics: metrics(tc.n)}, serverBatchLimits)
		require.NoError(t, err)
		require.Equal(t, tc.chunks, len(bodies), "%d metrics", tc.n)
		got := decodeBodies(t, bodies)
		total := 0
		for _, b := range got {
			assert.Equal(t, "r1", b.RunID)
			assert.LessOrEqual(t, len(b.Metrics), 1000)
			total += len(b.Metrics)
		}
		assert.Equal(t, tc.n, total)
		// Order is kept across chunks.
		assert.Equal(t, int64(tc.n-1), got[len(got)-1].Metrics[len(got[len(got)-1].Metrics)-1].Step)
	}
}

func TestChunkBatchParamsTagsAndEntities(t *testing.T) {
	var b Batch
	for i := range 150 {
		b.Params = append(b.Params, Param{fmt.Sprintf("p%d", i), "v"})
		b.Tags = append(b.Tags, Tag{fmt.Sprintf("t%d", i), "v"})
	}
	b.Metrics = metrics(900)
	bodies, err := chunkBatch("r1", b, serverBatchLimits)
	require.NoError(t, err)
	var params, tags, ms int
	for _, d := range decodeBodies(t, bodies) {
		assert.LessOrEqual(t, len(d.Params), 100)
		assert.LessOrEqual(t, len(d.Tags), 100)
		assert.LessOrEqual(t, len(d.Metrics)+len(d.Params)+len(d.Tags), 1000)
		params, tags, ms = params+len(d.Params), tags+len(d.Tags), ms+len(d.Metrics)
	}
	assert.Equal(t, []int{150, 150, 900}, []int{params, tags, ms})
	// 100 params+100 tags fit the first body with 800 metrics (1000 entities),
	// then 50+50 with the last 100 metrics.
	assert.Equal(t, 2, len(bodies))
}

func TestChunkBatchBodyLimitExact(t *testing.T) {
	// Tags of 7,900 bytes: 126 of them are ~1 MB. Every body must be
	// ≤ 1,000,000 bytes, and packing must be tight (no body could take the
	// next tag without crossing the limit).
	var b Batch
	val := strings.Repeat("x", 7900)
	for i := range 300 {
		b.Tags = append(b.Tags, Tag{fmt.Sprintf("tag%03d", i), val})
	}
	lim := serverBatchLimits
	lim.paramsTags = 1000 // isolate the byte limit
	bodies, err := chunkBatch("run", b, lim)
	require.NoError(t, err)
	total := 0
	for i, body := range bodies {
		assert.LessOrEqual(t, len(body), maxBatchBodyBytes, "body %d", i)
		if i < len(bodies)-1 {
			assert.Greater(t, len(body)+len(`,{"key":"tag000","value":""}`)+7900, maxBatchBodyBytes, "body %d is not packed tightly", i)
		}
		total += len(decodeBodies(t, [][]byte{body})[0].Tags)
	}
	assert.Equal(t, 300, total)
}

func TestChunkBatchBodyExactlyAtLimit(t *testing.T) {
	// Build one tag whose body is exactly the limit, then one byte more.
	head := len(`{"run_id":"r","metrics":[],"params":[],"tags":[]}`)
	item := len(`{"key":"k","value":""}`)
	exact := strings.Repeat("v", 1000-head-item)
	lim := batchLimits{metrics: 1000, paramsTags: 100, entities: 1000, bodyBytes: 1000}
	bodies, err := chunkBatch("r", Batch{Tags: []Tag{{"k", exact}}}, lim)
	require.NoError(t, err)
	require.Equal(t, 1, len(bodies))
	assert.Equal(t, 1000, len(bodies[0]))

	_, err = chunkBatch("r", Batch{Tags: []Tag{{"k", exact + "v"}}}, lim)
	var ve *ValidationError
	require.True(t, errors.As(err, &ve), "got %v", err)
}

func TestBatchValidate(t *testing.T) {
	cases := map[string]Batch{
		"bad metric key":     {Metrics: []Metric{{Key: "a\tb", Timestamp: 1}}},
		"path-like key":      {Metrics: []Metric{{Key: "../x", Timestamp: 1}}},
		"leading slash":      {Metrics: []Metric{{Key: "/x", Timestamp: 1}}},
		"double slash":       {Metrics: []Metric{{Key: "a//b", Timestamp: 1}}},
		"negative timestamp": {Metrics: []Metric{{Key: "a", Timestamp: -1}}},
		"long key":           {Params: []Param{{strings.Repeat("k", 251), "v"}}},
		"long param value":   {Params: []Param{{"k", strings.Repeat("v", 6001)}}},
		"long tag value":     {Tags: []Tag{{"k", strings.Repeat("v", 8001)}}},
		"empty key":          {Tags: []Tag{{"", "v"}}},
		"conflicting params": {Params: []Param{{"k", "1"}, {"k", "2"}}},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := b.validate()
			var ve *ValidationError
			require.True(t, errors.As(err, &ve), "want ValidationError, got %v", err)
			assert.Contains(t, err.Error(), ve.Field)
		})
	}
	ok := Batch{
		Metrics: []Metric{{Key: "val/mrr_10 ü:1", Value: math.NaN(), Timestamp: 1}},
		Params:  []Param{{"lr", "0.1"}, {"lr", "0.1"}, {"k", strings.Repeat("v", 6000)}},
		Tags:    []Tag{{"mlflow.note.content", strings.Repeat("v", 8000)}},
	}
	got, err := ok.validate()
	require.NoError(t, err)
	assert.Len(t, got.Params, 2, "exact duplicate params are sent once")
}

func TestMetricJSONNonFinite(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0.5, -3e300} {
		b, err := json.Marshal(Metric{Key: "m", Value: v, Timestamp: 1, Step: 2})
		require.NoError(t, err)
		var m Metric
		require.NoError(t, json.Unmarshal(b, &m))
		if math.IsNaN(v) {
			assert.True(t, math.IsNaN(m.Value))
		} else {
			assert.Equal(t, v, m.Value)
		}
		assert.Equal(t, int64(2), m.Step)
	}
	b, _ := json.Marshal(Metric{Key: "m", Value: math.Inf(-1)})
	assert.Contains(t, string(b), `"value":"-Infinity"`)
}

func BenchmarkChunkBatch100kMetrics(b *testing.B) {
	ms := metrics(100_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := chunkBatch("0123456789abcdef0123456789abcdef", Batch{Metrics: ms}, serverBatchLimits); err != nil {
			b.Fatal(err)
		}
	}
}

func TestMetricAppendJSONRoundTrip(t *testing.T) {
	for _, m := range []Metric{
		{Key: "plain/key_1", Value: 0.25, Timestamp: 1700000000123, Step: -3},
		{Key: "ünïcode \"quoted\" \\ \x01", Value: 1e-300, Timestamp: 1, Step: 1 << 40, RunID: "r", ModelID: "m-1", DatasetName: "d", DatasetDigest: "x"},
	} {
		raw := m.appendJSON(nil)
		require.True(t, json.Valid(raw), string(raw))
		var got Metric
		require.NoError(t, json.Unmarshal(raw, &got))
		assert.Equal(t, m, got)
	}
}
