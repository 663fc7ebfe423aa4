package ranker_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
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
	f, _ := ev.Features(q.Text, x, nil)
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
