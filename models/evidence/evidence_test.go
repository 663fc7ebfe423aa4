package evidence

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/models/bm25"
	"github.com/capflow/capflow/models/shgat"
)

func TestNamesMatchTheModel(t *testing.T) {
	if !slices.Equal(Names, shgat.DefaultEvidence) || len(Names) != F {
		t.Fatalf("evidence.Names %v, shgat.DefaultEvidence %v, F %d", Names, shgat.DefaultEvidence, F)
	}
}

func TestFeaturesByHand(t *testing.T) {
	tools := []featurestore.Tool{
		{ID: "getWeather", Name: "getWeather", Description: "weather forecast for a city"},
		{ID: "bookHotel", Name: "bookHotel", Description: "reserve a hotel room"},
		{ID: "convert", Name: "convert", Description: "currency conversion"},
	}
	caps := []featurestore.Capability{
		{ID: "travel", Name: "travel", Members: []string{"getWeather", "bookHotel"}},
		{ID: "money", Name: "money", Members: []string{"convert"}},
		{ID: "all", Name: "all", Members: []string{"travel", "money"}},
	}
	emb := [][]float32{{1, 0}, {0, 1}, {0.6, 0.8}}
	ix, err := New(tools, caps, emb)
	if err != nil {
		t.Fatal(err)
	}
	q := "what is the weather forecast in Paris"
	x := []float32{0.8, 0.6}
	got, err := ix.Features(q, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := bm25.New([]string{ToolText(tools[0]), ToolText(tools[1]), ToolText(tools[2])}, bm25.DefaultConfig())
	ts := tb.Scores(q, nil)
	want := []float64{
		math.Log1p(ts[0]), 0.8, // travel: best tool getWeather (BM25), cos max(0.8, 0.6)
		0, 0.96, //              money: no match; cos 0.48+0.48
		math.Log1p(ts[0]), 0.96, // all: tools at depth 2
	}
	for r := range 3 {
		if math.Abs(got[r*F+1]-want[2*r]) > 1e-12 || math.Abs(got[r*F+2]-want[2*r+1]) > 1e-6 {
			t.Errorf("capability %d: features %v, want bm25_tool_max %v cos_tool_max %v", r, got[r*F:(r+1)*F], want[2*r], want[2*r+1])
		}
	}
	if got[0] <= 0 || got[1*F] != 0 {
		t.Errorf("bm25_capability: %v", got)
	}
	if _, err := ix.Features(q, []float32{1}, nil); !errors.As(err, new(*Error)) {
		t.Errorf("wrong intent width: %v", err)
	}
	if _, err := ix.Features(q, x, []int{7}); !errors.As(err, new(*Error)) {
		t.Errorf("bad index: %v", err)
	}
	if _, err := New(tools, caps, emb[:2]); !errors.As(err, new(*Error)) {
		t.Errorf("missing embedding: %v", err)
	}
}
