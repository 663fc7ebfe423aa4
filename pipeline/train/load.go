package train

import (
	"context"
	"fmt"
	"time"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/models/evidence"
	"github.com/capflow/capflow/models/shgat"
	"github.com/capflow/capflow/models/textembed"
)

// Source says where training data comes from.
type Source struct {
	Store featurestore.Store
	// Encoder embeds tool texts and any intent the features stage did not
	// store. Wrap it in textembed.Cached so a second run encodes nothing.
	Encoder textembed.Encoder
	// PseudoPrefix, when set, trains on pseudo-experiences derived from the
	// store's queries whose id has this prefix (Seal-Tools: "dev-") instead
	// of the logged experiences. Never the split reported on.
	PseudoPrefix    string
	PseudoSeed      int64
	CandidateLevels []int   // capability levels ranked (empty: all)
	ValidFraction   float64 // sessions held out for validation (0.2)
	Temporal        bool    // hold out the latest sessions instead of a hash-chosen set
	SplitSeed       uint64
	Rewards         Rewards // zero value: DefaultRewards
	NoEvidence      bool    // the dense score only (no evidence features)
}

// pseudoOptions are the options pseudo-experiences are derived with; their
// session ids are what the validation split hashes (HeldOutQueries).
func (src Source) pseudoOptions() featurestore.PseudoOptions {
	return featurestore.PseudoOptions{Seed: src.PseudoSeed}
}

// validFraction is ValidFraction, 0 meaning 0.2.
func (src Source) validFraction() float64 {
	if src.ValidFraction == 0 {
		return 0.2
	}
	return src.ValidFraction
}

// Loaded is training data plus what evaluation on other query sets needs.
type Loaded struct {
	*Data
	Intents        map[string][]float64 // by featurestore.IntentHash
	FeatureVersion string
	Split          Split
	Capabilities   []featurestore.Capability
	Tools          []featurestore.Tool
	ToolText       [][]float32 // unit text embeddings of the tools (evidence.ToolText)
	Evidence       *Evidence   // nil when Source.NoEvidence

	store featurestore.Store
}

// Load assembles training data from the store: the catalog graph, text
// embeddings of capabilities (from the features stage) and tools (encoded
// here), reliability factors, intents, transitions and the split.
func Load(ctx context.Context, src Source, model shgat.Config) (*Loaded, error) {
	st := src.Store
	tools, err := st.Tools(ctx)
	if err != nil {
		return nil, fmt.Errorf("train: load tools: %w", err)
	}
	caps, err := st.Capabilities(ctx)
	if err != nil {
		return nil, fmt.Errorf("train: load capabilities: %w", err)
	}
	g, err := shgat.NewGraph(tools, caps)
	if err != nil {
		return nil, err
	}
	rows, err := st.CapabilityFeatures(ctx, g.Caps)
	if err != nil {
		return nil, fmt.Errorf("train: capability features (run the features stage first): %w", err)
	}
	d := src.Encoder.Dim()
	feats := shgat.Features{Caps: make([]float64, len(g.Caps)*d), Tools: make([]float64, len(g.Tools)*d)}
	version := ""
	for i, r := range rows {
		if len(r.TextEmbedding) != d {
			return nil, &DataError{Reason: fmt.Sprintf("capability %q has a %d-d text embedding, the encoder gives %d-d: rebuild features with the same encoder", r.CapabilityID, len(r.TextEmbedding), d)}
		}
		for k, v := range r.TextEmbedding {
			feats.Caps[i*d+k] = float64(v)
		}
		version = r.FeatureVersion
	}
	texts := make([]string, len(tools))
	for i, t := range tools {
		texts[i] = evidence.ToolText(t)
	}
	vecs, err := encodeBatched(ctx, src.Encoder, texts)
	if err != nil {
		return nil, fmt.Errorf("train: encode tools: %w", err)
	}
	for i, v := range vecs {
		for k, x := range v {
			feats.Tools[i*d+k] = float64(x)
		}
	}
	cfg := model.WithDefaults()
	rel := make([]float64, len(caps))
	for i, c := range caps {
		rel[i] = cfg.Reliability.Factor(c.SuccessRate)
	}

	var exps []featurestore.Experience
	if src.PseudoPrefix != "" {
		train, err := featurestore.QueriesWithPrefix(ctx, st, src.PseudoPrefix)
		if err != nil {
			return nil, fmt.Errorf("train: pseudo-experience queries: %w", err)
		}
		exps = featurestore.PseudoExperiences(train, caps, src.pseudoOptions())
	} else if exps, err = st.ExperiencesBetween(ctx, time.Time{}, time.Now().Add(24*time.Hour)); err != nil {
		return nil, fmt.Errorf("train: experiences: %w", err)
	}
	if len(exps) == 0 {
		return nil, &DataError{Reason: "no experiences to train on (log some, or set a pseudo-experience query prefix)"}
	}
	intents, err := IntentEmbeddings(ctx, st, src.Encoder, exps)
	if err != nil {
		return nil, err
	}
	rewards := src.Rewards
	if rewards == (Rewards{}) {
		rewards = DefaultRewards() // the zero value would make every reward 0
	}
	ts := Transitions(exps, rewards)
	frac := src.validFraction()
	var sp Split
	if src.Temporal {
		cut, err := TemporalCutoff(ts, frac)
		if err != nil {
			return nil, err
		}
		sp, err = SplitTemporal(ts, cut)
		if err != nil {
			return nil, err
		}
	} else if sp, err = SplitBySession(ts, frac, src.SplitSeed); err != nil {
		return nil, err
	}
	var ev *Evidence
	if !src.NoEvidence {
		ix, err := evidence.New(tools, caps, vecs)
		if err != nil {
			return nil, err
		}
		ev = NewEvidence(ix)
	}
	data := &Data{Graph: g, Features: feats, Reliability: rel, Pool: PoolOfLevels(g, src.CandidateLevels)}
	if data.Train, err = Resolve(g, sp.Train, intents, ev); err != nil {
		return nil, err
	}
	if data.Valid, err = Resolve(g, sp.Valid, intents, ev); err != nil {
		return nil, err
	}
	return &Loaded{Data: data, Intents: intents, FeatureVersion: version, Split: sp, Capabilities: caps, Tools: tools,
		ToolText: vecs, Evidence: ev, store: st}, nil
}

// IntentEmbeddings returns the embedding of every distinct (intent, context)
// of exps: from the store's intent features when the features stage wrote
// them, else encoded.
func IntentEmbeddings(ctx context.Context, st featurestore.Store, enc textembed.Encoder, exps []featurestore.Experience) (map[string][]float64, error) {
	out := map[string][]float64{}
	var missing []string
	var missingHash []string
	for _, e := range exps {
		h := featurestore.IntentHash(e.Intent, e.ContextTools)
		if _, ok := out[h]; ok {
			continue
		}
		f, err := st.IntentFeatures(ctx, h)
		if err == nil && len(f.Embedding) == enc.Dim() {
			out[h] = to64(f.Embedding)
			continue
		}
		if err != nil && !featurestore.IsNotFound(err) {
			return nil, fmt.Errorf("train: intent features: %w", err)
		}
		out[h] = nil
		missing, missingHash = append(missing, e.Intent), append(missingHash, h)
	}
	if len(missing) > 0 {
		vecs, err := encodeBatched(ctx, enc, missing)
		if err != nil {
			return nil, fmt.Errorf("train: encode intents: %w", err)
		}
		for i, h := range missingHash {
			out[h] = to64(vecs[i])
		}
	}
	return out, nil
}

// QuerySamples turns evaluation queries into one sample per relevant
// capability (success, one session per query), for Evaluate.
func QuerySamples(g *shgat.Graph, qs []featurestore.Query, intents map[string][]float64, ev *Evidence) ([]Sample, error) {
	var out []Sample
	for _, q := range qs {
		emb, ok := intents[featurestore.IntentHash(q.Intent, q.ContextTools)]
		if !ok {
			return nil, &DataError{Reason: fmt.Sprintf("no intent embedding for query %q", q.ID)}
		}
		var ctxIdx []int
		for _, id := range q.ContextTools {
			k, ok := g.ToolIndex(id)
			if !ok {
				return nil, &DataError{Reason: fmt.Sprintf("query %q has unknown context tool %q", q.ID, id)}
			}
			ctxIdx = append(ctxIdx, k)
		}
		var l []float64
		if ev != nil {
			var err error
			if l, err = ev.Features(q.Intent, emb); err != nil {
				return nil, err
			}
		}
		for _, r := range q.Relevant {
			c, ok := g.CapIndex(r)
			if !ok {
				return nil, &DataError{Reason: fmt.Sprintf("query %q: unknown relevant capability %q", q.ID, r)}
			}
			out = append(out, Sample{Intent: emb, Context: ctxIdx, Cap: c, Reward: 1, Success: true, Next: -1, Session: q.ID, Evidence: l})
		}
	}
	return out, nil
}

func encodeBatched(ctx context.Context, enc textembed.Encoder, texts []string) ([][]float32, error) {
	const batch = 64
	out := make([][]float32, 0, len(texts))
	for i := 0; i < len(texts); i += batch {
		vs, err := enc.Encode(ctx, texts[i:min(i+batch, len(texts))])
		if err != nil {
			return nil, err
		}
		out = append(out, vs...)
	}
	return out, nil
}

func to64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
