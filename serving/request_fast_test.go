package serving

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeRankFast: DecodeRankRequest answers every body as the plain
// encoding/json decoder it replaced does (rankReference), the same request
// down to the float bits or the same error, through a size limit that
// bodies reach. And decodeRankFast takes a body only if encoding/json
// accepts it too and decodes the same request; a body it leaves to
// encoding/json is only slower, so that is not a failure here (the bodies
// that must take the fast path are checked by TestRankRequestFastTakes).
func FuzzDecodeRankFast(f *testing.F) {
	for _, seed := range []string{
		`{"intent": "book a hotel in Paris", "top_k": 3}`,
		`{"intent_embedding": [0.1, -0.2, 0.3e-3, 1e38, -0, 0E0, 1.5e-45, 3.4028235e38], "candidate_ids": ["a", "b"], "context_tools": ["t"]}`,
		`{"intent_embedding": [1.000000059604644775390626]}`, // sonic and goccy round it twice, through float64
		`{"intent_embedding": [3.40282356779733661637539395458142568448e38]}`,
		`{"intent_embedding": [1e39]}`, `{"intent_embedding": [1e-50]}`, `{"intent_embedding": null, "intent": "x"}`,
		`{"INTENT": "x", "Top_K": 2}`, `{"ıntent": "x"}`, `{"intent": "x", "intent": "y"}`,
		`{"intent": "x", "filters": {"exclude_ids": ["a"]}, "filters": {"require_tools": ["t"]}}`,
		`{"intent": "x", "candidate_ids": ["a"], "candidate_ids": ["b", "c"]}`,
		`{"intent": "x", "boosts": [{"id_prefix": "p.", "score": 1}], "boosts": [{"capability_ids": ["a"], "score": 2}]}`,
		`{"intent": "x", "min_score": 1e400}`, `{"intent": "x", "min_score": -0.0}`, `{"intent": "x", "min_score": null}`,
		`{"intent": "x", "top_k": 1.0}`, `{"intent": "x", "top_k": -0}`, `{"intent": "x", "top_k": 9223372036854775808}`,
		`{"intent": "x", "top_k": "3"}`, `{"intent": "x", "top_k": 01}`, `{"intent_embedding": [.5]}`, `{"intent_embedding": [1.]}`,
		`{"intent": "a\u00e9\ud83d\ude00\n\t\"\\\/"}`, `{"intent": "\ud800x"}`, "{\"intent\": \"\xff\"}", "{\"intent\": \"a\x01\"}",
		"{\"intent\": \"\xed\xa0\x80\"}", `{"intent": "\u2028"}`, "\ufeff{\"intent\": \"x\"}", " \t\r\n{\"intent\":\"x\"}\n ",
		`{"intent": "x", "session_id": "s", "unknown": {}}`, `{"intent": "x"} {}`, `{"intent": "x"}x`, `{"intent": "x",}`,
		`{"intent": "x", "filters": null, "boosts": null, "context_tools": null}`, `{"intent": "x", "context_tools": []}`,
		`{"intent": "x", "boosts": [{"capability_ids": [], "id_prefix": "p", "score": 0}]}`, `{"intent": "x", "boosts": []}`,
		// Over the size limit below: a syntax error before it, after it,
		// a value ending before it.
		`{"intent": x` + strings.Repeat(" ", 600), `{"intent": "` + strings.Repeat("x", 600) + `"}`,
		`{"intent": "x"}` + strings.Repeat(" ", 600), `{"intent": "x"}` + strings.Repeat(" ", 600) + "x",
	} {
		f.Add([]byte(seed))
	}
	const maxBody = 512
	lim := Limits{MaxBodyBytes: maxBody, MaxCandidates: 8, MaxTextBytes: 64, MaxContextTools: 4, MaxBoosts: 2}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, gotErr := DecodeRankRequest(http.MaxBytesReader(nil, readCloser{bytes.NewReader(body)}, maxBody), lim)
		want, wantErr := rankReference(http.MaxBytesReader(nil, readCloser{bytes.NewReader(body)}, maxBody), lim)
		switch {
		case !reflect.DeepEqual(gotErr, wantErr):
			t.Fatalf("%q: error %v, encoding/json's %v", body, gotErr, wantErr)
		case gotErr == nil && !sameRequest(got, want):
			t.Fatalf("%q decodes differently:\ngot           %#v\nencoding/json %#v", body, got, want)
		}

		var fast RankRequest
		if !decodeRankFast(body, &fast) {
			return
		}
		var ref RankRequest
		if err := decodeJSON(bytes.NewReader(body), &ref); err != nil {
			t.Fatalf("the fast path takes %q, encoding/json refuses it: %v", body, err)
		}
		if !sameRequest(&fast, &ref) {
			t.Fatalf("%q decodes differently:\nfast          %#v\nencoding/json %#v", body, fast, ref)
		}
	})
}

// rankReference is DecodeRankRequest as it was before decodeRankFast.
func rankReference(body io.Reader, lim Limits) (*RankRequest, error) {
	var r RankRequest
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	if err := r.validate(lim.withDefaults()); err != nil {
		return nil, err
	}
	return &r, nil
}

// sameRequest is reflect.DeepEqual that also tells -0 from 0.
func sameRequest(a, b *RankRequest) bool {
	if !reflect.DeepEqual(a, b) {
		return false
	}
	for i := range a.IntentEmbedding {
		if math.Float32bits(a.IntentEmbedding[i]) != math.Float32bits(b.IntentEmbedding[i]) {
			return false
		}
	}
	if a.MinScore != nil && math.Float64bits(*a.MinScore) != math.Float64bits(*b.MinScore) {
		return false
	}
	for i := range a.Boosts {
		if math.Float64bits(a.Boosts[i].Score) != math.Float64bits(b.Boosts[i].Score) {
			return false
		}
	}
	return true
}

// TestRankRequestFastTakes: the bodies clients send, bench-serve's among
// them, take the fast path and decode as encoding/json decodes them.
func TestRankRequestFastTakes(t *testing.T) {
	for _, body := range []string{
		string(benchRankBody(t)),
		`{}`, ` { "intent" : "réserver un hôtel" , "top_k" : 20 } `,
		`{"intent": "x", "intent_embedding": [], "context_tools": [], "candidate_ids": ["a"], "session_id": "s", "top_k": -0, "min_score": -1.5e-3}`,
		`{"intent_embedding": [0, -0, 1E+2, 1.000000059604644775390626, 1e-50, 3.4028235e38]}`,
		`{"intent": "x", "filters": {}, "boosts": []}`,
		// json.dumps escapes non-ASCII; Go's json.Marshal escapes & < >.
		`{"intent": "r\u00e9server un h\u00f4tel \ud83d\ude00", "candidate_ids": ["a\u0026b", "c\"d"], "context_tools": ["\u003ct\u003e"]}`,
		`{"intent": "x", "filters": {"exclude_ids": ["a"], "require_tools": []}, "boosts": [{}, {"capability_ids": ["a"], "id_prefix": "p.", "score": -2.5}]}`,
	} {
		var fast, ref RankRequest
		if !decodeRankFast([]byte(body), &fast) {
			t.Errorf("the fast path leaves %.80q to encoding/json", body)
			continue
		}
		if err := decodeJSON(strings.NewReader(body), &ref); err != nil {
			t.Fatal(err)
		}
		if !sameRequest(&fast, &ref) {
			t.Errorf("%.80q decodes differently:\nfast          %#v\nencoding/json %#v", body, fast, ref)
		}
	}
}
