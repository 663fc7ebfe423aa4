package embedded_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
)

func smallDataset() *featurestore.Dataset {
	return &featurestore.Dataset{
		Tools:        []featurestore.Tool{{ID: "t1", Name: "one"}},
		Capabilities: []featurestore.Capability{{ID: "c1", Name: "cap", Members: []string{"t1"}}},
		Experiences: []featurestore.Experience{{Intent: "do", CandidateIDs: []string{"c1"}, SelectedCapability: "c1", Rank: 1,
			Outcome: featurestore.OutcomeSuccess, Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), SessionID: "s"}},
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "store.db")
	st, err := embedded.Open(path, testConfig)
	require.NoError(t, err)
	require.NoError(t, st.WriteDataset(ctx, smallDataset()))
	later := smallDataset().Experiences[0]
	later.Timestamp = later.Timestamp.Add(time.Second) // a new experience, not a retry
	require.NoError(t, st.AppendExperiences(ctx, later))
	require.NoError(t, st.Close())

	st, err = embedded.Open(path, testConfig)
	require.NoError(t, err)
	defer st.Close()
	caps, err := st.Capabilities(ctx)
	require.NoError(t, err)
	require.Len(t, caps, 1)
	exps, err := st.ExperiencesBySession(ctx, "s")
	require.NoError(t, err)
	require.Len(t, exps, 2)
	// Ids keep counting after a reopen.
	assert.Equal(t, []int64{1, 2}, []int64{exps[0].ID, exps[1].ID})
	// A re-import after the reopen is still a no-op.
	require.NoError(t, st.WriteDataset(ctx, smallDataset()))
	exps, err = st.ExperiencesBySession(ctx, "s")
	require.NoError(t, err)
	assert.Len(t, exps, 2)
}

func TestOpenRefusesOtherDimensions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	st, err := embedded.Open(path, testConfig)
	require.NoError(t, err)
	require.NoError(t, st.Close())

	other := testConfig
	other.HybridDim = 16
	_, err = embedded.Open(path, other)
	var mismatch *embedded.ConfigMismatchError
	require.ErrorAs(t, err, &mismatch)
	assert.Equal(t, 8, mismatch.StoredHybridDim)
	assert.Equal(t, 16, mismatch.WantHybridDim)

	// The same dims, with another text limit, are fine.
	same := testConfig
	same.MaxTextLen = 100
	st, err = embedded.Open(path, same)
	require.NoError(t, err)
	require.NoError(t, st.Close())
}

// TestOpenRefusesOtherFileFormat: a file written by another layout (of the
// buckets or of the codec's values) is refused at Open, not misread later.
func TestOpenRefusesOtherFileFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	st, err := embedded.Open(path, testConfig)
	require.NoError(t, err)
	require.NoError(t, st.Close())

	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte("1"))
	}))
	require.NoError(t, db.Close())

	_, err = embedded.Open(path, testConfig)
	assert.ErrorContains(t, err, `file format "1"`)
}

func TestOpenFailsWhileAnotherHolderHasTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	st, err := embedded.Open(path, testConfig)
	require.NoError(t, err)
	defer st.Close()
	_, err = embedded.Open(path, testConfig)
	assert.ErrorContains(t, err, "another process holds it")
}

func TestDefaultPath(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", dir)
	p, err := embedded.DefaultPath()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "capflow", "store.db"), p)

	st, err := embedded.OpenDefault(testConfig)
	require.NoError(t, err)
	assert.Equal(t, p, st.Path())
	require.NoError(t, st.Close())

	home := t.TempDir()
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", home)
	p, err = embedded.DefaultPath()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(home, ".local", "share", "capflow", "store.db"), p)
}

func TestClosedStoreErrors(t *testing.T) {
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), testConfig)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.NoError(t, st.Close())
	_, err = st.Tools(context.Background())
	assert.Error(t, err)
}

func TestCanceledContext(t *testing.T) {
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), testConfig)
	require.NoError(t, err)
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, st.WriteDataset(ctx, smallDataset()), context.Canceled)
	tools, err := st.Tools(context.Background())
	require.NoError(t, err)
	assert.Empty(t, tools)
}

// TestConcurrentSearchAndWrite runs searches while feature rows change; run
// with -race it checks the vector cache's locking, and every search sees
// one consistent set of rows.
func TestConcurrentSearchAndWrite(t *testing.T) {
	ctx := context.Background()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), testConfig)
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.WriteDataset(ctx, smallDataset()))
	row := func(x float32) featurestore.CapabilityFeatures {
		return featurestore.CapabilityFeatures{CapabilityID: "c1", HybridEmbedding: []float32{x, 1, 0, 0, 0, 0, 0, 0}}
	}
	require.NoError(t, st.UpsertCapabilityFeatures(ctx, []featurestore.CapabilityFeatures{row(0)}))

	done := make(chan error, 1)
	go func() {
		for i := range 50 {
			if err := st.UpsertCapabilityFeatures(ctx, []featurestore.CapabilityFeatures{row(float32(i))}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	q := []float32{0, 1, 0, 0, 0, 0, 0, 0}
	for range 200 {
		got, err := st.NearestCapabilities(ctx, featurestore.SpaceHybrid, q, 3)
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Equal(t, "c1", got[0].CapabilityID)
	}
	require.NoError(t, <-done)
	// After the last write, the search reflects it: x = 49 is far from q.
	got, err := st.NearestCapabilities(ctx, featurestore.SpaceHybrid, q, 1)
	require.NoError(t, err)
	assert.InDelta(t, 1-1/math.Sqrt(49*49+1), got[0].Distance, 1e-6)
}
