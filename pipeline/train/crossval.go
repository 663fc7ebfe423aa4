package train

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/capflow/capflow/pipeline"
)

// SystemTrained is the model trained on a fold's other sessions. The other
// systems a cross-validation measures keep the ablation's names:
// VariantEvidence (the same run right after the fusion fit), VariantBM25
// and VariantCosine.
const SystemTrained = "trained"

// CVSystems are the systems a cross-validation measures, in table order.
var CVSystems = []string{SystemTrained, VariantEvidence, VariantBM25, VariantCosine}

// CVMetrics are the metrics summarised across folds (Validation's fields,
// under the names the train stage logs them with).
var CVMetrics = []string{"mrr", "ndcg_at_5", "hit_at_1", "hit_at_3", "hit_at_5", "comp_at_5"}

// CVOptions configures CrossValidate.
type CVOptions struct {
	// K is the number of folds: at least 2, at most the number of sessions
	// with a success (each is tested in exactly one fold).
	K int
	// Seed shuffles the sessions before they are dealt to folds
	// (AssignFolds); the model's own seed is Config.Seed.
	Seed uint64
	// Logger receives one line per fold (nil: none).
	Logger *slog.Logger
	// Progress draws one bar per fold over its planned steps (nil: none).
	Progress pipeline.Progress
}

// MeanSD is a metric's mean and sample standard deviation (n − 1) across
// folds.
type MeanSD struct {
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"`
}

// CVFold is one fold: the sessions it tests, what its model trained on,
// and every system's metrics on its test sessions.
type CVFold struct {
	Index int `json:"index"` // 0-based
	// Sessions are the test sessions, in the order of each system's
	// Validation.PerQuery.
	Sessions []string `json:"sessions"`
	// TrainSessions were fitted, ValidSessions held out for early stopping
	// and the choice of epoch: both from the other folds only.
	TrainSessions int                   `json:"train_sessions"`
	ValidSessions int                   `json:"valid_sessions"`
	Steps         int                   `json:"steps"`
	Seconds       float64               `json:"seconds"`
	Best          Validation            `json:"best_valid"` // early stopping's best, on ValidSessions
	Systems       map[string]Validation `json:"systems"`
}

// CrossValidation is the result of CrossValidate.
type CrossValidation struct {
	K    int    `json:"k"`
	Seed uint64 `json:"seed"`
	// Sessions is the number of sessions with a success: each is tested in
	// exactly one fold. Untested sessions have none (nothing to rank) and
	// train in every fold.
	Sessions int `json:"sessions"`
	Untested int `json:"untested"`
	// Systems are those measured, in CVSystems order: VariantEvidence is
	// absent without a fusion fit (Config.FusionSteps 0, or no evidence).
	Systems []string                     `json:"systems"`
	Folds   []CVFold                     `json:"folds"`
	Summary map[string]map[string]MeanSD `json:"summary"` // system → metric (CVMetrics) → across folds
	Seconds float64                      `json:"seconds"`
}

// CheckFolds rejects a number of folds below 2 with a *ConfigError on
// "cv", before any data is read; the upper bound, the sessions with a
// success, is checked once they are loaded.
func CheckFolds(k int) error {
	if k < 2 {
		return &ConfigError{Field: "cv", Reason: fmt.Sprintf("%d folds: want at least 2 (each fold's sessions are tested by a model trained on the others)", k)}
	}
	return nil
}

// AssignFolds deals sessions to k folds: the distinct sessions, sorted,
// are shuffled by a PCG seeded with seed and dealt round-robin, so fold
// sizes differ by at most one and the assignment depends only on the set
// of sessions and the seed. It is evaluation.CrossValidate's assignment
// of groups of one query (same generator, same stream, same order), so the
// two agree on the same sessions and seed. k outside [2, sessions] is a
// *ConfigError on "cv".
func AssignFolds(sessions []string, k int, seed uint64) (map[string]int, error) {
	ids := slices.Clone(sessions)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if k < 2 || k > len(ids) {
		return nil, &ConfigError{Field: "cv", Reason: fmt.Sprintf("%d folds of %d sessions with a success: want 2 ≤ K ≤ %d", k, len(ids), len(ids))}
	}
	rand.New(rand.NewPCG(seed, 0x63766f6c64)).Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	fold := make(map[string]int, len(ids))
	for i, id := range ids {
		fold[id] = i % k
	}
	return fold, nil
}

// CrossValidate runs K-fold cross-validation grouped by session on data
// (Load's output, usually of the store's logged experiences): for each
// fold, a model is trained with cfg on the other folds' sessions, its
// early stopping and fusion fit on their held-out part (data's own split:
// Load's ValidFraction and SplitSeed), never on the fold; then the fold's
// sessions are ranked, as validation ranks them (Evaluate: each session's
// first intent and context, its successful capabilities relevant), by
// the trained model, by the same run right after its fusion fit
// (evidence-fit-only), by BM25 and by cosine similarity.
//
// Sessions without a success have nothing to rank: they are never tested
// and train in every fold. Folds are AssignFolds(sessions with a success,
// K, Seed); every fold trains with the same cfg (and seed), so the result
// is deterministic. Bad K is a *ConfigError on "cv"; a fold whose
// early-stopping hold-out has no session with a success, a *ConfigError on
// "valid_fraction", and other data a fold cannot train on, the trainer's
// *DataError, both wrapped with the fold.
func CrossValidate(ctx context.Context, data *Loaded, cfg Config, opts CVOptions) (*CrossValidation, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if data == nil || data.Data == nil {
		return nil, &DataError{Reason: "no data"}
	}
	if err := CheckFolds(opts.K); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	prog := opts.Progress
	if prog == nil {
		prog = pipeline.NoProgress
	}
	t0 := time.Now()
	var ranked []string
	for _, side := range [][]Sample{data.Train, data.Valid} {
		for _, q := range queries(side) {
			ranked = append(ranked, q.session)
		}
	}
	fold, err := AssignFolds(ranked, opts.K, opts.Seed)
	if err != nil {
		return nil, err
	}
	// BM25 ranks text: each session's first intent, the one validation
	// ranks with (the samples follow their transitions' order).
	text := map[string]string{}
	for _, side := range [][]Transition{data.Split.Train, data.Split.Valid} {
		for _, t := range side {
			if _, ok := text[t.Session]; !ok {
				text[t.Session] = t.Experience.Intent
			}
		}
	}
	out := &CrossValidation{K: opts.K, Seed: opts.Seed, Sessions: len(fold), Untested: len(text) - len(fold)}
	for i := range opts.K {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := runFold(ctx, data, cfg, fold, i, text, prog)
		if err != nil {
			return nil, fmt.Errorf("train: cross-validation fold %d of %d: %w", i+1, opts.K, err)
		}
		tr := f.Systems[SystemTrained]
		log.Info("cross-validation fold", "fold", i+1, "of", opts.K, "test_sessions", len(f.Sessions),
			"train_sessions", f.TrainSessions, "valid_sessions", f.ValidSessions, "steps", f.Steps, "seconds", f.Seconds,
			"trained_ndcg5", tr.NDCG5, "trained_mrr", tr.MRR)
		out.Folds = append(out.Folds, f)
	}
	for _, s := range CVSystems {
		if _, ok := out.Folds[0].Systems[s]; ok {
			out.Systems = append(out.Systems, s)
		}
	}
	out.Summary = summarise(out.Folds, out.Systems)
	out.Seconds = time.Since(t0).Seconds()
	return out, nil
}

// runFold trains on every session not in fold i and tests on those in it.
func runFold(ctx context.Context, data *Loaded, cfg Config, fold map[string]int, i int, text map[string]string, prog pipeline.Progress) (CVFold, error) {
	inFold := func(s string) bool { f, ok := fold[s]; return ok && f == i }
	notInFold := func(s string) bool { return !inFold(s) }
	fd := &Data{Graph: data.Graph, Features: data.Features, Reliability: data.Reliability, Pool: data.Pool,
		Train: selectSessions(data.Train, notInFold), Valid: selectSessions(data.Valid, notInFold)}
	test := concatSamples(selectSessions(data.Train, inFold), selectSessions(data.Valid, inFold))
	f := CVFold{Index: i, TrainSessions: countSessions(fd.Train), ValidSessions: countSessions(fd.Valid), Systems: map[string]Validation{}}
	for _, q := range queries(test) {
		f.Sessions = append(f.Sessions, q.session)
	}
	if len(queries(fd.Valid)) == 0 {
		// The trainer would refuse it too, without saying which setting
		// to change.
		return f, &ConfigError{Field: "valid_fraction", Reason: fmt.Sprintf("none of this fold's %d training sessions held out for early stopping has a success: raise the fraction or change the split seed", f.TrainSessions+f.ValidSessions)}
	}
	tr, err := NewTrainer(cfg, fd)
	if err != nil {
		return f, err
	}
	t0 := time.Now()
	bar := prog.Start(fmt.Sprintf("fold %d", i+1), tr.PlannedSteps())
	err = tr.Run(ctx, Observer{}, bar)
	bar.Done()
	if err != nil {
		return f, err
	}
	f.Steps, f.Seconds, f.Best = tr.Steps(), time.Since(t0).Seconds(), tr.Best()
	if f.Systems[SystemTrained], err = Evaluate(tr.Model(), fd, test); err != nil {
		return f, err
	}
	if m := tr.Fused(); m != nil {
		if f.Systems[VariantEvidence], err = Evaluate(m, fd, test); err != nil {
			return f, err
		}
	}
	if f.Systems[VariantBM25], err = EvaluateBM25(fd, data.Tools, data.Capabilities, test, text); err != nil {
		return f, err
	}
	f.Systems[VariantCosine] = EvaluateCosine(fd, test)
	for name, v := range f.Systems {
		if v.Queries != len(f.Sessions) {
			// Every system ranks the same queries: the paired differences
			// line their per-query scores up by position.
			return f, &DataError{Reason: fmt.Sprintf("%s ranked %d queries, the fold has %d test sessions", name, v.Queries, len(f.Sessions))}
		}
	}
	return f, nil
}

// selectSessions keeps the samples of the sessions keep accepts, in order,
// with Next remapped: Next links steps of one session, so a kept sample's
// next one is kept too.
func selectSessions(ss []Sample, keep func(session string) bool) []Sample {
	idx := make([]int, len(ss))
	var out []Sample
	for i, s := range ss {
		idx[i] = -1
		if keep(s.Session) {
			idx[i] = len(out)
			out = append(out, s)
		}
	}
	for i := range out {
		if out[i].Next >= 0 {
			out[i].Next = idx[out[i].Next]
		}
	}
	return out
}

// concatSamples appends b to a, shifting b's Next links.
func concatSamples(a, b []Sample) []Sample {
	out := slices.Clone(a)
	for _, s := range b {
		if s.Next >= 0 {
			s.Next += len(a)
		}
		out = append(out, s)
	}
	return out
}

func countSessions(ss []Sample) int {
	seen := map[string]bool{}
	for _, s := range ss {
		seen[s.Session] = true
	}
	return len(seen)
}

// summarise computes each system's mean and sample SD of every metric
// across folds (K ≥ 2, so the SD is defined).
func summarise(folds []CVFold, systems []string) map[string]map[string]MeanSD {
	out := map[string]map[string]MeanSD{}
	n := float64(len(folds))
	for _, s := range systems {
		out[s] = map[string]MeanSD{}
		for _, m := range CVMetrics {
			var sum float64
			for _, f := range folds {
				sum += f.Systems[s].metrics("")[m]
			}
			mean := sum / n
			var ss float64
			for _, f := range folds {
				d := f.Systems[s].metrics("")[m] - mean
				ss += d * d
			}
			out[s][m] = MeanSD{Mean: mean, SD: math.Sqrt(ss / (n - 1))}
		}
	}
	return out
}

// PairedMetrics are the per-session metrics Paired compares.
var PairedMetrics = []string{"ndcg_at_5", "mrr"}

// Paired is the difference x − y of a per-session metric (ndcg_at_5 or
// mrr) over every test session of every fold (each session once), with
// its 95% interval (normal approximation): the folds' models differ, but
// each session is ranked by both systems of the same fold. ok is false
// for an unknown system or metric.
func (cv *CrossValidation) Paired(x, y, metric string) (d Diff, ok bool) {
	if !slices.Contains(PairedMetrics, metric) {
		return Diff{}, false
	}
	var xs, ys []float64
	for _, f := range cv.Folds {
		vx, okx := f.Systems[x]
		vy, oky := f.Systems[y]
		if !okx || !oky {
			return Diff{}, false
		}
		for _, v := range []struct {
			val Validation
			to  *[]float64
		}{{vx, &xs}, {vy, &ys}} {
			for _, q := range v.val.PerQuery {
				if metric == "mrr" {
					*v.to = append(*v.to, q.RR)
				} else {
					*v.to = append(*v.to, q.NDCG5)
				}
			}
		}
	}
	return pairedDiff(xs, ys)
}

// cvPairs are the paired differences reported: what training adds to the
// evidence fit, and how the trained model compares with BM25.
var cvPairs = [][2]string{{SystemTrained, VariantEvidence}, {SystemTrained, VariantBM25}}

// Metrics flattens the result for MLflow: cv_<system>_<metric>_mean and
// _sd, and cv_<x>_minus_<y>_<metric> with _ci_low and _ci_high for the
// paired differences.
func (cv *CrossValidation) Metrics() map[string]float64 {
	out := map[string]float64{"cv_folds": float64(cv.K), "cv_sessions": float64(cv.Sessions), "cv_seconds": cv.Seconds}
	for s, ms := range cv.Summary {
		for m, v := range ms {
			out["cv_"+s+"_"+m+"_mean"], out["cv_"+s+"_"+m+"_sd"] = v.Mean, v.SD
		}
	}
	for _, p := range cvPairs {
		for _, m := range PairedMetrics {
			if d, ok := cv.Paired(p[0], p[1], m); ok {
				k := "cv_" + p[0] + "_minus_" + p[1] + "_" + m
				out[k], out[k+"_ci_low"], out[k+"_ci_high"] = d.Mean, d.Low, d.High
			}
		}
	}
	return out
}

// cvLabels are the table's column headers of CVMetrics.
var cvLabels = map[string]string{"mrr": "MRR", "ndcg_at_5": "nDCG@5", "hit_at_1": "Hit@1", "hit_at_3": "Hit@3", "hit_at_5": "Hit@5", "comp_at_5": "COMP@5"}

// WriteMarkdown writes the summary table (system × metric, mean ± sd
// across folds), the paired differences and one line per fold.
func (cv *CrossValidation) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d-fold cross-validation grouped by session (fold seed %d): %d sessions tested once each", cv.K, cv.Seed, cv.Sessions)
	if cv.Untested > 0 {
		fmt.Fprintf(&b, ", %d without a success trained on in every fold", cv.Untested)
	}
	fmt.Fprintf(&b, "; mean ± sd across folds.\n\n| system |")
	for _, m := range CVMetrics {
		fmt.Fprintf(&b, " %s |", cvLabels[m])
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(CVMetrics)) + "\n")
	for _, s := range cv.Systems {
		fmt.Fprintf(&b, "| %s |", s)
		for _, m := range CVMetrics {
			v := cv.Summary[s][m]
			fmt.Fprintf(&b, " %.4f ± %.4f |", v.Mean, v.SD)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	for _, p := range cvPairs {
		for _, m := range PairedMetrics {
			if d, ok := cv.Paired(p[0], p[1], m); ok {
				fmt.Fprintf(&b, "%s − %s, %s paired over %d sessions: %+.4f, 95%% CI [%+.4f, %+.4f]\n", p[0], p[1], cvLabels[m], d.Queries, d.Mean, d.Low, d.High)
			}
		}
	}
	b.WriteString("\n| fold | test sessions | trained on | early stopping | steps | seconds | trained nDCG@5 |\n|---|---|---|---|---|---|---|\n")
	for _, f := range cv.Folds {
		fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %.1f | %.4f |\n", f.Index+1, len(f.Sessions), f.TrainSessions, f.ValidSessions, f.Steps, f.Seconds, f.Systems[SystemTrained].NDCG5)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
