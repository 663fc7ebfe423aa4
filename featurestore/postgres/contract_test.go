package postgres

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/storetest"
	"github.com/capflow/capflow/internal/testenv"
)

// TestContract runs the backend-independent suite, each subtest in a fresh
// schema dropped at cleanup.
func TestContract(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	storetest.Run(t, testCfg, func(t *testing.T) featurestore.Store {
		s, err := Open(context.Background(), dsn, testCfg, WithSchema(testSchema(t, dsn)), WithLogger(warnLogger()))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	})
}
