package ranker_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/models/evidence"
	"github.com/capflow/capflow/models/ranker"
	"github.com/capflow/capflow/models/shgat"
)

func unit(rng *rand.Rand, d int) []float32 {
	v := make([]float32, d)
	var n float64
	for i := range v {
		v[i] = float32(rng.NormFloat64())
		n += float64(v[i] * v[i])
	}
	for i := range v {
		v[i] /= float32(math.Sqrt(n))
	}
	return v
}

// TestRankMatchesGo: a packaged model ranks through ONNX Runtime with the
// evidence it computes itself exactly as the Go scorer does.
func TestRankMatchesGo(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	const d = 16
	rng := rand.New(rand.NewPCG(3, 4))
	words := []string{"weather", "hotel", "flight", "currency", "stock", "news", "recipe", "music"}
	var tools []featurestore.Tool
	for i := range 16 {
		tools = append(tools, featurestore.Tool{ID: fmt.Sprintf("tool%d", i), Name: fmt.Sprintf("get%s%d", words[i%8], i),
			Description: fmt.Sprintf("returns %s data for a place", words[(i*3)%8])})
	}
	var caps []featurestore.Capability
	for j := range 8 {
		caps = append(caps, featurestore.Capability{ID: fmt.Sprintf("cap%d", j), Name: words[j], Members: []string{tools[2*j].ID, tools[2*j+1].ID}})
	}
	caps = append(caps, featurestore.Capability{ID: "travel", Name: "travel", Members: []string{"cap0", "cap1", "cap2"}})
	g, err := shgat.NewGraph(tools, caps)
	if err != nil {
		t.Fatal(err)
	}
	m, err := shgat.New(shgat.Config{Dim: d, Seed: 2, InitNoise: 0.2, EvidenceInit: []float64{0.5, 1, 2}}, g.Levels())
	if err != nil {
		t.Fatal(err)
	}
	toolEmb := make([][]float32, len(tools))
	feats := shgat.Features{Tools: make([]float64, len(tools)*d), Caps: make([]float64, len(caps)*d)}
	var flat []float32
	for i := range tools {
		toolEmb[i] = unit(rng, d)
		flat = append(flat, toolEmb[i]...)
		for k, v := range toolEmb[i] {
			feats.Tools[i*d+k] = float64(v)
		}
	}
	for i := range caps {
		for k, v := range unit(rng, d) {
			feats.Caps[i*d+k] = float64(v)
		}
	}
	reps, err := m.Represent(g, feats)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := shgat.NewCatalog(g, reps, nil, "fv")
	if err != nil {
		t.Fatal(err)
	}
	cat.ToolText = flat
	dir := filepath.Join(t.TempDir(), "model")
	if err := shgat.WriteMLflowModel(dir, m, cat, shgat.PackageOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := ranker.Open(context.Background(), dir, tools, caps, ranker.Options{ORTLibrary: lib})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	ev, err := evidence.New(tools, caps, toolEmb)
	if err != nil {
		t.Fatal(err)
	}
	x := unit(rng, d)
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
	capText := make([][]float32, len(caps))
	for i := range caps {
		capText[i] = make([]float32, d)
		for k := range d {
			capText[i][k] = float32(feats.Caps[i*d+k])
		}
	}
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
	otherText := append(append([][]float32(nil), capText[:4]...), unit(rng, d))
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
