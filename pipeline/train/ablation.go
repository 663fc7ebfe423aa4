package train

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/capflow/capflow/pipeline"
)

// Variant is one model of an ablation study: the stage's configuration with
// one component removed or swapped.
type Variant struct {
	Name  string // bench-quality's model=<name>; the child run is "ablation-<name>"
	About string // what differs from the full model, for the table
	// Configure changes the stage's configuration; nil trains the
	// configuration as given (the full model).
	Configure func(*StageConfig)
}

// Variants measured from the full model's own run rather than trained:
// the fusion fit alone (the model before the main loop), and the two
// classical baselines.
const (
	VariantFull     = "full"
	VariantEvidence = "evidence"
	VariantBM25     = "bm25"
	VariantCosine   = "cosine"
)

// WholeIntentEvidence are the evidence features that read the intent as a
// whole, without its parts (the model before part features).
var WholeIntentEvidence = []string{"bm25_capability", "bm25_tool_max", "cos_tool_max"}

// AblationVariants are the trained variants of `capflow train --ablation`,
// the full model first. Evidence-fit-only, BM25 and cosine come from the
// full model's run (see Ablate).
func AblationVariants() []Variant {
	return []Variant{
		{Name: VariantFull, About: "the default model"},
		{Name: "dense", About: "no lexical evidence: the trained SHGAT score alone",
			Configure: func(c *StageConfig) { c.Source.NoEvidence = true }},
		{Name: "whole-intent", About: "evidence of the whole intent only, no part features",
			Configure: func(c *StageConfig) { c.Train.Model.Evidence = WholeIntentEvidence }},
		{Name: "no-td", About: "listwise loss only: no TD(λ) targets (TD weight 0)",
			Configure: func(c *StageConfig) { c.Train.TDWeight = 0 }},
		{Name: "uniform-replay", About: "uniform replay (α = 0) instead of prioritized",
			Configure: func(c *StageConfig) { c.Train.Replay.Alpha = 0 }},
		{Name: "single-step", About: "single-step pseudo-experiences: no plans, no context tools",
			Configure: func(c *StageConfig) { c.Source.PseudoSingleStep = true }},
	}
}

// AblationRow is one variant's report on the held-out queries.
type AblationRow struct {
	Variant, About string
	Report         Validation
	Steps          int
	Seconds        float64
	RunID          string // the variant's child run, "" when not tracking
}

// Ablation is the result of Ablate: one row per variant, the full model's
// first, then evidence-fit-only, BM25 and cosine, then the other trained
// variants in the order given.
type Ablation struct {
	Rows    []AblationRow
	Queries int
	Prefix  string // the report queries
}

// Row returns the named variant's row.
func (a *Ablation) Row(name string) (AblationRow, bool) {
	for _, r := range a.Rows {
		if r.Variant == name {
			return r, true
		}
	}
	return AblationRow{}, false
}

// Ablate trains every variant on the same data with the same seed and
// reports each on the same held-out queries (base.ReportPrefix, required),
// as one pipeline run: a parent run with one child run per variant (so the
// MLflow UI compares them side by side), plus "ablation-table" with the
// Markdown table. Variants are trained without registering a version.
// variants must start with the full model (AblationVariants does).
func Ablate(ctx context.Context, r *pipeline.Runner, base StageConfig, variants []Variant) (*Ablation, *pipeline.Result, error) {
	if base.ReportPrefix == "" {
		return nil, nil, &ConfigError{Field: "report_prefix", Reason: "an ablation reports on held-out queries: set it"}
	}
	if len(variants) == 0 || variants[0].Name != VariantFull || variants[0].Configure != nil {
		return nil, nil, &ConfigError{Field: "variants", Reason: "the first variant must be the full model, unchanged"}
	}
	base.NoRegister = true
	ab := &Ablation{Prefix: base.ReportPrefix}
	var stages []pipeline.Stage
	for _, v := range variants {
		cfg := base
		cfg.Train.Model.Evidence = append([]string(nil), base.Train.Model.Evidence...)
		if v.Configure != nil {
			v.Configure(&cfg)
		}
		st, err := NewStage(cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("train: ablation variant %s: %w", v.Name, err)
		}
		stages = append(stages, pipeline.StageFunc("ablation-"+v.Name, func(ctx context.Context, env *pipeline.Env) error {
			sum, err := st.Train(ctx, env)
			if err != nil {
				return err
			}
			if err := env.Tracker.SetTags(ctx, map[string]string{"capflow.ablation.variant": v.Name}); err != nil {
				return err
			}
			row := AblationRow{Variant: v.Name, About: v.About, Report: sum.Report["trained"], Steps: sum.Steps,
				Seconds: sum.Seconds, RunID: env.Tracker.RunID()}
			ab.Rows = append(ab.Rows, row)
			if err := env.Tracker.LogMetrics(ctx, 0, row.Report.metrics("")); err != nil {
				return err
			}
			if v.Name != VariantFull {
				return nil
			}
			ab.Queries = row.Report.Queries
			// What the full model's run measured on the same queries
			// besides the trained model.
			for _, b := range []struct{ name, key, about string }{
				{VariantEvidence, "fused", "evidence fit only: the full model's fusion weights fitted, its SHGAT untrained"},
				{VariantBM25, "bm25", "Okapi BM25 of the intent against each capability's document"},
				{VariantCosine, "cosine", "cosine of the intent and capability text embeddings"},
			} {
				rep, ok := sum.Report[b.key]
				if !ok {
					continue
				}
				ab.Rows = append(ab.Rows, AblationRow{Variant: b.name, About: b.about, Report: rep})
			}
			return nil
		}))
	}
	// The rows measured in the full model's run get child runs of their
	// own, with the same metric keys, so the compare view lists every
	// variant side by side.
	for _, name := range []string{VariantEvidence, VariantBM25, VariantCosine} {
		stages = append(stages, pipeline.StageFunc("ablation-"+name, func(ctx context.Context, env *pipeline.Env) error {
			for i, row := range ab.Rows {
				if row.Variant != name {
					continue
				}
				ab.Rows[i].RunID = env.Tracker.RunID()
				if err := env.Tracker.SetTags(ctx, map[string]string{"capflow.ablation.variant": name}); err != nil {
					return err
				}
				return env.Tracker.LogMetrics(ctx, 0, row.Report.metrics(""))
			}
			return fmt.Errorf("train: ablation: the full model's run did not measure %s", name)
		}))
	}
	stages = append(stages, pipeline.StageFunc("ablation-table", func(ctx context.Context, env *pipeline.Env) error {
		if err := env.Tracker.LogArtifactBytes(ctx, "ablation.md", []byte(ab.Markdown())); err != nil {
			return err
		}
		if d, ok := ab.Paired(VariantFull, VariantEvidence); ok {
			return env.Tracker.LogMetrics(ctx, 0, map[string]float64{
				"full_minus_evidence_ndcg5": d.Mean, "full_minus_evidence_ndcg5_ci_low": d.Low, "full_minus_evidence_ndcg5_ci_high": d.High,
			})
		}
		return nil
	}))
	res, err := r.Run(ctx, stages...)
	if err != nil {
		return nil, res, err
	}
	return ab, res, nil
}

// Diff is a paired difference of a per-query metric with its 95% interval
// (normal approximation over the queries).
type Diff struct {
	Mean, Low, High float64
	Queries         int
}

// Paired compares two rows' per-query nDCG@5 on the same queries.
func (a *Ablation) Paired(x, y string) (Diff, bool) {
	rx, ok1 := a.Row(x)
	ry, ok2 := a.Row(y)
	if !ok1 || !ok2 {
		return Diff{}, false
	}
	xs, ys := make([]float64, len(rx.Report.PerQuery)), make([]float64, len(ry.Report.PerQuery))
	for i, q := range rx.Report.PerQuery {
		xs[i] = q.NDCG5
	}
	for i, q := range ry.Report.PerQuery {
		ys[i] = q.NDCG5
	}
	return pairedDiff(xs, ys)
}

// pairedDiff is the mean of xs[i] − ys[i] with its 95% interval (normal
// approximation); false unless both have the same length, at least 2.
func pairedDiff(xs, ys []float64) (Diff, bool) {
	n := len(xs)
	if n < 2 || n != len(ys) {
		return Diff{}, false
	}
	var mean, m2 float64
	for i := range n {
		d := xs[i] - ys[i]
		delta := d - mean
		mean += delta / float64(i+1)
		m2 += delta * (d - mean)
	}
	se := math.Sqrt(m2 / float64(n-1) / float64(n))
	return Diff{Mean: mean, Low: mean - 1.96*se, High: mean + 1.96*se, Queries: n}, true
}

// Markdown is the ablation as a table, best first by nDCG@5 within trained
// and reference rows as they came.
func (a *Ablation) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Ablation on the %d %q queries (level-0 capabilities ranked).\n\n", a.Queries, a.Prefix)
	b.WriteString("| model | nDCG@5 | MRR | Hit@1 | Hit@3 | COMP@5 | steps | what differs |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range a.Rows {
		v := r.Report
		steps := "–"
		if r.Steps > 0 {
			steps = fmt.Sprint(r.Steps)
		}
		fmt.Fprintf(&b, "| %s | %.4f | %.4f | %.4f | %.4f | %.4f | %s | %s |\n", r.Variant, v.NDCG5, v.MRR, v.Hit1, v.Hit3, v.Comp5, steps, r.About)
	}
	if d, ok := a.Paired(VariantFull, VariantEvidence); ok {
		fmt.Fprintf(&b, "\nfull − evidence, nDCG@5 paired over %d queries: %+.4f, 95%% CI [%+.4f, %+.4f]\n", d.Queries, d.Mean, d.Low, d.High)
	}
	return b.String()
}
