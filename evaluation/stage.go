package evaluation

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/capflow/capflow/evaluation/metrics"
	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/evidence"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/models/ranker"
	"github.com/capflow/capflow/models/shgat"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline"
	"github.com/capflow/capflow/pipeline/train"
)

// StageName names the evaluate stage's nested run.
const StageName = "evaluate"

// ValueImproved is the pipeline value the stage sets: "true" or "false".
const ValueImproved = "improved"

// Baseline names usable as a model.
const (
	ModelCosine = "cosine"
	ModelBM25   = "bm25"
)

// StageConfig configures the evaluate stage.
type StageConfig struct {
	// Model is what is evaluated: a models:/ URI, "cosine" or "bm25". When
	// it comes from the pipeline (train's model_uri) leave it empty.
	Model string
	// Against is the reference: a stage or alias of the same registered
	// model ("Production"), or a models:/ URI; "" for none. A missing
	// reference (nothing in Production yet) is noted, not an error.
	Against string
	// Queries decide: the gate reads their metrics, and without
	// Calibration the temperatures are fitted on them. Select on them, never
	// on the split you report (Seal-Tools: dev queries the candidate's
	// training held out, train.HeldOutQueries). When the candidate's training
	// run says which queries it fitted (train.TrainedOn), Evaluate refuses
	// decision or report queries among them. Source says where they came
	// from (for the report).
	Queries []featurestore.Query
	Source  string
	// Report queries are only reported: every ranker is evaluated on them
	// too and they are logged as report_<ranker>_<metric>, but the gate
	// never reads them and no temperature is fitted on them (they take the
	// one fitted for Queries). Disjoint from Queries and Calibration.
	// ReportSource says where they came from.
	Report       []featurestore.Query
	ReportSource string
	// Calibration queries, disjoint from Queries, fit the softmax
	// temperatures behind ECE and Brier; without them the temperatures
	// are fitted on Queries (optimistic for Queries' own ECE, and the
	// report says so).
	Calibration []featurestore.Query
	Levels      []int // rank capabilities of these levels (empty: all)
	Encoder     textembed.Encoder
	Gate        GateConfig
	Metrics     metrics.Options
	ORTLibrary  string
	// PromoteTo, when set (Production), moves the candidate there when
	// the gate says improved; nothing is promoted otherwise.
	PromoteTo string
	OutDir    string // keeps downloads and the report (default: temporary)
}

// Stage evaluates a model against Production and the baselines.
type Stage struct{ cfg StageConfig }

// NewStage checks cfg.
func NewStage(cfg StageConfig) (*Stage, error) {
	if cfg.Encoder == nil {
		return nil, &ConfigError{Field: "encoder", Reason: "missing"}
	}
	if len(cfg.Queries) == 0 {
		return nil, &ConfigError{Field: "queries", Reason: "no evaluation queries"}
	}
	for _, other := range []struct {
		name string
		qs   []featurestore.Query
	}{{"queries", cfg.Queries}, {"calibration", cfg.Calibration}} {
		if id, ok := shared(cfg.Report, other.qs); ok {
			return nil, &ConfigError{Field: "report", Reason: fmt.Sprintf("query %q is also in %s: a reported query must not decide or fit anything", id, other.name)}
		}
	}
	if cfg.PromoteTo != "" && cfg.PromoteTo != string(mlflowclient.StageProduction) && cfg.PromoteTo != string(mlflowclient.StageStaging) {
		return nil, &ConfigError{Field: "promote_to", Reason: fmt.Sprintf("must be Production or Staging, got %q", cfg.PromoteTo)}
	}
	return &Stage{cfg: cfg}, nil
}

// shared returns an id present in both query sets.
func shared(a, b []featurestore.Query) (string, bool) {
	ids := make(map[string]bool, len(b))
	for _, q := range b {
		ids[q.ID] = true
	}
	for _, q := range a {
		if ids[q.ID] {
			return q.ID, true
		}
	}
	return "", false
}

// ConfigError names a configuration field that is wrong.
type ConfigError struct{ Field, Reason string }

func (e *ConfigError) Error() string { return "evaluation: config " + e.Field + ": " + e.Reason }

// Name is "evaluate".
func (s *Stage) Name() string { return StageName }

// Run evaluates; see Evaluate.
func (s *Stage) Run(ctx context.Context, env *pipeline.Env) error {
	_, err := s.Evaluate(ctx, env)
	return err
}

// Evaluate ranks the queries with the model, the reference and the
// baselines, computes every metric, applies the gate, logs metrics to the
// stage's run and to the model's own run, writes the report artifacts
// (report.json, report.md, plots), sets the pipeline value "improved" and
// promotes when configured and improved.
func (s *Stage) Evaluate(ctx context.Context, env *pipeline.Env) (*Evaluation, error) {
	cfg := s.cfg
	if cfg.Model == "" {
		uri, ok := env.Value(train.ValueModelURI)
		if !ok {
			return nil, &ConfigError{Field: "model", Reason: "not given and no earlier stage registered one"}
		}
		cfg.Model = uri
	}
	// Before anything is downloaded or ranked: a refusal costs nothing.
	if cfg.Model != ModelCosine && cfg.Model != ModelBM25 && env.Client != nil {
		v, err := ResolveVersion(ctx, env.Client, cfg.Model)
		if err != nil {
			return nil, err
		}
		if err := s.checkNotTrainedOn(ctx, env, v); err != nil {
			return nil, err
		}
	}
	out := cfg.OutDir
	if out == "" {
		var err error
		if out, err = os.MkdirTemp("", "capflow-evaluate-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(out)
	}
	st := env.Store
	tools, err := st.Tools(ctx)
	if err != nil {
		return nil, err
	}
	caps, err := st.Capabilities(ctx)
	if err != nil {
		return nil, err
	}
	poolIDs := levelPool(caps, cfg.Levels)
	qs, err := s.queries(ctx, st, cfg.Queries, poolIDs)
	if err != nil {
		return nil, err
	}
	var report []Query
	if len(cfg.Report) > 0 {
		if report, err = s.queries(ctx, st, cfg.Report, poolIDs); err != nil {
			return nil, err
		}
	}
	var calib []Query
	calibSource := "the evaluated queries themselves (no calibration set: optimistic)"
	if len(cfg.Calibration) > 0 {
		if calib, err = s.queries(ctx, st, cfg.Calibration, poolIDs); err != nil {
			return nil, err
		}
		calibSource = fmt.Sprintf("%d separate calibration queries", len(calib))
	}

	rankers, closers, err := s.rankers(ctx, env, cfg, tools, caps, out)
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	if err != nil {
		return nil, err
	}
	candidate := rankers[0]
	ev := &Evaluation{Queries: len(qs), Source: cfg.Source, Levels: cfg.Levels, Calibration: calibSource,
		ReportQueries: len(report), ReportSource: cfg.ReportSource}
	reports := map[string]metrics.Report{}
	for _, nr := range rankers {
		res, rep, err := s.evaluate(ctx, nr, qs, calib, report, poolIDs)
		if err != nil {
			return nil, fmt.Errorf("evaluation: %s: %w", nr.name, err)
		}
		reports[nr.name] = res.Report
		ev.Results = append(ev.Results, res)
		if rep != nil {
			ev.Reported = append(ev.Reported, *rep)
		}
	}
	if candidate.version != nil {
		var prod *metrics.Report
		if r, ok := reports["production"]; ok {
			prod = &r
		}
		d, err := Gate(cfg.Gate, reports["candidate"], prod, reports)
		if err != nil {
			return nil, err
		}
		ev.Decision = &d
		env.Set(ValueImproved, strconv.FormatBool(d.Improved))
	}
	if err := s.log(ctx, env, ev, rankers, out); err != nil {
		return nil, err
	}
	if ev.Decision != nil && cfg.PromoteTo != "" {
		v := candidate.version
		if !ev.Decision.Improved {
			env.Logger.Info("not promoted: the gate says not improved", "model", v.Name, "version", v.Version)
		} else if env.Client == nil {
			return nil, &ConfigError{Field: "promote_to", Reason: "promotion needs MLflow tracking"}
		} else if _, err := mlmodel.Promote(ctx, env.Client, v.Name, v.Version, mlflowclient.Stage(cfg.PromoteTo)); err != nil {
			return nil, err
		} else {
			env.Logger.Info("promoted", "model", v.Name, "version", v.Version, "stage", cfg.PromoteTo)
		}
	}
	return ev, nil
}

// namedRanker is one ranker of an evaluation.
type namedRanker struct {
	name, model string
	r           Ranker
	version     *mlflowclient.ModelVersion // registered models only
}

// rankers opens the candidate (first), the reference and the baselines.
func (s *Stage) rankers(ctx context.Context, env *pipeline.Env, cfg StageConfig, tools []featurestore.Tool, caps []featurestore.Capability, out string) ([]namedRanker, []func(), error) {
	var closers []func()
	ids := make([]string, len(caps))
	for i, c := range caps {
		ids[i] = c.ID
	}
	rows, err := env.Store.CapabilityFeatures(ctx, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("evaluation: capability features (build features first): %w", err)
	}
	emb := make([][]float32, len(rows))
	for i, r := range rows {
		emb[i] = r.TextEmbedding
	}
	cos, err := NewCosine(ids, emb)
	if err != nil {
		return nil, nil, err
	}
	bm, err := NewBM25(tools, caps)
	if err != nil {
		return nil, nil, err
	}
	open := func(name, uri string) (*namedRanker, error) {
		if env.Client == nil {
			return nil, &ConfigError{Field: "model", Reason: "a models:/ URI needs MLflow tracking (an MLflow client)"}
		}
		v, err := ResolveVersion(ctx, env.Client, uri)
		if err != nil {
			return nil, err
		}
		f, err := mlmodel.Download(ctx, env.Client, uri, filepath.Join(out, name))
		if err != nil {
			return nil, err
		}
		r, err := s.openRanker(ctx, f.Dir, tools, caps, emb)
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { r.Close() })
		return &namedRanker{name: name, model: fmt.Sprintf("%s (version %s)", uri, v.Version), r: r, version: v}, nil
	}
	var list []namedRanker
	switch cfg.Model {
	case ModelCosine:
		list = append(list, namedRanker{name: "candidate", model: "cosine baseline", r: cos})
	case ModelBM25:
		list = append(list, namedRanker{name: "candidate", model: "BM25 baseline", r: bm})
	default:
		c, err := open("candidate", cfg.Model)
		if err != nil {
			return nil, closers, err
		}
		list = append(list, *c)
		if cfg.Against != "" {
			ref := cfg.Against
			if !strings.HasPrefix(ref, "models:/") {
				sep := "/"
				if strings.HasPrefix(ref, "@") {
					sep = ""
				}
				ref = "models:/" + c.version.Name + sep + ref
			}
			p, err := open("production", ref)
			switch {
			case mlflowclient.IsNotFound(err) || isEmptyStage(err):
				env.Logger.Info("no reference model: the regression checks pass vacuously", "against", ref)
			case errors.As(err, new(*shgat.ContractError)):
				// A model an older capflow packaged: this build can neither
				// evaluate nor serve it, so it is no reference to hold the
				// candidate to.
				env.Logger.Warn("the reference model is for another scorer contract: the regression checks pass vacuously", "against", ref, "err", err)
			case err != nil:
				return nil, closers, err
			case p.version.Version == c.version.Version:
				env.Logger.Info("the reference is the candidate itself", "version", p.version.Version)
				list = append(list, *p)
			default:
				list = append(list, *p)
			}
		}
	}
	list = append(list, namedRanker{name: "cosine", model: "cosine similarity of intent and capability text embeddings", r: cos},
		namedRanker{name: "bm25", model: "BM25 (k1 1.5, b 0.75) over name, description and member tool texts", r: bm})
	return list, closers, nil
}

// openRanker opens a downloaded model on the store's catalog: with the
// model's own precomputed catalog when the store holds the same tools and
// capabilities, else by running the model's message passing over the
// store's catalog (a model trained on one catalog ranks another).
func (s *Stage) openRanker(ctx context.Context, dir string, tools []featurestore.Tool, caps []featurestore.Capability, capText [][]float32) (*ranker.Ranker, error) {
	opts := ranker.Options{ORTLibrary: s.cfg.ORTLibrary}
	pkg, err := shgat.ReadMLflowModel(dir)
	if err != nil {
		return nil, err
	}
	if sameIDs(pkg.Catalog.CapabilityIDs, caps, func(c featurestore.Capability) string { return c.ID }) &&
		sameIDs(pkg.Catalog.ToolIDs, tools, func(t featurestore.Tool) string { return t.ID }) {
		return ranker.OpenPackage(ctx, pkg, tools, caps, opts)
	}
	texts := make([]string, len(tools))
	for i, t := range tools {
		texts[i] = evidence.ToolText(t)
	}
	toolText, err := s.cfg.Encoder.Encode(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("evaluation: encode tools: %w", err)
	}
	rel := make([]float64, len(caps))
	for i, c := range caps {
		rel[i] = pkg.Model.Config.Reliability.Factor(c.SuccessRate)
	}
	return ranker.OpenFor(ctx, dir, ranker.Catalog{Tools: tools, Caps: caps, CapText: capText, ToolText: toolText, Reliability: rel}, opts)
}

func sameIDs[T any](ids []string, items []T, id func(T) string) bool {
	if len(ids) != len(items) {
		return false
	}
	set := make(map[string]bool, len(ids))
	for _, x := range ids {
		set[x] = true
	}
	for _, it := range items {
		if !set[id(it)] {
			return false
		}
	}
	return true
}

// evaluate ranks the queries with one ranker; the temperature is fitted on
// the calibration queries when given, else on the queries themselves. The
// report queries (nil result without them) take that temperature: nothing
// is fitted on them.
func (s *Stage) evaluate(ctx context.Context, nr namedRanker, qs, calib, report []Query, pool []string) (Result, *Result, error) {
	rks, err := Rankings(ctx, nr.r, qs)
	if err != nil {
		return Result{}, nil, err
	}
	fitOn := rks
	if len(calib) > 0 {
		if fitOn, err = Rankings(ctx, nr.r, calib); err != nil {
			return Result{}, nil, err
		}
	}
	fit, err := metrics.FitTemperature(fitOn)
	if err != nil {
		return Result{}, nil, err
	}
	opts := s.cfg.Metrics
	opts.Temperature, opts.Catalog = fit.Temperature, pool
	rep, err := metrics.Compute(rks, opts)
	if err != nil {
		return Result{}, nil, err
	}
	res := Result{Name: nr.name, Model: nr.model, Metrics: rep.Map(), Report: rep, Rankings: rks}
	if len(report) == 0 {
		return res, nil, nil
	}
	rrks, err := Rankings(ctx, nr.r, report)
	if err != nil {
		return Result{}, nil, fmt.Errorf("report queries: %w", err)
	}
	rrep, err := metrics.Compute(rrks, opts)
	if err != nil {
		return Result{}, nil, fmt.Errorf("report queries: %w", err)
	}
	return res, &Result{Name: nr.name, Model: nr.model, Metrics: rrep.Map(), Report: rrep, Rankings: rrks}, nil
}

// checkNotTrainedOn refuses decision and report queries that the candidate's
// training run fitted, as its params record them (train.TrainedOn): gating
// on them would select the model on its own training data, and reporting
// them would overstate it. A version without a run, or a run that does not
// record its split, is not checked (the latter with a warning).
func (s *Stage) checkNotTrainedOn(ctx context.Context, env *pipeline.Env, v *mlflowclient.ModelVersion) error {
	if v.RunID == "" {
		return nil
	}
	run, err := env.Client.Runs.Get(ctx, v.RunID)
	if err != nil {
		return fmt.Errorf("evaluation: the candidate's training run: %w", err)
	}
	params := make(map[string]string, len(run.Data.Params))
	for _, p := range run.Data.Params {
		params[p.Key] = p.Value
	}
	for _, set := range []struct {
		field string
		qs    []featurestore.Query
	}{{"queries", s.cfg.Queries}, {"report", s.cfg.Report}} {
		trained, known, err := train.TrainedOn(params, set.qs)
		if err != nil {
			return fmt.Errorf("evaluation: the candidate's training run %s: %w", v.RunID, err)
		}
		if !known {
			env.Logger.Warn("the candidate's training run does not record its split: cannot check that the evaluation queries are not training queries", "run", v.RunID)
			return nil
		}
		if len(trained) > 0 {
			return &ConfigError{Field: set.field, Reason: fmt.Sprintf(
				"%d of the %d queries (first %q) are training queries of the candidate (run %s: pseudo-experiences of %q, %s split, valid fraction %s, split seed %s); use the queries it held out (train.HeldOutQueries with that fraction and seed)",
				len(trained), len(set.qs), trained[0].ID, v.RunID, params[train.ParamPseudoPrefix], params[train.ParamSplit],
				params[train.ParamValidFraction], params[train.ParamSplitSeed])}
		}
	}
	return nil
}

// queries embeds the queries (the store's intent features, else the
// encoder) and restricts candidates to the pool.
func (s *Stage) queries(ctx context.Context, st featurestore.Store, in []featurestore.Query, pool []string) ([]Query, error) {
	exps := make([]featurestore.Experience, len(in))
	for i, q := range in {
		exps[i] = featurestore.Experience{Intent: q.Intent, ContextTools: q.ContextTools}
	}
	emb, err := train.IntentEmbeddings(ctx, st, s.cfg.Encoder, exps)
	if err != nil {
		return nil, err
	}
	// The intents' parts, with the same encoder, for the part evidence
	// features and models that score parts (as serving encodes them).
	parts := train.NewParts(s.cfg.Encoder)
	texts := make([]string, len(in))
	for i, q := range in {
		texts[i] = q.Intent
	}
	if err := parts.Prepare(ctx, texts); err != nil {
		return nil, err
	}
	out := make([]Query, 0, len(in))
	for _, q := range in {
		e := emb[featurestore.IntentHash(q.Intent, q.ContextTools)]
		x := make([]float32, len(e))
		for i, v := range e {
			x[i] = float32(v)
		}
		rel := map[string]float64{}
		for _, id := range q.Relevant {
			rel[id] = 1
		}
		ps, err := parts.Of(ctx, q.Intent)
		if err != nil {
			return nil, err
		}
		eq := Query{ID: q.ID, Relevant: rel, Session: q.ID,
			Query: ranker.Query{Text: q.Intent, Embedding: x, Parts: ps, ContextTools: q.ContextTools, Candidates: pool}}
		if q.Timestamp != nil {
			eq.Timestamp = *q.Timestamp
		}
		out = append(out, eq)
	}
	return out, nil
}

// log writes metrics (stage run: <name>_<metric>; the model's run:
// eval_<metric>), the report artifacts and the decision tags.
func (s *Stage) log(ctx context.Context, env *pipeline.Env, ev *Evaluation, rankers []namedRanker, out string) error {
	params := map[string]string{"model": s.cfg.Model, "against": s.cfg.Against, "queries": strconv.Itoa(ev.Queries),
		"source": ev.Source, "levels": fmt.Sprint(ev.Levels), "calibration": ev.Calibration}
	if ev.ReportQueries > 0 {
		params["report_queries"], params["report_source"] = strconv.Itoa(ev.ReportQueries), ev.ReportSource
	}
	m := map[string]float64{}
	for _, r := range ev.Results {
		for k, v := range r.Metrics {
			m[r.Name+"_"+k] = v
		}
	}
	for _, r := range ev.Reported {
		for k, v := range r.Metrics {
			m["report_"+r.Name+"_"+k] = v
		}
	}
	if ev.Decision != nil {
		m["improved"] = 0
		if ev.Decision.Improved {
			m["improved"] = 1
		}
	}
	plots, err := ev.WritePlots(out)
	if err != nil {
		return err
	}
	errs := []error{env.Tracker.LogParams(ctx, params), env.Tracker.LogMetrics(ctx, 0, m),
		env.Tracker.LogArtifactBytes(ctx, "report/report.json", ev.JSON()),
		env.Tracker.LogArtifactBytes(ctx, "report/report.md", []byte(ev.Markdown()))}
	for _, p := range plots {
		errs = append(errs, env.Tracker.LogArtifact(ctx, p, "plots"))
	}
	if ev.Decision != nil {
		errs = append(errs, env.Tracker.SetTags(ctx, map[string]string{"capflow.improved": strconv.FormatBool(ev.Decision.Improved)}))
	}
	// The candidate's own run gets the headline metrics, so its run page
	// and the registry's version page show how it evaluated.
	if v := rankers[0].version; v != nil && v.RunID != "" && env.Client != nil {
		var batch []mlflowclient.Metric
		now := time.Now().UnixMilli()
		for k, x := range ev.Results[0].Metrics {
			batch = append(batch, mlflowclient.Metric{Key: "eval_" + k, Value: x, Timestamp: now})
		}
		if len(ev.Reported) > 0 {
			for k, x := range ev.Reported[0].Metrics {
				batch = append(batch, mlflowclient.Metric{Key: "eval_report_" + k, Value: x, Timestamp: now})
			}
		}
		errs = append(errs, env.Client.Runs.LogBatch(ctx, v.RunID, mlflowclient.Batch{Metrics: batch}))
		if ev.Decision != nil {
			errs = append(errs, env.Client.Registry.SetVersionTag(ctx, v.Name, v.Version, "capflow.improved", strconv.FormatBool(ev.Decision.Improved)))
		}
	}
	for _, e := range errs {
		if e != nil {
			return fmt.Errorf("evaluation: log: %w", e)
		}
	}
	return nil
}

// ResolveVersion finds the registered version a models:/ URI names (by
// version, stage or alias).
func ResolveVersion(ctx context.Context, c *mlflowclient.Client, uri string) (*mlflowclient.ModelVersion, error) {
	u, err := mlflowclient.ParseURI(uri)
	if err != nil {
		return nil, err
	}
	switch u.Kind {
	case mlflowclient.URIModelVersion:
		return c.Registry.GetVersion(ctx, u.Name, u.Version)
	case mlflowclient.URIModelAlias:
		return c.Registry.GetByAlias(ctx, u.Name, u.Alias)
	case mlflowclient.URIModelStage, mlflowclient.URIModelLatest:
		var stages []mlflowclient.Stage
		if u.Kind == mlflowclient.URIModelStage {
			stages = []mlflowclient.Stage{u.Stage}
		}
		vs, err := c.Registry.GetLatestVersions(ctx, u.Name, stages...)
		if err != nil {
			return nil, err
		}
		if len(vs) == 0 {
			return nil, &emptyStageError{uri: uri}
		}
		slices.SortFunc(vs, func(a, b *mlflowclient.ModelVersion) int {
			x, _ := strconv.Atoi(a.Version)
			y, _ := strconv.Atoi(b.Version)
			return y - x
		})
		return vs[0], nil
	}
	return nil, &ConfigError{Field: "model", Reason: fmt.Sprintf("%q is not a registered model version (models:/<name>/<version|stage>, models:/<name>@<alias>)", uri)}
}

type emptyStageError struct{ uri string }

func (e *emptyStageError) Error() string { return "evaluation: no version in " + e.uri }

func isEmptyStage(err error) bool {
	var e *emptyStageError
	return errors.As(err, &e)
}

// levelPool lists the ids of the capabilities of the given levels (all when
// empty), in catalog order.
func levelPool(caps []featurestore.Capability, levels []int) []string {
	var ids []string
	for _, c := range caps {
		if len(levels) == 0 || slices.Contains(levels, c.Level) {
			ids = append(ids, c.ID)
		}
	}
	return ids
}
