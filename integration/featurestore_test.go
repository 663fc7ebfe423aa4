package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/postgres"
	"github.com/capflow/capflow/internal/testenv"
)

// The real development data goes into real PostgreSQL + pgvector, twice
// (idempotent), and reads back with the expected counts and hierarchy.
func TestSealToolsImportIntoPostgres(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	dir := testenv.SealToolsDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	schema := fmt.Sprintf("it_sealtools_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		if conn, err := pgx.Connect(context.Background(), dsn); err == nil {
			_, _ = conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			conn.Close(context.Background())
		}
	})
	cfg := featurestore.Config{}.WithDefaults()
	st, err := postgres.Open(ctx, dsn, cfg, postgres.WithSchema(schema))
	require.NoError(t, err)
	defer st.Close()

	d, err := featurestore.ReadSealTools(ctx, dir, cfg)
	require.NoError(t, err)
	// Dev-split pseudo-experiences only: never derive training data from the
	// split that is reported on.
	var dev []featurestore.Query
	for _, q := range d.Queries {
		if strings.HasPrefix(q.ID, featurestore.SealToolsDevPrefix) {
			dev = append(dev, q)
		}
	}
	require.Len(t, dev, 700)
	require.NoError(t, cfg.Validate(d)) // sets levels, which pseudo-experiences need
	d.Experiences = featurestore.PseudoExperiences(dev, d.Capabilities, featurestore.PseudoOptions{Seed: 7})
	for range 2 {
		require.NoError(t, st.WriteDataset(ctx, d))
	}

	tools, err := st.Tools(ctx)
	require.NoError(t, err)
	assert.Len(t, tools, 4076)
	caps, err := st.Capabilities(ctx)
	require.NoError(t, err)
	levels := map[int]int{}
	for _, c := range caps {
		levels[c.Level]++
	}
	assert.Equal(t, map[int]int{0: 2276, 1: 146}, levels)
	qs, err := st.Queries(ctx)
	require.NoError(t, err)
	assert.Len(t, qs, 1400)
	exps, err := st.ExperiencesBetween(ctx, time.Unix(0, 0), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	assert.Len(t, exps, len(d.Experiences), "re-import added no duplicate experiences")

	// A batch of capabilities by id in one call, in the asked order.
	got, err := st.CapabilitiesByID(ctx, []string{"Sports", "Sports/Basketball"})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, 1, got[0].Level)
	assert.Equal(t, 0, got[1].Level)
	assert.Contains(t, got[0].Members, "Sports/Basketball")
}
