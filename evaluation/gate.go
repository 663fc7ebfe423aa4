package evaluation

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/capflow/capflow/evaluation/metrics"
)

// GateConfig are the promotion rules. The zero value takes the defaults:
// no regression of MRR or Hit@3 beyond noise against Production, and MRR
// strictly above both the cosine and the BM25 baseline's.
type GateConfig struct {
	// NoRegression lists per-query metrics (mrr, ap, ndcg, hit_at_K,
	// ndcg_at_K) that must not be significantly worse than Production's:
	// the gate fails when the upper end of the Z-level confidence interval
	// of the paired per-query difference is below zero.
	NoRegression []string
	Z            float64 // 1.96 (two-sided 95%)
	// Baselines must each be beaten: the candidate's mean BaselineMetric
	// strictly above each one's. Default cosine (the untrained model's
	// features) and bm25: on lexically close data such as Seal-Tools, BM25
	// is the strongest classical ranker, and a model that loses to it
	// should not serve.
	Baselines      []string // ["cosine", "bm25"]
	BaselineMetric string   // "mrr"
}

func (g GateConfig) withDefaults() GateConfig {
	if len(g.NoRegression) == 0 {
		g.NoRegression = []string{"mrr", "hit_at_3"}
	}
	if g.Z == 0 {
		g.Z = 1.96
	}
	if len(g.Baselines) == 0 {
		g.Baselines = []string{ModelCosine, ModelBM25}
	}
	if g.BaselineMetric == "" {
		g.BaselineMetric = "mrr"
	}
	return g
}

// Check is one gate rule's outcome.
type Check struct {
	Rule      string  `json:"rule"`
	Passed    bool    `json:"passed"`
	Candidate float64 `json:"candidate"`
	Reference float64 `json:"reference"`
	Diff      float64 `json:"diff"`    // mean paired difference (candidate − reference)
	CILow     float64 `json:"ci_low"`  // Z-level interval of Diff
	CIHigh    float64 `json:"ci_high"` //
	Queries   int     `json:"queries"` // paired queries
	Detail    string  `json:"detail"`
}

// Decision is the gate's verdict: Improved is true when every check passed.
type Decision struct {
	Improved bool    `json:"improved"`
	Checks   []Check `json:"checks"`
}

// Gate applies cfg to the candidate's report, Production's (nil when there is
// no Production model: the regression checks pass vacuously) and the
// baselines' (by name). The reports must come from the same queries.
func Gate(cfg GateConfig, candidate metrics.Report, production *metrics.Report, baselines map[string]metrics.Report) (Decision, error) {
	cfg = cfg.withDefaults()
	d := Decision{Improved: true}
	add := func(c Check) {
		d.Checks = append(d.Checks, c)
		d.Improved = d.Improved && c.Passed
	}
	for _, m := range cfg.NoRegression {
		rule := "no regression of " + m + " vs Production"
		if production == nil {
			add(Check{Rule: rule, Passed: true, Detail: "no Production model"})
			continue
		}
		c, err := paired(rule, m, candidate, *production, cfg.Z)
		if err != nil {
			return Decision{}, err
		}
		c.Passed = c.CIHigh >= 0
		c.Detail = fmt.Sprintf("paired diff %+.4f, %.0f%% CI [%+.4f, %+.4f] over %d queries", c.Diff, 100*confidence(cfg.Z), c.CILow, c.CIHigh, c.Queries)
		add(c)
	}
	for _, name := range cfg.Baselines {
		base, ok := baselines[name]
		if !ok {
			return Decision{}, fmt.Errorf("evaluation: gate: no %q baseline report", name)
		}
		c, err := paired(cfg.BaselineMetric+" above the "+name+" baseline", cfg.BaselineMetric, candidate, base, cfg.Z)
		if err != nil {
			return Decision{}, err
		}
		c.Passed = c.Candidate > c.Reference
		c.Detail = fmt.Sprintf("%.4f vs %.4f", c.Candidate, c.Reference)
		add(c)
	}
	return d, nil
}

// paired compares metric m query by query (queries present in both) with a
// normal-approximation interval of the mean difference.
func paired(rule, m string, a, b metrics.Report, z float64) (Check, error) {
	va, err := perQuery(a, m)
	if err != nil {
		return Check{}, err
	}
	vb, err := perQuery(b, m)
	if err != nil {
		return Check{}, err
	}
	var diffs []float64
	c := Check{Rule: rule}
	for id, x := range va {
		y, ok := vb[id]
		if !ok {
			continue
		}
		diffs = append(diffs, x-y)
		c.Candidate += x
		c.Reference += y
	}
	n := float64(len(diffs))
	if n == 0 {
		return Check{}, fmt.Errorf("evaluation: gate: %s: no query in common", rule)
	}
	c.Queries = len(diffs)
	c.Candidate, c.Reference = c.Candidate/n, c.Reference/n
	for _, x := range diffs {
		c.Diff += x / n
	}
	var ss float64
	for _, x := range diffs {
		ss += (x - c.Diff) * (x - c.Diff)
	}
	se := 0.0
	if n > 1 {
		se = math.Sqrt(ss / (n - 1) / n)
	}
	c.CILow, c.CIHigh = c.Diff-z*se, c.Diff+z*se
	return c, nil
}

// perQuery returns one metric per query id: mrr, ap, ndcg, ndcg_graded,
// hit_at_K, ndcg_at_K.
func perQuery(r metrics.Report, m string) (map[string]float64, error) {
	out := make(map[string]float64, len(r.PerQuery))
	k := -1
	var list string
	for _, p := range []string{"hit_at_", "ndcg_at_"} {
		if rest, ok := strings.CutPrefix(m, p); ok {
			kk, err := strconv.Atoi(rest)
			if err != nil {
				return nil, fmt.Errorf("evaluation: gate: metric %q", m)
			}
			k = slices.IndexFunc(r.Cutoffs, func(a metrics.AtK) bool { return a.K == kk })
			if k < 0 {
				return nil, fmt.Errorf("evaluation: gate: metric %q: cut-off %d was not computed", m, kk)
			}
			list = p
		}
	}
	for _, q := range r.PerQuery {
		var v float64
		switch {
		case m == "mrr":
			v = q.RR
		case m == "ap" || m == "map":
			v = q.AP
		case m == "ndcg":
			v = q.NDCG
		case m == "ndcg_graded":
			v = q.NDCGGraded
		case list == "hit_at_":
			v = q.Hit[k]
		case list == "ndcg_at_":
			v = q.NDCGAt[k]
		default:
			return nil, fmt.Errorf("evaluation: gate: unknown per-query metric %q (mrr, ap, ndcg, ndcg_graded, hit_at_K, ndcg_at_K)", m)
		}
		out[q.QueryID] = v
	}
	return out, nil
}

// confidence is the two-sided level of a z multiplier.
func confidence(z float64) float64 { return math.Erf(z / math.Sqrt2) }
