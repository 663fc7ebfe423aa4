-- capflow feature store, initial schema.
-- A text/template: the vector dimensions come from featurestore.Config and
-- are recorded in store_meta, so a store is never reopened with other dims.
-- Unqualified names land in the store's schema (first on the search_path).

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE store_meta (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    text_dim   int NOT NULL,
    graph_dim  int NOT NULL,
    hybrid_dim int NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO store_meta (text_dim, graph_dim, hybrid_dim) VALUES ({{.TextDim}}, {{.GraphDim}}, {{.HybridDim}});

CREATE TABLE tools (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    input_schema json -- json, not jsonb: export writes the schema back as imported
);

CREATE TABLE capabilities (
    id                    text PRIMARY KEY,
    name                  text NOT NULL,
    description           text NOT NULL DEFAULT '',
    level                 int NOT NULL DEFAULT 0 CHECK (level >= 0),
    success_rate          double precision CHECK (success_rate BETWEEN 0 AND 1),
    avg_execution_time_ms double precision CHECK (avg_execution_time_ms >= 0)
);

-- Members are tool ids or capability ids (member_kind says which), so
-- member_id has no foreign key; position keeps the members' order.
CREATE TABLE capability_members (
    capability_id text NOT NULL REFERENCES capabilities (id) ON DELETE CASCADE,
    position      int NOT NULL,
    member_id     text NOT NULL,
    member_kind   text NOT NULL CHECK (member_kind IN ('tool', 'capability')),
    PRIMARY KEY (capability_id, member_id)
);
CREATE INDEX capability_members_member_idx ON capability_members (member_id);

CREATE TABLE experiences (
    id                  bigserial PRIMARY KEY,
    intent              text NOT NULL,
    intent_embedding    vector({{.TextDim}}),
    context_tools       text[] NOT NULL DEFAULT '{}',
    candidate_ids       text[] NOT NULL DEFAULT '{}',
    selected_capability text NOT NULL,
    rank                int NOT NULL,
    outcome             text NOT NULL CHECK (outcome IN ('success', 'failure', 'partial')),
    execution_time_ms   double precision NOT NULL CHECK (execution_time_ms >= 0),
    user_feedback       smallint CHECK (user_feedback BETWEEN 1 AND 5),
    ts                  timestamptz NOT NULL,
    session_id          text NOT NULL
);
CREATE INDEX experiences_ts_idx ON experiences (ts);
CREATE INDEX experiences_session_idx ON experiences (session_id, ts);
CREATE INDEX experiences_selected_idx ON experiences (selected_capability, ts);
-- Experiences have no natural id; this key makes re-importing (and
-- re-appending) the same experience a no-op. md5 keeps long intents within
-- the btree row limit.
CREATE UNIQUE INDEX experiences_dedupe_idx ON experiences (session_id, ts, selected_capability, md5(intent));

CREATE TABLE queries (
    id            text PRIMARY KEY,
    intent        text NOT NULL,
    context_tools text[] NOT NULL DEFAULT '{}',
    relevant      text[] NOT NULL,
    ts            timestamptz
);

CREATE TABLE capability_features (
    capability_id          text PRIMARY KEY REFERENCES capabilities (id) ON DELETE CASCADE,
    text_embedding         vector({{.TextDim}}),
    n2v_embedding          vector({{.GraphDim}}),
    hybrid_embedding       vector({{.HybridDim}}),
    tool_count             int NOT NULL DEFAULT 0,
    avg_execution_time_ms  double precision NOT NULL DEFAULT 0,
    success_rate           double precision NOT NULL DEFAULT 0 CHECK (success_rate BETWEEN 0 AND 1),
    usage_count_1d         int NOT NULL DEFAULT 0,
    usage_count_7d         int NOT NULL DEFAULT 0,
    usage_count_30d        int NOT NULL DEFAULT 0,
    pagerank_score         double precision NOT NULL DEFAULT 0,
    clustering_coefficient double precision NOT NULL DEFAULT 0,
    feature_version        text NOT NULL DEFAULT '',
    computed_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT capability_features_dims CHECK (
        (text_embedding IS NULL OR vector_dims(text_embedding) = {{.TextDim}})
        AND (n2v_embedding IS NULL OR vector_dims(n2v_embedding) = {{.GraphDim}})
        AND (hybrid_embedding IS NULL OR vector_dims(hybrid_embedding) = {{.HybridDim}}))
);
CREATE INDEX capability_features_hybrid_hnsw ON capability_features
    USING hnsw (hybrid_embedding vector_cosine_ops);

CREATE TABLE intent_features (
    intent_hash   text PRIMARY KEY,
    embedding     vector({{.TextDim}}) NOT NULL,
    context_tools text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Embeddings of any model, so no fixed dimension here.
CREATE TABLE embedding_cache (
    model         text NOT NULL,
    model_version text NOT NULL,
    text_hash     text NOT NULL,
    embedding     vector NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, model_version, text_hash)
);
