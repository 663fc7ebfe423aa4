package serving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/cache"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/internal/testmodel"
	"github.com/capflow/capflow/models/ranker"
	"github.com/capflow/capflow/models/textembed"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // the one global the CLI also sets
	os.Exit(m.Run())
}

const dim = 16

// testModels is a small Models of the tests' own: a primary, an optional
// canary for listed sessions and an optional shadow sampling every request.
// held counts acquisitions not yet released.
type testModels struct {
	mu             sync.Mutex
	primary        *Model
	canary         *Model
	canarySessions map[string]bool
	shadow         *Model
	held           atomic.Int64
}

func (f *testModels) release() func() {
	f.held.Add(1)
	var once sync.Once
	return func() { once.Do(func() { f.held.Add(-1) }) }
}

func (f *testModels) Acquire(session string) (*Model, Role, func(), bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.primary == nil {
		return nil, "", nil, false
	}
	if f.canary != nil && f.canarySessions[session] {
		return f.canary, RoleCanary, f.release(), true
	}
	return f.primary, RolePrimary, f.release(), true
}

func (f *testModels) Shadow(string) (*Model, func(), bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shadow == nil {
		return nil, nil, false
	}
	return f.shadow, f.release(), true
}

func (f *testModels) set(primary *Model) {
	f.mu.Lock()
	f.primary = primary
	f.mu.Unlock()
}

// scoringModels adds the Manager's ScoreShadow.
type scoringModels struct {
	*testModels
	calls chan shadowCall
}

type shadowCall struct {
	q       ranker.Query
	primary []ranker.Scored
}

func (s *scoringModels) ScoreShadow(ctx context.Context, q ranker.Query, primary []ranker.Scored) ([]ranker.Scored, error) {
	s.calls <- shadowCall{q, primary}
	return nil, nil
}

// catalog is testmodel.Catalog with namespaced capability ids ("trip."
// for cap0–cap2 and travel, "info." for the rest) so boosts by prefix have
// something to match.
func catalog() ([]featurestore.Tool, []featurestore.Capability) {
	tools, caps := testmodel.Catalog()
	ns := func(id string) string {
		switch id {
		case "cap0", "cap1", "cap2", "travel":
			return "trip." + id
		}
		return "info." + id
	}
	for i := range caps {
		if caps[i].ID == "travel" {
			for k, m := range caps[i].Members {
				caps[i].Members[k] = ns(m)
			}
		}
		caps[i].ID = ns(caps[i].ID)
	}
	return tools, caps
}

// openModel packages a random SHGAT over the catalog (seed picks the
// weights) and opens it with the real ranker (ONNX Runtime).
func openModel(t *testing.T, seed uint64, version string) *Model {
	t.Helper()
	lib := testenv.ORTLibrary(t)
	tools, caps := catalog()
	p := testmodel.Package(t, testmodel.PackageOptions{Tools: tools, Caps: caps, Dim: dim, Seed: seed, InitNoise: 0.2, Rand: rand.New(rand.NewPCG(seed, 4))})
	r, err := ranker.Open(context.Background(), p.Dir, tools, caps, ranker.Options{ORTLibrary: lib})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &Model{Name: "capflow-test", Version: version, Stage: "Production", Ranker: r, Loaded: time.Now()}
}

// openStore builds an embedded store in a temp dir holding the catalog and
// a text and a hybrid embedding per capability, plus "extra.cap", a capability the
// model does not know.
func openStore(t *testing.T) *embedded.Store {
	t.Helper()
	tools, caps := catalog()
	caps = append(caps, featurestore.Capability{ID: "extra.cap", Name: "extra", Members: []string{"tool0", "tool5"}})
	return testmodel.Store(t, filepath.Join(t.TempDir(), "store.db"), testmodel.StoreOptions{Tools: tools, Caps: caps, Dim: dim})
}

type fixture struct {
	srv    *Server
	models *testModels
	raw    *embedded.Store
	store  *cache.Store
	enc    textembed.Encoder // the bare hashing encoder
	reg    *prometheus.Registry
	logs   *testenv.LogBuffer
}

// newFixture serves a model (version "1") over the test store with the
// hashing encoder behind the cache layers; edit adjusts the config.
func newFixture(t *testing.T, edit func(*ServerConfig)) *fixture {
	t.Helper()
	f := &fixture{models: &testModels{}, raw: openStore(t), reg: prometheus.NewRegistry(), logs: &testenv.LogBuffer{}}
	f.models.set(openModel(t, 2, "1"))
	f.store = cache.New(f.raw, cache.Options{})
	enc, err := textembed.NewHashing(textembed.HashingConfig{Dim: dim})
	if err != nil {
		t.Fatal(err)
	}
	f.enc = enc
	cfg := ServerConfig{
		Models:   f.models,
		Store:    f.store,
		Encoder:  textembed.Cached(enc, f.store),
		Registry: f.reg,
		Logger:   slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	t.Cleanup(func() {
		srv.Wait()
		if n := f.models.held.Load(); n != 0 {
			t.Errorf("%d model acquisitions were never released", n)
		}
	})
	return f
}

// do sends a request and returns the status and the raw body.
func (f *fixture) do(t *testing.T, method, path, body string, header ...string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

func (f *fixture) rank(t *testing.T, body string) RankResponse {
	t.Helper()
	code, b := f.do(t, "POST", "/rank", body)
	if code != http.StatusOK {
		t.Fatalf("POST /rank %s: %d %s", body, code, b)
	}
	var resp RankResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func sameRanking(t *testing.T, what string, got []Ranking, want []ranker.Scored) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rankings, want %d", what, len(got), len(want))
	}
	for i, w := range want {
		if got[i].CapabilityID != w.ID || got[i].Score != w.Score || got[i].Rank != i+1 {
			t.Fatalf("%s: ranking %d is %+v, the ranker gives %+v", what, i, got[i], w)
		}
	}
}

// TestRankGolden: /rank returns exactly what the ranker gives for the same
// query, for explicit candidates, ANN candidates and a given embedding.
func TestRankGolden(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	m, _, release, _ := f.models.Acquire("")
	defer release()
	intent := "weather for my flight and a hotel"
	emb, err := f.enc.Encode(ctx, []string{intent})
	if err != nil {
		t.Fatal(err)
	}

	cands := []string{"info.cap5", "trip.travel", "trip.cap1", "info.cap3"}
	want, err := m.Ranker.Rank(ctx, ranker.Query{Text: intent, Embedding: emb[0], ContextTools: []string{"tool3"}, Candidates: cands})
	if err != nil {
		t.Fatal(err)
	}
	resp := f.rank(t, mustJSON(map[string]any{"intent": intent, "context_tools": []string{"tool3"}, "candidate_ids": cands}))
	sameRanking(t, "candidate_ids", resp.Rankings, want)
	if resp.ServedBy != RolePrimary || resp.ModelVersion != "1" || resp.ModelStage != "Production" || resp.ModelName != "capflow-test" || resp.Candidates != "request" {
		t.Errorf("response metadata: %+v", resp)
	}
	if resp.LatencyMS <= 0 {
		t.Errorf("latency_ms %v", resp.LatencyMS)
	}

	// Without candidates the ANN proposes them: every stored capability
	// the model knows (k 200 > 10), not "extra.cap".
	ns, err := f.raw.NearestCapabilities(ctx, featurestore.SpaceText, emb[0], 200)
	if err != nil {
		t.Fatal(err)
	}
	var annIDs []string
	for _, n := range ns {
		if n.CapabilityID != "extra.cap" {
			annIDs = append(annIDs, n.CapabilityID)
		}
	}
	want, err = m.Ranker.Rank(ctx, ranker.Query{Text: intent, Embedding: emb[0], Candidates: annIDs})
	if err != nil {
		t.Fatal(err)
	}
	resp = f.rank(t, mustJSON(map[string]any{"intent": intent, "top_k": 100}))
	sameRanking(t, "ann", resp.Rankings, want)
	if resp.Candidates != "ann" || len(resp.Rankings) != 9 {
		t.Errorf("ann: candidates %q, %d rankings", resp.Candidates, len(resp.Rankings))
	}
	resp = f.rank(t, mustJSON(map[string]any{"intent": intent, "top_k": 3}))
	sameRanking(t, "ann top 3", resp.Rankings, want[:3])

	// A given embedding is scaled to unit norm: twice the vector ranks
	// like the vector.
	scaled := make([]float32, dim)
	for i, x := range emb[0] {
		scaled[i] = 2 * x
	}
	want, err = m.Ranker.Rank(ctx, ranker.Query{Text: intent, Embedding: emb[0], Candidates: cands})
	if err != nil {
		t.Fatal(err)
	}
	resp = f.rank(t, mustJSON(map[string]any{"intent": intent, "intent_embedding": scaled, "candidate_ids": cands}))
	if len(resp.Rankings) != len(want) {
		t.Fatalf("embedding: %d rankings", len(resp.Rankings))
	}
	for i, w := range want {
		if resp.Rankings[i].CapabilityID != w.ID || math.Abs(resp.Rankings[i].Score-w.Score) > 1e-5 {
			t.Fatalf("embedding: ranking %d is %+v, want %+v", i, resp.Rankings[i], w)
		}
	}

	// An intent with no signal encodes to the zero vector; the ANN cannot
	// search with it, so the whole catalog is ranked (a fallback).
	resp = f.rank(t, `{"intent": "!!!", "top_k": 50}`)
	if resp.Candidates != "catalog" || len(resp.Rankings) != 9 {
		t.Errorf("zero-vector intent: candidates %q, %d rankings", resp.Candidates, len(resp.Rankings))
	}
	if !strings.Contains(f.metrics(t), `capflow_serving_fallbacks_total{kind="ann_error"} 1`) {
		t.Error("the ANN fallback was not counted")
	}
}

// TestRankWholeCatalog: with WholeCatalogMax at least the model's catalog,
// a request without candidates ranks the whole catalog without asking the
// ANN (not a fallback); with a smaller one the ANN proposes them.
func TestRankWholeCatalog(t *testing.T) {
	for _, tc := range []struct {
		max  int
		want string
	}{{9, "catalog"}, {8, "ann"}} {
		f := newFixture(t, func(c *ServerConfig) { c.WholeCatalogMax = tc.max })
		ctx := context.Background()
		m, _, release, _ := f.models.Acquire("")
		intent := "weather for my flight and a hotel"
		emb, err := f.enc.Encode(ctx, []string{intent})
		if err != nil {
			t.Fatal(err)
		}
		want, err := m.Ranker.Rank(ctx, ranker.Query{Text: intent, Embedding: emb[0]})
		release()
		if err != nil {
			t.Fatal(err)
		}
		resp := f.rank(t, mustJSON(map[string]any{"intent": intent, "top_k": 100}))
		if resp.Candidates != tc.want {
			t.Errorf("WholeCatalogMax %d: candidates from %q, want %q", tc.max, resp.Candidates, tc.want)
		}
		if tc.want == "catalog" {
			sameRanking(t, "whole catalog", resp.Rankings, want)
			if strings.Contains(f.metrics(t), `capflow_serving_fallbacks_total{`) {
				t.Error("ranking the whole catalog by configuration was counted as a fallback")
			}
		}
	}
}

func (f *fixture) metrics(t *testing.T) string {
	t.Helper()
	code, b := f.do(t, "GET", "/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	return string(b)
}

// TestFiltersAndBoosts: exclusions, required tools (through nesting),
// boosts by id and prefix, min_score and top_k, in that order.
func TestFiltersAndBoosts(t *testing.T) {
	f := newFixture(t, nil)
	all := []string{"trip.cap0", "trip.cap1", "trip.cap2", "info.cap3", "info.cap4", "info.cap5", "info.cap6", "info.cap7", "trip.travel"}
	base := f.rank(t, mustJSON(map[string]any{"intent": "a hotel", "candidate_ids": all, "top_k": 20}))
	score := map[string]float64{}
	for _, r := range base.Rankings {
		score[r.CapabilityID] = r.Score
	}

	resp := f.rank(t, mustJSON(map[string]any{"intent": "a hotel", "candidate_ids": all, "top_k": 20,
		"filters": map[string]any{"exclude_ids": []string{"info.cap4", "not-a-cap"}}}))
	if len(resp.Rankings) != 8 || slices.ContainsFunc(resp.Rankings, func(r Ranking) bool { return r.CapabilityID == "info.cap4" }) {
		t.Errorf("exclude_ids: %+v", resp.Rankings)
	}

	// tool2 is in trip.cap1, and through it in trip.travel.
	resp = f.rank(t, mustJSON(map[string]any{"intent": "a hotel", "top_k": 20, "filters": map[string]any{"require_tools": []string{"tool2"}}}))
	var ids []string
	for _, r := range resp.Rankings {
		ids = append(ids, r.CapabilityID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"trip.cap1", "trip.travel"}) {
		t.Errorf("require_tools tool2: %v", ids)
	}
	resp = f.rank(t, mustJSON(map[string]any{"intent": "a hotel", "filters": map[string]any{"require_tools": []string{"tool2", "tool9"}}}))
	if len(resp.Rankings) != 0 || resp.Rankings == nil {
		t.Errorf("require_tools in no capability: %+v (want an empty list)", resp.Rankings)
	}

	last := base.Rankings[len(base.Rankings)-1].CapabilityID
	resp = f.rank(t, mustJSON(map[string]any{"intent": "a hotel", "candidate_ids": all, "top_k": 20,
		"boosts": []map[string]any{{"capability_ids": []string{last}, "score": 100}, {"id_prefix": "info.", "score": 0.5}}}))
	if resp.Rankings[0].CapabilityID != last {
		t.Errorf("boosted %s is not first: %+v", last, resp.Rankings)
	}
	for i, r := range resp.Rankings {
		want := score[r.CapabilityID]
		if r.CapabilityID == last {
			want += 100
		}
		if strings.HasPrefix(r.CapabilityID, "info.") {
			want += 0.5
		}
		if math.Abs(r.Score-want) > 1e-9 || r.Rank != i+1 || i > 0 && r.Score > resp.Rankings[i-1].Score {
			t.Errorf("boosted ranking %d: %+v, want score %v", i, r, want)
		}
	}

	median := base.Rankings[4].Score
	resp = f.rank(t, mustJSON(map[string]any{"intent": "a hotel", "candidate_ids": all, "min_score": median, "top_k": 3}))
	if len(resp.Rankings) != 3 {
		t.Errorf("min_score and top_k 3: %+v", resp.Rankings)
	}
	resp = f.rank(t, mustJSON(map[string]any{"intent": "a hotel", "candidate_ids": all, "min_score": median, "top_k": 20}))
	if len(resp.Rankings) != 5 || resp.Rankings[4].Score < median {
		t.Errorf("min_score %v: %+v", median, resp.Rankings)
	}
}

// TestBadInput: every bad request is a 4xx JSON error naming the code and
// the field; never a 5xx.
func TestBadInput(t *testing.T) {
	f := newFixture(t, nil)
	emb := func(n int, v string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(v+",", n), ",") + "]"
	}
	many := make([]string, 5001)
	for i := range many {
		many[i] = fmt.Sprintf("c%d", i)
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"empty body", "POST", "/rank", "", 400, CodeInvalidJSON, ""},
		{"not json", "POST", "/rank", "intent=hello", 400, CodeInvalidJSON, ""},
		{"truncated", "POST", "/rank", `{"intent": "a`, 400, CodeInvalidJSON, ""},
		{"array", "POST", "/rank", `[1, 2]`, 400, CodeInvalidJSON, ""},
		{"two values", "POST", "/rank", `{"intent": "a"} {"intent": "b"}`, 400, CodeInvalidJSON, ""},
		{"trailing garbage", "POST", "/rank", `{"intent": "a"} xyz`, 400, CodeInvalidJSON, ""},
		{"NaN literal", "POST", "/rank", `{"intent_embedding": [NaN]}`, 400, CodeInvalidJSON, ""},
		{"unknown field", "POST", "/rank", `{"intent": "a", "intnt": "b"}`, 400, CodeUnknownField, "intnt"},
		{"unknown nested field", "POST", "/rank", `{"intent": "a", "filters": {"exclude": []}}`, 400, CodeUnknownField, "exclude"},
		{"no intent", "POST", "/rank", `{}`, 400, CodeInvalidField, "intent"},
		{"intent wrong type", "POST", "/rank", `{"intent": 3}`, 400, CodeInvalidField, "intent"},
		{"intent NUL", "POST", "/rank", `{"intent": "a\u0000b"}`, 400, CodeInvalidField, "intent"},
		{"intent too long", "POST", "/rank", mustJSON(map[string]string{"intent": strings.Repeat("x", 8193)}), 400, CodeLimitExceeded, "intent"},
		{"embedding wrong dimension", "POST", "/rank", `{"intent_embedding": ` + emb(dim-1, "0.1") + `}`, 400, CodeWrongDimension, "intent_embedding"},
		{"embedding empty", "POST", "/rank", `{"intent_embedding": []}`, 400, CodeWrongDimension, "intent_embedding"},
		{"embedding overflow", "POST", "/rank", `{"intent_embedding": ` + emb(dim, "1e39") + `}`, 400, CodeInvalidField, "intent_embedding"},
		{"embedding strings", "POST", "/rank", `{"intent_embedding": ["a"]}`, 400, CodeInvalidField, "intent_embedding"},
		{"unknown candidate", "POST", "/rank", `{"intent": "a", "candidate_ids": ["trip.cap0", "nope"]}`, 400, CodeUnknownID, "candidate_ids[1]"},
		{"store-only candidate", "POST", "/rank", `{"intent": "a", "candidate_ids": ["extra.cap"]}`, 400, CodeUnknownID, "candidate_ids[0]"},
		{"empty candidates", "POST", "/rank", `{"intent": "a", "candidate_ids": []}`, 400, CodeInvalidField, "candidate_ids"},
		{"repeated candidate", "POST", "/rank", `{"intent": "a", "candidate_ids": ["trip.cap0", "trip.cap0"]}`, 400, CodeInvalidField, "candidate_ids[1]"},
		{"empty candidate id", "POST", "/rank", `{"intent": "a", "candidate_ids": [""]}`, 400, CodeInvalidField, "candidate_ids[0]"},
		{"too many candidates", "POST", "/rank", mustJSON(map[string]any{"intent": "a", "candidate_ids": many}), 400, CodeLimitExceeded, "candidate_ids"},
		{"unknown context tool", "POST", "/rank", `{"intent": "a", "context_tools": ["tool99"]}`, 400, CodeUnknownID, "context_tools[0]"},
		{"negative top_k", "POST", "/rank", `{"intent": "a", "top_k": -1}`, 400, CodeInvalidField, "top_k"},
		{"huge top_k", "POST", "/rank", `{"intent": "a", "top_k": 5001}`, 400, CodeLimitExceeded, "top_k"},
		{"fractional top_k", "POST", "/rank", `{"intent": "a", "top_k": 1.5}`, 400, CodeInvalidField, "top_k"},
		{"min_score string", "POST", "/rank", `{"intent": "a", "min_score": "high"}`, 400, CodeInvalidField, "min_score"},
		{"unknown required tool", "POST", "/rank", `{"intent": "a", "filters": {"require_tools": ["tool99"]}}`, 400, CodeUnknownID, "filters.require_tools[0]"},
		{"boost without target", "POST", "/rank", `{"intent": "a", "boosts": [{"score": 1}]}`, 400, CodeInvalidField, "boosts[0]"},
		{"boost score type", "POST", "/rank", `{"intent": "a", "boosts": [{"id_prefix": "x", "score": "1"}]}`, 400, CodeInvalidField, "boosts.score"},
		{"session too long", "POST", "/rank", mustJSON(map[string]string{"intent": "a", "session_id": strings.Repeat("s", 8193)}), 400, CodeLimitExceeded, "session_id"},
		{"body too large", "POST", "/rank", `{"intent": "` + strings.Repeat("x", 1<<20) + `"}`, 413, CodeBodyTooLarge, ""},
		{"no text encoder needed", "POST", "/rank", `{"intent_embedding": ` + emb(dim, "0") + `, "candidate_ids": ["trip.cap0"]}`, 200, "", ""},
		{"GET /rank", "GET", "/rank", "", 405, CodeMethodNotAllowed, ""},
		{"no route", "GET", "/nope", "", 404, CodeNotFound, ""},

		{"feedback unknown capability", "POST", "/feedback", feedbackBody(map[string]any{"candidate_ids": []string{"trip.cap0", "nope"}}), 400, CodeUnknownID, "candidate_ids"},
		{"feedback unknown tool", "POST", "/feedback", feedbackBody(map[string]any{"context_tools": []string{"tool99"}}), 400, CodeUnknownID, "context_tools"},
		{"feedback rank mismatch", "POST", "/feedback", feedbackBody(map[string]any{"rank": 2}), 400, CodeInvalidField, "rank"},
		{"feedback bad outcome", "POST", "/feedback", feedbackBody(map[string]any{"outcome": "great"}), 400, CodeInvalidField, "outcome"},
		{"feedback rating", "POST", "/feedback", feedbackBody(map[string]any{"user_feedback": 9}), 400, CodeInvalidField, "user_feedback"},
		{"feedback no session", "POST", "/feedback", feedbackBody(map[string]any{"session_id": ""}), 400, CodeInvalidField, "session_id"},
		{"feedback negative time", "POST", "/feedback", feedbackBody(map[string]any{"execution_time_ms": -1}), 400, CodeInvalidField, "execution_time_ms"},
		{"feedback bad timestamp", "POST", "/feedback", feedbackBody(map[string]any{"timestamp": "yesterday"}), 400, CodeInvalidField, "timestamp"},
		{"feedback numeric timestamp", "POST", "/feedback", feedbackBody(map[string]any{"timestamp": 12}), 400, CodeInvalidField, "timestamp"},
		{"feedback unknown field", "POST", "/feedback", feedbackBody(map[string]any{"id": 3}), 400, CodeUnknownField, "id"},
		{"feedback embedding", "POST", "/feedback", feedbackBody(map[string]any{"intent_embedding": []float64{1}}), 400, CodeUnknownField, "intent_embedding"},
		{"feedback intent too long", "POST", "/feedback", feedbackBody(map[string]any{"intent": strings.Repeat("x", 8193)}), 400, CodeLimitExceeded, "intent"},
		{"feedback too many candidates", "POST", "/feedback", feedbackBody(map[string]any{"candidate_ids": many}), 400, CodeLimitExceeded, "candidate_ids"},
		{"feedback not json", "POST", "/feedback", "{", 400, CodeInvalidJSON, ""},
		{"feedback too large", "POST", "/feedback", feedbackBody(map[string]any{"intent": strings.Repeat("x", 1<<20)}), 413, CodeBodyTooLarge, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := f.do(t, c.method, c.path, c.body)
			if status != c.status {
				t.Fatalf("status %d, want %d: %s", status, c.status, body)
			}
			if c.code == "" {
				return
			}
			var e APIError
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body is not a JSON error: %q", body)
			}
			if e.Code != c.code || e.Field != c.field || e.Message == "" {
				t.Errorf("got {code %q, field %q, message %q}, want code %q field %q", e.Code, e.Field, e.Message, c.code, c.field)
			}
		})
	}
	if strings.Contains(f.logs.String(), `"level":"ERROR"`) {
		t.Errorf("bad input was logged as an error:\n%s", f.logs.String())
	}
}

// feedbackBody is a valid experience with fields replaced.
func feedbackBody(edit map[string]any) string {
	e := map[string]any{
		"intent": "book a hotel", "context_tools": []string{"tool1"}, "candidate_ids": []string{"trip.cap0", "trip.cap1"},
		"selected_capability": "trip.cap0", "rank": 1, "outcome": "success", "execution_time_ms": 120.5, "user_feedback": 4,
		"session_id": "s1",
	}
	for k, v := range edit {
		e[k] = v
	}
	return mustJSON(e)
}

// TestFeedback: a valid experience lands in the store, with the timestamp
// defaulting to now; one naming a capability only the store has is fine.
func TestFeedback(t *testing.T) {
	f := newFixture(t, nil)
	before := time.Now().UTC()
	code, b := f.do(t, "POST", "/feedback", feedbackBody(map[string]any{"candidate_ids": []string{"trip.cap0", "extra.cap"}}))
	if code != http.StatusCreated {
		t.Fatalf("feedback: %d %s", code, b)
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	if code, b := f.do(t, "POST", "/feedback", feedbackBody(map[string]any{"timestamp": ts.Format(time.RFC3339), "outcome": "failure"})); code != http.StatusCreated {
		t.Fatalf("feedback with timestamp: %d %s", code, b)
	}
	exps, err := f.raw.ExperiencesBySession(context.Background(), "s1")
	if err != nil {
		t.Fatal(err)
	}
	if len(exps) != 2 {
		t.Fatalf("%d experiences stored, want 2", len(exps))
	}
	slices.SortFunc(exps, func(a, b featurestore.Experience) int { return a.Timestamp.Compare(b.Timestamp) })
	if !exps[0].Timestamp.Equal(ts) || exps[0].Outcome != featurestore.OutcomeFailure {
		t.Errorf("first experience: %+v", exps[0])
	}
	got := exps[1]
	if got.Timestamp.Before(before) || time.Since(got.Timestamp) > time.Minute || got.Intent != "book a hotel" ||
		!slices.Equal(got.CandidateIDs, []string{"trip.cap0", "extra.cap"}) || got.UserFeedback == nil || *got.UserFeedback != 4 || got.ExecutionTimeMs != 120.5 {
		t.Errorf("stored experience: %+v", got)
	}
}

// TestAuth: with a token, /rank, /feedback and /reload need it; probes,
// metrics and the document do not; the token never reaches the log.
func TestAuth(t *testing.T) {
	const token = "s3cret-token-value"
	reloads := 0
	f := newFixture(t, func(c *ServerConfig) {
		c.Token = token
		c.Reload = func(context.Context) (bool, error) { reloads++; return false, nil }
	})
	rank := `{"intent": "a hotel"}`
	for _, c := range []struct {
		method, path, body string
		header             []string
		want               int
	}{
		{"POST", "/rank", rank, nil, 401},
		{"POST", "/rank", rank, []string{"Authorization", "Bearer wrong"}, 401},
		{"POST", "/rank", rank, []string{"Authorization", token}, 401},
		{"POST", "/rank", rank, []string{"Authorization", "Basic " + token}, 401},
		{"POST", "/rank", rank, []string{"Authorization", "Bearer " + token + "x"}, 401},
		{"POST", "/rank", rank, []string{"Authorization", "Bearer " + token}, 200},
		{"POST", "/rank", rank, []string{"Authorization", "bearer " + token}, 200},
		{"POST", "/feedback", feedbackBody(nil), nil, 401},
		{"POST", "/feedback", feedbackBody(nil), []string{"Authorization", "Bearer " + token}, 201},
		{"POST", "/reload", "", nil, 401},
		{"POST", "/reload", "", []string{"Authorization", "Bearer " + token}, 200},
		{"GET", "/healthz", "", nil, 200},
		{"GET", "/readyz", "", nil, 200},
		{"GET", "/metrics", "", nil, 200},
		{"GET", "/openapi.json", "", nil, 200},
	} {
		code, b := f.do(t, c.method, c.path, c.body, c.header...)
		if code != c.want {
			t.Errorf("%s %s %v: %d, want %d: %s", c.method, c.path, c.header, code, c.want, b)
			continue
		}
		if code == 401 {
			var e APIError
			if json.Unmarshal(b, &e) != nil || e.Code != CodeUnauthorized {
				t.Errorf("%s %s: 401 body %s", c.method, c.path, b)
			}
		}
	}
	if reloads != 1 {
		t.Errorf("reload called %d times, want 1", reloads)
	}
	if logs := f.logs.String(); strings.Contains(logs, token) || !strings.Contains(logs, `"route":"/rank"`) {
		t.Errorf("the log leaks the token or misses requests:\n%s", logs)
	}

	// Without a token, everything is open.
	g := newFixture(t, nil)
	if code, b := g.do(t, "POST", "/rank", rank); code != 200 {
		t.Errorf("no auth: %d %s", code, b)
	}
}

// TestReadiness: not ready before a model is loaded (and /rank says so),
// ready with one, not ready when the store stops answering.
func TestReadiness(t *testing.T) {
	f := newFixture(t, nil)
	model, _, release, _ := f.models.Acquire("")
	release()
	f.models.set(nil)
	var ready ReadyResponse
	code, b := f.do(t, "GET", "/readyz", "")
	if json.Unmarshal(b, &ready); code != 503 || ready.Ready || ready.Code != CodeNotReady {
		t.Errorf("before a model: %d %s", code, b)
	}
	if code, b := f.do(t, "POST", "/rank", `{"intent": "a"}`); code != 503 || !strings.Contains(string(b), CodeNotReady) {
		t.Errorf("/rank before a model: %d %s", code, b)
	}
	if code, _ := f.do(t, "GET", "/healthz", ""); code != 200 {
		t.Errorf("/healthz before a model: %d", code)
	}
	f.models.set(model)
	ready = ReadyResponse{}
	code, b = f.do(t, "GET", "/readyz", "")
	if json.Unmarshal(b, &ready); code != 200 || !ready.Ready || ready.Model == nil || ready.Model.Version != "1" {
		t.Errorf("with a model: %d %s", code, b)
	}
	f.raw.Close()
	ready = ReadyResponse{}
	code, b = f.do(t, "GET", "/readyz", "")
	if json.Unmarshal(b, &ready); code != 503 || ready.Ready || ready.Code != CodeUnavailable {
		t.Errorf("store closed: %d %s", code, b)
	}
	// With the store gone, feedback is a 503, not a 500.
	if code, b := f.do(t, "POST", "/feedback", feedbackBody(nil)); code != 503 {
		t.Errorf("feedback with the store closed: %d %s", code, b)
	}
}

// TestReload: POST /reload calls the configured reload and reports its
// failure as a 503; without one it is a 503 too.
func TestReload(t *testing.T) {
	fail := errors.New("registry unreachable")
	var err error
	f := newFixture(t, func(c *ServerConfig) { c.Reload = func(context.Context) (bool, error) { return err == nil, err } })
	code, b := f.do(t, "POST", "/reload", "")
	if code != 200 || !strings.Contains(string(b), `"version":"1"`) || !strings.Contains(string(b), `"swapped":true`) {
		t.Errorf("reload: %d %s", code, b)
	}
	err = fail
	if code, b := f.do(t, "POST", "/reload", ""); code != 503 || !strings.Contains(string(b), "registry unreachable") {
		t.Errorf("failed reload: %d %s", code, b)
	}
	g := newFixture(t, nil)
	if code, b := g.do(t, "POST", "/reload", ""); code != 503 || !strings.Contains(string(b), CodeUnavailable) {
		t.Errorf("no reload: %d %s", code, b)
	}
}

// TestCanaryAndShadow: a canary session is served by the canary; a sampled
// request is scored by the shadow off the request path, with the query and
// the primary's ranking.
func TestCanaryAndShadow(t *testing.T) {
	calls := make(chan shadowCall, 4)
	var sm *scoringModels
	f := newFixture(t, func(c *ServerConfig) {
		sm = &scoringModels{testModels: c.Models.(*testModels), calls: calls}
		c.Models = sm
	})
	canary := openModel(t, 7, "2")
	sm.mu.Lock()
	sm.canary, sm.canarySessions = canary, map[string]bool{"c1": true}
	sm.mu.Unlock()

	body := `{"intent": "a hotel", "candidate_ids": ["trip.cap0", "trip.cap1", "info.cap7"], "session_id": "c1"}`
	resp := f.rank(t, body)
	if resp.ServedBy != RoleCanary || resp.ModelVersion != "2" {
		t.Errorf("canary session: served by %s version %s", resp.ServedBy, resp.ModelVersion)
	}
	emb, _ := f.enc.Encode(context.Background(), []string{"a hotel"})
	want, err := canary.Ranker.Rank(context.Background(), ranker.Query{Text: "a hotel", Embedding: emb[0], Candidates: []string{"trip.cap0", "trip.cap1", "info.cap7"}})
	if err != nil {
		t.Fatal(err)
	}
	sameRanking(t, "canary", resp.Rankings, want)
	if resp := f.rank(t, strings.Replace(body, "c1", "c2", 1)); resp.ServedBy != RolePrimary {
		t.Errorf("other session served by %s", resp.ServedBy)
	}

	sm.mu.Lock()
	sm.shadow = canary
	sm.mu.Unlock()
	resp = f.rank(t, strings.Replace(body, "c1", "c3", 1))
	select {
	case call := <-calls:
		if !slices.Equal(call.q.Candidates, []string{"trip.cap0", "trip.cap1", "info.cap7"}) || call.q.Text != "a hotel" || len(call.primary) != 3 ||
			call.primary[0].ID != resp.Rankings[0].CapabilityID || call.primary[0].Score != resp.Rankings[0].Score {
			t.Errorf("shadow call: %+v; response %+v", call, resp.Rankings)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the shadow was not scored")
	}

	// Models without ScoreShadow: the shadow model ranks and the result is
	// dropped.
	g := newFixture(t, nil)
	g.models.mu.Lock()
	g.models.shadow = canary
	g.models.mu.Unlock()
	g.rank(t, body)
	g.srv.Wait()
	if !strings.Contains(g.metrics(t), `capflow_serving_shadow_total{outcome="done"} 1`) {
		t.Error("the shadow scoring was not counted")
	}
}

// TestEncoderFallback: when the cached encoder fails (its cache store is
// gone), the fallback encoder serves and the fallback is counted.
func TestEncoderFallback(t *testing.T) {
	broken, err := embedded.Open(filepath.Join(t.TempDir(), "cache.db"), featurestore.Config{TextDim: dim})
	if err != nil {
		t.Fatal(err)
	}
	broken.Close()
	f := newFixture(t, func(c *ServerConfig) {
		hashing, _ := textembed.NewHashing(textembed.HashingConfig{Dim: dim})
		c.Encoder = textembed.Cached(hashing, broken)
		c.FallbackEncoder = hashing
	})
	resp := f.rank(t, `{"intent": "a hotel", "candidate_ids": ["trip.cap0", "trip.cap1"]}`)
	if len(resp.Rankings) != 2 {
		t.Errorf("rankings %+v", resp.Rankings)
	}
	if !strings.Contains(f.metrics(t), `capflow_serving_fallbacks_total{kind="encoder"} 1`) {
		t.Error("encoder fallback not counted")
	}
	// Without a fallback the failure is a 503, not a 500.
	g := newFixture(t, func(c *ServerConfig) {
		hashing, _ := textembed.NewHashing(textembed.HashingConfig{Dim: dim})
		c.Encoder = textembed.Cached(hashing, broken)
	})
	if code, b := g.do(t, "POST", "/rank", `{"intent": "a hotel"}`); code != 503 {
		t.Errorf("encoder down: %d %s", code, b)
	}
	// And without an encoder, an intent alone is a 400.
	h := newFixture(t, func(c *ServerConfig) { c.Encoder = nil })
	if code, b := h.do(t, "POST", "/rank", `{"intent": "a hotel"}`); code != 400 || !strings.Contains(string(b), `"field":"intent_embedding"`) {
		t.Errorf("no encoder: %d %s", code, b)
	}
}

// TestMetricsAndCacheLayers: with Redis as L2, repeated intents are
// answered by the cache layers; /metrics shows latencies per route, errors
// by code, scores and the cache counters per layer.
func TestMetricsAndCacheLayers(t *testing.T) {
	addr := testenv.RedisAddr(t)
	rdb := cache.NewRedisClient(addr)
	defer rdb.Close()
	f := newFixture(t, func(c *ServerConfig) {
		st := cache.New(c.Store.(*cache.Store).Store, cache.Options{Redis: rdb, KeyPrefix: testenv.Name(t, "capflow-serving") + ":"})
		hashing, _ := textembed.NewHashing(textembed.HashingConfig{Dim: dim})
		c.Store, c.Encoder = st, textembed.Cached(hashing, st)
	})
	for range 3 {
		f.rank(t, `{"intent": "a hotel near the airport"}`)
	}
	f.do(t, "POST", "/rank", `{`)
	st := f.srv.cfg.Store.(*cache.Store)
	stats := st.Stats()
	if stats.L1Hits < 1 || stats.L2Misses < 1 || stats.StoreReads < 1 {
		t.Errorf("cache stats after three identical intents: %+v", stats)
	}
	st.PurgeL1()
	f.rank(t, `{"intent": "a hotel near the airport"}`)
	if got := st.Stats(); got.L2Hits < 1 {
		t.Errorf("after purging L1 the intent was not read from Redis: %+v", got)
	}
	m := f.metrics(t)
	for _, want := range []string{
		`capflow_http_request_duration_seconds_bucket{method="POST",route="/rank",status="200"`,
		`capflow_http_errors_total{code="invalid_json",route="/rank"} 1`,
		`capflow_serving_score_count{served_by="primary"}`,
		`capflow_serving_top_score_count{served_by="primary"} 4`,
		`capflow_serving_rank_requests_total{candidates="ann",served_by="primary"} 4`,
		`capflow_featurestore_cache_hits_total{layer="l1"}`,
		`capflow_featurestore_cache_hits_total{layer="l2"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestPanicIsJSON500: a bug in a handler is a logged 500 JSON error.
func TestPanicIsJSON500(t *testing.T) {
	f := newFixture(t, nil)
	f.srv.Engine().GET("/boom", func(*gin.Context) { panic("boom") })
	code, b := f.do(t, "GET", "/boom", "")
	var e APIError
	if code != 500 || json.Unmarshal(b, &e) != nil || e.Code != CodeInternal {
		t.Errorf("panic: %d %s", code, b)
	}
	if !strings.Contains(f.logs.String(), `"panic":"boom"`) {
		t.Error("the panic was not logged")
	}
}

// TestOpenAPI: the document is OpenAPI 3.0, documents every route the
// engine has with its method, and every $ref resolves.
func TestOpenAPI(t *testing.T) {
	f := newFixture(t, nil)
	code, b := f.do(t, "GET", "/openapi.json", "")
	if code != 200 {
		t.Fatal(code)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.0.") {
		t.Errorf("openapi version %q", v)
	}
	paths := doc["paths"].(map[string]any)
	for _, r := range f.srv.Engine().Routes() {
		ops, ok := paths[r.Path].(map[string]any)
		if !ok || ops[strings.ToLower(r.Method)] == nil {
			t.Errorf("%s %s is not documented", r.Method, r.Path)
		}
	}
	if len(paths) != len(f.srv.Engine().Routes()) {
		t.Errorf("%d documented paths, %d routes", len(paths), len(f.srv.Engine().Routes()))
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				name, found := strings.CutPrefix(ref, "#/components/schemas/")
				if !found || schemas[name] == nil {
					t.Errorf("dangling $ref %s", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	// The request schema lists exactly the fields the decoder takes.
	props := schemas["RankRequest"].(map[string]any)["properties"].(map[string]any)
	var fields []string
	for k := range props {
		fields = append(fields, k)
	}
	slices.Sort(fields)
	if want := []string{"boosts", "candidate_ids", "context_tools", "filters", "intent", "intent_embedding", "min_score", "session_id", "top_k"}; !slices.Equal(fields, want) {
		t.Errorf("RankRequest properties %v, want %v", fields, want)
	}
}

// TestRun: Run serves over TCP and returns when its context ends.
func TestRun(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- f.srv.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz over TCP: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

// TestConcurrentRanks exercises the handlers under -race.
func TestConcurrentRanks(t *testing.T) {
	f := newFixture(t, nil)
	f.models.mu.Lock()
	f.models.shadow = f.models.primary
	f.models.mu.Unlock()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			body := fmt.Sprintf(`{"intent": "hotel %d", "session_id": "s%d", "boosts": [{"id_prefix": "trip.", "score": 0.1}], "filters": {"require_tools": ["tool0"]}}`, i%4, i)
			code, b := f.do(t, "POST", "/rank", body)
			if code != 200 {
				t.Errorf("%d %s", code, b)
			}
		})
	}
	wg.Wait()
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
