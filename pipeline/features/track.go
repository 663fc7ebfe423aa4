package features

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/capflow/capflow/models/hybrid"
	"github.com/capflow/capflow/models/node2vec"
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
		"node2vec.p", pqParam(n.P, cfg.PGrid, cfg.LinkPredictionFraction),
		"node2vec.q", pqParam(n.Q, cfg.QGrid, cfg.LinkPredictionFraction),
		"node2vec.p_grid", gridParam(cfg.PGrid, cfg.LinkPredictionFraction),
		"node2vec.q_grid", gridParam(cfg.QGrid, cfg.LinkPredictionFraction),
		"node2vec.tune_walks_per_node", min(cfg.TuneWalksPerNode, n.WalksPerNode),
		"node2vec.negative", n.Negative,
		"node2vec.epochs", n.Epochs,
		"node2vec.learning_rate", n.LearningRate,
		"node2vec.workers", n.Workers,
		"node2vec.seed", n.Seed,
		"graph.tool_weight", orOne(cfg.Catalog.ToolWeight),
		"graph.containment_weight", orOne(cfg.Catalog.ContainmentWeight),
		"graph.co_use_weight", orOne(cfg.Catalog.CoUseWeight),
		"co_use.session_prefix", orAll(cfg.CoUseSessionPrefix),
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
	out["graph.co_use_edges"] = float64(s.CoUseEdges)
	out["graph.co_use_steps"] = float64(s.CoUseSteps)
	out["co_use.sessions"] = float64(s.CoUseSessions)
	lp := s.LinkPrediction
	out["node2vec.p_used"], out["node2vec.q_used"] = lp.P, lp.Q
	if lp.Edges != "" {
		out["link_prediction_auc"] = lp.AUC
		out["link_prediction.candidates"] = float64(lp.Candidates)
		out["link_prediction.held_out"] = float64(len(lp.HeldOut))
	}
	for _, pt := range lp.Grid {
		out[gridMetric(pt)] = pt.AUC
	}
	if len(lp.Grid) > 0 {
		out["link_prediction.validation_edges"] = float64(len(lp.Validation))
		out["link_prediction.validation_null_sd"] = lp.ValidationNullSD
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

// gridMetric names a grid point's validation AUC, e.g.
// "link_prediction.grid.p0.25_q4" (MLflow keys allow no "=" or ",").
func gridMetric(pt TunePoint) string {
	return fmt.Sprintf("link_prediction.grid.p%s_q%s", fmtFloat(pt.P), fmtFloat(pt.Q))
}

// resultParams are the params only a build knows: the p and q the features
// were trained with and the kind of edge the AUC was measured on. They are
// new keys, not the configured node2vec.p and node2vec.q, because an MLflow
// param cannot change once logged.
func resultParams(s Summary) map[string]string {
	lp := s.LinkPrediction
	out := pipeline.Params(
		"node2vec.p_used", lp.P,
		"node2vec.q_used", lp.Q,
		"link_prediction.edges", orNone(lp.Edges),
	)
	switch {
	case len(lp.Grid) > 0:
		out["node2vec.pq_chosen_by"] = "validation link-prediction AUC"
	case lp.Skipped != "":
		out["node2vec.pq_chosen_by"] = "configuration (grid skipped: " + lp.Skipped + ")"
	default:
		out["node2vec.pq_chosen_by"] = "configuration"
	}
	return out
}

// linkPredictionArtifact is link_prediction/result.json: which edges were
// held out and scored, and every grid point.
type linkPredictionArtifact struct {
	Edges            string          `json:"edges"`
	Candidates       int             `json:"candidates"`
	AUC              float64         `json:"auc"`
	P                float64         `json:"p"`
	Q                float64         `json:"q"`
	Grid             []gridPointJSON `json:"grid,omitempty"`
	ValidationNullSD float64         `json:"validation_null_sd,omitempty"`
	Skipped          string          `json:"tuning_skipped,omitempty"`
	HeldOut          [][2]string     `json:"held_out"`
	Validation       [][2]string     `json:"validation,omitempty"`
}

type gridPointJSON struct {
	P   float64 `json:"p"`
	Q   float64 `json:"q"`
	AUC float64 `json:"validation_auc"`
}

func newLinkPredictionArtifact(lp LinkPrediction) linkPredictionArtifact {
	pairs := func(ps []node2vec.Pair) [][2]string {
		out := make([][2]string, len(ps))
		for i, p := range ps {
			out[i] = [2]string{p.U, p.V}
		}
		return out
	}
	a := linkPredictionArtifact{
		Edges: lp.Edges, Candidates: lp.Candidates, AUC: lp.AUC, P: lp.P, Q: lp.Q,
		ValidationNullSD: lp.ValidationNullSD, Skipped: lp.Skipped,
		HeldOut: pairs(lp.HeldOut), Validation: pairs(lp.Validation),
	}
	for _, pt := range lp.Grid {
		a.Grid = append(a.Grid, gridPointJSON(pt))
	}
	return a
}

// pqParam is the node2vec.p (or q) param: the value, or "tuned" when the
// grid will choose it.
func pqParam(x float64, grid []float64, fraction float64) string {
	if len(grid) > 0 && fraction > 0 {
		return "tuned"
	}
	return fmtFloat(x)
}

func gridParam(grid []float64, fraction float64) string {
	if len(grid) == 0 || fraction == 0 {
		return "none"
	}
	s := make([]string, len(grid))
	for i, x := range grid {
		s[i] = fmtFloat(x)
	}
	return strings.Join(s, ",")
}

func fmtFloat(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

func orAll(prefix string) string {
	if prefix == "" {
		return "(all sessions)"
	}
	return prefix
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
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
