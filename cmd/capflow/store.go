package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/featurestore/postgres"
)

// storeFlags are the feature store's settings, shared by every command that
// opens the store.
type storeFlags struct {
	databaseURL string
	storePath   string
	schema      string
	cfg         featurestore.Config
}

func newStoreFlags(fs *flag.FlagSet) *storeFlags {
	s := &storeFlags{}
	fs.String("config", "", "config file of \"flag-name value\" lines")
	fs.StringVar(&s.databaseURL, "database-url", "", "PostgreSQL URL of the feature store (default $DATABASE_URL; empty: the embedded store)")
	fs.StringVar(&s.storePath, "store-path", "", "file of the embedded store (default under $XDG_DATA_HOME/capflow)")
	fs.StringVar(&s.schema, "schema", "", "PostgreSQL schema (default public)")
	fs.IntVar(&s.cfg.TextDim, "text-dim", 1024, "text embedding dimension (1024 for BGE-M3)")
	fs.IntVar(&s.cfg.GraphDim, "graph-dim", 64, "Node2Vec embedding dimension")
	fs.IntVar(&s.cfg.HybridDim, "hybrid-dim", 0, "hybrid embedding dimension (default: text-dim)")
	return s
}

// open returns the PostgreSQL store when a database URL is configured, else
// the embedded store: zero setup by default.
func (s *storeFlags) open(ctx context.Context) (featurestore.Store, string, error) {
	return s.openWith(ctx, s.cfg)
}

// openWith opens the store with cfg in place of the flags' dimensions.
func (s *storeFlags) openWith(ctx context.Context, cfg featurestore.Config) (featurestore.Store, string, error) {
	cfg = cfg.WithDefaults()
	url := s.databaseURL
	if url == "" {
		url = os.Getenv("DATABASE_URL")
	}
	if url != "" {
		var opts []postgres.Option
		if s.schema != "" {
			opts = append(opts, postgres.WithSchema(s.schema))
		}
		st, err := postgres.Open(ctx, url, cfg, opts...)
		if err != nil {
			return nil, "", fmt.Errorf("open PostgreSQL store: %w", err)
		}
		return st, "postgres", nil
	}
	var (
		st  *embedded.Store
		err error
	)
	if s.storePath != "" {
		st, err = embedded.Open(s.storePath, cfg)
	} else {
		st, err = embedded.OpenDefault(cfg)
	}
	if err != nil {
		return nil, "", fmt.Errorf("open embedded store: %w", err)
	}
	return st, "embedded " + st.Path(), nil
}
