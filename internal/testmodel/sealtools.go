package testmodel

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline/features"
)

// SealTools is the real Seal-Tools catalog and queries in a fresh embedded
// store, a hashing encoder of width dim, and a quick features stage (few
// walks, no plot) to run before training: the setup of the pipeline-level
// stage tests.
func SealTools(t *testing.T, ctx context.Context, dim int) (featurestore.Store, *featurestore.Dataset, textembed.Encoder, *features.Stage) {
	t.Helper()
	cfg := featurestore.Config{TextDim: dim}
	d, err := featurestore.ReadSealTools(ctx, testenv.SealToolsDir(t), cfg)
	require.NoError(t, err)
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	require.NoError(t, st.WriteDataset(ctx, d))
	enc, err := textembed.NewHashing(textembed.HashingConfig{Dim: dim})
	require.NoError(t, err)
	fcfg := features.DefaultConfig(enc)
	fcfg.Node2Vec.WalksPerNode, fcfg.NoPlot = 4, true
	fstage, err := features.NewStage(fcfg)
	require.NoError(t, err)
	return st, d, enc, fstage
}
