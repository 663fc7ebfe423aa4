package embedded_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/featurestore/storetest"
)

var testConfig = featurestore.Config{TextDim: 8, GraphDim: 4, HybridDim: 8}

// TestContract runs the suite with a hybrid dimension of its own, so a
// search that confused the text and hybrid spaces would fail.
func TestContract(t *testing.T) {
	cfg := featurestore.Config{TextDim: 8, GraphDim: 4, HybridDim: 6}
	storetest.Run(t, cfg, func(t *testing.T) featurestore.Store {
		st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), cfg)
		require.NoError(t, err)
		return st
	})
}
