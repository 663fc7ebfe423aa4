package evidence

import (
	"errors"
	"math"
	"slices"
	"strings"
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
	got, err := ix.Features(Query{Text: q, Embedding: x}, nil)
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
	if _, err := ix.Features(Query{Text: q, Embedding: []float32{1}}, nil); !errors.As(err, new(*Error)) {
		t.Errorf("wrong intent width: %v", err)
	}
	if _, err := ix.Features(Query{Text: q, Embedding: x}, []int{7}); !errors.As(err, new(*Error)) {
		t.Errorf("bad index: %v", err)
	}
	if _, err := New(tools, caps, emb[:2]); !errors.As(err, new(*Error)) {
		t.Errorf("missing embedding: %v", err)
	}
}

func TestPartFeaturesTakeTheBestPart(t *testing.T) {
	tools := []featurestore.Tool{
		{ID: "getWeather", Name: "getWeather", Description: "weather forecast for a city"},
		{ID: "bookHotel", Name: "bookHotel", Description: "reserve a hotel room"},
	}
	caps := []featurestore.Capability{
		{ID: "weather", Name: "weather", Members: []string{"getWeather"}},
		{ID: "hotel", Name: "hotel", Members: []string{"bookHotel"}},
	}
	ix, err := New(tools, caps, [][]float32{{1, 0}, {0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	text := "Tell me the weather forecast in Rome. Then reserve a hotel room there."
	parts := Parts(text)
	if !slices.Equal(parts, []string{"Tell me the weather forecast in Rome", "reserve a hotel room there."}) {
		t.Fatalf("Parts = %q", parts)
	}
	q := Query{Text: text, Embedding: []float32{0.6, 0.8}, Parts: []Part{
		{Text: parts[0], Embedding: []float32{0.96, 0.28}},
		{Text: parts[1], Embedding: []float32{0.28, 0.96}},
	}}
	got, err := ix.Features(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	// cos_tool_part_max: the best part for each tool, above the whole's.
	if math.Abs(got[0*F+5]-0.96) > 1e-6 || math.Abs(got[1*F+5]-0.96) > 1e-6 {
		t.Errorf("cos_tool_part_max %v, %v; want 0.96 both", got[5], got[F+5])
	}
	if math.Abs(got[0*F+2]-0.6) > 1e-6 || math.Abs(got[1*F+2]-0.8) > 1e-6 {
		t.Errorf("cos_tool_max %v, %v; want the whole intent's 0.6, 0.8", got[2], got[F+2])
	}
	tb, _ := bm25.New([]string{ToolText(tools[0]), ToolText(tools[1])}, bm25.DefaultConfig())
	for c, p := range parts {
		want := math.Log1p(tb.Scores(p, nil)[c])
		if math.Abs(got[c*F+4]-want) > 1e-12 {
			t.Errorf("bm25_tool_part_max of %d = %v, want %v from part %q", c, got[c*F+4], want, p)
		}
	}
	// Without parts, the part features are the whole intent's.
	one, err := ix.Features(Query{Text: text, Embedding: q.Embedding}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for r := range 2 {
		if !slices.Equal(one[r*F:r*F+3], one[r*F+3:r*F+6]) {
			t.Errorf("row %d without parts: %v", r, one[r*F:(r+1)*F])
		}
	}
	if _, err := ix.Features(Query{Text: text, Embedding: q.Embedding, Parts: []Part{{Text: "x", Embedding: []float32{1}}}}, nil); !errors.As(err, new(*Error)) {
		t.Errorf("part of the wrong width: %v", err)
	}
}

func TestParts(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"Retrieve the number of nurses in France.", []string{"Retrieve the number of nurses in France."}},
		{"Hi. Ok.", []string{"Hi. Ok."}},
		{"Convert 100 dollars to euros and then show the Apple stock price",
			[]string{"Convert 100 dollars to euros", "show the Apple stock price"}},
		{"First, check the sample. After that, analyze the gene BRCA1; finally send the report",
			[]string{"First, check the sample", "analyze the gene BRCA1", "send the report"}},
	} {
		if got := Parts(c.in); !slices.Equal(got, c.want) {
			t.Errorf("Parts(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	long := strings.Repeat("Please do this thing now. ", 20)
	if got := Parts(long); len(got) != MaxParts {
		t.Errorf("%d parts of a 20-sentence intent, want %d", len(got), MaxParts)
	}
}

func TestColumns(t *testing.T) {
	got, err := Columns([]string{"cos_tool_part_max", "bm25_capability"})
	if err != nil || !slices.Equal(got, []int{5, 0}) {
		t.Errorf("Columns = %v, %v", got, err)
	}
	if _, err := Columns([]string{"nope"}); !errors.As(err, new(*Error)) {
		t.Errorf("unknown name: %v", err)
	}
}
