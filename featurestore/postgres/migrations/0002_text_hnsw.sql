-- ANN search over the capabilities' text embeddings (featurestore.SpaceText),
-- the space intents are embedded in. pgvector's HNSW indexes vectors of at
-- most 2,000 dimensions (hnswMaxDim in write.go); above that the search is an
-- exact scan, which is correct, only slower. On a store that already holds
-- features the build takes a while (~1 ms per 1024-d row), once.
{{if le .TextDim 2000}}
SET LOCAL maintenance_work_mem = '1GB';
CREATE INDEX IF NOT EXISTS capability_features_text_hnsw ON capability_features
    USING hnsw (text_embedding vector_cosine_ops);
{{end}}
