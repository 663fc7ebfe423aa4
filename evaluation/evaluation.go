// Package evaluation measures rankers on query sets: holdout evaluation,
// k-fold cross-validation grouped by session, rolling temporal windows,
// baselines (BM25, cosine), the promotion gate and its report. The metric
// code lives in evaluation/metrics, A/B statistics in evaluation/stats,
// drift checks in evaluation/drift, off-policy estimates in
// evaluation/counterfactual.
package evaluation

import (
	"context"
	"fmt"
	"time"

	"github.com/capflow/capflow/evaluation/metrics"
	"github.com/capflow/capflow/models/ranker"
)

// Ranker ranks capabilities for one query: a packaged model
// (*ranker.Ranker) or a baseline.
type Ranker interface {
	Rank(ctx context.Context, q ranker.Query) ([]ranker.Scored, error)
}

// Query is one evaluation query: what a ranker sees (text, embedding,
// context tools, the candidate pool) and the ground truth.
type Query struct {
	ranker.Query
	ID        string
	Relevant  map[string]float64 // graded relevance; > 0 is relevant
	Session   string             // groups queries for cross-validation (default: ID)
	Timestamp time.Time          // for temporal validation (zero: none)
}

// group is the unit a split never divides.
func (q Query) group() string {
	if q.Session != "" {
		return q.Session
	}
	return q.ID
}

// Factory trains (or builds) a ranker on training queries, for
// cross-validation and temporal validation.
type Factory func(ctx context.Context, train []Query) (Ranker, error)

// Rankings ranks every query with r, in order.
func Rankings(ctx context.Context, r Ranker, qs []Query) ([]metrics.Ranking, error) {
	out := make([]metrics.Ranking, len(qs))
	for i, q := range qs {
		scored, err := r.Rank(ctx, q.Query)
		if err != nil {
			return nil, fmt.Errorf("evaluation: query %q: %w", q.ID, err)
		}
		rk := metrics.Ranking{QueryID: q.ID, Relevant: q.Relevant, Candidates: make([]string, len(scored)), Scores: make([]float64, len(scored))}
		for j, s := range scored {
			rk.Candidates[j], rk.Scores[j] = s.ID, s.Score
		}
		out[i] = rk
	}
	return out, nil
}

// Holdout ranks every query with r and computes every metric.
func Holdout(ctx context.Context, r Ranker, qs []Query, opts metrics.Options) (metrics.Report, []metrics.Ranking, error) {
	rks, err := Rankings(ctx, r, qs)
	if err != nil {
		return metrics.Report{}, nil, err
	}
	rep, err := metrics.Compute(rks, opts)
	return rep, rks, err
}
