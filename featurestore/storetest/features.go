package storetest

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
)

const kindFeatures = "capability features"

// row is a complete, valid feature row; seed varies every field.
func (s *suite) row(id string, seed int64) featurestore.CapabilityFeatures {
	return featurestore.CapabilityFeatures{
		CapabilityID:          id,
		TextEmbedding:         vec(s.cfg.TextDim, seed),
		N2VEmbedding:          vec(s.cfg.GraphDim, seed+1000),
		HybridEmbedding:       vec(s.cfg.HybridDim, seed+2000),
		ToolCount:             int(seed%5) + 1,
		AvgExecutionTimeMs:    100.25 * float64(seed),
		SuccessRate:           float64(seed%10) / 10,
		UsageCount1d:          int(seed),
		UsageCount7d:          int(seed) * 7,
		UsageCount30d:         int(seed) * 30,
		PageRank:              0.125 / float64(seed+1),
		ClusteringCoefficient: 0.5,
		FeatureVersion:        fmt.Sprintf("v%d", seed),
		ComputedAt:            base.Add(time.Duration(seed) * time.Second).In(kolkata),
	}
}

func assertRow(t *testing.T, want, got featurestore.CapabilityFeatures) {
	t.Helper()
	if want.TextEmbedding == nil {
		assert.Empty(t, got.TextEmbedding, "%s text embedding", want.CapabilityID)
	} else {
		f32eq(t, want.TextEmbedding, got.TextEmbedding, want.CapabilityID, "text")
	}
	if want.N2VEmbedding == nil {
		assert.Empty(t, got.N2VEmbedding, "%s n2v embedding", want.CapabilityID)
	} else {
		f32eq(t, want.N2VEmbedding, got.N2VEmbedding, want.CapabilityID, "n2v")
	}
	if want.HybridEmbedding == nil {
		assert.Empty(t, got.HybridEmbedding, "%s hybrid embedding", want.CapabilityID)
	} else {
		f32eq(t, want.HybridEmbedding, got.HybridEmbedding, want.CapabilityID, "hybrid")
	}
	assert.True(t, want.ComputedAt.Equal(got.ComputedAt), "%s computed_at: got %v, want %v", want.CapabilityID, got.ComputedAt, want.ComputedAt)
	assert.Equal(t, "UTC", got.ComputedAt.Location().String(), "%s computed_at zone", want.CapabilityID)
	want.TextEmbedding, want.N2VEmbedding, want.HybridEmbedding, want.ComputedAt = nil, nil, nil, time.Time{}
	got.TextEmbedding, got.N2VEmbedding, got.HybridEmbedding, got.ComputedAt = nil, nil, nil, time.Time{}
	assert.Equal(t, want, got)
}

func (s *suite) featuresRoundTrip(t *testing.T) {
	st := s.open(t)
	s.write(t, st, s.fixture())
	ctx := context.Background()
	rows := []featurestore.CapabilityFeatures{s.row("cap.lookup", 1), s.row("cap.research", 2), s.row("cap.report", 3), s.row("cap.mail", 4)}
	rows[3].N2VEmbedding = nil // vectors are optional
	require.NoError(t, st.UpsertCapabilityFeatures(ctx, rows))

	ids := []string{"cap.mail", "cap.lookup", "cap.report", "cap.research"}
	got, err := st.CapabilityFeatures(ctx, ids)
	require.NoError(t, err)
	require.Len(t, got, len(ids))
	want := map[string]featurestore.CapabilityFeatures{}
	for _, r := range rows {
		want[r.CapabilityID] = r
	}
	for i, id := range ids {
		assert.Equal(t, id, got[i].CapabilityID, "position %d", i)
		assertRow(t, want[id], got[i])
	}

	got, err = st.CapabilityFeatures(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, got)
}

func (s *suite) featuresOverwrite(t *testing.T) {
	st := s.open(t)
	s.write(t, st, s.fixture())
	ctx := context.Background()
	require.NoError(t, st.UpsertCapabilityFeatures(ctx, []featurestore.CapabilityFeatures{s.row("cap.lookup", 1), s.row("cap.mail", 2)}))
	newer := s.row("cap.lookup", 7)
	require.NoError(t, st.UpsertCapabilityFeatures(ctx, []featurestore.CapabilityFeatures{newer}))

	got, err := st.CapabilityFeatures(ctx, []string{"cap.lookup", "cap.mail"})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assertRow(t, newer, got[0])
	assertRow(t, s.row("cap.mail", 2), got[1])
}

// featuresBadRows: every call holds a valid row and a bad one; the error
// names the bad one and neither is written.
func (s *suite) featuresBadRows(t *testing.T) {
	st := s.open(t)
	s.write(t, st, s.fixture())
	ctx := context.Background()
	original := s.row("cap.lookup", 1)
	require.NoError(t, st.UpsertCapabilityFeatures(ctx, []featurestore.CapabilityFeatures{original}))

	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	cases := []struct {
		name   string
		mutate func(r *featurestore.CapabilityFeatures)
	}{
		{"text dimension", func(r *featurestore.CapabilityFeatures) { r.TextEmbedding = vec(s.cfg.TextDim+1, 9) }},
		{"graph dimension", func(r *featurestore.CapabilityFeatures) { r.N2VEmbedding = vec(s.cfg.GraphDim-1, 9) }},
		{"hybrid dimension", func(r *featurestore.CapabilityFeatures) { r.HybridEmbedding = []float32{} }},
		{"NaN", func(r *featurestore.CapabilityFeatures) { r.HybridEmbedding[2] = nan }},
		{"+Inf", func(r *featurestore.CapabilityFeatures) { r.TextEmbedding[0] = inf }},
		{"-Inf", func(r *featurestore.CapabilityFeatures) { r.N2VEmbedding[1] = -inf }},
		{"success rate above 1", func(r *featurestore.CapabilityFeatures) { r.SuccessRate = 1.5 }},
		{"success rate below 0", func(r *featurestore.CapabilityFeatures) { r.SuccessRate = -0.1 }},
		{"NaN pagerank", func(r *featurestore.CapabilityFeatures) { r.PageRank = math.NaN() }},
		{"unknown capability", func(r *featurestore.CapabilityFeatures) { r.CapabilityID = "cap.nope" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := s.row("cap.lookup", 5)
			tc.mutate(&bad)
			// The valid row comes first, so a backend writing row by row
			// would have written it.
			err := st.UpsertCapabilityFeatures(ctx, []featurestore.CapabilityFeatures{s.row("cap.mail", 6), bad})
			requireRecordError(t, err, kindFeatures, bad.CapabilityID)

			_, err = st.CapabilityFeatures(ctx, []string{"cap.mail"})
			requireNotFound(t, err, kindFeatures, "cap.mail")
			got, err := st.CapabilityFeatures(ctx, []string{"cap.lookup"})
			require.NoError(t, err)
			assertRow(t, original, got[0])
		})
	}
}

func (s *suite) featuresNotFound(t *testing.T) {
	st := s.open(t)
	s.write(t, st, s.fixture())
	ctx := context.Background()
	require.NoError(t, st.UpsertCapabilityFeatures(ctx, []featurestore.CapabilityFeatures{s.row("cap.lookup", 1)}))
	_, err := st.CapabilityFeatures(ctx, []string{"cap.lookup", "cap.mail"})
	requireNotFound(t, err, kindFeatures, "cap.mail")
	_, err = st.CapabilityFeatures(ctx, []string{"cap.nope"})
	requireNotFound(t, err, kindFeatures, "cap.nope")
}

// spaces are the ANN spaces every backend searches.
func spaces() []featurestore.Space {
	return []featurestore.Space{featurestore.SpaceText, featurestore.SpaceHybrid}
}

// annStore holds 13 capabilities with random text and hybrid embeddings,
// except that cap.11 has no text embedding and cap.12 no hybrid one (so
// each space has a row that is no candidate, and not the same row). It
// returns each space's embeddings by id.
func (s *suite) annStore(t *testing.T) (featurestore.Store, map[featurestore.Space]map[string][]float32) {
	st := s.open(t)
	d := &featurestore.Dataset{}
	var rows []featurestore.CapabilityFeatures
	vecs := map[featurestore.Space]map[string][]float32{featurestore.SpaceText: {}, featurestore.SpaceHybrid: {}}
	for i := range 13 {
		tool, id := fmt.Sprintf("t.%02d", i), fmt.Sprintf("cap.%02d", i)
		d.Tools = append(d.Tools, featurestore.Tool{ID: tool, Name: tool})
		d.Capabilities = append(d.Capabilities, featurestore.Capability{ID: id, Name: id, Members: []string{tool}})
		r := s.row(id, int64(i)+100)
		switch i {
		case 11:
			r.TextEmbedding = nil
		case 12:
			r.HybridEmbedding = nil
		}
		if r.TextEmbedding != nil {
			vecs[featurestore.SpaceText][id] = r.TextEmbedding
		}
		if r.HybridEmbedding != nil {
			vecs[featurestore.SpaceHybrid][id] = r.HybridEmbedding
		}
		rows = append(rows, r)
	}
	s.write(t, st, d)
	require.NoError(t, st.UpsertCapabilityFeatures(context.Background(), rows))
	return st, vecs
}

func cosineDistance(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return 1 - dot/math.Sqrt(na*nb)
}

// bruteForce ranks every vector by cosine distance to q.
func bruteForce(vecs map[string][]float32, q []float32) []featurestore.Neighbor {
	var out []featurestore.Neighbor
	for id, v := range vecs {
		out = append(out, featurestore.Neighbor{CapabilityID: id, Distance: cosineDistance(v, q)})
	}
	slices.SortFunc(out, func(a, b featurestore.Neighbor) int { return cmp.Compare(a.Distance, b.Distance) })
	return out
}

func assertNeighbors(t *testing.T, want, got []featurestore.Neighbor) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		assert.Equal(t, want[i].CapabilityID, got[i].CapabilityID, "rank %d", i)
		assert.InDelta(t, want[i].Distance, got[i].Distance, 1e-5, "rank %d distance", i)
	}
}

func (s *suite) nearestExact(t *testing.T) {
	st, vecs := s.annStore(t)
	ctx := context.Background()
	scaled := map[featurestore.Space][]float32{}
	for _, space := range spaces() {
		for seed := range int64(5) {
			q := vec(s.cfg.Dim(space), 5000+seed)
			got, err := st.NearestCapabilities(ctx, space, q, 5)
			require.NoError(t, err)
			assertNeighbors(t, bruteForce(vecs[space], q)[:5], got)
		}
		// A stored vector, scaled: cosine ignores length, so it is its own
		// nearest neighbour at distance 0.
		q := slices.Clone(vecs[space]["cap.07"])
		for i := range q {
			q[i] *= 3
		}
		got, err := st.NearestCapabilities(ctx, space, q, 1)
		require.NoError(t, err)
		require.Len(t, got, 1, space)
		assert.Equal(t, "cap.07", got[0].CapabilityID, space)
		assert.InDelta(t, 0, got[0].Distance, 1e-5, space)
		scaled[space] = q
	}

	// Searches in both spaces see feature rows written after earlier
	// searches.
	r := s.row("cap.03", 3)
	r.TextEmbedding = slices.Clone(scaled[featurestore.SpaceText])
	r.TextEmbedding[0] += 0.5 // near the query, but not a tie with cap.07
	r.HybridEmbedding = slices.Clone(scaled[featurestore.SpaceHybrid])
	r.HybridEmbedding[0] += 0.5
	require.NoError(t, st.UpsertCapabilityFeatures(ctx, []featurestore.CapabilityFeatures{r}))
	vecs[featurestore.SpaceText]["cap.03"] = r.TextEmbedding
	vecs[featurestore.SpaceHybrid]["cap.03"] = r.HybridEmbedding
	for _, space := range spaces() {
		got, err := st.NearestCapabilities(ctx, space, scaled[space], 3)
		require.NoError(t, err)
		assertNeighbors(t, bruteForce(vecs[space], scaled[space])[:3], got)
		assert.Equal(t, "cap.03", got[1].CapabilityID, space)
	}
}

func (s *suite) nearestKLarger(t *testing.T) {
	st, vecs := s.annStore(t)
	for _, space := range spaces() {
		q := vec(s.cfg.Dim(space), 77)
		got, err := st.NearestCapabilities(context.Background(), space, q, 100)
		require.NoError(t, err)
		assertNeighbors(t, bruteForce(vecs[space], q), got) // 12: the row without an embedding in space is no candidate
	}
}

// nearestBadQuery: an unknown space, and a query of another space's
// dimension, with NaN, or zero, are record errors.
func (s *suite) nearestBadQuery(t *testing.T) {
	st, _ := s.annStore(t)
	ctx := context.Background()
	for _, space := range spaces() {
		_, err := st.NearestCapabilities(ctx, space, vec(s.cfg.Dim(space)+1, 1), 3)
		requireRecordError(t, err, "ann query", string(space))
		q := vec(s.cfg.Dim(space), 1)
		q[0] = float32(math.NaN())
		_, err = st.NearestCapabilities(ctx, space, q, 3)
		requireRecordError(t, err, "ann query", string(space))
		_, err = st.NearestCapabilities(ctx, space, make([]float32, s.cfg.Dim(space)), 3)
		requireRecordError(t, err, "ann query", string(space))
	}
	_, err := st.NearestCapabilities(ctx, "graph", vec(s.cfg.TextDim, 1), 3)
	rerrs := recordErrors(err)
	require.NotEmpty(t, rerrs, "unknown space: want a record error, got %v", err)
	assert.Equal(t, "space", rerrs[0].Field)
}

func (s *suite) intentFeatures(t *testing.T) {
	st := s.open(t)
	ctx := context.Background()
	f := featurestore.IntentFeatures{IntentHash: "h1", Embedding: vec(s.cfg.TextDim, 1), ContextTools: []string{"t.a", "t.b"}, CreatedAt: base.In(kolkata)}
	require.NoError(t, st.PutIntentFeatures(ctx, f))
	check := func(want featurestore.IntentFeatures) {
		t.Helper()
		got, err := st.IntentFeatures(ctx, want.IntentHash)
		require.NoError(t, err)
		assert.Equal(t, want.IntentHash, got.IntentHash)
		f32eq(t, want.Embedding, got.Embedding)
		assert.Equal(t, emptyNil(want.ContextTools), emptyNil(got.ContextTools))
		assert.True(t, want.CreatedAt.Equal(got.CreatedAt), "created_at: got %v, want %v", got.CreatedAt, want.CreatedAt)
		assert.Equal(t, "UTC", got.CreatedAt.Location().String())
	}
	check(f)

	g := featurestore.IntentFeatures{IntentHash: "h1", Embedding: vec(s.cfg.TextDim, 2), CreatedAt: base.Add(time.Hour)}
	require.NoError(t, st.PutIntentFeatures(ctx, g))
	check(g)

	_, err := st.IntentFeatures(ctx, "h-nope")
	requireNotFound(t, err, "intent features", "h-nope")

	bad := featurestore.IntentFeatures{IntentHash: "h1", Embedding: vec(s.cfg.TextDim+2, 3), CreatedAt: base}
	requireRecordError(t, st.PutIntentFeatures(ctx, bad), "intent features", "h1")
	bad.Embedding = vec(s.cfg.TextDim, 3)
	bad.Embedding[1] = float32(math.Inf(-1))
	requireRecordError(t, st.PutIntentFeatures(ctx, bad), "intent features", "h1")
	check(g)
}

func (s *suite) embeddingCache(t *testing.T) {
	st := s.open(t)
	ctx := context.Background()
	key := featurestore.EmbeddingKey{Model: "bge-m3", ModelVersion: "1", TextHash: "0a1b2c"}
	v1, v2 := vec(s.cfg.TextDim, 1), vec(s.cfg.TextDim, 2)
	require.NoError(t, st.PutEmbedding(ctx, key, v1))
	got, err := st.Embedding(ctx, key)
	require.NoError(t, err)
	f32eq(t, v1, got)

	require.NoError(t, st.PutEmbedding(ctx, key, v2))
	got, err = st.Embedding(ctx, key)
	require.NoError(t, err)
	f32eq(t, v2, got)

	// Every part of the key counts.
	for _, other := range []featurestore.EmbeddingKey{
		{Model: "bge-m3", ModelVersion: "2", TextHash: "0a1b2c"},
		{Model: "minilm", ModelVersion: "1", TextHash: "0a1b2c"},
		{Model: "bge-m3", ModelVersion: "1", TextHash: "ffff"},
	} {
		_, err := st.Embedding(ctx, other)
		var nf *featurestore.NotFoundError
		require.ErrorAs(t, err, &nf, "key %+v", other)
		assert.Equal(t, "embedding", nf.Kind)
	}

	bad := vec(s.cfg.TextDim, 3)
	bad[4] = float32(math.NaN())
	err = st.PutEmbedding(ctx, key, bad)
	rerrs := recordErrors(err)
	require.NotEmpty(t, rerrs, "NaN embedding: want a record error, got %v", err)
	assert.Equal(t, "embedding", rerrs[0].Kind)
	got, err = st.Embedding(ctx, key)
	require.NoError(t, err)
	f32eq(t, v2, got)
}
