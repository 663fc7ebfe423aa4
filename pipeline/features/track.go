package features

import (
	"fmt"
	"log/slog"

	"github.com/capflow/capflow/models/hybrid"
	"github.com/capflow/capflow/pipeline"
)

// params are the stage's MLflow params: everything that decides the
// features, so two runs in the MLflow UI differ in params exactly when they
// may differ in features.
func params(cfg Config) map[string]string {
	m := cfg.Encoder.Model()
	n := cfg.Node2Vec
	v := cfg.Validation.withDefaults()
	lift := "zero-pad"
	if l, ok := cfg.Hybrid.Lift.(*hybrid.OrthonormalLift); ok {
		from, to := l.Dims()
		lift = fmt.Sprintf("orthonormal(%d→%d)", from, to)
	}
	return pipeline.Params(
		"feature_version", cfg.FeatureVersion,
		"as_of", cfg.AsOf,
		"encoder.model", m.Name,
		"encoder.version", m.Version,
		"encoder.dim", cfg.Store.TextDim,
		"encoder.cache", !cfg.NoEmbeddingCache,
		"store.graph_dim", cfg.Store.GraphDim,
		"node2vec.dimensions", n.Dimensions,
		"node2vec.walk_length", n.WalkLength,
		"node2vec.walks_per_node", n.WalksPerNode,
		"node2vec.window", n.Window,
		"node2vec.p", n.P,
		"node2vec.q", n.Q,
		"node2vec.negative", n.Negative,
		"node2vec.epochs", n.Epochs,
		"node2vec.learning_rate", n.LearningRate,
		"node2vec.workers", n.Workers,
		"node2vec.seed", n.Seed,
		"graph.tool_weight", orOne(cfg.Catalog.ToolWeight),
		"graph.containment_weight", orOne(cfg.Catalog.ContainmentWeight),
		"graph.pagerank_damping", orDefault(cfg.Graph.Damping, DefaultDamping),
		"graph.co_usage_weight", cfg.Graph.CoUsageWeight,
		"graph.prior_success_rate", orDefault(cfg.Graph.PriorSuccessRate, DefaultPriorSuccessRate),
		"hybrid.text_weight", cfg.Hybrid.TextWeight,
		"hybrid.graph_weight", cfg.Hybrid.GraphWeight,
		"hybrid.lift", lift,
		"validation.max_age", v.MaxAge,
		"validation.norm_tolerance", v.NormTolerance,
		"validation.collapse", string(v.Collapse),
		"validation.max_mean_cosine", v.MaxMeanCosine,
		"validation.min_variance", v.MinVariance,
		"link_prediction.fraction", cfg.LinkPredictionFraction,
	)
}

// metrics flattens a Summary into MLflow metrics: counts, seconds per step,
// the AUC, and every validation figure as validation.<check>.<figure>.
func metrics(s Summary) map[string]float64 {
	out := map[string]float64{
		"tools":          float64(s.Tools),
		"capabilities":   float64(s.Capabilities),
		"experiences":    float64(s.Experiences),
		"intents":        float64(s.Intents),
		"graph.nodes":    float64(s.GraphNodes),
		"graph.edges":    float64(s.GraphEdges),
		"graph.isolated": float64(s.IsolatedNodes),
	}
	if s.LinkPredictionEdges != "" {
		out["link_prediction_auc"] = s.LinkPredictionAUC
	}
	for k, d := range s.Timings {
		out["seconds."+k] = d.Seconds()
	}
	if s.Validation.Checks != nil {
		out["validation.passed"] = b2f(s.Validation.Passed)
		out["validation.rows"] = float64(s.Validation.Rows)
		for _, c := range s.Validation.Checks {
			out["validation."+c.Name+".passed"] = b2f(c.Passed)
			out["validation."+c.Name+".offending"] = float64(c.OffendingCount)
			for f, x := range c.Figures {
				out["validation."+c.Name+"."+f] = x
			}
		}
	}
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func orOne(x float64) float64 { return orDefault(x, 1) }

func orDefault(x, d float64) float64 {
	if x == 0 {
		return d
	}
	return x
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
