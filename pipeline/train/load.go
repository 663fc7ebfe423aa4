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
	// PseudoPrefix, when set, trains on pseudo-sessions derived from the
	// store's queries whose id has this prefix (Seal-Tools: "dev-") instead
	// of the logged experiences (featurestore.PseudoSessions,
	// PseudoTransitions): a query with calls is a multi-step plan whose
	// steps carry the earlier calls' tools as context. Never the split
	// reported on.
	PseudoPrefix string
	PseudoSeed   int64
	// PseudoSingleStep ignores the queries' calls: every candidate is a
	// one-step episode with the query's context only (to measure what the
	// multi-step sessions bring).
	PseudoSingleStep bool
	CandidateLevels  []int   // capability levels ranked (empty: all)
	ValidFraction    float64 // sessions held out for validation (0.2)
	Temporal         bool    // hold out the latest sessions instead of a hash-chosen set
	SplitSeed        uint64
	Rewards          Rewards // zero value: DefaultRewards
	NoEvidence       bool    // the dense score only (no evidence features)
}

// pseudoOptions are the options pseudo-experiences are derived with; their
// session ids are what the validation split hashes (HeldOutQueries).
func (src Source) pseudoOptions() featurestore.PseudoOptions {
	return featurestore.PseudoOptions{Seed: src.PseudoSeed, SingleStep: src.PseudoSingleStep}
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
	Parts          *Parts      // the intents' parts (evidence and, with IntentParts, scored rows)
	// Plans counts the pseudo-sessions with a multi-step plan (0 when the
	// queries carry no calls, e.g. a store imported by an older capflow).
	Plans int

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
	if featurestore.IsNotFound(err) {
		// Both kinds wrapped: callers test ErrNoFeatures, and the store's
		// *NotFoundError still names the capability.
		return nil, &DataError{Reason: fmt.Sprintf("capability features: %v (run the features stage first)", err), Err: fmt.Errorf("%w: %w", ErrNoFeatures, err)}
	}
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

	rewards := src.Rewards
	if rewards == (Rewards{}) {
		rewards = DefaultRewards() // the zero value would make every reward 0
	}
	var (
		exps  []featurestore.Experience
		ts    []Transition
		plans int
	)
	if src.PseudoPrefix != "" {
		train, err := featurestore.QueriesWithPrefix(ctx, st, src.PseudoPrefix)
		if err != nil {
			return nil, fmt.Errorf("train: pseudo-experience queries: %w", err)
		}
		sessions := featurestore.PseudoSessions(train, caps, src.pseudoOptions())
		for _, s := range sessions {
			exps = append(exps, s.Experiences()...)
			if len(s.Episodes) > 0 && len(s.Episodes[0]) > 1 {
				plans++
			}
		}
		ts = PseudoTransitions(sessions, rewards)
	} else {
		if exps, err = st.ExperiencesBetween(ctx, time.Time{}, time.Now().Add(24*time.Hour)); err != nil {
			return nil, fmt.Errorf("train: experiences: %w", err)
		}
		ts = Transitions(exps, rewards)
	}
	if len(exps) == 0 {
		return nil, &DataError{Reason: "no experiences to train on (log some, or set a pseudo-experience query prefix)", Err: ErrNoExperiences}
	}
	intents, err := IntentEmbeddings(ctx, st, src.Encoder, exps)
	if err != nil {
		return nil, err
	}
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
	// The intents' parts feed the part evidence features and, with
	// IntentParts, the scorer itself: encoded once, in batches.
	parts := NewParts(src.Encoder)
	intentTexts := make([]string, 0, len(exps))
	for _, e := range exps {
		intentTexts = append(intentTexts, e.Intent)
	}
	if err := parts.Prepare(ctx, intentTexts); err != nil {
		return nil, err
	}
	var ev *Evidence
	if !src.NoEvidence {
		ix, err := evidence.New(tools, caps, vecs)
		if err != nil {
			return nil, err
		}
		if ev, err = NewEvidence(ix, parts, cfg.Evidence); err != nil {
			return nil, err
		}
	}
	var rowParts *Parts
	if cfg.IntentParts {
		rowParts = parts
	}
	data := &Data{Graph: g, Features: feats, Reliability: rel, Pool: PoolOfLevels(g, src.CandidateLevels)}
	if data.Train, err = Resolve(ctx, g, sp.Train, intents, ev, rowParts); err != nil {
		return nil, err
	}
	if data.Valid, err = Resolve(ctx, g, sp.Valid, intents, ev, rowParts); err != nil {
		return nil, err
	}
	return &Loaded{Data: data, Intents: intents, FeatureVersion: version, Split: sp, Capabilities: caps, Tools: tools,
		ToolText: vecs, Evidence: ev, Parts: parts, Plans: plans, store: st}, nil
}

// IntentEmbeddings returns the embedding of every distinct (intent, context)
// of exps: from the store's intent features when the features stage wrote
// them, else encoded.
//
// An intent's embedding is of its text alone (the features stage encodes
// the text; the context tools only key the row), so one text's embedding
// serves every context it comes with: the steps of a multi-step session
// share their query's row (stored under the text with no context when the
// step's own key is absent), and a text is encoded at most once.
func IntentEmbeddings(ctx context.Context, st featurestore.Store, enc textembed.Encoder, exps []featurestore.Experience) (map[string][]float64, error) {
	out := map[string][]float64{}
	byText := map[string][]float64{}
	pending := map[string][]string{} // text to encode → the keys waiting for it
	var missing []string             // texts to encode, in first-seen order
	stored := func(h string) ([]float64, error) {
		f, err := st.IntentFeatures(ctx, h)
		if err == nil && len(f.Embedding) == enc.Dim() {
			return to64(f.Embedding), nil
		}
		if err != nil && !featurestore.IsNotFound(err) {
			return nil, fmt.Errorf("train: intent features: %w", err)
		}
		return nil, nil
	}
	for _, e := range exps {
		h := featurestore.IntentHash(e.Intent, e.ContextTools)
		if _, ok := out[h]; ok {
			continue
		}
		if v, ok := byText[e.Intent]; ok {
			out[h] = v
			continue
		}
		if keys, ok := pending[e.Intent]; ok {
			pending[e.Intent], out[h] = append(keys, h), nil
			continue
		}
		v, err := stored(h)
		if err == nil && v == nil && len(e.ContextTools) > 0 {
			v, err = stored(featurestore.IntentHash(e.Intent, nil))
		}
		if err != nil {
			return nil, err
		}
		if v != nil {
			out[h], byText[e.Intent] = v, v
			continue
		}
		out[h], pending[e.Intent] = nil, []string{h}
		missing = append(missing, e.Intent)
	}
	if len(missing) > 0 {
		vecs, err := encodeBatched(ctx, enc, missing)
		if err != nil {
			return nil, fmt.Errorf("train: encode intents: %w", err)
		}
		for i, text := range missing {
			v := to64(vecs[i])
			for _, h := range pending[text] {
				out[h] = v
			}
		}
	}
	return out, nil
}

// QuerySamples turns evaluation queries into one sample per relevant
// capability (success, one session per query), for Evaluate; parts, when
// not nil, adds the intents' part rows (shgat.Config.IntentParts).
func QuerySamples(ctx context.Context, g *shgat.Graph, qs []featurestore.Query, intents map[string][]float64, ev *Evidence, parts *Parts) ([]Sample, error) {
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
			if l, err = ev.Features(ctx, q.Intent, emb); err != nil {
				return nil, err
			}
		}
		var rows [][]float64
		if parts != nil {
			var err error
			if rows, err = partRows(ctx, parts, q.Intent); err != nil {
				return nil, err
			}
		}
		for _, r := range q.Relevant {
			c, ok := g.CapIndex(r)
			if !ok {
				return nil, &DataError{Reason: fmt.Sprintf("query %q: unknown relevant capability %q", q.ID, r)}
			}
			out = append(out, Sample{Intent: emb, Parts: rows, Context: ctxIdx, Cap: c, Reward: 1, Success: true, Next: -1, Session: q.ID, Evidence: l})
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
