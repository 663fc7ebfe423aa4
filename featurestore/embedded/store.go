// Package embedded is capflow's zero-setup feature store: one file on local
// disk, no server to install. It is what the CLI uses when no DATABASE_URL is
// set.
//
// The file is a bbolt database: a B+tree in one memory-mapped file with
// serialisable ACID transactions, fsynced on every commit, so a process
// killed at any point leaves the file as of its last committed transaction.
// WriteDataset is one transaction (all of a dataset or none of it); so is
// each batch of feature rows or experiences. One process at a time opens the
// file (bbolt holds an exclusive file lock).
//
// Records (tools, capabilities, queries, experiences) are stored as JSON:
// they are small, their JSON shape is already the interchange format, and a
// field added later decodes old values without a migration. Feature rows,
// intent features, cached embeddings and experiences' intent embeddings are
// featurestore/internal/codec's compact binary encoding (the cache's Redis
// values are the same): a 1024-d embedding is 4 KB that way against ~11 KB
// as JSON text, and decoding is a copy rather than float parsing, which
// matters when NearestCapabilities loads every text or hybrid embedding.
//
// Experiences get an auto-increment id and two index buckets — by time and by
// session — so window, session and usage queries read only the keys in
// range. NearestCapabilities is an exact brute-force cosine scan over the
// text or hybrid embeddings, which at catalog scale (thousands of
// capabilities) takes well under a millisecond per thousand rows; each
// space's decoded vectors are cached in memory, loaded on its first search
// and dropped whenever feature rows are written.
package embedded

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/capflow/capflow/featurestore"
)

var _ featurestore.Store = (*Store)(nil)

// Bucket names. Keys are ids unless noted.
var (
	bucketMeta        = []byte("meta")
	bucketTools       = []byte("tools")
	bucketCaps        = []byte("capabilities")
	bucketQueries     = []byte("queries")
	bucketExps        = []byte("experiences")            // big-endian uint64 id → JSON
	bucketExpsByTime  = []byte("experiences_by_time")    // timeKey+id → selected capability
	bucketExpsBySess  = []byte("experiences_by_session") // session 0x00 timeKey+id → nil
	bucketExpsByHash  = []byte("experiences_by_hash")    // SHA-256 of the record → id
	bucketFeatures    = []byte("capability_features")
	bucketIntents     = []byte("intent_features")
	bucketEmbeddings  = []byte("embedding_cache") // model 0x00 version 0x00 hash → vector
	allBuckets        = [][]byte{bucketMeta, bucketTools, bucketCaps, bucketQueries, bucketExps, bucketExpsByTime, bucketExpsBySess, bucketExpsByHash, bucketFeatures, bucketIntents, bucketEmbeddings}
	metaKeyDims       = []byte("dims")
	metaKeyFormat     = []byte("format")
	currentFileFormat = []byte("2") // changes with the buckets or codec.Version; Open refuses other formats
)

// Store is the embedded backend. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	cfg  featurestore.Config
	path string

	// ann caches the decoded embeddings of each space for
	// NearestCapabilities. annGen counts feature writes, so a scan that
	// raced a write does not install a stale cache.
	annMu  sync.Mutex
	ann    map[featurestore.Space][]annRow
	annGen uint64
}

// dims is what fixes the file's vector layout; it is stored at creation.
type dims struct {
	TextDim   int `json:"text_dim"`
	GraphDim  int `json:"graph_dim"`
	HybridDim int `json:"hybrid_dim"`
}

// ConfigMismatchError is returned by Open when the file was created with
// other vector dimensions than cfg asks for: its stored vectors could not be
// compared with the new ones.
type ConfigMismatchError struct {
	Path                          string
	StoredTextDim, StoredGraphDim int
	StoredHybridDim               int
	WantTextDim, WantGraphDim     int
	WantHybridDim                 int
}

func (e *ConfigMismatchError) Error() string {
	return fmt.Sprintf("embedded: %s was created with text/graph/hybrid dims %d/%d/%d, config asks for %d/%d/%d",
		e.Path, e.StoredTextDim, e.StoredGraphDim, e.StoredHybridDim, e.WantTextDim, e.WantGraphDim, e.WantHybridDim)
}

// lockTimeout bounds the wait for another process's lock on the file.
const lockTimeout = 2 * time.Second

// Open opens (creating it and its folder if needed) the store file at path.
// Zero fields of cfg take their defaults; a file created with other vector
// dimensions is refused with a *ConfigMismatchError.
func Open(path string, cfg featurestore.Config) (*Store, error) {
	cfg = cfg.WithDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("embedded: create folder: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("embedded: open %s: another process holds it: %w", path, err)
		}
		return nil, fmt.Errorf("embedded: open %s: %w", path, err)
	}
	want := dims{TextDim: cfg.TextDim, GraphDim: cfg.GraphDim, HybridDim: cfg.HybridDim}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if f := meta.Get(metaKeyFormat); f != nil && string(f) != string(currentFileFormat) {
			return fmt.Errorf("embedded: %s has file format %q, this build reads %q", path, f, currentFileFormat)
		}
		if raw := meta.Get(metaKeyDims); raw != nil {
			var got dims
			if err := json.Unmarshal(raw, &got); err != nil {
				return fmt.Errorf("embedded: %s: corrupt dims: %w", path, err)
			}
			if got != want {
				return &ConfigMismatchError{Path: path,
					StoredTextDim: got.TextDim, StoredGraphDim: got.GraphDim, StoredHybridDim: got.HybridDim,
					WantTextDim: want.TextDim, WantGraphDim: want.GraphDim, WantHybridDim: want.HybridDim}
			}
			return nil
		}
		raw, _ := json.Marshal(want)
		if err := meta.Put(metaKeyDims, raw); err != nil {
			return err
		}
		return meta.Put(metaKeyFormat, currentFileFormat)
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, cfg: cfg, path: path}, nil
}

// DefaultPath is where OpenDefault keeps the store:
// $XDG_DATA_HOME/capflow/store.db, else ~/.local/share/capflow/store.db.
func DefaultPath() (string, error) {
	if dir := os.Getenv("XDG_DATA_HOME"); dir != "" && filepath.IsAbs(dir) {
		return filepath.Join(dir, "capflow", "store.db"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("embedded: no data folder: %w", err)
	}
	return filepath.Join(home, ".local", "share", "capflow", "store.db"), nil
}

// OpenDefault opens the store at DefaultPath: the zero-setup path.
func OpenDefault(cfg featurestore.Config) (*Store, error) {
	path, err := DefaultPath()
	if err != nil {
		return nil, err
	}
	return Open(path, cfg)
}

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// Close closes the file. Calling it again is harmless.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("embedded: close: %w", err)
	}
	return nil
}
