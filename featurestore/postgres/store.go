// Package postgres is the PostgreSQL + pgvector backend of featurestore: a
// pgx pool, versioned migrations embedded in the binary, COPY-based bulk
// upserts and HNSW indexes for ANN search over text and hybrid embeddings.
//
// It lives in its own package so featurestore itself does not depend on pgx.
//
// Notes on behaviour:
//   - All tables live in one schema (WithSchema), first on every
//     connection's search_path; the pgvector extension is found after it.
//   - Timestamps are stored with PostgreSQL's microsecond precision (finer
//     parts are truncated) and read back in UTC.
//   - Experiences have no natural id; (session_id, ts, selected_capability,
//     intent) is unique, and writing an experience equal in those fields to a
//     stored one is a no-op. That makes re-imports and retried appends safe.
//   - Every operation is one idempotent transaction, retried after a lost
//     connection (see Store.do), so a Postgres restart costs a retry, not an
//     error.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	pgxvec "github.com/pgvector/pgvector-go/pgx"

	"github.com/capflow/capflow/featurestore"
)

var _ featurestore.Store = (*Store)(nil)

// Store is the PostgreSQL feature store. It is safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	connCfg *pgx.ConnConfig // for the migrator's own connection
	cfg     featurestore.Config
	schema  string
	log     *slog.Logger
}

// Option configures Open.
type Option func(*options)

type options struct {
	schema      string
	skipMigrate bool
	logger      *slog.Logger
	poolConfig  func(*pgxpool.Config)
}

// WithSchema keeps the store's tables in schema (default "public"), created
// when missing. Every connection's search_path starts with it.
func WithSchema(schema string) Option { return func(o *options) { o.schema = schema } }

// SkipMigrations opens the store without applying pending migrations (the
// recorded dimensions are still checked).
func SkipMigrations() Option { return func(o *options) { o.skipMigrate = true } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithPoolConfig lets the caller adjust the pool configuration (sizes,
// lifetimes) before the pool is created.
func WithPoolConfig(f func(*pgxpool.Config)) Option { return func(o *options) { o.poolConfig = f } }

// Open connects to dsn, applies pending migrations (unless SkipMigrations)
// and checks that the store was created with cfg's vector dimensions (a
// *DimsMismatchError when not).
func Open(ctx context.Context, dsn string, cfg featurestore.Config, opts ...Option) (*Store, error) {
	o := options{schema: "public", logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.schema == "" {
		return nil, errors.New("featurestore/postgres: empty schema name")
	}
	cfg = cfg.WithDefaults()
	// pgvector's limits: 16,000 dimensions for a vector column, 2,000 for one
	// with an HNSW index (hybrid_embedding; text_embedding is indexed when
	// it fits, see annIndexes).
	if cfg.TextDim < 1 || cfg.TextDim > 16000 || cfg.GraphDim < 1 || cfg.GraphDim > 16000 || cfg.HybridDim < 1 || cfg.HybridDim > 2000 {
		return nil, fmt.Errorf("featurestore/postgres: bad dimensions text=%d graph=%d hybrid=%d (text and graph must be 1..16000, hybrid 1..2000)",
			cfg.TextDim, cfg.GraphDim, cfg.HybridDim)
	}

	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("featurestore/postgres: parse dsn: %w", err)
	}
	// The extension's types live in public (or wherever it was installed
	// before), so public stays on the path after the store's schema.
	searchPath := pgx.Identifier{o.schema}.Sanitize()
	if o.schema != "public" {
		searchPath += ", public"
	}
	pcfg.ConnConfig.RuntimeParams["search_path"] = searchPath
	pcfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	pcfg.AfterConnect = pgxvec.RegisterTypes
	if o.poolConfig != nil {
		o.poolConfig(pcfg)
	}
	s := &Store{connCfg: pcfg.ConnConfig.Copy(), cfg: cfg, schema: o.schema, log: o.logger}

	if !o.skipMigrate {
		if err := s.Migrate(ctx); err != nil {
			return nil, err
		}
	}
	// The pool connects lazily; a connection of its own checks the dims so
	// a mismatch is reported before any pooled connection exists.
	conn, err := pgx.ConnectConfig(ctx, s.connCfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("featurestore/postgres: connect: %w", err)
	}
	err = s.checkDims(ctx, conn)
	conn.Close(context.WithoutCancel(ctx))
	if err != nil {
		return nil, err
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return nil, fmt.Errorf("featurestore/postgres: pool: %w", err)
	}
	return s, nil
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Schema is the schema the store's tables live in.
func (s *Store) Schema() string { return s.schema }

// Pool exposes the underlying pool for maintenance and tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// do runs op, retrying when the connection was lost (Postgres restarted,
// backends terminated, failover). Every operation of the store is one
// transaction and idempotent (upserts; experiences dedupe on their key), so
// running it again is safe. The pool is reset first: a restart kills every
// pooled connection, and pgxpool only pings connections idle for a while.
func (s *Store) do(ctx context.Context, op func(ctx context.Context) error) error {
	const attempts = 5
	backoff := 50 * time.Millisecond
	var err error
	for i := 0; i < attempts; i++ {
		if err = op(ctx); err == nil || !connLost(err) || ctx.Err() != nil {
			return err
		}
		s.log.Warn("featurestore: lost the PostgreSQL connection; retrying", "attempt", i+1, "err", err)
		s.pool.Reset()
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	return err
}

// connLost reports whether err means the connection (not the statement)
// failed.
func connLost(err error) bool {
	if pgconn.SafeToRetry(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		}
		return len(pgErr.Code) == 5 && pgErr.Code[:2] == "08" // connection exception
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
