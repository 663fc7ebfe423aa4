package cache

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/featurestore/storetest"
)

// TestContract runs the backend contract through the cache layers (an
// embedded store behind L1 and the services' Redis, a key prefix per
// subtest): caching must not change what the store answers.
func TestContract(t *testing.T) {
	cfg := featurestore.Config{TextDim: 8, GraphDim: 4, HybridDim: 6}
	storetest.Run(t, cfg, func(t *testing.T) featurestore.Store {
		rdb, prefix := sharedRedis(t)
		st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), cfg)
		require.NoError(t, err)
		return New(st, Options{Redis: rdb, KeyPrefix: prefix})
	})
}
