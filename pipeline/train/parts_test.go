package train

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/capflow/capflow/models/shgat"
	"github.com/capflow/capflow/models/textembed"
)

// combine keeps each candidate's best row and spread sends the gradient
// back to that row only: the max's subgradient, by hand.
func TestPartBatchCombineAndSpread(t *testing.T) {
	ex := []shgat.Example{{Candidates: []int{0, 1, 2}}, {Candidates: []int{3, 4}}}
	rows := [][][]float64{{{1}, {2}, {3}}, {{4}}}
	pb := expandRows(ex, rows)
	if len(pb.Examples) != 4 || pb.Examples[2].Intent[0] != 3 || pb.Examples[3].Intent[0] != 4 || !slices.Equal(pb.Examples[1].Candidates, []int{0, 1, 2}) {
		t.Fatalf("expanded %+v", pb.Examples)
	}
	scores := [][]float64{
		{0.1, 0.9, -1}, // whole intent
		{0.5, 0.2, -2}, // part 1
		{0.3, 0.8, -3}, // part 2
		{7, 8},         // the second example's only row
	}
	best, arg := pb.combine(scores)
	if !slices.Equal(best[0], []float64{0.5, 0.9, -1}) || !slices.Equal(arg[0], []int{1, 0, 0}) {
		t.Errorf("combine: %v %v, want [0.5 0.9 -1] [1 0 0]", best[0], arg[0])
	}
	if !slices.Equal(best[1], []float64{7, 8}) {
		t.Errorf("a single row is its own max: %v", best[1])
	}
	d := pb.spread([][]float64{{10, 20, 30}, {1, 2}}, arg)
	want := [][]float64{{0, 20, 30}, {10, 0, 0}, {0, 0, 0}, {1, 2}}
	for i := range want {
		if !slices.Equal(d[i], want[i]) {
			t.Errorf("spread row %d = %v, want %v", i, d[i], want[i])
		}
	}
}

func TestRowsOf(t *testing.T) {
	m := &shgat.Model{Config: shgat.Config{IntentParts: true}}
	whole, parts := []float64{1}, [][]float64{{2}, {3}}
	if got := rowsOf(m, whole, parts); len(got) != 3 || got[0][0] != 1 || got[2][0] != 3 {
		t.Errorf("with parts: %v", got)
	}
	if got := rowsOf(m, whole, nil); len(got) != 1 {
		t.Errorf("one part: %v", got)
	}
	m.Config.IntentParts = false
	if got := rowsOf(m, whole, parts); len(got) != 1 {
		t.Errorf("IntentParts off: %v", got)
	}
}

// Parts encodes each part once, in batches, and an intent of one part has
// no part rows.
func TestPartsEncodeOnce(t *testing.T) {
	h, err := textembed.NewHashing(textembed.HashingConfig{Dim: 16})
	if err != nil {
		t.Fatal(err)
	}
	enc := &partsEncoder{Encoder: h}
	p := NewParts(enc)
	ctx := context.Background()
	a := "Find the weather in Rome. Then book a hotel there."
	if err := p.Prepare(ctx, []string{a, a, "Just one request here"}); err != nil {
		t.Fatal(err)
	}
	if enc.texts != 3 { // two parts of a, one of the other
		t.Errorf("encoded %d texts, want 3", enc.texts)
	}
	ps, err := p.Of(ctx, a)
	if err != nil || len(ps) != 2 || ps[1].Text != "book a hotel there." {
		t.Fatalf("Of = %+v, %v", ps, err)
	}
	if math.Abs(textembed.Norm(ps[0].Embedding)-1) > 1e-6 {
		t.Errorf("part embedding norm %v", textembed.Norm(ps[0].Embedding))
	}
	if ps, err := p.Of(ctx, "Just one request here"); ps != nil || err != nil {
		t.Errorf("one part: %v, %v", ps, err)
	}
	if enc.texts != 3 {
		t.Errorf("Of encoded again: %d texts", enc.texts)
	}
	enc.fail = true
	if _, err := p.Of(ctx, "A new one. And another new one."); !errors.Is(err, errEncode) {
		t.Errorf("encoder failure: %v", err)
	}
}

var errEncode = errors.New("encoder down")

type partsEncoder struct {
	textembed.Encoder
	texts int
	fail  bool
}

func (c *partsEncoder) Encode(ctx context.Context, texts []string) ([][]float32, error) {
	if c.fail {
		return nil, errEncode
	}
	c.texts += len(texts)
	return c.Encoder.Encode(ctx, texts)
}

// The list-wise multi-label loss: another success of the session is not a
// negative (no gradient, not in the softmax); a plain negative is.
func TestListwiseLeavesOtherSuccessesOut(t *testing.T) {
	scores := []float64{1, 2, 0}
	cands := []int{10, 11, 12}
	loss, g := listwise(scores, 0, cands, map[int]bool{10: true, 11: true})
	// softmax over {1, 0} only: p0 = e/(e+1).
	p0 := math.E / (math.E + 1)
	if math.Abs(loss+math.Log(p0)) > 1e-12 || g[1] != 0 || math.Abs(g[0]-(p0-1)) > 1e-12 || math.Abs(g[2]-(1-p0)) > 1e-12 {
		t.Errorf("loss %v grad %v; want %v, [%v 0 %v]", loss, g, -math.Log(p0), p0-1, 1-p0)
	}
	// Without other successes, every other candidate is a negative.
	_, g = listwise(scores, 0, cands, map[int]bool{10: true})
	if !(g[1] > 0) {
		t.Errorf("a negative gets no push down: %v", g)
	}
}
