// Package featurestore keeps everything the capflow pipeline reads and
// writes — tools, capabilities (hyperedges over tools and other capabilities),
// experiences, evaluation queries and computed features — behind one Store
// interface with a PostgreSQL + pgvector backend and an embedded default, and
// imports/exports datasets in capflow's interchange format.
package featurestore

import (
	"encoding/json"
	"time"
)

// The domain types of capflow live here, in one place.

// Tool is one callable tool (an API an agent can invoke).
type Tool struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
}

// Capability is a named set of tools and/or other capabilities: a hyperedge
// of the capability↔tool hypergraph. Level is 0 when every member is a tool,
// else 1 + the highest level among member capabilities (computed by the
// store; cycles are rejected).
type Capability struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name"`
	Description        string   `json:"description"`
	Members            []string `json:"members"` // tool ids and/or capability ids
	Level              int      `json:"-"`
	SuccessRate        *float64 `json:"success_rate,omitempty"`
	AvgExecutionTimeMs *float64 `json:"avg_execution_time_ms,omitempty"`
}

// Outcome is how an executed capability turned out.
type Outcome string

const (
	OutcomeSuccess Outcome = "success"
	OutcomeFailure Outcome = "failure"
	OutcomePartial Outcome = "partial"
)

// Valid reports whether o is one of the three outcomes.
func (o Outcome) Valid() bool {
	return o == OutcomeSuccess || o == OutcomeFailure || o == OutcomePartial
}

// Intent is what a user asked for, with the tools already in context.
type Intent struct {
	Text         string    `json:"intent"`
	ContextTools []string  `json:"context_tools,omitempty"`
	Embedding    []float32 `json:"-"`
}

// Experience is one logged decision and its outcome (the design's
// Experience): the intent, what was offered, what was picked at which rank,
// and how it went.
type Experience struct {
	ID                 int64     `json:"-"` // assigned by the store
	Intent             string    `json:"intent"`
	IntentEmbedding    []float32 `json:"-"`
	ContextTools       []string  `json:"context_tools"`
	CandidateIDs       []string  `json:"candidate_ids"`
	SelectedCapability string    `json:"selected_capability"`
	Rank               int       `json:"rank"`
	Outcome            Outcome   `json:"outcome"`
	ExecutionTimeMs    float64   `json:"execution_time_ms"`
	UserFeedback       *int      `json:"user_feedback,omitempty"` // 1..5
	Timestamp          time.Time `json:"timestamp"`               // UTC
	SessionID          string    `json:"session_id"`
}

// Query is an evaluation query: an intent and the capabilities relevant to it.
//
// Calls, when known, are the tool ids of the calls that answer the query, in
// call order (a tool may be called more than once). Evaluation ranks
// Relevant and ignores them; PseudoSessions turns them into multi-step
// sessions, in which each call is a decision taken with the earlier calls'
// tools in context.
type Query struct {
	ID           string     `json:"id"`
	Intent       string     `json:"intent"`
	ContextTools []string   `json:"context_tools,omitempty"`
	Relevant     []string   `json:"relevant"`
	Calls        []string   `json:"calls,omitempty"`
	Timestamp    *time.Time `json:"timestamp,omitempty"`
}

// CapabilityFeatures is one row of the design's capability_features.
type CapabilityFeatures struct {
	CapabilityID          string
	TextEmbedding         []float32 // Config.TextDim (1024 for BGE-M3)
	N2VEmbedding          []float32 // Config.GraphDim (64)
	HybridEmbedding       []float32 // Config.HybridDim
	ToolCount             int
	AvgExecutionTimeMs    float64
	SuccessRate           float64
	UsageCount1d          int
	UsageCount7d          int
	UsageCount30d         int
	PageRank              float64
	ClusteringCoefficient float64
	FeatureVersion        string
	ComputedAt            time.Time
}

// IntentFeatures is a cached intent embedding (the design's intent_features).
type IntentFeatures struct {
	IntentHash   string
	Embedding    []float32
	ContextTools []string
	CreatedAt    time.Time
}

// Neighbor is an ANN result: a capability and its cosine distance to the query.
type Neighbor struct {
	CapabilityID string
	Distance     float64
}

// Usage counts a capability's experiences over the design's three windows.
type Usage struct {
	Count1d, Count7d, Count30d int
}
