package features_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline"
	"github.com/capflow/capflow/pipeline/features"
)

const textDim = 256

// counting wraps a real encoder and counts the texts it is asked to encode,
// to see what the embedding cache saves.
type counting struct {
	textembed.Encoder
	n atomic.Int64
}

func (c *counting) Encode(ctx context.Context, texts []string) ([][]float32, error) {
	c.n.Add(int64(len(texts)))
	return c.Encoder.Encode(ctx, texts)
}

// sealToolsStore is an embedded store holding the Seal-Tools catalog, its
// queries, and pseudo-experiences derived from the dev split only.
func sealToolsStore(t *testing.T) (featurestore.Store, *featurestore.Dataset) {
	t.Helper()
	ctx := context.Background()
	cfg := featurestore.Config{TextDim: textDim, GraphDim: 64}
	d, err := featurestore.ReadSealTools(ctx, testenv.SealToolsDir(t), cfg)
	require.NoError(t, err)
	var dev []featurestore.Query
	for _, q := range d.Queries {
		if strings.HasPrefix(q.ID, featurestore.SealToolsDevPrefix) {
			dev = append(dev, q)
		}
	}
	d.Experiences = featurestore.PseudoExperiences(dev[:200], d.Capabilities, featurestore.PseudoOptions{Seed: 1})
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	require.NoError(t, st.WriteDataset(ctx, d))
	return st, d
}

func quickConfig(t *testing.T, enc textembed.Encoder) features.Config {
	cfg := features.DefaultConfig(enc)
	// Fewer walks keep the test quick; the design's values run in the
	// pipeline and the benchmark.
	cfg.Node2Vec.WalksPerNode = 10
	cfg.AsOf = time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
	return cfg
}

// TestStageSealTools runs the stage on the Seal-Tools catalog under a real
// MLflow run and checks what it wrote and logged.
func TestStageSealTools(t *testing.T) {
	ctx := context.Background()
	st, d := sealToolsStore(t)
	hashing, err := textembed.NewHashing(textembed.HashingConfig{Dim: textDim})
	require.NoError(t, err)
	enc := &counting{Encoder: hashing}
	stage, err := features.NewStage(quickConfig(t, enc))
	require.NoError(t, err)

	c := testenv.Client(t)
	r := &pipeline.Runner{Client: c, Experiment: testenv.Name(t, "features"), Store: st}
	res, err := r.Run(ctx, stage)
	require.NoError(t, err)
	fv := res.Values[features.ValueFeatureVersion]
	require.True(t, strings.HasPrefix(fv, "fv-20250102T000000Z-"), fv)

	// Every capability has a row of the new version, with unit hybrid vectors.
	ids := make([]string, len(d.Capabilities))
	for i, cp := range d.Capabilities {
		ids[i] = cp.ID
	}
	rows, err := st.CapabilityFeatures(ctx, ids)
	require.NoError(t, err)
	require.Len(t, rows, len(ids))
	for _, row := range rows {
		require.Equal(t, fv, row.FeatureVersion)
		require.InDelta(t, 1, textembed.Norm(row.HybridEmbedding), 1e-3, row.CapabilityID)
		require.Len(t, row.N2VEmbedding, 64)
		require.Positive(t, row.ToolCount, row.CapabilityID)
	}
	// Intent features for every query, under IntentHash.
	q := d.Queries[0]
	f, err := st.IntentFeatures(ctx, featurestore.IntentHash(q.Intent, q.ContextTools))
	require.NoError(t, err)
	want, err := hashing.Encode(ctx, []string{q.Intent})
	require.NoError(t, err)
	assert.InDelta(t, 1, textembed.Cosine(f.Embedding, want[0]), 1e-6)

	// The MLflow run has the params, metrics and artifacts.
	run, err := c.Runs.Get(ctx, res.Stages[0].RunID)
	require.NoError(t, err)
	params := map[string]string{}
	for _, p := range run.Data.Params {
		params[p.Key] = p.Value
	}
	assert.Equal(t, "10", params["node2vec.walks_per_node"])
	assert.Equal(t, "0.3", params["hybrid.text_weight"])
	assert.Equal(t, fv, params["feature_version"])
	metrics := map[string]float64{}
	for _, m := range run.Data.Metrics {
		metrics[m.Key] = m.Value
	}
	assert.Equal(t, float64(len(d.Capabilities)), metrics["capabilities"])
	assert.Equal(t, 1.0, metrics["validation.passed"])
	// Seal-Tools' catalog graph is a forest (one field per tool, one parent
	// per field): every edge is a bridge. The pseudo-sessions of the 200
	// easy dev queries select one relevant field each, so they add no
	// co-use edge either, and the held-out AUC is skipped rather than
	// reported as a meaningless 0.5 (TestStageCoUseLinkPredictionSealTools
	// has the multi-step sessions).
	assert.Equal(t, 0.0, metrics["graph.co_use_edges"])
	_, measured := metrics["link_prediction_auc"]
	assert.False(t, measured)
	t.Logf("intents=%v stage_seconds=%v", metrics["intents"], metrics["stage_seconds"])
	for _, dir := range []string{"validation", "plots"} {
		files, err := c.Artifacts.List(ctx, run.Info.ArtifactURI, dir)
		require.NoError(t, err)
		require.Len(t, files, 1, dir)
	}

	// A second build re-encodes nothing: every text is in the cache.
	before := enc.n.Load()
	_, err = stage.Build(ctx, st)
	require.NoError(t, err)
	assert.Equal(t, before, enc.n.Load(), "unchanged texts were encoded again")
}

// constant is an encoder whose every vector is the same unit vector: a
// collapsed embedding that validation must stop before anything is written.
type constant struct{ dim int }

func (c constant) Dim() int { return c.dim }
func (c constant) Model() textembed.ModelInfo {
	return textembed.ModelInfo{Name: "constant", Version: "1", Dim: c.dim}
}
func (c constant) Encode(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i := range out {
		out[i] = make([]float32, c.dim)
		out[i][0] = 1
	}
	return out, nil
}

func TestStageValidationFailureWritesNothing(t *testing.T) {
	ctx := context.Background()
	st, d := sealToolsStore(t)
	cfg := quickConfig(t, constant{textDim})
	cfg.Hybrid.TextWeight, cfg.Hybrid.GraphWeight = 1, 0 // the hybrid is the collapsed text vector
	cfg.LinkPredictionFraction = 0
	stage, err := features.NewStage(cfg)
	require.NoError(t, err)
	_, err = stage.Build(ctx, st)
	var ve *features.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Contains(t, err.Error(), features.CheckNotCollapsed)
	_, err = st.CapabilityFeatures(ctx, []string{d.Capabilities[0].ID})
	assert.True(t, featurestore.IsNotFound(err), "a failed validation must write nothing, got %v", err)
}

func TestNewStageConfigErrors(t *testing.T) {
	h, err := textembed.NewHashing(textembed.HashingConfig{Dim: 64})
	require.NoError(t, err)
	for name, mut := range map[string]func(*features.Config){
		"no encoder":       func(c *features.Config) { c.Encoder = nil },
		"dim mismatch":     func(c *features.Config) { c.Store.TextDim, c.Store.HybridDim = 128, 128 },
		"hybrid dim":       func(c *features.Config) { c.Store.HybridDim = 32 },
		"graph dim":        func(c *features.Config) { c.Node2Vec.Dimensions = 32 },
		"holdout fraction": func(c *features.Config) { c.LinkPredictionFraction = 1 },
		"p grid":           func(c *features.Config) { c.PGrid = []float64{1, 0} },
		"q grid":           func(c *features.Config) { c.QGrid = []float64{math.Inf(1)} },
		"tune walks":       func(c *features.Config) { c.TuneWalksPerNode = -1 },
		"co-use weight":    func(c *features.Config) { c.Catalog.CoUseWeight = -2 },
		"weights":          func(c *features.Config) { c.Hybrid.TextWeight, c.Hybrid.GraphWeight = 0, 0 },
	} {
		cfg := features.DefaultConfig(h)
		mut(&cfg)
		_, err := features.NewStage(cfg)
		assert.Error(t, err, name)
	}
}

func TestStageNeedsCatalog(t *testing.T) {
	ctx := context.Background()
	cfg := featurestore.Config{TextDim: 64, GraphDim: 64}
	st, err := embedded.Open(filepath.Join(t.TempDir(), "empty.db"), cfg)
	require.NoError(t, err)
	defer st.Close()
	h, err := textembed.NewHashing(textembed.HashingConfig{Dim: 64})
	require.NoError(t, err)
	stage, err := features.NewStage(features.DefaultConfig(h))
	require.NoError(t, err)
	_, err = stage.Build(ctx, st)
	var ce *features.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, err.Error(), "no capabilities")
}

// TestStageLinkPredictionOnSharedTools measures the AUC on a generated
// catalog whose capabilities share tools within communities, so the
// capability—tool edges lie on cycles and held-out ones are predictable.
func TestStageLinkPredictionOnSharedTools(t *testing.T) {
	ctx := context.Background()
	cfg := featurestore.Config{TextDim: 64, GraphDim: 64}
	rng := rand.New(rand.NewPCG(3, 4))
	d := &featurestore.Dataset{}
	for k := range 12 {
		var tools []string
		for i := range 25 {
			id := fmt.Sprintf("c%d-tool%d", k, i)
			tools = append(tools, id)
			d.Tools = append(d.Tools, featurestore.Tool{ID: id, Name: id, Description: "tool " + id})
		}
		for j := range 12 {
			members := map[string]bool{}
			for len(members) < 5 {
				members[tools[rng.IntN(len(tools))]] = true
			}
			id := fmt.Sprintf("c%d-cap%d", k, j)
			d.Capabilities = append(d.Capabilities, featurestore.Capability{ID: id, Name: id, Description: "capability " + id, Members: slices.Sorted(maps.Keys(members))})
		}
	}
	st, err := embedded.Open(filepath.Join(t.TempDir(), "gen.db"), cfg)
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.WriteDataset(ctx, d))
	h, err := textembed.NewHashing(textembed.HashingConfig{Dim: 64})
	require.NoError(t, err)
	fc := features.DefaultConfig(h)
	fc.AsOf = time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
	stage, err := features.NewStage(fc)
	require.NoError(t, err)
	sum, err := stage.Build(ctx, st)
	require.NoError(t, err)
	lp := sum.LinkPrediction
	assert.Equal(t, features.EdgesCapabilityTool, lp.Edges, "no sessions, so no co-use edges to hold out")
	// Communities are disjoint, so a held-out edge is recoverable from the
	// community; observed AUC 0.9+ in runs of this test. 0.8 fails an
	// embedding that learned nothing (0.5) with wide margin for Hogwild.
	assert.Greater(t, lp.AUC, 0.8)
	t.Logf("generated catalog: %d nodes, %d edges, AUC %.4f at p=%v q=%v; grid %+v", sum.GraphNodes, sum.GraphEdges, lp.AUC, lp.P, lp.Q, lp.Grid)
	// The default grid chose p and q: every point was scored and the best won.
	require.Len(t, lp.Grid, 9)
	best := lp.Grid[0]
	for _, pt := range lp.Grid[1:] {
		if pt.AUC > best.AUC {
			best = pt
		}
	}
	assert.Equal(t, [2]float64{best.P, best.Q}, [2]float64{lp.P, lp.Q})

	// A fixed p is kept; only q is chosen, from its own grid.
	fc.Node2Vec.P, fc.PGrid, fc.QGrid = 2, nil, []float64{0.5, 1}
	stage, err = features.NewStage(fc)
	require.NoError(t, err)
	sum, err = stage.Build(ctx, st)
	require.NoError(t, err)
	lp = sum.LinkPrediction
	require.Len(t, lp.Grid, 2)
	for _, pt := range lp.Grid {
		assert.Equal(t, 2.0, pt.P)
	}
	assert.Equal(t, 2.0, lp.P)
	assert.Contains(t, []float64{0.5, 1}, lp.Q)

	// Nothing to choose: p and q are the configured ones and no grid runs.
	fc.Node2Vec.Q, fc.QGrid = 3, nil
	stage, err = features.NewStage(fc)
	require.NoError(t, err)
	sum, err = stage.Build(ctx, st)
	require.NoError(t, err)
	assert.Empty(t, sum.LinkPrediction.Grid)
	assert.Equal(t, [2]float64{2, 3}, [2]float64{sum.LinkPrediction.P, sum.LinkPrediction.Q})
}

// TestStageCoUseSessions: co-use edges come from the successive successful
// selections of the sessions CoUseSessionPrefix admits, and join the
// Node2Vec graph.
func TestStageCoUseSessions(t *testing.T) {
	ctx := context.Background()
	cfg := featurestore.Config{TextDim: 64, GraphDim: 64}
	d := &featurestore.Dataset{}
	for i := range 6 {
		tool, c := fmt.Sprint("tool", i), fmt.Sprint("cap", i)
		d.Tools = append(d.Tools, featurestore.Tool{ID: tool, Name: tool, Description: "tool " + tool})
		d.Capabilities = append(d.Capabilities, featurestore.Capability{ID: c, Name: c, Description: "capability " + c, Members: []string{tool}})
	}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(session string, outcome featurestore.Outcome, caps ...string) {
		for _, c := range caps {
			d.Experiences = append(d.Experiences, featurestore.Experience{
				Intent: "do " + c, CandidateIDs: []string{c}, SelectedCapability: c, Rank: 1,
				Outcome: outcome, Timestamp: at, SessionID: session,
			})
			at = at.Add(time.Second)
		}
	}
	add("train-1", featurestore.OutcomeSuccess, "cap0", "cap1", "cap2") // cap0—cap1, cap1—cap2
	add("train-2", featurestore.OutcomeSuccess, "cap1", "cap0")         // cap0—cap1 again
	add("train-2", featurestore.OutcomeFailure, "cap5")                 // a failure adds nothing
	add("eval-1", featurestore.OutcomeSuccess, "cap3", "cap4")          // evaluation split
	st, err := embedded.Open(filepath.Join(t.TempDir(), "s.db"), cfg)
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.WriteDataset(ctx, d))
	h, err := textembed.NewHashing(textembed.HashingConfig{Dim: 64})
	require.NoError(t, err)

	for _, c := range []struct {
		prefix                  string
		sessions, edges, counts int
	}{
		{"train-", 2, 2, 3},
		{"", 3, 3, 4},
		{"nobody-", 0, 0, 0},
	} {
		fc := features.DefaultConfig(h)
		fc.AsOf = at.Add(time.Hour)
		fc.CoUseSessionPrefix = c.prefix
		fc.NoIntents = true
		fc.LinkPredictionFraction = 0 // far too few edges; the graph is what is checked
		stage, err := features.NewStage(fc)
		require.NoError(t, err)
		sum, err := stage.Build(ctx, st)
		require.NoError(t, err, c.prefix)
		assert.Equal(t, c.sessions, sum.CoUseSessions, "prefix %q", c.prefix)
		assert.Equal(t, c.edges, sum.CoUseEdges, "prefix %q", c.prefix)
		assert.Equal(t, c.counts, sum.CoUseSteps, "prefix %q", c.prefix)
		assert.Equal(t, 6+c.edges, sum.GraphEdges, "prefix %q: membership edges plus co-use edges", c.prefix)
	}
}

// sealToolsSessions turns each query of the Seal-Tools file name into one
// logged session (id = the query id), whose step t selects, successfully,
// the field (level-0 capability) of the query's call t: the multi-step
// sessions the co-use edges are meant for, built here from the calls'
// order in the file.
func sealToolsSessions(t *testing.T, dir, name string, caps []featurestore.Capability, start time.Time) []featurestore.Experience {
	t.Helper()
	field := map[string]string{}
	for _, c := range caps {
		if c.Level == 0 {
			for _, m := range c.Members {
				if _, dup := field[m]; !dup {
					field[m] = c.ID
				}
			}
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	var out []featurestore.Experience
	dec := json.NewDecoder(bytes.NewReader(data))
	for i := 0; dec.More(); i++ {
		var q struct {
			ID      string `json:"id"`
			Query   string `json:"query"`
			Calling []struct {
				API string `json:"api"`
			} `json:"calling"`
		}
		require.NoError(t, dec.Decode(&q))
		for step, call := range q.Calling {
			f, ok := field[call.API]
			require.True(t, ok, "query %s calls unknown api %s", q.ID, call.API)
			out = append(out, featurestore.Experience{
				Intent: q.Query, CandidateIDs: []string{f}, SelectedCapability: f, Rank: 1,
				Outcome:   featurestore.OutcomeSuccess,
				Timestamp: start.Add(time.Duration(i)*time.Minute + time.Duration(step)*time.Second),
				SessionID: q.ID,
			})
		}
	}
	return out
}

// TestStageCoUseLinkPredictionSealTools is the co-use check on the real
// data: the Seal-Tools catalog (a forest on its own) with one logged session
// per dev query and per test_in_domain query; the stage takes co-use edges
// from the dev sessions only, holds out 10% of them, chooses p and q on a
// validation split and logs the held-out AUC to MLflow.
func TestStageCoUseLinkPredictionSealTools(t *testing.T) {
	ctx := context.Background()
	dir := testenv.SealToolsDir(t)
	cfg := featurestore.Config{TextDim: textDim, GraphDim: 64}
	d, err := featurestore.ReadSealTools(ctx, dir, cfg)
	require.NoError(t, err)
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	d.Experiences = append(sealToolsSessions(t, dir, featurestore.SealToolsDevFile, d.Capabilities, start),
		sealToolsSessions(t, dir, featurestore.SealToolsTestFile, d.Capabilities, start.Add(24*time.Hour))...)
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), cfg)
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.WriteDataset(ctx, d))

	h, err := textembed.NewHashing(textembed.HashingConfig{Dim: textDim})
	require.NoError(t, err)
	fc := quickConfig(t, h)
	fc.AsOf = start.Add(72 * time.Hour)
	fc.CoUseSessionPrefix = featurestore.SealToolsDevPrefix
	fc.NoIntents = true
	fc.Node2Vec.Workers = 1 // deterministic: the AUC below is the same on every run
	stage, err := features.NewStage(fc)
	require.NoError(t, err)
	c := testenv.Client(t)
	r := &pipeline.Runner{Client: c, Experiment: testenv.Name(t, "features-co-use"), Store: st}
	res, err := r.Run(ctx, stage)
	require.NoError(t, err)

	run, err := c.Runs.Get(ctx, res.Stages[0].RunID)
	require.NoError(t, err)
	metrics := map[string]float64{}
	for _, m := range run.Data.Metrics {
		metrics[m.Key] = m.Value
	}
	params := map[string]string{}
	for _, p := range run.Data.Params {
		params[p.Key] = p.Value
	}
	// dev.jsonl: 700 sessions; 1,086 successive steps between two different
	// fields make 1,083 distinct edges (counted independently with a Python
	// one-liner over the file). The test_in_domain sessions would add ~1,060
	// more: equality shows the prefix kept them out.
	assert.Equal(t, 700.0, metrics["co_use.sessions"])
	assert.Equal(t, 1083.0, metrics["graph.co_use_edges"])
	assert.Equal(t, 1086.0, metrics["graph.co_use_steps"])
	// 4,076 membership + 2,276 nesting edges (every sub-field in its top
	// field), plus the co-use edges, none of which joins a field to its top.
	assert.Equal(t, float64(4076+2276+1083), metrics["graph.edges"])
	assert.Equal(t, "co-use", params["link_prediction.edges"])
	assert.Equal(t, "tuned", params["node2vec.p"])
	assert.Equal(t, "0.25,1,4", params["node2vec.q_grid"])
	assert.Equal(t, "dev-", params["co_use.session_prefix"])

	rc, err := c.Artifacts.Open(ctx, run.Info.ArtifactURI, "link_prediction/result.json")
	require.NoError(t, err)
	defer rc.Close()
	var lp struct {
		Edges      string      `json:"edges"`
		Candidates int         `json:"candidates"`
		AUC        float64     `json:"auc"`
		NullSD     float64     `json:"validation_null_sd"`
		HeldOut    [][2]string `json:"held_out"`
		Validation [][2]string `json:"validation"`
		Grid       []struct {
			P   float64 `json:"p"`
			Q   float64 `json:"q"`
			AUC float64 `json:"validation_auc"`
		} `json:"grid"`
	}
	require.NoError(t, json.NewDecoder(rc).Decode(&lp))
	require.Equal(t, features.EdgesCoUse, lp.Edges)
	assert.InDelta(t, 0.1*float64(lp.Candidates), len(lp.HeldOut), 1)
	require.Len(t, lp.Grid, 9)
	best := lp.Grid[0]
	for i, pt := range lp.Grid {
		assert.Equal(t, pt.AUC, metrics[fmt.Sprintf("link_prediction.grid.p%v_q%v", pt.P, pt.Q)], "grid point %d", i)
		if pt.AUC > best.AUC {
			best = pt
		}
	}
	assert.Equal(t, fmt.Sprint(best.P), params["node2vec.p_used"], "p is the grid's best")
	assert.Equal(t, fmt.Sprint(best.Q), params["node2vec.q_used"], "q is the grid's best")
	for _, p := range lp.Validation {
		assert.NotContains(t, lp.HeldOut, p, "a test edge was used to choose p and q")
	}
	t.Logf("co-use: %d candidates, %d held out, %d validation; held-out AUC %.4f at p=%s q=%s (validation null sd %.3f); grid %+v",
		lp.Candidates, len(lp.HeldOut), len(lp.Validation), lp.AUC, params["node2vec.p_used"], params["node2vec.q_used"], lp.NullSD, lp.Grid)
	assert.Equal(t, lp.AUC, metrics["link_prediction_auc"])
	// Observed: 0.6302 at p=4, q=4 (deterministic with one worker; the
	// validation AUCs of the nine grid points spread over 0.55–0.61, within
	// about two null standard deviations, so the choice is weakly
	// determined on this data). 0.58 is 0.5 plus two null standard
	// deviations of the 108 held-out edges (√(217/(12·108²)) ≈ 0.039): an
	// embedding that carries no co-use signal passes it about 2% of the time.
	assert.Greater(t, lp.AUC, 0.58)
}
