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

func TestContract(t *testing.T) {
	storetest.Run(t, testConfig, func(t *testing.T) featurestore.Store {
		st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), testConfig)
		require.NoError(t, err)
		return st
	})
}
