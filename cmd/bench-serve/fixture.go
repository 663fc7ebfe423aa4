package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/models/evidence"
	"github.com/capflow/capflow/models/shgat"
	"github.com/capflow/capflow/serving"
)

// fixture is the synthetic catalog, the packaged random model and, per
// candidate count, the request bodies of both servers.
type fixture struct {
	modelDir  string
	storePath string
	tools     []featurestore.Tool
	caps      []featurestore.Capability
	cat       *shgat.Catalog
	reqs      map[int]*request
}

// request is one benchmark request in both formats, the same inputs for
// the scorer: capflow's /rank body names ids, the pyfunc's /invocations
// body carries the rows the capflow server looks up (keys, reliability,
// the context tool's representation) and the evidence it computes.
type request struct {
	n          int
	rankBody   string // file
	mlflowBody string // file
	candidates []string
	rankBytes  int
	mlfBytes   int
}

// wordSyllables build the pseudo-words of tool and capability texts.
var wordSyllables = []string{"ka", "lo", "mi", "ne", "ru", "ta", "vi", "zo", "pe", "shi", "do", "ga", "be", "fu", "ri", "no", "sa", "te"}

// buildFixture makes the catalog (cfg.tools tools; cfg.caps leaf
// capabilities of 2–4 tools; cfg.domains level-1 capabilities over the
// leaves), random unit text embeddings, a random SHGAT model run over it
// (message passing → keys), packages it at dir/model and writes the
// catalog to an embedded store at dir/store.db.
func buildFixture(ctx context.Context, cfg config, dir string) (*fixture, error) {
	rng := rand.New(rand.NewPCG(cfg.seed, 0x5e7e))
	vocab := makeVocab(rng, 800)
	words := func(k int, sep string) string {
		w := make([]string, k)
		for i := range w {
			w[i] = vocab[rng.IntN(len(vocab))]
		}
		return strings.Join(w, sep)
	}
	f := &fixture{modelDir: filepath.Join(dir, "model"), storePath: filepath.Join(dir, "store.db"), reqs: map[int]*request{}}
	for i := range cfg.tools {
		f.tools = append(f.tools, featurestore.Tool{ID: fmt.Sprintf("tool-%04d", i), Name: words(2, "_"), Description: words(5, " ")})
	}
	for i := range cfg.caps {
		k := 2 + rng.IntN(3)
		members := make([]string, 0, k)
		for _, t := range rng.Perm(cfg.tools)[:k] {
			members = append(members, f.tools[t].ID)
		}
		f.caps = append(f.caps, featurestore.Capability{ID: fmt.Sprintf("cap-%04d", i), Name: words(2, " "), Description: words(4, " "), Members: members})
	}
	for j := range cfg.domains {
		var members []string
		for i := j; i < cfg.caps; i += cfg.domains {
			members = append(members, f.caps[i].ID)
		}
		f.caps = append(f.caps, featurestore.Capability{ID: fmt.Sprintf("domain-%02d", j), Name: words(1, " "), Description: words(3, " "), Members: members})
	}

	d := cfg.dim
	g, err := shgat.NewGraph(f.tools, f.caps)
	if err != nil {
		return nil, err
	}
	m, err := shgat.New(shgat.Config{Dim: d, Seed: cfg.seed, InitNoise: 0.1, EvidenceInit: []float64{0.5, 1, 2}}, g.Levels())
	if err != nil {
		return nil, err
	}
	toolText := make([][]float32, len(f.tools))
	feats := shgat.Features{Tools: make([]float64, 0, len(f.tools)*d), Caps: make([]float64, 0, len(f.caps)*d)}
	for i := range f.tools {
		toolText[i] = unit(rng, d)
		feats.Tools = append64(feats.Tools, toolText[i])
	}
	for range f.caps {
		feats.Caps = append64(feats.Caps, unit(rng, d))
	}
	t0 := time.Now()
	reps, err := m.Represent(g, feats)
	if err != nil {
		return nil, err
	}
	slog.Info("message passing", "tools", len(f.tools), "capabilities", len(f.caps), "levels", g.Levels(), "dim", d, "took", time.Since(t0).Round(time.Millisecond))
	rates := make([]*float64, len(f.caps))
	for i := range rates {
		r := 0.3 + 0.7*rng.Float64()
		rates[i] = &r
	}
	if f.cat, err = shgat.NewCatalog(g, reps, m.ReliabilityFactors(rates), "bench-serve"); err != nil {
		return nil, err
	}
	for _, v := range toolText { // graph order is input order
		f.cat.ToolText = append(f.cat.ToolText, v...)
	}
	if err := shgat.WriteMLflowModel(f.modelDir, m, f.cat, shgat.PackageOptions{}); err != nil {
		return nil, err
	}

	st, err := embedded.Open(f.storePath, featurestore.Config{TextDim: d})
	if err != nil {
		return nil, err
	}
	err = st.WriteDataset(ctx, &featurestore.Dataset{Tools: f.tools, Capabilities: f.caps})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("writing the catalog to the store: %w", err)
	}

	ev, err := evidence.New(f.tools, f.caps, toolText)
	if err != nil {
		return nil, err
	}
	intent := unit(rng, d)
	text := words(6, " ")
	ctxTool := rng.IntN(len(f.tools))
	proj, err := m.Scorer().Project(f.cat)
	if err != nil {
		return nil, err
	}
	for _, n := range cfg.ns {
		if n > len(f.caps) {
			return nil, fmt.Errorf("-n %d: the catalog has %d capabilities (raise -caps)", n, len(f.caps))
		}
		idx := rng.Perm(len(f.caps))[:n]
		r := &request{n: n, rankBody: filepath.Join(dir, fmt.Sprintf("rank-%d.json", n)), mlflowBody: filepath.Join(dir, fmt.Sprintf("mlflow-%d.json", n))}
		for _, i := range idx {
			r.candidates = append(r.candidates, f.cat.CapabilityIDs[i])
		}
		if r.rankBytes, err = writeJSON(r.rankBody, serving.RankRequest{Intent: text, IntentEmbedding: intent,
			ContextTools: []string{f.tools[ctxTool].ID}, CandidateIDs: r.candidates, TopK: cfg.topK}); err != nil {
			return nil, err
		}
		fe, err := ev.Features(evidence.Query{Text: text, Embedding: intent}, idx)
		if err != nil {
			return nil, err
		}
		if r.mlfBytes, err = writeJSON(r.mlflowBody, pyfuncInputs(f.cat, proj, intent, ctxTool, idx, fe)); err != nil {
			return nil, err
		}
		f.reqs[n] = r
	}
	return f, nil
}

// pyfuncInputs is MLflow's /invocations body for a dict of tensors: the
// scorer's inputs for one intent, one context tool and the candidates idx
// (their rows of the catalog's projection, as capflow's ranker sends them).
func pyfuncInputs(cat *shgat.Catalog, proj *shgat.Projection, intent []float32, ctxTool int, idx []int, ev []float64) map[string]any {
	d := cat.Dim
	keys := make([][]float32, len(idx))
	rel := make([]float32, len(idx))
	evRows := make([][]float32, len(idx))
	for j, i := range idx {
		keys[j] = proj.Candidates[i*d : (i+1)*d]
		rel[j] = cat.Reliability[i]
		evRows[j] = make([]float32, evidence.F)
		for k := range evidence.F {
			evRows[j][k] = float32(ev[j*evidence.F+k])
		}
	}
	return map[string]any{"inputs": map[string]any{
		shgat.InputIntent:      [][]float32{intent},
		shgat.InputContext:     [][][]float32{{cat.Tools[ctxTool*d : (ctxTool+1)*d]}},
		shgat.InputContextKeys: [][][]float32{{proj.Context[ctxTool*d : (ctxTool+1)*d]}},
		shgat.InputContextMask: [][]float32{{1}},
		shgat.InputCandidates:  keys,
		shgat.InputReliability: rel,
		shgat.InputEvidence:    [][][]float32{evRows},
	}}
}

func writeJSON(path string, v any) (int, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encoding %s: %w", filepath.Base(path), err)
	}
	return len(b), os.WriteFile(path, b, 0o644)
}

// makeVocab returns n distinct pseudo-words of two or three syllables.
func makeVocab(rng *rand.Rand, n int) []string {
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		var b strings.Builder
		for range 2 + rng.IntN(2) {
			b.WriteString(wordSyllables[rng.IntN(len(wordSyllables))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// unit is a random unit vector.
func unit(rng *rand.Rand, d int) []float32 {
	v := make([]float64, d)
	var ss float64
	for i := range v {
		v[i] = rng.NormFloat64()
		ss += v[i] * v[i]
	}
	out := make([]float32, d)
	for i, x := range v {
		out[i] = float32(x / math.Sqrt(ss))
	}
	return out
}

func append64(dst []float64, v []float32) []float64 {
	for _, x := range v {
		dst = append(dst, float64(x))
	}
	return dst
}
