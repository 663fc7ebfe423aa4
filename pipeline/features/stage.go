package features

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/models/hybrid"
	"github.com/capflow/capflow/models/node2vec"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline"
)

// StageName is the features stage's name (and its MLflow run's).
const StageName = "features"

// ValueFeatureVersion is the pipeline value (Env.Value) the stage publishes:
// the feature_version of the rows it wrote.
const ValueFeatureVersion = "feature_version"

// Config configures the features stage. Start from DefaultConfig.
type Config struct {
	// Encoder turns capability and intent texts into text embeddings. Its
	// dimension must be Store.TextDim.
	Encoder textembed.Encoder
	// NoEmbeddingCache encodes every text again instead of going through
	// the store's embedding cache (keyed by model name, version and text
	// hash).
	NoEmbeddingCache bool
	// Store is the feature store's configuration: the dimensions rows must
	// have. HybridDim must equal TextDim (the hybrid lives in text space).
	Store    featurestore.Config
	Node2Vec node2vec.Config
	Catalog  node2vec.CatalogOptions
	Hybrid   hybrid.Combiner
	Graph    GraphOptions
	// Validation's AsOf defaults to AsOf.
	Validation ValidationOptions
	// AsOf is the stage's "now": usage windows count back from it, only
	// experiences before it are read, and rows are stamped with it. Zero
	// means the time the stage runs.
	AsOf time.Time
	// CoUseSessionPrefix chooses the logged sessions whose experiences make
	// the Node2Vec graph's co-use edges: those whose SessionID starts with
	// it ("" = every session). It is the train/evaluation split of the
	// graph: a session of the split a model is evaluated on must not
	// contribute, or the capability vectors would carry that split's
	// answers. Only experiences before AsOf are read either way.
	CoUseSessionPrefix string
	// LinkPredictionFraction of one kind of edge (co-use first, see
	// linkPrediction) is held out to measure the graph embedding
	// (link-prediction AUC, trained on the rest; the features themselves
	// use the whole graph). 0 skips the check, and the p/q grid with it.
	LinkPredictionFraction float64
	// PGrid and QGrid are the values of Node2Vec's p and q tried when
	// choosing them by held-out link-prediction AUC (on a validation split,
	// see linkPrediction); an empty grid keeps Node2Vec.P (or Q) as set.
	// DefaultConfig tries {0.25, 1, 4} for both.
	PGrid, QGrid []float64
	// TuneWalksPerNode is the walks per node of each grid run (at most
	// Node2Vec.WalksPerNode; 0 means DefaultTuneWalksPerNode). Nine runs at
	// the design's 40 would cost nine full trainings; 10 walks rank p and q
	// the same way at a quarter of the cost (see docs/features.md).
	TuneWalksPerNode int
	// FeatureVersion names the rows written; empty derives
	// "fv-<as of>-<hash of the configuration>".
	FeatureVersion string
	// EncodeBatch is how many texts go to the encoder at once (default 64).
	EncodeBatch int
	// NoIntents skips encoding the intents of queries and experiences.
	NoIntents bool
	// NoPlot skips the 2-D projection plot artifact.
	NoPlot bool
}

// DefaultTuneWalksPerNode is Config.TuneWalksPerNode's default.
const DefaultTuneWalksPerNode = 10

// DefaultPQGrid is the p and q grid of DefaultConfig: a walk biased to stay
// near its start (BFS-like, p or q above 1), unbiased, or biased outwards
// (DFS-like, below 1), by the same factor 4 either way.
var DefaultPQGrid = []float64{0.25, 1, 4}

// DefaultConfig is the design's feature pipeline around enc: Node2Vec with
// walk length 15, 40 walks per node, window 5, 64 dimensions, p and q chosen
// from DefaultPQGrid by held-out link-prediction AUC; hybrid weights 0.3/0.7
// with zero padding; validation per design 1.3; 10% of edges held out for
// the link-prediction AUC; co-use edges from every logged session. The store
// dimensions follow enc.
func DefaultConfig(enc textembed.Encoder) Config {
	dim := 0
	if enc != nil {
		dim = enc.Dim()
	}
	return Config{
		Encoder:                enc,
		Store:                  featurestore.Config{TextDim: dim, GraphDim: 64, HybridDim: dim}.WithDefaults(),
		Node2Vec:               node2vec.DefaultConfig(),
		Hybrid:                 hybrid.Default(),
		LinkPredictionFraction: 0.1,
		PGrid:                  slices.Clone(DefaultPQGrid),
		QGrid:                  slices.Clone(DefaultPQGrid),
		TuneWalksPerNode:       DefaultTuneWalksPerNode,
		EncodeBatch:            64,
	}
}

// ConfigError names a stage setting that cannot work.
type ConfigError struct {
	Field, Reason string
}

func (e *ConfigError) Error() string {
	return "features: config " + e.Field + ": " + e.Reason
}

func (c Config) check() error {
	switch {
	case c.Encoder == nil:
		return &ConfigError{"Encoder", "is required"}
	case c.Store.TextDim <= 0 || c.Store.GraphDim <= 0:
		return &ConfigError{"Store", fmt.Sprintf("dimensions text=%d graph=%d must be positive", c.Store.TextDim, c.Store.GraphDim)}
	case c.Store.HybridDim != c.Store.TextDim:
		return &ConfigError{"Store.HybridDim", fmt.Sprintf("%d must equal TextDim %d: the hybrid embedding lives in the text space", c.Store.HybridDim, c.Store.TextDim)}
	case c.Encoder.Dim() != 0 && c.Encoder.Dim() != c.Store.TextDim:
		return &ConfigError{"Encoder", fmt.Sprintf("model %s has dimension %d but the store's text dimension is %d", c.Encoder.Model().Name, c.Encoder.Dim(), c.Store.TextDim)}
	case c.Node2Vec.Dimensions != c.Store.GraphDim:
		return &ConfigError{"Node2Vec.Dimensions", fmt.Sprintf("%d differs from the store's graph dimension %d", c.Node2Vec.Dimensions, c.Store.GraphDim)}
	case !(c.LinkPredictionFraction >= 0 && c.LinkPredictionFraction < 1):
		return &ConfigError{"LinkPredictionFraction", fmt.Sprintf("%v is not in [0, 1)", c.LinkPredictionFraction)}
	case c.EncodeBatch < 0:
		return &ConfigError{"EncodeBatch", "must not be negative"}
	case !(c.Catalog.CoUseWeight >= 0) || math.IsInf(c.Catalog.CoUseWeight, 0):
		return &ConfigError{"Catalog.CoUseWeight", fmt.Sprintf("%v is not a finite non-negative number (0 means 1)", c.Catalog.CoUseWeight)}
	case c.TuneWalksPerNode < 0:
		return &ConfigError{"TuneWalksPerNode", "must not be negative"}
	}
	for _, grid := range []struct {
		name   string
		values []float64
	}{{"PGrid", c.PGrid}, {"QGrid", c.QGrid}} {
		for _, x := range grid.values {
			if !(x > 0) || math.IsInf(x, 0) {
				return &ConfigError{grid.name, fmt.Sprintf("value %v is not positive and finite", x)}
			}
		}
	}
	if err := c.Node2Vec.Validate(); err != nil {
		return err
	}
	return c.Hybrid.Check()
}

// Stage is the feature pipeline as a pipeline.Stage: store → text
// embeddings + Node2Vec → hybrid + graph features → validation → store.
type Stage struct{ cfg Config }

// NewStage checks cfg and returns the stage.
func NewStage(cfg Config) (*Stage, error) {
	if cfg.EncodeBatch == 0 {
		cfg.EncodeBatch = 64
	}
	if cfg.TuneWalksPerNode == 0 {
		cfg.TuneWalksPerNode = DefaultTuneWalksPerNode
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return &Stage{cfg: cfg}, nil
}

// Name implements pipeline.Stage.
func (s *Stage) Name() string { return StageName }

// Summary is what a Build did: the figures the stage logs as metrics.
type Summary struct {
	FeatureVersion string
	AsOf           time.Time
	Tools          int
	Capabilities   int
	Experiences    int
	Intents        int
	GraphNodes     int
	GraphEdges     int
	IsolatedNodes  int
	// CoUseSessions is how many sessions passed CoUseSessionPrefix;
	// CoUseEdges how many distinct co-use edges they gave and CoUseSteps
	// the successive-success steps behind them (the edges' total count).
	CoUseSessions, CoUseEdges, CoUseSteps int
	// LinkPrediction is the held-out check and, in its P and Q, the
	// Node2Vec parameters the features were trained with.
	LinkPrediction     LinkPrediction
	Validation         Report
	Timings            map[string]time.Duration
	ProjectionPlotPath string // "" when not drawn
}

// Run implements pipeline.Stage: Build, then log params, metrics and
// artifacts to the stage's run and publish the feature_version.
func (s *Stage) Run(ctx context.Context, env *pipeline.Env) error {
	if env.Store == nil {
		return &ConfigError{"Store", "the pipeline has no feature store"}
	}
	cfg := s.resolved(time.Now())
	if err := env.Tracker.LogParams(ctx, params(cfg)); err != nil {
		return fmt.Errorf("features: log params: %w", err)
	}
	tmp, err := os.MkdirTemp("", "capflow-features-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	sum, buildErr := build(ctx, cfg, env, tmp)
	// The report is logged whether or not validation passed: a failed run's
	// report is what says which ids were wrong.
	var errs []error
	if sum.Validation.Checks != nil {
		rep, _ := json.MarshalIndent(sum.Validation, "", "  ")
		errs = append(errs, env.Tracker.LogArtifactBytes(ctx, "validation/report.json", rep))
	}
	errs = append(errs, env.Tracker.LogMetrics(ctx, 0, metrics(sum)))
	if sum.GraphNodes > 0 { // the graph step ran, so these are known
		errs = append(errs, env.Tracker.LogParams(ctx, resultParams(sum)))
		if sum.LinkPrediction.Edges != "" {
			art, _ := json.MarshalIndent(newLinkPredictionArtifact(sum.LinkPrediction), "", "  ")
			errs = append(errs, env.Tracker.LogArtifactBytes(ctx, "link_prediction/result.json", art))
		}
	}
	if sum.ProjectionPlotPath != "" {
		errs = append(errs, env.Tracker.LogArtifact(ctx, sum.ProjectionPlotPath, "plots"))
	}
	if err := errors.Join(errs...); err != nil {
		buildErr = errors.Join(buildErr, fmt.Errorf("features: log to tracker: %w", err))
	}
	if buildErr != nil {
		return buildErr
	}
	env.Set(ValueFeatureVersion, sum.FeatureVersion)
	env.Logger.Info("features written", "feature_version", sum.FeatureVersion, "capabilities", sum.Capabilities,
		"intents", sum.Intents, "link_prediction_auc", sum.LinkPrediction.AUC, "link_prediction_edges", sum.LinkPrediction.Edges,
		"p", sum.LinkPrediction.P, "q", sum.LinkPrediction.Q)
	return nil
}

// Build runs the feature pipeline against store without a tracker: the same
// work as Run, for callers that do not use a pipeline.Runner.
func (s *Stage) Build(ctx context.Context, store featurestore.Store) (*Summary, error) {
	env := &pipeline.Env{Store: store, Tracker: pipeline.Discard, Progress: pipeline.NoProgress}
	env.Logger = discardLogger()
	sum, err := build(ctx, s.resolved(time.Now()), env, "")
	return &sum, err
}

// resolved fills the time-dependent defaults once, so params, rows and the
// version all see the same "now".
func (s *Stage) resolved(now time.Time) Config {
	cfg := s.cfg
	if cfg.AsOf.IsZero() {
		cfg.AsOf = now.UTC()
	}
	if cfg.Validation.AsOf.IsZero() {
		cfg.Validation.AsOf = cfg.AsOf
	}
	if cfg.FeatureVersion == "" {
		cfg.FeatureVersion = featureVersion(cfg)
	}
	return cfg
}

// featureVersion is "fv-<as of>-<8 hex digits of the configuration hash>":
// sortable by time, and two builds with different settings never share a
// version.
func featureVersion(cfg Config) string {
	p := params(cfg)
	delete(p, "feature_version")
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(p)) {
		fmt.Fprintf(h, "%s=%s\n", k, p[k])
	}
	return "fv-" + cfg.AsOf.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(h.Sum(nil))[:8]
}

func build(ctx context.Context, cfg Config, env *pipeline.Env, plotDir string) (Summary, error) {
	sum := Summary{FeatureVersion: cfg.FeatureVersion, AsOf: cfg.AsOf, Timings: map[string]time.Duration{}}
	step := func(name string, t0 time.Time) { sum.Timings[name] = time.Since(t0) }
	store := env.Store
	enc := cfg.Encoder
	if !cfg.NoEmbeddingCache {
		enc = textembed.Cached(enc, store)
	}

	t0 := time.Now()
	tools, err := store.Tools(ctx)
	if err != nil {
		return sum, fmt.Errorf("features: read tools: %w", err)
	}
	caps, err := store.Capabilities(ctx)
	if err != nil {
		return sum, fmt.Errorf("features: read capabilities: %w", err)
	}
	if len(caps) == 0 {
		return sum, &ConfigError{"Store", "holds no capabilities: import a dataset first (capflow data import)"}
	}
	exps, err := store.ExperiencesBetween(ctx, time.Time{}, cfg.AsOf)
	if err != nil {
		return sum, fmt.Errorf("features: read experiences: %w", err)
	}
	sum.Tools, sum.Capabilities, sum.Experiences = len(tools), len(caps), len(exps)
	step("read", t0)
	env.Logger.Info("catalog read", "tools", len(tools), "capabilities", len(caps), "experiences", len(exps))

	// Text embeddings.
	t0 = time.Now()
	names := make(map[string]string, len(tools)+len(caps))
	for _, t := range tools {
		names[t.ID] = t.Name
	}
	for _, c := range caps {
		names[c.ID] = c.Name
	}
	texts := make([]string, len(caps))
	for i, c := range caps {
		texts[i] = CapabilityText(c, names)
	}
	textVecs, err := encodeAll(ctx, enc, texts, cfg.EncodeBatch, env.Progress.Start("encode capabilities", len(texts)))
	if err != nil {
		return sum, fmt.Errorf("features: encode capabilities: %w", err)
	}
	if d := enc.Dim(); d != cfg.Store.TextDim {
		return sum, &ConfigError{"Encoder", fmt.Sprintf("model %s returned dimension %d but the store's text dimension is %d", enc.Model().Name, d, cfg.Store.TextDim)}
	}
	step("encode_capabilities", t0)

	// Graph embeddings: the catalog's membership and nesting edges plus the
	// co-use edges of the chosen sessions; the AUC on a held-out split (and
	// the choice of p and q) first, then the embedding of the whole graph
	// that the features use.
	t0 = time.Now()
	var coExps []featurestore.Experience
	sessions := map[string]bool{}
	for _, e := range exps {
		if e.SessionID != "" && strings.HasPrefix(e.SessionID, cfg.CoUseSessionPrefix) {
			coExps = append(coExps, e)
			sessions[e.SessionID] = true
		}
	}
	coUse := node2vec.CoUseEdges(coExps)
	sum.CoUseSessions, sum.CoUseEdges = len(sessions), len(coUse)
	for _, e := range coUse {
		sum.CoUseSteps += e.Count
	}
	b := node2vec.NewBuilder()
	if err := b.AddCatalog(tools, caps, cfg.Catalog); err != nil {
		return sum, fmt.Errorf("features: capability graph: %w", err)
	}
	catalog := b.Build() // without co-use: tells co-use-only edges apart
	if err := b.AddCoUse(coUse, cfg.Catalog); err != nil {
		return sum, fmt.Errorf("features: capability graph: %w", err)
	}
	g := b.Build()
	sum.GraphNodes, sum.GraphEdges = g.NumNodes(), g.NumEdges()
	for _, id := range g.IDs() {
		if g.Degree(id) == 0 {
			sum.IsolatedNodes++
		}
	}
	env.Logger.Info("capability graph", "nodes", sum.GraphNodes, "edges", sum.GraphEdges, "catalog_edges", catalog.NumEdges(),
		"co_use_edges", sum.CoUseEdges, "co_use_sessions", sum.CoUseSessions, "session_prefix", cfg.CoUseSessionPrefix)
	sum.LinkPrediction = LinkPrediction{P: cfg.Node2Vec.P, Q: cfg.Node2Vec.Q}
	if cfg.LinkPredictionFraction > 0 {
		bar := env.Progress.Start("node2vec link prediction", -1)
		lp, err := linkPrediction(ctx, g, catalog, caps, coUse, cfg, env.Logger, env.Progress)
		bar.Done()
		if err != nil {
			return sum, err
		}
		sum.LinkPrediction = lp
		if lp.Edges == "" {
			env.Logger.Warn("link prediction skipped: every edge of each kind is a bridge or too few remain (a catalog forest without co-use edges), so a held-out edge cannot be predicted")
		} else {
			env.Logger.Info("link prediction", "edges", lp.Edges, "candidates", lp.Candidates, "held_out", len(lp.HeldOut),
				"auc", lp.AUC, "p", lp.P, "q", lp.Q)
		}
		step("link_prediction", t0)
		t0 = time.Now()
	}
	n2v := cfg.Node2Vec
	n2v.P, n2v.Q = sum.LinkPrediction.P, sum.LinkPrediction.Q
	bar := env.Progress.Start("node2vec", -1)
	emb, err := node2vec.Train(ctx, g, n2v)
	bar.Done()
	if err != nil {
		return sum, fmt.Errorf("features: node2vec: %w", err)
	}
	step("node2vec", t0)

	// Graph and usage features, hybrid, rows.
	t0 = time.Now()
	stats, err := GraphFeatures(tools, caps, exps, cfg.AsOf, cfg.Graph)
	if err != nil {
		return sum, err
	}
	step("graph_features", t0)
	rows := make([]featurestore.CapabilityFeatures, len(caps))
	for i, c := range caps {
		gv, _ := emb.Vector(c.ID)
		hv, err := cfg.Hybrid.Combine(textVecs[i], gv)
		if err != nil {
			return sum, fmt.Errorf("features: hybrid of %s: %w", c.ID, err)
		}
		rows[i] = featurestore.CapabilityFeatures{
			CapabilityID: c.ID, TextEmbedding: textVecs[i], N2VEmbedding: gv, HybridEmbedding: hv,
			FeatureVersion: cfg.FeatureVersion, ComputedAt: cfg.AsOf,
		}
		stats[c.ID].Fill(&rows[i])
	}

	// Validation before anything is written.
	rep, verr := Validate(rows, cfg.Store, cfg.Validation)
	sum.Validation = rep
	if verr != nil {
		return sum, verr
	}

	if !cfg.NoPlot && plotDir != "" {
		t0 = time.Now()
		path := filepath.Join(plotDir, "capability_projection.png")
		if err := ProjectionPlot(path, rows, caps); err != nil {
			return sum, fmt.Errorf("features: projection plot: %w", err)
		}
		sum.ProjectionPlotPath = path
		step("plot", t0)
	}

	t0 = time.Now()
	bar = env.Progress.Start("write features", len(rows))
	for lo := 0; lo < len(rows); lo += 500 {
		hi := min(lo+500, len(rows))
		if err := store.UpsertCapabilityFeatures(ctx, rows[lo:hi]); err != nil {
			bar.Done()
			return sum, fmt.Errorf("features: write rows %d-%d: %w", lo, hi-1, err)
		}
		bar.Add(hi - lo)
	}
	bar.Done()
	step("write_capabilities", t0)

	if !cfg.NoIntents {
		t0 = time.Now()
		n, err := writeIntents(ctx, store, enc, exps, cfg, env.Progress)
		if err != nil {
			return sum, err
		}
		sum.Intents = n
		step("intents", t0)
	}
	return sum, nil
}

// CapabilityText is the text a capability is embedded from: its name, its
// description and the names of its direct members, one per line. Member
// names carry most of what a capability can do when its description is
// short, which is common in tool catalogs.
func CapabilityText(c featurestore.Capability, names map[string]string) string {
	var b strings.Builder
	b.WriteString(c.Name)
	if c.Description != "" {
		b.WriteString("\n")
		b.WriteString(c.Description)
	}
	if len(c.Members) > 0 {
		b.WriteString("\nTools: ")
		for i, m := range c.Members {
			if i > 0 {
				b.WriteString(", ")
			}
			if n := names[m]; n != "" {
				b.WriteString(n)
			} else {
				b.WriteString(m)
			}
		}
	}
	return b.String()
}

func encodeAll(ctx context.Context, enc textembed.Encoder, texts []string, batch int, bar pipeline.Bar) ([][]float32, error) {
	defer bar.Done()
	out := make([][]float32, 0, len(texts))
	for lo := 0; lo < len(texts); lo += batch {
		hi := min(lo+batch, len(texts))
		vs, err := enc.Encode(ctx, texts[lo:hi])
		if err != nil {
			return nil, err
		}
		if len(vs) != hi-lo {
			return nil, fmt.Errorf("encoder %s returned %d vectors for %d texts", enc.Model().Name, len(vs), hi-lo)
		}
		out = append(out, vs...)
		bar.Add(hi - lo)
	}
	return out, nil
}

// writeIntents encodes the distinct intents of the evaluation queries and of
// the experiences before AsOf and writes their IntentFeatures.
func writeIntents(ctx context.Context, store featurestore.Store, enc textembed.Encoder, exps []featurestore.Experience, cfg Config, prog pipeline.Progress) (int, error) {
	qs, err := store.Queries(ctx)
	if err != nil {
		return 0, fmt.Errorf("features: read queries: %w", err)
	}
	type intent struct {
		text  string
		tools []string
	}
	var list []intent
	seen := map[string]bool{}
	add := func(text string, tools []string) {
		h := featurestore.IntentHash(text, tools)
		if !seen[h] {
			seen[h] = true
			list = append(list, intent{text, tools})
		}
	}
	for _, q := range qs {
		add(q.Intent, q.ContextTools)
	}
	for _, e := range exps {
		add(e.Intent, e.ContextTools)
	}
	texts := make([]string, len(list))
	for i, it := range list {
		texts[i] = it.text
	}
	vecs, err := encodeAll(ctx, enc, texts, cfg.EncodeBatch, prog.Start("encode intents", len(texts)))
	if err != nil {
		return 0, fmt.Errorf("features: encode intents: %w", err)
	}
	bar := prog.Start("write intents", len(list))
	defer bar.Done()
	for i, it := range list {
		f := featurestore.IntentFeatures{
			IntentHash: featurestore.IntentHash(it.text, it.tools), Embedding: vecs[i],
			ContextTools: it.tools, CreatedAt: cfg.AsOf,
		}
		if err := store.PutIntentFeatures(ctx, f); err != nil {
			return i, fmt.Errorf("features: write intent %q: %w", shorten(it.text), err)
		}
		bar.Add(1)
	}
	return len(list), nil
}

func shorten(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return s
}
