package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"

	"github.com/capflow/capflow/featurestore"
)

// Bulk writes COPY into a temporary table dropped at commit, then
// INSERT ... SELECT ... ON CONFLICT from it: COPY itself cannot upsert.

// copyTemp creates temp table tmp shaped like table (or by the CREATE
// statement create, when given) and COPYs rows into it.
func copyTemp(ctx context.Context, tx pgx.Tx, tmp, create string, cols []string, rows [][]any) error {
	if _, err := tx.Exec(ctx, create); err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{tmp}, cols, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("copy into %s: %w", tmp, err)
	}
	return nil
}

func likeTemp(tmp, table string) string {
	return fmt.Sprintf("CREATE TEMP TABLE %s (LIKE %s) ON COMMIT DROP", tmp, table)
}

// vec converts a vector for pgx; nil stays SQL NULL.
func vec(v []float32) any {
	if v == nil {
		return nil
	}
	return pgvector.NewVector(v)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// WriteDataset validates d (featurestore.Config.Validate: ids, members,
// cycles, enums, vectors; it also computes levels and collapses identical
// repeats) and upserts it in one transaction. Tools, capabilities and
// queries are upserted by id; a capability's membership rows are replaced.
// Experiences have no natural id: they are deduplicated on (session_id, ts,
// selected_capability, intent) by a unique index, so re-importing them adds
// nothing — two experiences equal in those four fields are one experience.
func (s *Store) WriteDataset(ctx context.Context, d *featurestore.Dataset) error {
	if err := s.cfg.Validate(d); err != nil {
		return err
	}
	return s.do(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := writeTools(ctx, tx, d.Tools); err != nil {
				return err
			}
			if err := writeCapabilities(ctx, tx, d.Capabilities); err != nil {
				return err
			}
			if err := writeQueries(ctx, tx, d.Queries); err != nil {
				return err
			}
			return insertExperiences(ctx, tx, d.Experiences)
		})
	})
}

func writeTools(ctx context.Context, tx pgx.Tx, tools []featurestore.Tool) error {
	if len(tools) == 0 {
		return nil
	}
	rows := make([][]any, len(tools))
	for i, t := range tools {
		var schema any
		if len(t.InputSchema) > 0 {
			schema = []byte(t.InputSchema)
		}
		rows[i] = []any{t.ID, t.Name, t.Description, schema}
	}
	if err := copyTemp(ctx, tx, "tmp_tools", likeTemp("tmp_tools", "tools"), []string{"id", "name", "description", "input_schema"}, rows); err != nil {
		return fmt.Errorf("featurestore/postgres: write tools: %w", err)
	}
	_, err := tx.Exec(ctx, `INSERT INTO tools (id, name, description, input_schema)
SELECT id, name, description, input_schema FROM tmp_tools
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description, input_schema = EXCLUDED.input_schema`)
	if err != nil {
		return fmt.Errorf("featurestore/postgres: write tools: %w", err)
	}
	return nil
}

func writeCapabilities(ctx context.Context, tx pgx.Tx, caps []featurestore.Capability) error {
	if len(caps) == 0 {
		return nil
	}
	isCap := make(map[string]bool, len(caps))
	for _, c := range caps {
		isCap[c.ID] = true
	}
	rows := make([][]any, len(caps))
	var members [][]any
	for i, c := range caps {
		rows[i] = []any{c.ID, c.Name, c.Description, c.Level, c.SuccessRate, c.AvgExecutionTimeMs}
		for pos, m := range c.Members {
			kind := "tool"
			if isCap[m] {
				kind = "capability"
			}
			members = append(members, []any{c.ID, pos, m, kind})
		}
	}
	if err := copyTemp(ctx, tx, "tmp_capabilities", likeTemp("tmp_capabilities", "capabilities"),
		[]string{"id", "name", "description", "level", "success_rate", "avg_execution_time_ms"}, rows); err != nil {
		return fmt.Errorf("featurestore/postgres: write capabilities: %w", err)
	}
	if err := copyTemp(ctx, tx, "tmp_members", likeTemp("tmp_members", "capability_members"),
		[]string{"capability_id", "position", "member_id", "member_kind"}, members); err != nil {
		return fmt.Errorf("featurestore/postgres: write capability members: %w", err)
	}
	_, err := tx.Exec(ctx, `INSERT INTO capabilities (id, name, description, level, success_rate, avg_execution_time_ms)
SELECT id, name, description, level, success_rate, avg_execution_time_ms FROM tmp_capabilities
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description, level = EXCLUDED.level,
    success_rate = EXCLUDED.success_rate, avg_execution_time_ms = EXCLUDED.avg_execution_time_ms;
DELETE FROM capability_members WHERE capability_id IN (SELECT id FROM tmp_capabilities);
INSERT INTO capability_members (capability_id, position, member_id, member_kind)
SELECT capability_id, position, member_id, member_kind FROM tmp_members`)
	if err != nil {
		return fmt.Errorf("featurestore/postgres: write capabilities: %w", err)
	}
	return relevel(ctx, tx)
}

// relevel recomputes stored levels after membership changed: a rewritten
// capability changes the level of every stored capability holding it, even
// ones not in the dataset. Each pass sets level = 0 or 1 + the highest member
// capability level from the previous pass; on a DAG that reaches the unique
// fixed point after (height) passes. Validate rules out cycles within a
// dataset and members must be in the dataset, so none can form across
// datasets; the pass limit is only a guard.
func relevel(ctx context.Context, tx pgx.Tx) error {
	const maxPasses = 10000
	for range maxPasses {
		tag, err := tx.Exec(ctx, `UPDATE capabilities c SET level = l.level
FROM (SELECT m.capability_id, max(CASE WHEN m.member_kind = 'capability' THEN mc.level + 1 ELSE 0 END) AS level
      FROM capability_members m LEFT JOIN capabilities mc ON m.member_kind = 'capability' AND mc.id = m.member_id
      GROUP BY m.capability_id) l
WHERE l.capability_id = c.id AND c.level IS DISTINCT FROM l.level`)
		if err != nil {
			return fmt.Errorf("featurestore/postgres: recompute levels: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
	}
	return fmt.Errorf("featurestore/postgres: recompute levels: no fixed point after %d passes (a membership cycle?)", maxPasses)
}

func writeQueries(ctx context.Context, tx pgx.Tx, queries []featurestore.Query) error {
	if len(queries) == 0 {
		return nil
	}
	rows := make([][]any, len(queries))
	for i, q := range queries {
		var ts any
		if q.Timestamp != nil {
			ts = q.Timestamp.UTC()
		}
		rows[i] = []any{q.ID, q.Intent, nonNil(q.ContextTools), nonNil(q.Relevant), nonNil(q.Calls), ts}
	}
	if err := copyTemp(ctx, tx, "tmp_queries", likeTemp("tmp_queries", "queries"),
		[]string{"id", "intent", "context_tools", "relevant", "calls", "ts"}, rows); err != nil {
		return fmt.Errorf("featurestore/postgres: write queries: %w", err)
	}
	_, err := tx.Exec(ctx, `INSERT INTO queries (id, intent, context_tools, relevant, calls, ts)
SELECT id, intent, context_tools, relevant, calls, ts FROM tmp_queries
ON CONFLICT (id) DO UPDATE SET intent = EXCLUDED.intent, context_tools = EXCLUDED.context_tools,
    relevant = EXCLUDED.relevant, calls = EXCLUDED.calls, ts = EXCLUDED.ts`)
	if err != nil {
		return fmt.Errorf("featurestore/postgres: write queries: %w", err)
	}
	return nil
}

const experienceCols = "intent, intent_embedding, context_tools, candidate_ids, selected_capability, rank, outcome, execution_time_ms, user_feedback, ts, session_id"

func experienceRow(e featurestore.Experience) []any {
	var fb any
	if e.UserFeedback != nil {
		fb = int16(*e.UserFeedback)
	}
	return []any{e.Intent, vec(e.IntentEmbedding), nonNil(e.ContextTools), nonNil(e.CandidateIDs), e.SelectedCapability,
		e.Rank, string(e.Outcome), e.ExecutionTimeMs, fb, e.Timestamp.UTC(), e.SessionID}
}

// insertExperiences adds exps in order, skipping any already stored (same
// session, timestamp, selected capability and intent).
func insertExperiences(ctx context.Context, tx pgx.Tx, exps []featurestore.Experience) error {
	switch len(exps) {
	case 0:
		return nil
	case 1:
		_, err := tx.Exec(ctx, "INSERT INTO experiences ("+experienceCols+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
			experienceRow(exps[0])...)
		if err != nil {
			return fmt.Errorf("featurestore/postgres: write experience: %w", err)
		}
		return nil
	}
	rows := make([][]any, len(exps))
	for i, e := range exps {
		rows[i] = append([]any{i}, experienceRow(e)...)
	}
	create := "CREATE TEMP TABLE tmp_experiences ON COMMIT DROP AS SELECT 0 AS ord, " + experienceCols + " FROM experiences WITH NO DATA"
	cols := append([]string{"ord"}, strings.Split(experienceCols, ", ")...)
	if err := copyTemp(ctx, tx, "tmp_experiences", create, cols, rows); err != nil {
		return fmt.Errorf("featurestore/postgres: write experiences: %w", err)
	}
	_, err := tx.Exec(ctx, "INSERT INTO experiences ("+experienceCols+") SELECT "+experienceCols+
		" FROM tmp_experiences ORDER BY ord ON CONFLICT DO NOTHING")
	if err != nil {
		return fmt.Errorf("featurestore/postgres: write experiences: %w", err)
	}
	return nil
}

// AppendExperiences logs experiences (one or a batch, the batch by COPY) in
// one transaction. Each is checked first — the rules of Validate, with
// capability and tool ids looked up in the store — and a bad one is a
// *featurestore.RecordError naming it ("#i", its index); then nothing is
// written. An experience already stored (same session, timestamp, selected
// capability and intent) is skipped, so appending is idempotent.
func (s *Store) AppendExperiences(ctx context.Context, exps ...featurestore.Experience) error {
	if len(exps) == 0 {
		return nil
	}
	var caps, tools []string
	for _, e := range exps {
		caps = append(append(caps, e.SelectedCapability), e.CandidateIDs...)
		tools = append(tools, e.ContextTools...)
	}
	return s.do(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			// One round trip learns which referenced ids are stored; the
			// rules themselves are featurestore's, as on import.
			known := map[string]bool{}
			rows, err := tx.Query(ctx, `SELECT 'c:' || id FROM capabilities WHERE id = ANY($1)
UNION ALL SELECT 't:' || id FROM tools WHERE id = ANY($2)`, caps, tools)
			if err != nil {
				return fmt.Errorf("featurestore/postgres: check experience references: %w", err)
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return fmt.Errorf("featurestore/postgres: check experience references: %w", err)
			}
			for _, id := range ids {
				known[id] = true
			}
			err = s.cfg.CheckExperiences(exps,
				func(id string) bool { return known["t:"+id] },
				func(id string) bool { return known["c:"+id] })
			if err != nil {
				return err
			}
			return insertExperiences(ctx, tx, exps)
		})
	})
}

// UpsertCapabilityFeatures checks every row (featurestore.Config.CheckFeatures,
// and that its capability exists) and then upserts them all by COPY in one
// transaction; a bad row is a *featurestore.RecordError and nothing is
// written. When a capability appears twice, the last row wins.
func (s *Store) UpsertCapabilityFeatures(ctx context.Context, rows []featurestore.CapabilityFeatures) error {
	if len(rows) == 0 {
		return nil
	}
	last := make(map[string]int, len(rows))
	for i, r := range rows {
		if err := s.cfg.CheckFeatures(r); err != nil {
			return err
		}
		last[r.CapabilityID] = i
	}
	ids := make([]string, 0, len(last))
	data := make([][]any, 0, len(last))
	for i, r := range rows {
		if last[r.CapabilityID] != i {
			continue
		}
		ids = append(ids, r.CapabilityID)
		data = append(data, []any{r.CapabilityID, vec(r.TextEmbedding), vec(r.N2VEmbedding), vec(r.HybridEmbedding),
			r.ToolCount, r.AvgExecutionTimeMs, r.SuccessRate, r.UsageCount1d, r.UsageCount7d, r.UsageCount30d,
			r.PageRank, r.ClusteringCoefficient, r.FeatureVersion, r.ComputedAt.UTC()})
	}
	return s.do(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var unknown string
			err := tx.QueryRow(ctx, `SELECT id FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n)
WHERE NOT EXISTS (SELECT 1 FROM capabilities c WHERE c.id = u.id) ORDER BY n LIMIT 1`, ids).Scan(&unknown)
			switch {
			case err == nil:
				return &featurestore.RecordError{Kind: "capability features", ID: unknown, Field: "capability_id", Reason: "unknown capability"}
			case err != pgx.ErrNoRows:
				return fmt.Errorf("featurestore/postgres: check capability ids: %w", err)
			}
			featureCols := strings.Split(featureColList, ", ")
			if err := copyTemp(ctx, tx, "tmp_features", likeTemp("tmp_features", "capability_features"), featureCols, data); err != nil {
				return fmt.Errorf("featurestore/postgres: upsert capability features: %w", err)
			}
			rebuild, err := s.bulkLoad(ctx, tx, len(data))
			if err != nil {
				return err
			}
			set := make([]string, 0, len(featureCols)-1)
			for _, c := range featureCols[1:] {
				set = append(set, c+" = EXCLUDED."+c)
			}
			_, err = tx.Exec(ctx, "INSERT INTO capability_features ("+featureColList+") SELECT "+featureColList+
				" FROM tmp_features ON CONFLICT (capability_id) DO UPDATE SET "+strings.Join(set, ", "))
			if err != nil {
				return fmt.Errorf("featurestore/postgres: upsert capability features: %w", err)
			}
			return rebuild(ctx)
		})
	})
}

// bulkRows is the smallest upsert for which the ANN indexes are rebuilt
// rather than maintained row by row (see bulkLoad).
const bulkRows = 10_000

// hnswMaxDim is the most dimensions pgvector's HNSW indexes take.
const hnswMaxDim = 2000

// annIndex is the HNSW index of one space's column.
type annIndex struct{ column, name string }

// annIndexes are the store's HNSW indexes, as the migrations create them:
// hybrid always (Open caps HybridDim at hnswMaxDim), text when TextDim
// allows.
func (s *Store) annIndexes() []annIndex {
	out := []annIndex{{spaceColumn(featurestore.SpaceHybrid), "capability_features_hybrid_hnsw"}}
	if s.cfg.TextDim <= hnswMaxDim {
		out = append(out, annIndex{spaceColumn(featurestore.SpaceText), "capability_features_text_hnsw"})
	}
	return out
}

// bulkLoad decides how the HNSW indexes follow an upsert of n rows.
// Inserting into HNSW costs ~3.6 ms per 1024-d row here, while building an
// index over 100,000 rows takes ~2 min (~1.2 ms per row): when a call brings
// at least bulkRows rows and at least as many as the table holds, the
// indexes are dropped for the load and built again after it, inside the same
// transaction (readers of capability_features wait for the commit; the
// feature pipeline's full refresh is the case this is for). It returns what
// to run after the load.
func (s *Store) bulkLoad(ctx context.Context, tx pgx.Tx, n int) (func(context.Context) error, error) {
	noop := func(context.Context) error { return nil }
	if n < bulkRows {
		return noop, nil
	}
	var existing int
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM capability_features").Scan(&existing); err != nil {
		return nil, fmt.Errorf("featurestore/postgres: count capability features: %w", err)
	}
	if n < existing {
		return noop, nil
	}
	idx := s.annIndexes()
	for _, ix := range idx {
		if _, err := tx.Exec(ctx, "DROP INDEX IF EXISTS "+ix.name); err != nil {
			return nil, fmt.Errorf("featurestore/postgres: bulk load: drop ANN index %s: %w", ix.name, err)
		}
	}
	return func(ctx context.Context) error {
		for _, q := range []string{"SET LOCAL maintenance_work_mem = '1GB'", "SET LOCAL max_parallel_maintenance_workers = 2"} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("featurestore/postgres: bulk load: %w", err)
			}
		}
		for _, ix := range idx {
			q := "CREATE INDEX " + ix.name + " ON capability_features USING hnsw (" + ix.column + " vector_cosine_ops)"
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("featurestore/postgres: bulk load: rebuild ANN index %s: %w", ix.name, err)
			}
		}
		return nil
	}, nil
}

const featureColList = "capability_id, text_embedding, n2v_embedding, hybrid_embedding, tool_count, " +
	"avg_execution_time_ms, success_rate, usage_count_1d, usage_count_7d, usage_count_30d, " +
	"pagerank_score, clustering_coefficient, feature_version, computed_at"

// PutIntentFeatures stores (or replaces) an intent's embedding. A zero
// CreatedAt means now.
func (s *Store) PutIntentFeatures(ctx context.Context, f featurestore.IntentFeatures) error {
	if f.IntentHash == "" {
		return &featurestore.RecordError{Kind: "intent features", Field: "intent_hash", Reason: "is required"}
	}
	if f.Embedding == nil {
		return &featurestore.RecordError{Kind: "intent features", ID: f.IntentHash, Field: "embedding", Reason: "is required"}
	}
	if err := featurestore.CheckVector("intent features", f.IntentHash, "embedding", f.Embedding, s.cfg.TextDim); err != nil {
		return err
	}
	var created any
	if !f.CreatedAt.IsZero() {
		created = f.CreatedAt.UTC()
	}
	return s.do(ctx, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `INSERT INTO intent_features (intent_hash, embedding, context_tools, created_at)
VALUES ($1, $2, $3, coalesce($4, now()))
ON CONFLICT (intent_hash) DO UPDATE SET embedding = EXCLUDED.embedding, context_tools = EXCLUDED.context_tools, created_at = EXCLUDED.created_at`,
			f.IntentHash, vec(f.Embedding), nonNil(f.ContextTools), created)
		if err != nil {
			return fmt.Errorf("featurestore/postgres: put intent features %q: %w", f.IntentHash, err)
		}
		return nil
	})
}

// PutEmbedding caches a text embedding under its model and text hash.
func (s *Store) PutEmbedding(ctx context.Context, key featurestore.EmbeddingKey, v []float32) error {
	id := key.Model + "/" + key.ModelVersion + "/" + key.TextHash
	if key.Model == "" || key.TextHash == "" {
		return &featurestore.RecordError{Kind: "embedding", ID: id, Reason: "model and text hash are required"}
	}
	if len(v) == 0 {
		return &featurestore.RecordError{Kind: "embedding", ID: id, Field: "embedding", Reason: "is empty"}
	}
	if err := featurestore.CheckVector("embedding", id, "embedding", v, len(v)); err != nil {
		return err
	}
	return s.do(ctx, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `INSERT INTO embedding_cache (model, model_version, text_hash, embedding, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (model, model_version, text_hash) DO UPDATE SET embedding = EXCLUDED.embedding, created_at = EXCLUDED.created_at`,
			key.Model, key.ModelVersion, key.TextHash, vec(v), time.Now().UTC())
		if err != nil {
			return fmt.Errorf("featurestore/postgres: put embedding %s: %w", id, err)
		}
		return nil
	})
}
