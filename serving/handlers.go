package serving

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/models/evidence"
	"github.com/capflow/capflow/models/ranker"
)

//go:embed openapi.json
var openapiJSON []byte

// RankResponse is the body of a successful POST /rank.
type RankResponse struct {
	Rankings     []Ranking `json:"rankings"`
	LatencyMS    float64   `json:"latency_ms"`
	ModelName    string    `json:"model_name"`
	ModelVersion string    `json:"model_version"`
	ModelStage   string    `json:"model_stage"`
	ServedBy     Role      `json:"served_by"` // primary or canary
	// Candidates says where the ranked set came from: "request"
	// (candidate_ids), "ann" (the store's ANN index) or "catalog" (the
	// model's whole catalog, when the ANN failed or found nothing).
	Candidates string `json:"candidates"`
}

// Ranking is one ranked capability; Score is the model score plus boosts.
type Ranking struct {
	CapabilityID string  `json:"capability_id"`
	Score        float64 `json:"score"`
	Rank         int     `json:"rank"` // 1-based
}

// FeedbackResponse is the body of a successful POST /feedback.
type FeedbackResponse struct {
	Status    string    `json:"status"` // "recorded"
	Timestamp time.Time `json:"timestamp"`
}

// ModelRef names a loaded model version.
type ModelRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Stage   string `json:"stage"`
}

// ReadyResponse is the body of GET /readyz; Code and Message say why not.
type ReadyResponse struct {
	Ready   bool      `json:"ready"`
	Model   *ModelRef `json:"model,omitempty"`
	Code    string    `json:"code,omitempty"`
	Message string    `json:"message,omitempty"`
}

// shadowScorer is what the Manager offers for shadow traffic: it scores q
// with the shadow model over primary's candidates and records how far the
// two rankings agree. Models without it get the shadow scored and the
// result discarded (load testing only).
type shadowScorer interface {
	ScoreShadow(ctx context.Context, q ranker.Query, primary []ranker.Scored) ([]ranker.Scored, error)
}

func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *Server) openapi(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", openapiJSON)
}

// readyProbe is a key no embedding is stored under: looking it up costs the
// store one point read and answers "not found" when the store is healthy.
var readyProbe = featurestore.EmbeddingKey{Model: "capflow-readyz-probe", ModelVersion: "0", TextHash: "0"}

func (s *Server) readyz(c *gin.Context) {
	notReady := func(code, msg string) {
		c.Set(ctxErrorCode, code)
		c.JSON(http.StatusServiceUnavailable, ReadyResponse{Code: code, Message: msg})
	}
	m, _, release, ok := s.cfg.Models.Acquire("")
	if !ok {
		notReady(CodeNotReady, "no model is loaded yet")
		return
	}
	ref := &ModelRef{Name: m.Name, Version: m.Version, Stage: m.Stage}
	release()
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	if _, err := s.cfg.Store.Embedding(ctx, readyProbe); err != nil && !featurestore.IsNotFound(err) {
		notReady(CodeUnavailable, fmt.Sprintf("the feature store does not answer: %v", err))
		return
	}
	c.JSON(http.StatusOK, ReadyResponse{Ready: true, Model: ref})
}

func (s *Server) reload(c *gin.Context) {
	if s.cfg.Reload == nil {
		s.fail(c, &APIError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "this server has no reload configured"})
		return
	}
	swapped, err := s.cfg.Reload(c.Request.Context())
	if err != nil {
		s.cfg.Logger.Warn("serving: reload failed", "err", err)
		s.fail(c, &APIError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "reload failed: " + err.Error()})
		return
	}
	body := gin.H{"status": "reloaded", "swapped": swapped}
	if m, _, release, ok := s.cfg.Models.Acquire(""); ok {
		body["model"] = ModelRef{Name: m.Name, Version: m.Version, Stage: m.Stage}
		release()
	}
	c.JSON(http.StatusOK, body)
}

func (s *Server) feedback(c *gin.Context) {
	e, err := DecodeFeedback(c.Request.Body, s.cfg.Limits, time.Now().UTC())
	if err != nil {
		s.fail(c, asAPIError(err))
		return
	}
	ctx := c.Request.Context()
	exps := []featurestore.Experience{*e}
	check := func(maxAge time.Duration) (*APIError, bool) {
		snap, err := s.catalog.get(ctx, maxAge)
		if err != nil {
			return s.dependencyError(ctx, "reading the catalog", err), false
		}
		cfg := featurestore.Config{MaxTextLen: s.cfg.Limits.MaxTextBytes}
		if err := cfg.CheckExperiences(exps, snap.isTool, snap.isCap); err != nil {
			ae := feedbackError(err)
			return ae, ae.Code == CodeUnknownID && time.Since(snap.at) > catalogMinAge
		}
		return nil, false
	}
	ae, retry := check(s.cfg.CatalogTTL)
	if retry { // an id newer than our copy of the catalog: look again
		ae, _ = check(catalogMinAge)
	}
	if ae != nil {
		s.fail(c, ae)
		return
	}
	if err := s.cfg.Store.AppendExperiences(ctx, exps...); err != nil {
		var ve featurestore.ValidationErrors
		var re *featurestore.RecordError
		if errors.As(err, &ve) || errors.As(err, &re) {
			s.fail(c, feedbackError(err))
			return
		}
		s.fail(c, s.dependencyError(ctx, "appending the experience", err))
		return
	}
	c.JSON(http.StatusCreated, FeedbackResponse{Status: "recorded", Timestamp: exps[0].Timestamp})
}

// asAPIError is the decoders' error as it is (always an *APIError), with a
// guard should that ever change.
func asAPIError(err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	return &APIError{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Message: err.Error()}
}

// dependencyError reports a failed store or encoder call: a timeout when the
// request's deadline passed, else the dependency is unavailable.
func (s *Server) dependencyError(ctx context.Context, what string, err error) *APIError {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return &APIError{Status: http.StatusGatewayTimeout, Code: CodeTimeout, Message: what + ": the request's deadline passed"}
	}
	s.cfg.Logger.Warn("serving: dependency failed", "what", what, "err", err)
	return &APIError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: what + " failed"}
}

func (s *Server) rank(c *gin.Context) {
	start := time.Now()
	decoded, err := DecodeRankRequest(c.Request.Body, s.cfg.Limits)
	if err != nil {
		s.fail(c, asAPIError(err))
		return
	}
	req := decoded
	m, role, release, ok := s.cfg.Models.Acquire(req.SessionID)
	if !ok {
		s.fail(c, &APIError{Status: http.StatusServiceUnavailable, Code: CodeNotReady, Message: "no model is loaded yet"})
		return
	}
	defer release()
	c.Set(ctxServedBy, string(role))
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.RankTimeout)
	defer cancel()

	q, source, ae := s.query(ctx, m, req)
	if ae != nil {
		s.fail(c, ae)
		return
	}
	var scored []ranker.Scored
	if len(q.Candidates) > 0 {
		if scored, err = m.Ranker.Rank(ctx, q); err != nil {
			var re *ranker.Error
			if errors.As(err, &re) { // the request was checked against this model: a bug
				s.cfg.Logger.Error("serving: ranker refused a checked request", "model", m.Name, "version", m.Version, "err", err)
				s.fail(c, &APIError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "the model could not rank the request; it has been logged"})
				return
			}
			s.fail(c, s.dependencyError(ctx, "ranking", err))
			return
		}
		if role == RolePrimary { // the shadow is compared with the primary only
			s.maybeShadow(req.SessionID, q, scored)
		}
	}
	rankings := s.finish(req, scored, role)
	s.metrics.served.WithLabelValues(string(role), source).Inc()
	c.JSON(http.StatusOK, RankResponse{
		Rankings:     rankings,
		LatencyMS:    float64(time.Since(start).Microseconds()) / 1000,
		ModelName:    m.Name,
		ModelVersion: m.Version,
		ModelStage:   m.Stage,
		ServedBy:     role,
		Candidates:   source,
	})
}

// query checks req against the model m and builds what the ranker scores:
// the unit intent embedding and the filtered candidate set. source says
// where the candidates came from.
func (s *Server) query(ctx context.Context, m *Model, req *RankRequest) (ranker.Query, string, *APIError) {
	idx := s.indexes.get(m.Ranker)
	q := ranker.Query{Text: req.Intent, ContextTools: req.ContextTools}
	for i, id := range req.ContextTools {
		if !idx.tools[id] {
			return q, "", badField(CodeUnknownID, fmt.Sprintf("context_tools[%d]", i), "is %q, a tool the model does not know", id)
		}
	}
	for i, id := range req.CandidateIDs {
		if _, ok := idx.caps[id]; !ok {
			return q, "", badField(CodeUnknownID, fmt.Sprintf("candidate_ids[%d]", i), "is %q, a capability the model does not know", id)
		}
	}
	var toolsOf map[string]map[string]bool
	if f := req.Filters; f != nil && len(f.RequireTools) > 0 {
		snap, err := s.catalog.get(ctx, s.cfg.CatalogTTL)
		if err != nil {
			return q, "", s.dependencyError(ctx, "reading the catalog", err)
		}
		for i, id := range f.RequireTools {
			if !snap.tools[id] {
				return q, "", badField(CodeUnknownID, fmt.Sprintf("filters.require_tools[%d]", i), "is %q, not a tool of the catalog", id)
			}
		}
		toolsOf = snap.toolsOf
	}

	dim := m.Ranker.Dim()
	if req.IntentEmbedding != nil {
		if len(req.IntentEmbedding) != dim {
			return q, "", badField(CodeWrongDimension, "intent_embedding", "has %d elements, the model takes %d", len(req.IntentEmbedding), dim)
		}
		q.Embedding = unitVector(req.IntentEmbedding)
	} else {
		v, parts, ae := s.encode(ctx, req.Intent)
		if ae != nil {
			return q, "", ae
		}
		q.Parts = parts
		if len(v) != dim {
			s.cfg.Logger.Error("serving: encoder and model disagree on the dimension", "encoder", len(v), "model", dim, "version", m.Version)
			return q, "", &APIError{Status: http.StatusInternalServerError, Code: CodeInternal,
				Message: fmt.Sprintf("the server's encoder gives %d-d vectors, the model takes %d; send intent_embedding", len(v), dim)}
		}
		q.Embedding = v
	}

	cands, source := req.CandidateIDs, "request"
	switch {
	case cands != nil:
	case len(idx.capIDs) <= s.cfg.WholeCatalogMax:
		cands, source = idx.capIDs, "catalog"
	default:
		if cands, source = s.annCandidates(ctx, q.Embedding, q.Parts, idx); ctx.Err() != nil {
			return q, "", s.dependencyError(ctx, "finding candidates", ctx.Err())
		}
	}
	q.Candidates = filterCandidates(cands, req.Filters, toolsOf)
	return q, source, nil
}

// annCandidates asks the store's ANN index over text embeddings for the
// ANNK nearest capabilities to the intent, and the ANNK/len(parts) nearest
// to each of its parts: the ANN proposes the candidate set, the model ranks
// it. An intent that asks for three things sits between their capabilities,
// so each part finds its own. Capabilities the model does not know (added to the store after
// it was trained) are left out. When the ANN fails or proposes nothing the
// model knows, the model's whole catalog is ranked instead (counted as a
// fallback).
func (s *Server) annCandidates(ctx context.Context, emb []float32, parts []evidence.Part, idx *modelIndex) ([]string, string) {
	actx, cancel := context.WithTimeout(ctx, s.cfg.ANNTimeout)
	defer cancel()
	ns, err := s.cfg.Store.NearestCapabilities(actx, featurestore.SpaceText, emb, s.cfg.ANNK)
	for _, p := range parts {
		if err != nil {
			break
		}
		var more []featurestore.Neighbor
		more, err = s.cfg.Store.NearestCapabilities(actx, featurestore.SpaceText, p.Embedding, max(1, s.cfg.ANNK/len(parts)))
		ns = append(ns, more...)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.Warn("serving: ANN failed, ranking the whole catalog", "err", err)
			s.metrics.fallbacks.WithLabelValues(fallbackANNError).Inc()
		}
		return idx.capIDs, "catalog"
	}
	ids := make([]string, 0, len(ns))
	seen := make(map[string]bool, len(ns))
	for _, n := range ns {
		if _, ok := idx.caps[n.CapabilityID]; ok && !seen[n.CapabilityID] {
			seen[n.CapabilityID] = true
			ids = append(ids, n.CapabilityID)
		}
	}
	if len(ids) == 0 {
		s.metrics.fallbacks.WithLabelValues(fallbackANNEmpty).Inc()
		return idx.capIDs, "catalog"
	}
	return ids, "ann"
}

// encode embeds the intent text and its parts (evidence.Parts, when it has
// more than one) in one encoder call, falling back to FallbackEncoder when
// it fails: the parts must come from the same encoder as the intent.
func (s *Server) encode(ctx context.Context, text string) ([]float32, []evidence.Part, *APIError) {
	if s.cfg.Encoder == nil {
		return nil, nil, badField(CodeInvalidField, "intent_embedding", "is required: this server has no text encoder")
	}
	texts := []string{text}
	parts := evidence.Parts(text)
	if len(parts) > 1 {
		texts = append(texts, parts...)
	}
	vecs, err := s.cfg.Encoder.Encode(ctx, texts)
	if err != nil && ctx.Err() == nil && s.cfg.FallbackEncoder != nil {
		s.cfg.Logger.Warn("serving: encoder failed, using the fallback encoder", "err", err)
		s.metrics.fallbacks.WithLabelValues(fallbackEncoder).Inc()
		vecs, err = s.cfg.FallbackEncoder.Encode(ctx, texts)
	}
	if err != nil {
		return nil, nil, s.dependencyError(ctx, "encoding the intent", err)
	}
	if len(vecs) != len(texts) {
		return nil, nil, &APIError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: fmt.Sprintf("the encoder returned %d vectors for %d texts", len(vecs), len(texts))}
	}
	var ps []evidence.Part
	if len(parts) > 1 {
		ps = make([]evidence.Part, len(parts))
		for i, p := range parts {
			ps[i] = evidence.Part{Text: p, Embedding: vecs[1+i]}
		}
	}
	return vecs[0], ps, nil
}

// filterCandidates applies exclude_ids and require_tools, keeping order.
func filterCandidates(cands []string, f *Filters, toolsOf map[string]map[string]bool) []string {
	if f == nil || len(f.ExcludeIDs) == 0 && len(f.RequireTools) == 0 {
		return cands
	}
	excluded := make(map[string]bool, len(f.ExcludeIDs))
	for _, id := range f.ExcludeIDs {
		excluded[id] = true
	}
	out := make([]string, 0, len(cands))
next:
	for _, id := range cands {
		if excluded[id] {
			continue
		}
		for _, t := range f.RequireTools {
			if !toolsOf[id][t] {
				continue next
			}
		}
		out = append(out, id)
	}
	return out
}

// finish applies boosts, min_score and top_k to the model's ranking and
// records the score distribution.
func (s *Server) finish(req *RankRequest, scored []ranker.Scored, role Role) []Ranking {
	type row struct {
		id         string
		raw, final float64
	}
	rows := make([]row, len(scored))
	sets := make([]map[string]bool, len(req.Boosts))
	for i, b := range req.Boosts {
		sets[i] = make(map[string]bool, len(b.CapabilityIDs))
		for _, id := range b.CapabilityIDs {
			sets[i][id] = true
		}
	}
	for i, sc := range scored {
		rows[i] = row{id: sc.ID, raw: sc.Score, final: sc.Score}
		for j := range req.Boosts {
			if req.Boosts[j].matches(sc.ID, sets[j]) {
				rows[i].final += req.Boosts[j].Score
			}
		}
	}
	if len(req.Boosts) > 0 {
		sort.SliceStable(rows, func(a, b int) bool { return rows[a].final > rows[b].final })
	}
	topK := req.TopK
	if topK == 0 {
		topK = DefaultTopK
	}
	out := make([]Ranking, 0, min(topK, len(rows)))
	for _, r := range rows {
		if len(out) == topK {
			break
		}
		if req.MinScore != nil && r.final < *req.MinScore {
			continue
		}
		out = append(out, Ranking{CapabilityID: r.id, Score: r.final, Rank: len(out) + 1})
		s.metrics.score.WithLabelValues(string(role)).Observe(r.raw)
	}
	if len(scored) > 0 {
		s.metrics.topScore.WithLabelValues(string(role)).Observe(scored[0].Score)
	}
	return out
}

// maybeShadow scores q with the shadow model off the request path when the
// Models sample this request. At most MaxShadow scorings run at once; more
// are dropped rather than queued, so shadow traffic never slows serving.
func (s *Server) maybeShadow(session string, q ranker.Query, primary []ranker.Scored) {
	m, release, ok := s.cfg.Models.Shadow(session)
	if !ok {
		return
	}
	select {
	case s.shadowSem <- struct{}{}:
	default:
		release()
		s.metrics.shadow.WithLabelValues("dropped").Inc()
		return
	}
	s.shadowWG.Add(1)
	go func() {
		defer s.shadowWG.Done()
		defer func() { <-s.shadowSem }()
		defer release()
		defer func() {
			if p := recover(); p != nil {
				s.cfg.Logger.Error("serving: shadow scoring panicked", "panic", fmt.Sprint(p))
				s.metrics.shadow.WithLabelValues("error").Inc()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShadowTimeout)
		defer cancel()
		var err error
		if ss, ok := s.cfg.Models.(shadowScorer); ok {
			_, err = ss.ScoreShadow(ctx, q, primary)
		} else {
			_, err = m.Ranker.Rank(ctx, q)
		}
		if err != nil {
			s.cfg.Logger.Debug("serving: shadow scoring failed", "model", m.Name, "version", m.Version, "err", err)
			s.metrics.shadow.WithLabelValues("error").Inc()
			return
		}
		s.metrics.shadow.WithLabelValues("done").Inc()
	}()
}

// unitVector returns v scaled to unit norm (a zero vector stays zero), in
// a new slice.
func unitVector(v []float32) []float32 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if ss == 0 || math.IsInf(ss, 0) {
		// Scale first when the squares overflow (elements near MaxFloat32).
		var amax float64
		for _, x := range v {
			amax = math.Max(amax, math.Abs(float64(x)))
		}
		if amax == 0 {
			return out
		}
		ss = 0
		for _, x := range v {
			y := float64(x) / amax
			ss += y * y
		}
		ss *= amax * amax
	}
	n := math.Sqrt(ss)
	for i, x := range v {
		out[i] = float32(float64(x) / n)
	}
	return out
}

// modelIndex answers "does the model know this id" for one loaded model.
type modelIndex struct {
	caps   map[string]struct{}
	tools  map[string]bool
	capIDs []string // catalog order
}

// modelIndexes caches one modelIndex per Ranker. Models change rarely and a
// few are live at once (primary, canary, shadow, the one being swapped
// out), so a small map that is emptied when full is enough.
type modelIndexes struct {
	mu sync.Mutex
	m  map[*ranker.Ranker]*modelIndex
}

const maxModelIndexes = 8

func (x *modelIndexes) get(r *ranker.Ranker) *modelIndex {
	x.mu.Lock()
	defer x.mu.Unlock()
	if idx, ok := x.m[r]; ok {
		return idx
	}
	if x.m == nil || len(x.m) >= maxModelIndexes {
		x.m = map[*ranker.Ranker]*modelIndex{}
	}
	cat := r.Package().Catalog
	idx := &modelIndex{caps: make(map[string]struct{}, len(cat.CapabilityIDs)), tools: make(map[string]bool, len(cat.ToolIDs)), capIDs: cat.CapabilityIDs}
	for _, id := range cat.CapabilityIDs {
		idx.caps[id] = struct{}{}
	}
	for _, id := range cat.ToolIDs {
		idx.tools[id] = true
	}
	x.m[r] = idx
	return idx
}

// catalogMinAge is how old the store catalog must be before an unknown id
// makes /feedback read it again.
const catalogMinAge = 5 * time.Second

// storeCatalog is the store's tool and capability ids and each capability's
// tools through nesting, read at most once per TTL: /feedback checks ids
// against it, require_tools filters with it.
type storeCatalog struct {
	store featurestore.Store
	ttl   time.Duration
	log   *slog.Logger

	mu   sync.Mutex
	snap *catalogSnap
}

type catalogSnap struct {
	at      time.Time
	tools   map[string]bool
	caps    map[string]bool
	toolsOf map[string]map[string]bool // capability → every tool it contains
}

func (c *catalogSnap) isTool(id string) bool { return c.tools[id] }
func (c *catalogSnap) isCap(id string) bool  { return c.caps[id] }

// get returns a snapshot at most maxAge old; when reading the store fails,
// the previous snapshot (if any) is served and the failure logged.
func (c *storeCatalog) get(ctx context.Context, maxAge time.Duration) (*catalogSnap, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap != nil && time.Since(c.snap.at) < maxAge {
		return c.snap, nil
	}
	snap, err := c.load(ctx)
	if err != nil {
		if c.snap != nil && ctx.Err() == nil {
			c.log.Warn("serving: reading the catalog failed, using the previous copy", "age", time.Since(c.snap.at).String(), "err", err)
			return c.snap, nil
		}
		return nil, err
	}
	c.snap = snap
	return snap, nil
}

func (c *storeCatalog) load(ctx context.Context) (*catalogSnap, error) {
	tools, err := c.store.Tools(ctx)
	if err != nil {
		return nil, err
	}
	caps, err := c.store.Capabilities(ctx)
	if err != nil {
		return nil, err
	}
	snap := &catalogSnap{at: time.Now(), tools: make(map[string]bool, len(tools)), caps: make(map[string]bool, len(caps)),
		toolsOf: make(map[string]map[string]bool, len(caps))}
	for _, t := range tools {
		snap.tools[t.ID] = true
	}
	members := make(map[string][]string, len(caps))
	for _, cp := range caps {
		snap.caps[cp.ID] = true
		members[cp.ID] = cp.Members
	}
	// The store rejects cycles; the visiting mark still guards recursion.
	visiting := map[string]bool{}
	var toolsOf func(id string) map[string]bool
	toolsOf = func(id string) map[string]bool {
		if ts, ok := snap.toolsOf[id]; ok || visiting[id] {
			return ts
		}
		visiting[id] = true
		ts := map[string]bool{}
		for _, m := range members[id] {
			if snap.tools[m] {
				ts[m] = true
				continue
			}
			for t := range toolsOf(m) {
				ts[t] = true
			}
		}
		snap.toolsOf[id] = ts
		return ts
	}
	for _, cp := range caps {
		toolsOf(cp.ID)
	}
	return snap, nil
}
