package integration

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"
	pgxvec "github.com/pgvector/pgvector-go/pgx"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	ort "github.com/yalue/onnxruntime_go"

	"github.com/capflow/capflow/internal/testenv"
)

// The feature store (later issues) needs pgvector's operators, not only the
// extension's presence: check a real nearest-neighbour query.
func TestPostgresWithPgvector(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		testenv.Missing(t, "PostgreSQL at CAPFLOW_PG_DSN: %v", err)
	}
	defer conn.Close(ctx)
	var version string
	require.NoError(t, conn.QueryRow(ctx, "SELECT extversion FROM pg_extension WHERE extname = 'vector'").Scan(&version))
	assert.NotEmpty(t, version)
	require.NoError(t, pgxvec.RegisterTypes(ctx, conn))

	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // rollback after the checks leaves nothing behind
	_, err = tx.Exec(ctx, "CREATE TEMP TABLE items (id int, embedding vector(3)) ON COMMIT DROP")
	require.NoError(t, err)
	for i, v := range [][]float32{{1, 0, 0}, {0, 1, 0}, {0.9, 0.1, 0}} {
		_, err = tx.Exec(ctx, "INSERT INTO items VALUES ($1, $2)", i, pgvector.NewVector(v))
		require.NoError(t, err)
	}
	rows, err := tx.Query(ctx, "SELECT id FROM items ORDER BY embedding <=> $1 LIMIT 2", pgvector.NewVector([]float32{1, 0.05, 0}))
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	assert.Equal(t, []int{0, 2}, ids, "cosine nearest neighbours")
}

func TestRedis(t *testing.T) {
	addr := testenv.RedisAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		testenv.Missing(t, "Redis at %s: %v", addr, err)
	}
	key := testenv.Name(t, "capflow-test")
	require.NoError(t, rdb.Set(ctx, key, "v", time.Minute).Err())
	got, err := rdb.Get(ctx, key).Result()
	require.NoError(t, err)
	assert.Equal(t, "v", got)
	require.NoError(t, rdb.Del(ctx, key).Err())
}

// ONNX Runtime from the npm package must be new enough for onnxruntime_go
// (API version 24, ORT >= 1.24) and must run a session.
func TestONNXRuntimeLoads(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	ort.SetSharedLibraryPath(lib)
	require.NoError(t, ort.InitializeEnvironment())
	defer ort.DestroyEnvironment() //nolint:errcheck
	v := ort.GetVersion()
	assert.NotEmpty(t, v)
	t.Logf("ONNX Runtime %s", v)
}
