package codec

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
)

func features() featurestore.CapabilityFeatures {
	return featurestore.CapabilityFeatures{
		CapabilityID:          "x",
		TextEmbedding:         []float32{1, -2.5, 3e-7},
		N2VEmbedding:          nil,
		HybridEmbedding:       []float32{},
		ToolCount:             3,
		AvgExecutionTimeMs:    12.5,
		SuccessRate:           0.75,
		UsageCount1d:          -1,
		UsageCount7d:          7,
		UsageCount30d:         300,
		PageRank:              0.125,
		ClusteringCoefficient: 1,
		FeatureVersion:        "v1",
		ComputedAt:            time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600)),
	}
}

// rejectsDamage checks that every truncation of b, b with a trailing byte,
// and b under another version are all ErrCorrupt for decode.
func rejectsDamage(t *testing.T, b []byte, decode func([]byte) error) {
	t.Helper()
	for i := range b {
		assert.ErrorIs(t, decode(b[:i]), ErrCorrupt, "truncated at %d", i)
	}
	assert.ErrorIs(t, decode(append(slices.Clone(b), 0)), ErrCorrupt, "trailing byte")
	other := slices.Clone(b)
	other[0] = Version + 1
	assert.ErrorIs(t, decode(other), ErrCorrupt, "unknown version")
}

func TestFeaturesRoundTrip(t *testing.T) {
	r := features()
	b := EncodeFeatures(&r)
	got, err := DecodeFeatures(b)
	require.NoError(t, err)
	assert.Nil(t, got.N2VEmbedding, "nil stays nil")
	assert.NotNil(t, got.HybridEmbedding, "empty stays empty")
	assert.True(t, r.ComputedAt.Equal(got.ComputedAt))
	assert.Equal(t, time.UTC, got.ComputedAt.Location(), "times decode in UTC")
	got.ComputedAt = r.ComputedAt
	assert.Equal(t, r, *got)

	rejectsDamage(t, b, func(b []byte) error { _, err := DecodeFeatures(b); return err })
}

func TestFeaturesHybrid(t *testing.T) {
	r := features()
	r.HybridEmbedding = []float32{4, 5}
	b := EncodeFeatures(&r)
	v, err := FeaturesHybrid(b)
	require.NoError(t, err)
	assert.Equal(t, r.HybridEmbedding, v)

	r.HybridEmbedding = nil
	v, err = FeaturesHybrid(EncodeFeatures(&r))
	require.NoError(t, err)
	assert.Nil(t, v)

	// A cut before the hybrid embedding's end is an error; the fields after
	// it are not read.
	for i := range b {
		v, err := FeaturesHybrid(b[:i])
		if err == nil {
			assert.Equal(t, []float32{4, 5}, v, "truncated at %d", i)
		} else {
			assert.ErrorIs(t, err, ErrCorrupt, "truncated at %d", i)
		}
	}
	_, err = FeaturesHybrid(EncodeVector(r.TextEmbedding))
	assert.ErrorIs(t, err, ErrCorrupt, "another kind")
}

func TestFeaturesText(t *testing.T) {
	r := features()
	b := EncodeFeatures(&r)
	v, err := FeaturesText(b)
	require.NoError(t, err)
	assert.Equal(t, r.TextEmbedding, v)

	r.TextEmbedding = nil
	v, err = FeaturesText(EncodeFeatures(&r))
	require.NoError(t, err)
	assert.Nil(t, v)

	// A cut before the text embedding's end is an error; the fields after
	// it are not read.
	for i := range b {
		v, err := FeaturesText(b[:i])
		if err == nil {
			assert.Equal(t, features().TextEmbedding, v, "truncated at %d", i)
		} else {
			assert.ErrorIs(t, err, ErrCorrupt, "truncated at %d", i)
		}
	}
	_, err = FeaturesText(EncodeVector([]float32{1, 2}))
	assert.ErrorIs(t, err, ErrCorrupt, "another kind")
}

func TestIntentRoundTrip(t *testing.T) {
	for _, tools := range [][]string{nil, {}, {"t.a", "", "t.b"}} {
		f := featurestore.IntentFeatures{IntentHash: "h1", Embedding: []float32{1, 2}, ContextTools: tools,
			CreatedAt: time.Unix(1, 5).UTC()}
		b := EncodeIntent(&f)
		got, err := DecodeIntent(b)
		require.NoError(t, err)
		assert.Equal(t, f, *got)
		rejectsDamage(t, b, func(b []byte) error { _, err := DecodeIntent(b); return err })
	}
}

func TestVectorRoundTrip(t *testing.T) {
	for _, v := range [][]float32{nil, {}, {1, -1, 0.5}} {
		b := EncodeVector(v)
		got, err := DecodeVector(b)
		require.NoError(t, err)
		assert.Equal(t, v, got)
		rejectsDamage(t, b, func(b []byte) error { _, err := DecodeVector(b); return err })
	}
}

func TestForeignValuesAreRejected(t *testing.T) {
	r := features()
	f := featurestore.IntentFeatures{IntentHash: "h", Embedding: []float32{1}}
	feats, intent, vec := EncodeFeatures(&r), EncodeIntent(&f), EncodeVector([]float32{1})
	for name, err := range map[string]error{
		"features as vector": second(DecodeVector(feats)),
		"features as intent": second(DecodeIntent(feats)),
		"intent as features": second(DecodeFeatures(intent)),
		"vector as features": second(DecodeFeatures(vec)),
		"empty":              second(DecodeVector(nil)),
		"json":               second(DecodeFeatures([]byte(`{"capability_id":"x"}`))),
	} {
		assert.True(t, errors.Is(err, ErrCorrupt), name)
	}
}

// TestDecodedValuesDoNotAlias checks that decoding copies: bbolt's values
// are only valid inside their transaction.
func TestDecodedValuesDoNotAlias(t *testing.T) {
	r := features()
	b := EncodeFeatures(&r)
	got, err := DecodeFeatures(b)
	require.NoError(t, err)
	hybrid, err := FeaturesHybrid(b)
	require.NoError(t, err)
	clear(b)
	assert.Equal(t, r.CapabilityID, got.CapabilityID)
	assert.Equal(t, r.TextEmbedding, got.TextEmbedding)
	assert.Equal(t, r.HybridEmbedding, hybrid)
}

func second[T any](_ T, err error) error { return err }
