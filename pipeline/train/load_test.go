package train

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/models/textembed"
)

// countingEncoder records the texts it encodes.
type countingEncoder struct {
	textembed.Encoder
	texts []string
}

func (c *countingEncoder) Encode(ctx context.Context, texts []string) ([][]float32, error) {
	c.texts = append(c.texts, texts...)
	return c.Encoder.Encode(ctx, texts)
}

// TestIntentEmbeddingsShareText: the steps of a multi-step session (one
// intent text under several contexts) get the query's stored embedding,
// and a text nobody stored is encoded once for all its contexts.
func TestIntentEmbeddingsShareText(t *testing.T) {
	ctx := context.Background()
	const dim = 8
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), featurestore.Config{TextDim: dim, GraphDim: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored := []float32{1, 0, 0, 0, 0, 0, 0, 0}
	if err := st.PutIntentFeatures(ctx, featurestore.IntentFeatures{IntentHash: featurestore.IntentHash("stored", nil), Embedding: stored, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	h, err := textembed.NewHashing(textembed.HashingConfig{Dim: dim})
	if err != nil {
		t.Fatal(err)
	}
	enc := &countingEncoder{Encoder: h}
	exps := []featurestore.Experience{
		{Intent: "stored", ContextTools: []string{"t1"}},
		{Intent: "stored", ContextTools: []string{"t1", "t2"}},
		{Intent: "fresh", ContextTools: []string{"t1"}},
		{Intent: "fresh"},
		{Intent: "fresh", ContextTools: []string{"t2", "t1"}},
	}
	out, err := IntentEmbeddings(ctx, st, enc, exps)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(enc.texts, []string{"fresh"}) {
		t.Errorf("encoded %q, want only \"fresh\", once", enc.texts)
	}
	want, err := h.Encode(ctx, []string{"fresh"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exps {
		got := out[featurestore.IntentHash(e.Intent, e.ContextTools)]
		w := stored
		if e.Intent == "fresh" {
			w = want[0]
		}
		if !slices.Equal(got, to64(w)) {
			t.Errorf("%q with context %v: embedding %v, want %v", e.Intent, e.ContextTools, got, w)
		}
	}
	if len(out) != 5 {
		t.Errorf("%d keys, want 5 (one per distinct intent and context)", len(out))
	}
}
