package features

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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
	// LinkPredictionFraction of the capability—tool edges is held out to
	// measure the graph embedding (link-prediction AUC, trained on the rest;
	// the features themselves use the whole graph). 0 skips the check.
	LinkPredictionFraction float64
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

// DefaultConfig is the design's feature pipeline around enc: Node2Vec with
// walk length 15, 40 walks per node, window 5, 64 dimensions; hybrid weights
// 0.3/0.7 with zero padding; validation per design 1.3; 10% of edges held
// out for the link-prediction AUC. The store dimensions follow enc.
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
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return &Stage{cfg: cfg}, nil
}

// Name implements pipeline.Stage.
func (s *Stage) Name() string { return StageName }

// Summary is what a Build did: the figures the stage logs as metrics.
type Summary struct {
	FeatureVersion    string
	AsOf              time.Time
	Tools             int
	Capabilities      int
	Experiences       int
	Intents           int
	GraphNodes        int
	GraphEdges        int
	IsolatedNodes     int
	LinkPredictionAUC float64 // 0 when skipped
	// LinkPredictionEdges is the kind of edge held out for the AUC:
	// "capability-tool", "containment", or "" when skipped.
	LinkPredictionEdges string
	Validation          Report
	Timings             map[string]time.Duration
	ProjectionPlotPath  string // "" when not drawn
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
		"intents", sum.Intents, "link_prediction_auc", sum.LinkPredictionAUC)
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

	// Graph embeddings: the AUC on a held-out split first, then the
	// embedding of the whole graph that the features use.
	t0 = time.Now()
	g, err := node2vec.FromCatalog(tools, caps, cfg.Catalog)
	if err != nil {
		return sum, fmt.Errorf("features: capability graph: %w", err)
	}
	sum.GraphNodes, sum.GraphEdges = g.NumNodes(), g.NumEdges()
	for _, id := range g.IDs() {
		if g.Degree(id) == 0 {
			sum.IsolatedNodes++
		}
	}
	if cfg.LinkPredictionFraction > 0 {
		bar := env.Progress.Start("node2vec link prediction", -1)
		auc, kind, err := linkPrediction(ctx, g, caps, cfg)
		bar.Done()
		if err != nil {
			return sum, err
		}
		sum.LinkPredictionAUC, sum.LinkPredictionEdges = auc, kind
		if kind == "" {
			env.Logger.Warn("link prediction skipped: every capability edge is a bridge (the graph is a forest), so a held-out edge cannot be predicted")
		}
		step("link_prediction", t0)
		t0 = time.Now()
	}
	bar := env.Progress.Start("node2vec", -1)
	emb, err := node2vec.Train(ctx, g, cfg.Node2Vec)
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

// linkPrediction measures the graph embedding: it holds out a fraction of
// one kind of edge, embeds the rest and returns the AUC of telling held-out
// edges from non-edges of the same kind (mixing kinds would let the
// classifier tell positives from negatives by node type alone), and which
// kind it used: capability—tool edges first, else containment edges
// (sub-capability — capability).
//
// Only edges on a cycle are candidates. Holding out a bridge disconnects its
// endpoints, so no walk-based embedding can predict it and the AUC would
// measure nothing (≈0.5). A catalog whose graph is a forest — Seal-Tools,
// where every tool has one field and every field one parent — has no such
// edge, and the check is skipped (kind ""); models/node2vec measures
// link prediction on Seal-Tools with the co-call edges added.
func linkPrediction(ctx context.Context, g *node2vec.Graph, caps []featurestore.Capability, cfg Config) (float64, string, error) {
	isCap := make(map[string]bool, len(caps))
	for _, c := range caps {
		isCap[c.ID] = true
	}
	bridge := bridges(g)
	var toolEdges, containment []node2vec.Pair
	for _, c := range caps {
		for _, m := range c.Members {
			p := node2vec.Pair{U: m, V: c.ID}
			switch {
			case bridge[p] || bridge[node2vec.Pair{U: c.ID, V: m}]:
			case isCap[m]:
				containment = append(containment, p)
			default:
				toolEdges = append(toolEdges, p)
			}
		}
	}
	for _, kind := range []struct {
		name  string
		pairs []node2vec.Pair
	}{{"capability-tool", toolEdges}, {"containment", containment}} {
		if len(kind.pairs) < 10 {
			continue // too few to hold out a meaningful sample
		}
		split, err := node2vec.HoldOut(g, kind.pairs, cfg.LinkPredictionFraction, cfg.Node2Vec.Seed)
		if err != nil {
			continue
		}
		emb, err := node2vec.Train(ctx, split.Train, cfg.Node2Vec)
		if err != nil {
			return 0, "", fmt.Errorf("features: node2vec on the link-prediction split: %w", err)
		}
		auc, err := node2vec.LinkPredictionAUC(ctx, emb, split, 1e-3)
		if err != nil {
			return 0, "", fmt.Errorf("features: link-prediction AUC: %w", err)
		}
		return auc, kind.name, nil
	}
	return 0, "", nil
}

// bridges returns the edges of g whose removal disconnects their endpoints
// (Tarjan's low-link, iteratively so a long path cannot overflow the stack).
func bridges(g *node2vec.Graph) map[node2vec.Pair]bool {
	ids := g.IDs()
	n := len(ids)
	nbrs := make([][]int, n)
	for i, id := range ids {
		ns, _ := g.Neighbors(id)
		for _, m := range ns {
			j, _ := g.Index(m)
			nbrs[i] = append(nbrs[i], j)
		}
	}
	disc, low := make([]int, n), make([]int, n)
	for i := range disc {
		disc[i] = -1
	}
	out := map[node2vec.Pair]bool{}
	type frame struct{ v, parent, next int }
	t := 0
	for root := range n {
		if disc[root] >= 0 {
			continue
		}
		stack := []frame{{root, -1, 0}}
		disc[root], low[root] = t, t
		t++
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if f.next < len(nbrs[f.v]) {
				w := nbrs[f.v][f.next]
				f.next++
				switch {
				case disc[w] < 0:
					disc[w], low[w] = t, t
					t++
					stack = append(stack, frame{w, f.v, 0})
				case w != f.parent:
					low[f.v] = min(low[f.v], disc[w])
				}
				continue
			}
			stack = stack[:len(stack)-1]
			if f.parent >= 0 {
				low[f.parent] = min(low[f.parent], low[f.v])
				if low[f.v] > disc[f.parent] {
					out[node2vec.Pair{U: ids[f.parent], V: ids[f.v]}] = true
				}
			}
		}
	}
	return out
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
