package ranker_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/internal/testmodel"
	"github.com/capflow/capflow/models/evidence"
	"github.com/capflow/capflow/models/ranker"
	"github.com/capflow/capflow/models/shgat"
)

// TestRankMatchesGo: a packaged model ranks through ONNX Runtime with the
// evidence it computes itself exactly as the Go scorer does.
func TestRankMatchesGo(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	const d = 16
	rng := rand.New(rand.NewPCG(3, 4))
	p := testmodel.Package(t, testmodel.PackageOptions{Dim: d, Seed: 2, InitNoise: 0.2, Rand: rng})
	tools, caps, g, m, cat, dir := p.Tools, p.Caps, p.Graph, p.Model, p.Catalog, p.Dir
	toolEmb := p.ToolText
	r, err := ranker.Open(context.Background(), dir, tools, caps, ranker.Options{ORTLibrary: lib})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	ev, err := evidence.New(tools, caps, toolEmb)
	if err != nil {
		t.Fatal(err)
	}
	x := testmodel.Unit(rng, d)
	q := ranker.Query{Text: "weather for my flight and a hotel", Embedding: x, ContextTools: []string{"tool3"}}
	got, err := r.Rank(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	// The Go reference: the same scorer, evidence and catalog rows in float64.
	f, _ := ev.Features(evidence.Query{Text: q.Text, Embedding: x}, nil)
	x64 := make([]float64, d)
	for i, v := range x {
		x64[i] = float64(v)
	}
	ctxRow := make([]float64, d)
	for k := range d {
		ctxRow[k] = float64(cat.Tools[3*d+k])
	}
	keys := make([]float64, len(cat.Keys))
	for i, v := range cat.Keys {
		keys[i] = float64(v)
	}
	rel := make([]float64, len(caps))
	for i := range rel {
		rel[i] = 1
	}
	want, err := m.Scorer().Score(shgat.Request{Intent: x64, Context: [][]float64{ctxRow}, Evidence: f}, keys, rel)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range got {
		if i > 0 && s.Score > got[i-1].Score {
			t.Fatal("not sorted best first")
		}
		c, _ := g.CapIndex(s.ID)
		if math.Abs(s.Score-want[c]) > 1e-4 {
			t.Fatalf("%s: ORT %v, Go %v", s.ID, s.Score, want[c])
		}
	}
	sub, err := r.Rank(context.Background(), ranker.Query{Text: q.Text, Embedding: x, Candidates: []string{"cap5", "travel"}})
	if err != nil || len(sub) != 2 {
		t.Fatalf("candidates subset: %v %v", sub, err)
	}
	var re *ranker.Error
	if _, err := r.Rank(context.Background(), ranker.Query{Embedding: x, Candidates: []string{"nope"}}); !errors.As(err, &re) {
		t.Errorf("unknown candidate: %v", err)
	}
	if _, err := r.Rank(context.Background(), ranker.Query{Embedding: x[:3]}); !errors.As(err, &re) {
		t.Errorf("wrong dimension: %v", err)
	}
	if _, err := ranker.Open(context.Background(), dir, tools[:3], caps, ranker.Options{ORTLibrary: lib}); !errors.As(err, &re) {
		t.Errorf("catalog missing tools: %v", err)
	}

	// The same catalog through OpenFor (message passing again) ranks as the
	// packaged catalog does; a different catalog with a new capability
	// ranks that capability too.
	capText := p.CapText
	same, err := ranker.OpenFor(context.Background(), dir, ranker.Catalog{Tools: tools, Caps: caps, CapText: capText, ToolText: toolEmb}, ranker.Options{ORTLibrary: lib})
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close()
	again, err := same.Rank(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if again[i].ID != got[i].ID || math.Abs(again[i].Score-got[i].Score) > 1e-5 {
			t.Fatalf("OpenFor on the packaged catalog: %v, Open: %v", again[i], got[i])
		}
	}
	other := append(append([]featurestore.Capability(nil), caps[:4]...), featurestore.Capability{ID: "newcap", Name: "weather and hotels", Members: []string{"tool0", "tool1"}})
	otherText := append(append([][]float32(nil), capText[:4]...), testmodel.Unit(rng, d))
	o, err := ranker.OpenFor(context.Background(), dir, ranker.Catalog{Tools: tools, Caps: other, CapText: otherText, ToolText: toolEmb}, ranker.Options{ORTLibrary: lib})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ranked, err := o.Rank(context.Background(), q)
	if err != nil || len(ranked) != 5 {
		t.Fatalf("other catalog: %v %v", ranked, err)
	}
}

// TestCandidateSubsets: a candidate's score does not depend on which other
// capabilities are ranked with it, whether the ranker gathers the
// candidates' rows (a few candidates) or scores the whole catalog and picks
// them (most of it).
func TestCandidateSubsets(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	const d = 16
	rng := rand.New(rand.NewPCG(5, 6))
	p := testmodel.Package(t, testmodel.PackageOptions{Dim: d, Seed: 3, InitNoise: 0.2, Rand: rng})
	r, err := ranker.Open(context.Background(), p.Dir, p.Tools, p.Caps, ranker.Options{ORTLibrary: lib})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	x := testmodel.Unit(rng, d)
	q := ranker.Query{Text: "weather for my flight", Embedding: x, ContextTools: []string{"tool1"}}
	all, err := r.Rank(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for _, s := range all {
		want[s.ID] = s.Score
	}
	ids := r.Capabilities()
	if len(ids) < 4 {
		t.Fatalf("catalog of %d capabilities is too small for this test", len(ids))
	}
	for _, n := range []int{1, 2, len(ids)/2 - 1, len(ids) / 2, len(ids) - 1, len(ids)} {
		for range 5 {
			perm := rng.Perm(len(ids))[:n]
			q.Candidates = make([]string, n)
			for j, i := range perm {
				q.Candidates[j] = ids[i]
			}
			got, err := r.Rank(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n {
				t.Fatalf("%d candidates, %d ranked", n, len(got))
			}
			for i, s := range got {
				if math.Abs(s.Score-want[s.ID]) > 1e-5 {
					t.Fatalf("n=%d: %s scores %v, %v in the whole catalog", n, s.ID, s.Score, want[s.ID])
				}
				if i > 0 && s.Score > got[i-1].Score {
					t.Fatalf("n=%d: not sorted best first", n)
				}
			}
		}
	}
	// A capability listed twice is ranked twice, with one score.
	for _, cands := range [][]string{{ids[2], ids[0], ids[2]}, append(slices.Clone(ids), ids[2])} {
		q.Candidates = cands
		got, err := r.Rank(context.Background(), q)
		if err != nil || len(got) != len(cands) {
			t.Fatalf("duplicates: %v %v", got, err)
		}
		n := 0
		for _, s := range got {
			if s.ID == ids[2] {
				n++
				if math.Abs(s.Score-want[s.ID]) > 1e-5 {
					t.Fatalf("duplicate %s scores %v, want %v", s.ID, s.Score, want[s.ID])
				}
			}
		}
		if n != 2 {
			t.Fatalf("%s listed twice, ranked %d times", ids[2], n)
		}
	}
}

// TestRankIntentParts: a model that scores intents as the best of their
// parts gets one ORT row per part, and each candidate's score is the best
// row's, as the Go scorer gives row by row.
func TestRankIntentParts(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	const d = 16
	rng := rand.New(rand.NewPCG(5, 6))
	p := testmodel.Package(t, testmodel.PackageOptions{Dim: d, Seed: 3, InitNoise: 0.2, Rand: rng, IntentParts: true})
	r, err := ranker.Open(context.Background(), p.Dir, p.Tools, p.Caps, ranker.Options{ORTLibrary: lib})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ev, err := evidence.New(p.Tools, p.Caps, p.ToolText)
	if err != nil {
		t.Fatal(err)
	}
	text := "Book a flight to Rome. Then find the weather there"
	parts := evidence.Parts(text)
	if len(parts) != 2 {
		t.Fatalf("parts %q", parts)
	}
	q := ranker.Query{Text: text, Embedding: testmodel.Unit(rng, d), ContextTools: []string{"tool2"}}
	for _, s := range parts {
		q.Parts = append(q.Parts, evidence.Part{Text: s, Embedding: testmodel.Unit(rng, d)})
	}
	got, err := r.Rank(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ev.Features(evidence.Query{Text: q.Text, Embedding: q.Embedding, Parts: q.Parts}, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]float64, len(p.Catalog.Keys))
	for i, v := range p.Catalog.Keys {
		keys[i] = float64(v)
	}
	ctxRow := make([]float64, d)
	for k := range d {
		ctxRow[k] = float64(p.Catalog.Tools[2*d+k])
	}
	rel := slices.Repeat([]float64{1}, len(p.Caps))
	want := make([]float64, len(p.Caps))
	for i := range want {
		want[i] = math.Inf(-1)
	}
	rows := [][]float32{q.Embedding, q.Parts[0].Embedding, q.Parts[1].Embedding}
	differ := false
	for ri, row := range rows {
		x := make([]float64, d)
		for k, v := range row {
			x[k] = float64(v)
		}
		s, err := p.Model.Scorer().Score(shgat.Request{Intent: x, Context: [][]float64{ctxRow}, Evidence: f}, keys, rel)
		if err != nil {
			t.Fatal(err)
		}
		for c, v := range s {
			if ri > 0 && v > want[c] {
				differ = true // a part beats the whole intent somewhere: the max matters
			}
			want[c] = max(want[c], v)
		}
	}
	if !differ {
		t.Fatal("no part ever beats the whole intent: the test would not see a missing max")
	}
	for _, s := range got {
		c, _ := p.Graph.CapIndex(s.ID)
		if math.Abs(s.Score-want[c]) > 1e-4 {
			t.Errorf("%s: ORT %v, best row in Go %v", s.ID, s.Score, want[c])
		}
	}
	q.Parts[1].Embedding = q.Parts[1].Embedding[:3]
	var re *ranker.Error
	if _, err := r.Rank(context.Background(), q); !errors.As(err, &re) {
		t.Errorf("part of the wrong width: %v", err)
	}
}
