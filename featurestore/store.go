package featurestore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config sizes the store. Vector dimensions are configuration, not constants:
// the text embedding is 1024-d for BGE-M3, 384-d for MiniLM.
type Config struct {
	TextDim    int // text embedding dimension (default 1024)
	GraphDim   int // Node2Vec dimension (default 64)
	HybridDim  int // hybrid embedding dimension (default TextDim)
	MaxTextLen int // longest name/description/intent in bytes (default 16384)
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.TextDim == 0 {
		c.TextDim = 1024
	}
	if c.GraphDim == 0 {
		c.GraphDim = 64
	}
	if c.HybridDim == 0 {
		c.HybridDim = c.TextDim
	}
	if c.MaxTextLen == 0 {
		c.MaxTextLen = 16384
	}
	return c
}

// Dataset is what one import writes, all or nothing. Capabilities' Level is
// computed by Validate.
type Dataset struct {
	Tools        []Tool
	Capabilities []Capability
	Experiences  []Experience
	Queries      []Query
}

// Space names the capability embedding an ANN search compares a query
// with.
type Space string

const (
	// SpaceText is the capabilities' text embeddings (Config.TextDim): the
	// space an intent's own embedding lives in, so the one to search with
	// an intent. On Seal-Tools it finds the relevant capability in the top
	// 200 for ~90% of test queries, against ~72% for SpaceHybrid.
	SpaceText Space = "text"
	// SpaceHybrid is the hybrid embeddings (Config.HybridDim): text mixed
	// with the capability's projected graph embedding, a space no intent
	// embedding is in; for searching with capability-like vectors.
	SpaceHybrid Space = "hybrid"
)

// Dim is the dimension of space's vectors under c, or 0 for an unknown
// space.
func (c Config) Dim(space Space) int {
	switch space {
	case SpaceText:
		return c.TextDim
	case SpaceHybrid:
		return c.HybridDim
	}
	return 0
}

// EmbeddingKey identifies a cached text embedding: unchanged text under the
// same model is never encoded twice.
type EmbeddingKey struct {
	Model, ModelVersion string
	TextHash            string // hex SHA-256 of the text
}

// Store is everything the pipeline reads and writes. Both backends
// (postgres, embedded) pass the same contract tests (storetest).
type Store interface {
	// WriteDataset validates d (ids, members, cycles, enums, vectors) and
	// upserts it in one transaction: all of it or none. Writing the same
	// dataset twice leaves the store as after the first write.
	WriteDataset(ctx context.Context, d *Dataset) error
	Tools(ctx context.Context) ([]Tool, error)
	Capabilities(ctx context.Context) ([]Capability, error)
	// CapabilitiesByID returns the capabilities in ids' order, in one round
	// trip; an unknown id is a *NotFoundError naming it.
	CapabilitiesByID(ctx context.Context, ids []string) ([]Capability, error)
	Queries(ctx context.Context) ([]Query, error)

	UpsertCapabilityFeatures(ctx context.Context, rows []CapabilityFeatures) error
	// CapabilityFeatures reads a batch of rows in one round trip, in ids' order.
	CapabilityFeatures(ctx context.Context, ids []string) ([]CapabilityFeatures, error)
	// NearestCapabilities returns the k capabilities whose embeddings in
	// space are nearest query by cosine distance, nearest first; rows
	// without an embedding in that space are not candidates. An unknown
	// space, or a query of the wrong dimension, non-finite or zero, is a
	// *RecordError.
	NearestCapabilities(ctx context.Context, space Space, query []float32, k int) ([]Neighbor, error)

	PutIntentFeatures(ctx context.Context, f IntentFeatures) error
	IntentFeatures(ctx context.Context, intentHash string) (*IntentFeatures, error)
	PutEmbedding(ctx context.Context, key EmbeddingKey, vec []float32) error
	Embedding(ctx context.Context, key EmbeddingKey) ([]float32, error)

	AppendExperiences(ctx context.Context, exps ...Experience) error
	ExperiencesBetween(ctx context.Context, from, to time.Time) ([]Experience, error)
	ExperiencesBySession(ctx context.Context, sessionID string) ([]Experience, error)
	// UsageCounts counts experiences per selected capability in the 1, 7 and
	// 30 days before now.
	UsageCounts(ctx context.Context, now time.Time) (map[string]Usage, error)

	Close() error
}

// NotFoundError says which record does not exist.
type NotFoundError struct {
	Kind string // "capability", "capability features", "intent features", "embedding", ...
	ID   string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("featurestore: %s %q not found", e.Kind, e.ID)
}

// IsNotFound reports whether err is a *NotFoundError.
func IsNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}

// RecordError is bad input, naming the record and what is wrong with it.
// Where records come from a file, File and Line say where.
type RecordError struct {
	File   string
	Line   int
	Kind   string // "tool", "capability", "experience", "query", "capability features", ...
	ID     string
	Field  string
	Reason string
}

func (e *RecordError) Error() string {
	where := ""
	if e.File != "" {
		where = fmt.Sprintf("%s:%d: ", e.File, e.Line)
	}
	id := ""
	if e.ID != "" {
		id = fmt.Sprintf(" %q", e.ID)
	}
	field := ""
	if e.Field != "" {
		field = " " + e.Field
	}
	return fmt.Sprintf("featurestore: %s%s%s%s: %s", where, e.Kind, id, field, e.Reason)
}

// ValidationErrors is every problem found in a dataset, so an import reports
// all bad lines at once.
type ValidationErrors []*RecordError

func (v ValidationErrors) Error() string {
	if len(v) == 1 {
		return v[0].Error()
	}
	msg := fmt.Sprintf("featurestore: %d invalid records:", len(v))
	for i, e := range v {
		if i == 20 {
			msg += fmt.Sprintf("\n  ... and %d more", len(v)-20)
			break
		}
		msg += "\n  " + e.Error()
	}
	return msg
}

// Unwrap lets errors.As find the *RecordError inside (the first one).
func (v ValidationErrors) Unwrap() []error {
	out := make([]error, len(v))
	for i, e := range v {
		out[i] = e
	}
	return out
}

// QueriesWithPrefix returns the store's queries whose id starts with prefix
// (a split of a dataset: Seal-Tools' "dev-", "test_in_domain-"). None is a
// *NotFoundError naming the prefix.
func QueriesWithPrefix(ctx context.Context, s Store, prefix string) ([]Query, error) {
	all, err := s.Queries(ctx)
	if err != nil {
		return nil, err
	}
	var qs []Query
	for _, q := range all {
		if strings.HasPrefix(q.ID, prefix) {
			qs = append(qs, q)
		}
	}
	if len(qs) == 0 {
		return nil, &NotFoundError{Kind: "query with id prefix", ID: prefix}
	}
	return qs, nil
}
