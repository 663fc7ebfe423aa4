package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"

	"github.com/capflow/capflow/featurestore"
)

// Reads return lists ordered by id (experiences by timestamp), timestamps in
// UTC, and empty id lists as nil.

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func slice(v *pgvector.Vector) []float32 {
	if v == nil {
		return nil
	}
	return v.Slice()
}

// Tools returns every tool, by id.
func (s *Store) Tools(ctx context.Context) ([]featurestore.Tool, error) {
	var out []featurestore.Tool
	err := s.do(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, "SELECT id, name, description, input_schema FROM tools ORDER BY id")
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (featurestore.Tool, error) {
			var t featurestore.Tool
			var schema []byte
			err := r.Scan(&t.ID, &t.Name, &t.Description, &schema)
			if len(schema) > 0 {
				t.InputSchema = schema
			}
			return t, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("featurestore/postgres: tools: %w", err)
	}
	return out, nil
}

// capabilitySelect reads capabilities with their members (in order) in one
// statement.
const capabilitySelect = `SELECT c.id, c.name, c.description, c.level, c.success_rate, c.avg_execution_time_ms,
    coalesce((SELECT array_agg(m.member_id ORDER BY m.position) FROM capability_members m WHERE m.capability_id = c.id), '{}')
FROM capabilities c`

func scanCapability(r pgx.CollectableRow) (featurestore.Capability, error) {
	var c featurestore.Capability
	err := r.Scan(&c.ID, &c.Name, &c.Description, &c.Level, &c.SuccessRate, &c.AvgExecutionTimeMs, &c.Members)
	c.Members = nilIfEmpty(c.Members)
	return c, err
}

// Capabilities returns every capability with its members, by id.
func (s *Store) Capabilities(ctx context.Context) ([]featurestore.Capability, error) {
	var out []featurestore.Capability
	err := s.do(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, capabilitySelect+" ORDER BY c.id")
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanCapability)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("featurestore/postgres: capabilities: %w", err)
	}
	return out, nil
}

// CapabilitiesByID returns the capabilities in ids' order, in one round
// trip; an unknown id is a *featurestore.NotFoundError naming the first.
func (s *Store) CapabilitiesByID(ctx context.Context, ids []string) ([]featurestore.Capability, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var found []featurestore.Capability
	err := s.do(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, capabilitySelect+" WHERE c.id = ANY($1)", ids)
		if err != nil {
			return err
		}
		found, err = pgx.CollectRows(rows, scanCapability)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("featurestore/postgres: capabilities by id: %w", err)
	}
	return inOrder(ids, found, func(c featurestore.Capability) string { return c.ID }, "capability")
}

// inOrder arranges found in ids' order (ids may repeat).
func inOrder[T any](ids []string, found []T, id func(T) string, kind string) ([]T, error) {
	byID := make(map[string]int, len(found))
	for i, f := range found {
		byID[id(f)] = i
	}
	out := make([]T, len(ids))
	for i, want := range ids {
		j, ok := byID[want]
		if !ok {
			return nil, &featurestore.NotFoundError{Kind: kind, ID: want}
		}
		out[i] = found[j]
	}
	return out, nil
}

// Queries returns every evaluation query, by id.
func (s *Store) Queries(ctx context.Context) ([]featurestore.Query, error) {
	var out []featurestore.Query
	err := s.do(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, "SELECT id, intent, context_tools, relevant, calls, ts FROM queries ORDER BY id")
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (featurestore.Query, error) {
			var q featurestore.Query
			err := r.Scan(&q.ID, &q.Intent, &q.ContextTools, &q.Relevant, &q.Calls, &q.Timestamp)
			q.ContextTools, q.Calls = nilIfEmpty(q.ContextTools), nilIfEmpty(q.Calls)
			if q.Timestamp != nil {
				t := q.Timestamp.UTC()
				q.Timestamp = &t
			}
			return q, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("featurestore/postgres: queries: %w", err)
	}
	return out, nil
}

// CapabilityFeatures reads a batch of feature rows in one round trip, in
// ids' order; an unknown id is a *featurestore.NotFoundError naming the first.
func (s *Store) CapabilityFeatures(ctx context.Context, ids []string) ([]featurestore.CapabilityFeatures, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var found []featurestore.CapabilityFeatures
	err := s.do(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, "SELECT "+featureColList+" FROM capability_features WHERE capability_id = ANY($1)", ids)
		if err != nil {
			return err
		}
		found, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (featurestore.CapabilityFeatures, error) {
			var f featurestore.CapabilityFeatures
			var text, n2v, hybrid *pgvector.Vector
			err := r.Scan(&f.CapabilityID, &text, &n2v, &hybrid, &f.ToolCount, &f.AvgExecutionTimeMs, &f.SuccessRate,
				&f.UsageCount1d, &f.UsageCount7d, &f.UsageCount30d, &f.PageRank, &f.ClusteringCoefficient,
				&f.FeatureVersion, &f.ComputedAt)
			f.TextEmbedding, f.N2VEmbedding, f.HybridEmbedding = slice(text), slice(n2v), slice(hybrid)
			f.ComputedAt = f.ComputedAt.UTC()
			return f, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("featurestore/postgres: capability features: %w", err)
	}
	return inOrder(ids, found, func(f featurestore.CapabilityFeatures) string { return f.CapabilityID }, "capability features")
}

// spaceColumn is the capability_features column of a space's embeddings
// ("" for an unknown space, which CheckQueryVector rejects first).
func spaceColumn(space featurestore.Space) string {
	switch space {
	case featurestore.SpaceText:
		return "text_embedding"
	case featurestore.SpaceHybrid:
		return "hybrid_embedding"
	}
	return ""
}

// NearestCapabilities returns the k capabilities whose embeddings in space
// are nearest query by cosine distance, nearest first, using the space's
// HNSW index (an exact scan for text embeddings too wide for one).
// hnsw.ef_search (the candidate list size, default 40) is raised to at
// least 2k so the index can return k good results.
func (s *Store) NearestCapabilities(ctx context.Context, space featurestore.Space, query []float32, k int) ([]featurestore.Neighbor, error) {
	if err := s.cfg.CheckQueryVector(space, query); err != nil {
		return nil, err
	}
	if k <= 0 {
		return nil, nil
	}
	col := spaceColumn(space)
	efSearch := min(max(40, 2*k), 1000) // pgvector's bounds are 1..1000
	var out []featurestore.Neighbor
	err := s.do(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT set_config('hnsw.ef_search', $1, true)", fmt.Sprint(efSearch)); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, "SELECT capability_id, "+col+" <=> $1 AS distance FROM capability_features WHERE "+
				col+" IS NOT NULL ORDER BY "+col+" <=> $1 LIMIT $2", pgvector.NewVector(query), k)
			if err != nil {
				return err
			}
			out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (featurestore.Neighbor, error) {
				var n featurestore.Neighbor
				err := r.Scan(&n.CapabilityID, &n.Distance)
				return n, err
			})
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("featurestore/postgres: nearest capabilities in %s: %w", space, err)
	}
	return out, nil
}

// IntentFeatures reads a cached intent embedding; a miss is a
// *featurestore.NotFoundError.
func (s *Store) IntentFeatures(ctx context.Context, intentHash string) (*featurestore.IntentFeatures, error) {
	f := featurestore.IntentFeatures{IntentHash: intentHash}
	var v pgvector.Vector
	err := s.do(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, "SELECT embedding, context_tools, created_at FROM intent_features WHERE intent_hash = $1", intentHash).
			Scan(&v, &f.ContextTools, &f.CreatedAt)
	})
	if err == pgx.ErrNoRows {
		return nil, &featurestore.NotFoundError{Kind: "intent features", ID: intentHash}
	}
	if err != nil {
		return nil, fmt.Errorf("featurestore/postgres: intent features %q: %w", intentHash, err)
	}
	f.Embedding = v.Slice()
	f.ContextTools = nilIfEmpty(f.ContextTools)
	f.CreatedAt = f.CreatedAt.UTC()
	return &f, nil
}

// Embedding reads a cached text embedding; a miss is a
// *featurestore.NotFoundError.
func (s *Store) Embedding(ctx context.Context, key featurestore.EmbeddingKey) ([]float32, error) {
	var v pgvector.Vector
	err := s.do(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, "SELECT embedding FROM embedding_cache WHERE model = $1 AND model_version = $2 AND text_hash = $3",
			key.Model, key.ModelVersion, key.TextHash).Scan(&v)
	})
	id := key.Model + "/" + key.ModelVersion + "/" + key.TextHash
	if err == pgx.ErrNoRows {
		return nil, &featurestore.NotFoundError{Kind: "embedding", ID: id}
	}
	if err != nil {
		return nil, fmt.Errorf("featurestore/postgres: embedding %s: %w", id, err)
	}
	return v.Slice(), nil
}

const experienceSelect = "SELECT id, " + experienceCols + " FROM experiences"

func (s *Store) experiences(ctx context.Context, where string, args ...any) ([]featurestore.Experience, error) {
	var out []featurestore.Experience
	err := s.do(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, experienceSelect+" WHERE "+where+" ORDER BY ts, id", args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (featurestore.Experience, error) {
			var (
				e        featurestore.Experience
				emb      *pgvector.Vector
				outcome  string
				feedback *int16
			)
			err := r.Scan(&e.ID, &e.Intent, &emb, &e.ContextTools, &e.CandidateIDs, &e.SelectedCapability, &e.Rank,
				&outcome, &e.ExecutionTimeMs, &feedback, &e.Timestamp, &e.SessionID)
			e.IntentEmbedding = slice(emb)
			e.ContextTools = nilIfEmpty(e.ContextTools)
			e.CandidateIDs = nilIfEmpty(e.CandidateIDs)
			e.Outcome = featurestore.Outcome(outcome)
			if feedback != nil {
				f := int(*feedback)
				e.UserFeedback = &f
			}
			e.Timestamp = e.Timestamp.UTC()
			return e, err
		})
		return err
	})
	return out, err
}

// ceilMicro rounds t up to PostgreSQL's microsecond precision, in UTC.
// Stored timestamps are whole microseconds, so for them ts >= t and ts < t
// hold exactly when they hold against ceilMicro(t).
func ceilMicro(t time.Time) time.Time {
	t = t.UTC()
	if r := t.Truncate(time.Microsecond); r.Before(t) {
		return r.Add(time.Microsecond)
	}
	return t
}

// ExperiencesBetween returns the experiences with from ≤ timestamp < to,
// oldest first.
func (s *Store) ExperiencesBetween(ctx context.Context, from, to time.Time) ([]featurestore.Experience, error) {
	out, err := s.experiences(ctx, "ts >= $1 AND ts < $2", ceilMicro(from), ceilMicro(to))
	if err != nil {
		return nil, fmt.Errorf("featurestore/postgres: experiences between %s and %s: %w", from, to, err)
	}
	return out, nil
}

// ExperiencesBySession returns a session's experiences, oldest first.
func (s *Store) ExperiencesBySession(ctx context.Context, sessionID string) ([]featurestore.Experience, error) {
	out, err := s.experiences(ctx, "session_id = $1", sessionID)
	if err != nil {
		return nil, fmt.Errorf("featurestore/postgres: experiences of session %q: %w", sessionID, err)
	}
	return out, nil
}

// UsageCounts counts experiences per selected capability with timestamps in
// [now-N·24h, now) for N = 1, 7, 30, in one query.
func (s *Store) UsageCounts(ctx context.Context, now time.Time) (map[string]featurestore.Usage, error) {
	out := map[string]featurestore.Usage{}
	err := s.do(ctx, func(ctx context.Context) error {
		clear(out)
		rows, err := s.pool.Query(ctx, `SELECT selected_capability,
    count(*) FILTER (WHERE ts >= $1::timestamptz - interval '24 hours'),
    count(*) FILTER (WHERE ts >= $1::timestamptz - interval '168 hours'),
    count(*)
FROM experiences
WHERE ts >= $1::timestamptz - interval '720 hours' AND ts < $1::timestamptz
GROUP BY selected_capability`, ceilMicro(now))
		if err != nil {
			return err
		}
		var (
			id string
			u  featurestore.Usage
		)
		_, err = pgx.ForEachRow(rows, []any{&id, &u.Count1d, &u.Count7d, &u.Count30d}, func() error {
			out[id] = u
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("featurestore/postgres: usage counts: %w", err)
	}
	return out, nil
}
