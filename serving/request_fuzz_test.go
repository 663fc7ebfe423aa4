package serving

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"testing"
)

// FuzzRankRequest: whatever the body, the decoder returns a request that
// satisfies every documented bound, or an *APIError with a 4xx status and a
// code; it never panics. A decoded request encodes back to a body the
// decoder accepts.
func FuzzRankRequest(f *testing.F) {
	for _, seed := range []string{
		`{"intent": "book a hotel in Paris"}`,
		`{"intent": "x", "context_tools": ["t1", "t2"], "candidate_ids": ["a", "b"], "session_id": "s", "top_k": 3, "min_score": -0.5}`,
		`{"intent_embedding": [0.1, -0.2, 0.3e-3, 1e38], "candidate_ids": ["a"]}`,
		`{"intent": "x", "filters": {"exclude_ids": ["a"], "require_tools": ["t"]}, "boosts": [{"capability_ids": ["a"], "score": 1}, {"id_prefix": "p.", "score": -2}]}`,
		`{"intent": "x", "candidate_ids": []}`,
		`{"intent": "x", "candidate_ids": ["a", "a"]}`,
		`{"intent_embedding": [1e39]}`,
		`{"intent_embedding": [NaN]}`,
		`{"intent": "x", "top_k": -1}`,
		`{"intent": "x", "top_k": 1e10}`,
		`{"intent": "\u0000"}`,
		`{"intent": "\ud800"}`,
		`{"intent": "x", "boosts": [{"score": 1}]}`,
		`{"intent": "x", "unknown": 1}`,
		`{"intent": "x"} {}`,
		`{"intent": "x"`,
		`[]`, `null`, `""`, `0`, ``, `{`, `{"filters": null, "boosts": null, "intent": "a"}`,
		"\xff\xfe{}",
	} {
		f.Add([]byte(seed))
	}
	const maxBody = 4096
	lim := Limits{MaxBodyBytes: maxBody, MaxCandidates: 50, MaxTextBytes: 256, MaxContextTools: 8, MaxBoosts: 4}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := http.MaxBytesReader(nil, readCloser{bytes.NewReader(body)}, maxBody)
		req, err := DecodeRankRequest(r, lim)
		if err != nil {
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status < 400 || ae.Status > 499 || ae.Code == "" || ae.Message == "" {
				t.Fatalf("error %#v for %q", err, body)
			}
			if _, err := json.Marshal(ae); err != nil {
				t.Fatal(err)
			}
			return
		}
		if req.Intent == "" && req.IntentEmbedding == nil {
			t.Fatalf("no intent: %q", body)
		}
		if len(req.Intent) > lim.MaxTextBytes || len(req.SessionID) > lim.MaxTextBytes {
			t.Fatalf("text over the limit: %q", body)
		}
		for _, x := range req.IntentEmbedding {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("non-finite embedding: %q", body)
			}
		}
		if req.CandidateIDs != nil && len(req.CandidateIDs) == 0 || len(req.CandidateIDs) > lim.MaxCandidates || len(req.ContextTools) > lim.MaxContextTools {
			t.Fatalf("candidate bounds: %q", body)
		}
		seen := map[string]bool{}
		for _, id := range req.CandidateIDs {
			if id == "" || seen[id] {
				t.Fatalf("candidate %q empty or repeated: %q", id, body)
			}
			seen[id] = true
		}
		if req.TopK < 0 || req.TopK > lim.MaxCandidates || len(req.Boosts) > lim.MaxBoosts {
			t.Fatalf("top_k or boosts out of bounds: %q", body)
		}
		if req.MinScore != nil && (math.IsNaN(*req.MinScore) || math.IsInf(*req.MinScore, 0)) {
			t.Fatalf("min_score: %q", body)
		}
		for _, b := range req.Boosts {
			if len(b.CapabilityIDs) == 0 && b.IDPrefix == "" || math.IsNaN(b.Score) || math.IsInf(b.Score, 0) {
				t.Fatalf("boost %+v: %q", b, body)
			}
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeRankRequest(bytes.NewReader(again), lim); err != nil {
			t.Fatalf("%q decoded, but its re-encoding %s does not: %v", body, again, err)
		}
	})
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
