package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/internal/testenv"
)

func capflow(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), err
}

func sealTools(t *testing.T) string { return testenv.SealToolsDir(t) }

// Import the real development data into the embedded store, export it, import
// the export into a second store and export again: the two exports are equal.
func TestDataImportExportRoundTripEmbedded(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("CAPFLOW_DATABASE_URL", "")
	dir := t.TempDir()
	first, second := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")

	out, err := capflow(t, "data", "import", "--format", "sealtools", "--store-path", first, sealTools(t))
	require.NoError(t, err)
	assert.Contains(t, out, "imported 4076 tools, 2422 capabilities, 0 experiences, 1400 queries")

	out, err = capflow(t, "data", "import", "--format", "sealtools", "--store-path", first, sealTools(t))
	require.NoError(t, err, "re-import is idempotent")

	exp1, exp2 := filepath.Join(dir, "export1"), filepath.Join(dir, "export2")
	_, err = capflow(t, "data", "export", "--store-path", first, exp1)
	require.NoError(t, err)
	out, err = capflow(t, "data", "import", "--store-path", second, exp1)
	require.NoError(t, err, out)
	_, err = capflow(t, "data", "export", "--store-path", second, exp2)
	require.NoError(t, err)
	for _, f := range []string{featurestore.ToolsFile, featurestore.CapabilitiesFile, featurestore.QueriesFile, featurestore.ExperiencesFile} {
		a, err := os.ReadFile(filepath.Join(exp1, f))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(exp2, f))
		require.NoError(t, err)
		assert.Equal(t, string(a), string(b), f)
	}
}

func TestDataImportReportsBadLinesAndWritesNothing(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("CAPFLOW_DATABASE_URL", "")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(data, 0o755))
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(data, name), []byte(body), 0o644))
	}
	write("tools.jsonl", `{"id":"t1","name":"search","description":"web search"}`+"\n")
	write("capabilities.jsonl", `{"id":"c1","name":"find","description":"d","members":["t1"]}`+"\n"+
		`{"id":"c2","name":"broken","description":"d","members":["nope"]}`+"\n")
	store := filepath.Join(dir, "s.db")
	_, err := capflow(t, "data", "import", "--store-path", store, data)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "capabilities.jsonl:2")
	assert.Contains(t, err.Error(), "nope")

	// Nothing was written: the export of the store is empty.
	exp := filepath.Join(dir, "exp")
	_, err = capflow(t, "data", "export", "--store-path", store, exp)
	require.NoError(t, err)
	tools, err := os.ReadFile(filepath.Join(exp, featurestore.ToolsFile))
	require.NoError(t, err)
	assert.Empty(t, strings.TrimSpace(string(tools)))
}

// Flags, environment and config file share names; flags win over env, env
// over the config file.
func TestConfigFromEnvAndFile(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	dir := t.TempDir()
	fromFile, fromEnv := filepath.Join(dir, "file.db"), filepath.Join(dir, "env.db")
	cfgFile := filepath.Join(dir, "capflow.conf")
	require.NoError(t, os.WriteFile(cfgFile, []byte("store-path "+fromFile+"\n"), 0o644))
	data := filepath.Join("..", "..", "featurestore", "testdata", "dataset")

	t.Setenv("CAPFLOW_DATABASE_URL", "")
	out, err := capflow(t, "data", "import", "--config", cfgFile, data)
	require.NoError(t, err)
	assert.Contains(t, out, fromFile)

	t.Setenv("CAPFLOW_STORE_PATH", fromEnv)
	out, err = capflow(t, "data", "import", "--config", cfgFile, data)
	require.NoError(t, err)
	assert.Contains(t, out, fromEnv, "env beats the config file")

	explicit := filepath.Join(dir, "flag.db")
	out, err = capflow(t, "data", "import", "--config", cfgFile, "--store-path", explicit, data)
	require.NoError(t, err)
	assert.Contains(t, out, explicit, "a flag beats both")

	_, err = capflow(t, "data", "import", "--format", "csv", data)
	assert.ErrorContains(t, err, `unknown --format "csv"`)
}

func TestDBMigrateAndStatus(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	schema := fmt.Sprintf("capflow_cli_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err == nil {
			_, _ = conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			conn.Close(context.Background())
		}
	})
	common := []string{"--database-url", dsn, "--schema", schema, "--text-dim", "8", "--graph-dim", "4"}

	_, err := capflow(t, append([]string{"db", "status"}, common...)...)
	require.Error(t, err, "status before migrate")

	out, err := capflow(t, append([]string{"db", "migrate"}, common...)...)
	require.NoError(t, err)
	assert.Contains(t, out, "VERSION")
	assert.NotContains(t, out, "pending")

	out, err = capflow(t, append([]string{"db", "migrate"}, common...)...)
	require.NoError(t, err, "migrate twice")
	out2, err := capflow(t, append([]string{"db", "status"}, common...)...)
	require.NoError(t, err)
	assert.Equal(t, out, out2)

	out, err = capflow(t, append(append([]string{"data", "import"}, common...), filepath.Join("..", "..", "featurestore", "testdata", "dataset"))...)
	require.NoError(t, err)
	assert.Contains(t, out, "into postgres")
}
