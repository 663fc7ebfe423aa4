package postgres

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capflow/capflow/featurestore"
)

// Migrations are numbered files NNNN_name.sql, text/templates filled with the
// store's vector dimensions, applied in order, one transaction each.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrateLockKey is the pg_advisory_lock key every capflow migrator takes, so
// concurrent migrators (several replicas starting at once) run one at a time.
// It is global rather than per schema because CREATE EXTENSION is global.
const migrateLockKey int64 = 0x6361_7066_6c6f_7701 // "capflow" + 1

// migration is one embedded migration file.
type migration struct {
	Version int
	Name    string
	tmpl    *template.Template
}

// MigrationStatus is one migration and whether (and when) it was applied.
type MigrationStatus struct {
	Version   int
	Name      string
	Applied   bool
	AppliedAt time.Time // zero unless Applied
}

// DimsMismatchError says the store was created with other vector dimensions
// than the configuration asks for; reopening it would corrupt the schema's
// CHECKs and indexes, so Open refuses.
type DimsMismatchError struct {
	Schema                                string
	StoredText, StoredGraph, StoredHybrid int
	WantText, WantGraph, WantHybrid       int
}

func (e *DimsMismatchError) Error() string {
	return fmt.Sprintf("featurestore/postgres: schema %q was created with dims text=%d graph=%d hybrid=%d, config asks for text=%d graph=%d hybrid=%d",
		e.Schema, e.StoredText, e.StoredGraph, e.StoredHybrid, e.WantText, e.WantGraph, e.WantHybrid)
}

// loadMigrations parses the embedded files, sorted by version.
func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int]string{}
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".sql")
		num, label, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", name)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, name, v)
		}
		seen[v] = name
		text, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		t, err := template.New(base).Option("missingkey=error").Parse(string(text))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		ms = append(ms, migration{Version: v, Name: label, tmpl: t})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// render fills a migration with the store's dimensions.
func (m migration) render(cfg featurestore.Config) (string, error) {
	var b bytes.Buffer
	if err := m.tmpl.Execute(&b, cfg); err != nil {
		return "", fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
	}
	return b.String(), nil
}

// qualified names a table of the store's schema, independent of search_path.
func (s *Store) qualified(table string) string {
	return pgx.Identifier{s.schema, table}.Sanitize()
}

// Migrate applies every pending migration. It is safe to run twice and
// concurrently: migrators serialise on an advisory lock, and each migration
// is applied, and recorded in schema_migrations, in one transaction.
//
// Migrate uses a connection of its own, outside the pool, because the pool's
// connections register the pgvector types on connect, which needs the
// extension the first migration creates.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, s.connCfg.Copy())
	if err != nil {
		return fmt.Errorf("featurestore/postgres: migrate: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return fmt.Errorf("featurestore/postgres: migrate: lock: %w", err)
	}
	// Closing the connection releases the lock too; unlocking explicitly
	// lets the next migrator go as soon as we are done.
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLockKey) //nolint:errcheck

	bootstrap := fmt.Sprintf(`CREATE SCHEMA IF NOT EXISTS %s;
CREATE TABLE IF NOT EXISTS %s (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`, pgx.Identifier{s.schema}.Sanitize(), s.qualified("schema_migrations"))
	if _, err := conn.Exec(ctx, bootstrap); err != nil {
		return fmt.Errorf("featurestore/postgres: migrate: bootstrap schema %q: %w", s.schema, err)
	}
	if err := s.checkDims(ctx, conn); err != nil && !errors.Is(err, errNoMeta) {
		return err
	}

	applied, err := s.applied(ctx, conn)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if _, ok := applied[m.Version]; ok {
			continue
		}
		sql, err := m.render(s.cfg)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+s.qualified("schema_migrations")+" (version, name) VALUES ($1, $2)", m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("featurestore/postgres: migration %04d_%s: %w", m.Version, m.Name, err)
		}
		s.log.Info("featurestore: applied migration", "schema", s.schema, "version", m.Version, "name", m.Name)
	}
	return nil
}

// Status lists every embedded migration and whether it has been applied.
func (s *Store) Status(ctx context.Context) ([]MigrationStatus, error) {
	ms, err := loadMigrations()
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, s.connCfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("featurestore/postgres: status: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	applied, err := s.applied(ctx, conn)
	if err != nil {
		return nil, err
	}
	out := make([]MigrationStatus, len(ms))
	for i, m := range ms {
		at, ok := applied[m.Version]
		out[i] = MigrationStatus{Version: m.Version, Name: m.Name, Applied: ok, AppliedAt: at}
	}
	return out, nil
}

// applied reads schema_migrations; a missing table means nothing applied.
func (s *Store) applied(ctx context.Context, conn *pgx.Conn) (map[int]time.Time, error) {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", s.qualified("schema_migrations")).Scan(&exists); err != nil {
		return nil, fmt.Errorf("featurestore/postgres: read migrations: %w", err)
	}
	applied := map[int]time.Time{}
	if !exists {
		return applied, nil
	}
	rows, err := conn.Query(ctx, "SELECT version, applied_at FROM "+s.qualified("schema_migrations"))
	if err != nil {
		return nil, fmt.Errorf("featurestore/postgres: read migrations: %w", err)
	}
	var (
		v  int
		at time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&v, &at}, func() error {
		applied[v] = at.UTC()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("featurestore/postgres: read migrations: %w", err)
	}
	return applied, nil
}

// errNoMeta says the schema has not been migrated yet.
var errNoMeta = errors.New("featurestore/postgres: store not migrated (no store_meta table)")

// checkDims compares the dimensions recorded at creation with s.cfg.
func (s *Store) checkDims(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) error {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", s.qualified("store_meta")).Scan(&exists); err != nil {
		return fmt.Errorf("featurestore/postgres: read store_meta: %w", err)
	}
	if !exists {
		return fmt.Errorf("schema %q: %w", s.schema, errNoMeta)
	}
	e := DimsMismatchError{Schema: s.schema, WantText: s.cfg.TextDim, WantGraph: s.cfg.GraphDim, WantHybrid: s.cfg.HybridDim}
	err := q.QueryRow(ctx, "SELECT text_dim, graph_dim, hybrid_dim FROM "+s.qualified("store_meta")).Scan(&e.StoredText, &e.StoredGraph, &e.StoredHybrid)
	if err != nil {
		return fmt.Errorf("featurestore/postgres: read store_meta: %w", err)
	}
	if e.StoredText != e.WantText || e.StoredGraph != e.WantGraph || e.StoredHybrid != e.WantHybrid {
		return &e
	}
	return nil
}
