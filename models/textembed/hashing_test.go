package textembed

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newHashing(t *testing.T, cfg HashingConfig) *Hashing {
	t.Helper()
	h, err := NewHashing(cfg)
	require.NoError(t, err)
	return h
}

func encodeOne(t *testing.T, e Encoder, text string) []float32 {
	t.Helper()
	v, err := e.Encode(context.Background(), []string{text})
	require.NoError(t, err)
	require.Len(t, v, 1)
	return v[0]
}

// The golden vectors come from testdata/hashing_ref.py, an independent
// Python implementation of the documented algorithm; a change to the
// tokeniser, hashing or weighting breaks them.
func TestHashingGolden(t *testing.T) {
	for _, tc := range []struct {
		dim  int
		text string
		want []float64
	}{
		{16, "Send an email to Bob", []float64{0.19219293755364653, -0.6657275277754878, 0.19219293755364653, 0.10304422243909825, 0.19219293755364653, -0.2813416526681948, 0.2813416526681948, 0.08914871511454826, -0.19219293755364653, -0.19219293755364653, 0.0, 0.0, -0.19219293755364653, 0.0, -0.2813416526681948, -0.2813416526681948}},
		// Repeated words (sublinear TF), Unicode case mapping, accents, ß,
		// Greek (lowercased per rune: no final-sigma rule), digits and
		// punctuation as separators.
		{32, "Café CAFÉ café au lait — naïve Straße, ΣΊΣΥΦΟΣ 42!", []float64{-0.07072499222459108, 0.0, 0.2570990737110072, 0.2570990737110072, -0.2575066489028034, -0.13510165445029193, 0.06437666222570085, -0.00040757519179618617, 0.06437666222570085, -0.06437666222570085, -0.06437666222570085, 0.3214757359367081, -0.19312998667710254, -0.2570990737110072, 0.0, 0.07072499222459108, -0.26344740370989744, -0.06437666222570085, -0.19272241148530636, -0.006755905190686407, -0.12723666615286353, -0.19312998667710254, -0.06437666222570085, 0.0, 0.19312998667710254, 0.2756962965934144, 0.0, -0.38585239816240885, -0.1287533244514017, -0.2638549789016936, -0.1287533244514017, -0.1287533244514017}},
	} {
		got := encodeOne(t, newHashing(t, HashingConfig{Dim: tc.dim}), tc.text)
		require.Len(t, got, tc.dim)
		for i := range got {
			assert.InDelta(t, tc.want[i], float64(got[i]), 1e-6, "%q element %d", tc.text, i)
		}
	}
}

func TestFeatureHashIsFNV1a(t *testing.T) {
	for _, s := range []string{"", "a", "send email", "straße", "ΣΊΣΥΦΟΣ"} {
		f := fnv.New64a()
		f.Write([]byte{'w', 2})
		f.Write([]byte(s))
		assert.Equal(t, f.Sum64(), featureHash('w', 2, s), s)
	}
}

func TestTokenize(t *testing.T) {
	assert.Equal(t, []string{"send", "e", "mail", "to", "bob", "42"}, tokenize("Send e-mail to BOB: 42!"))
	// Combining marks stay inside the word; case maps beyond ASCII.
	assert.Equal(t, []string{"cafe\u0301", "ñandú", "straße"}, tokenize("CAFE\u0301 ÑANDÚ Straße"))
	assert.Empty(t, tokenize(" \t—!? "))
	assert.Equal(t, []string{"a", "b"}, tokenize("a\xffb"), "invalid UTF-8 separates")
}

func TestHashingUnitNormAndZero(t *testing.T) {
	h := newHashing(t, HashingConfig{})
	texts := []string{"Send an email", "x", "Ünïcödé ТЕКСТ 漢字かな", "", "  !!! —  ", "a\xff\xfe"}
	vs, err := h.Encode(context.Background(), texts)
	require.NoError(t, err)
	require.Len(t, vs, len(texts))
	for i, v := range vs {
		require.Len(t, v, 1024)
		for _, x := range v {
			require.False(t, math.IsNaN(float64(x)) || math.IsInf(float64(x), 0), texts[i])
		}
		switch texts[i] {
		case "", "  !!! —  ":
			// No word, no signal: the documented zero vector.
			assert.Zero(t, Norm(v), "%q", texts[i])
		default:
			assert.InDelta(t, 1, Norm(v), 1e-6, "%q", texts[i])
		}
	}
	// Unicode-aware lowercasing: case does not change the vector.
	assert.Equal(t, encodeOne(t, h, "ÜBER Straße ΣΟΦΙΑ"), encodeOne(t, h, "über straße σοφια"))
}

func TestHashingDeterministicAndBatch(t *testing.T) {
	texts := []string{"read a csv file", "Send an email to Bob", "", "read a csv file", "weather forecast for Paris"}
	a := newHashing(t, HashingConfig{})
	b := newHashing(t, HashingConfig{})
	batch, err := a.Encode(context.Background(), texts)
	require.NoError(t, err)
	again, err := b.Encode(context.Background(), texts)
	require.NoError(t, err)
	assert.Equal(t, batch, again)
	for i, s := range texts {
		assert.Equal(t, batch[i], encodeOne(t, b, s), "batch element %d differs from one-by-one", i)
	}
	empty, err := a.Encode(context.Background(), nil)
	require.NoError(t, err)
	assert.Empty(t, empty)
}

func TestHashingCosineRelations(t *testing.T) {
	h := newHashing(t, HashingConfig{})
	for _, tc := range []struct{ text, paraphrase, unrelated string }{
		{"Send an email message to a colleague", "send email to my colleague", "Get the current weather forecast for a city"},
		{"Translate text from English to French", "translate English text into French", "Book a flight ticket to Tokyo"},
		{"Convert currency using exchange rates", "currency conversion with the latest exchange rate", "Search recipes by ingredient"},
	} {
		a, p, u := encodeOne(t, h, tc.text), encodeOne(t, h, tc.paraphrase), encodeOne(t, h, tc.unrelated)
		cp, cu := Cosine(a, p), Cosine(a, u)
		t.Logf("%q: paraphrase %.3f unrelated %.3f", tc.text, cp, cu)
		assert.Greater(t, cp, 0.4, "paraphrase should be clearly similar")
		assert.Less(t, math.Abs(cu), 0.15, "unrelated text should be near orthogonal")
		assert.Greater(t, cp, cu+0.3)
	}
	// Character n-grams relate inflections that share no word.
	assert.Greater(t, Cosine(encodeOne(t, h, "translating"), encodeOne(t, h, "translation")), 0.3)
}

func TestHashingConfig(t *testing.T) {
	def := newHashing(t, HashingConfig{})
	assert.Equal(t, ModelInfo{Name: HashingModelName, Version: "v1-d1024-w2-c3-5-cw1", Dim: 1024}, def.Model())
	words := newHashing(t, HashingConfig{Dim: 64, WordNGrams: 1, CharMax: -1})
	assert.Equal(t, "v1-d64-w1-cnone-cw1", words.Model().Version)
	assert.Equal(t, 64, words.Dim())
	// Unigrams only, no char grams: word order does not matter.
	assert.Equal(t, encodeOne(t, words, "bob email send"), encodeOne(t, words, "send email bob"))
	chars := newHashing(t, HashingConfig{WordNGrams: -1, CharMin: 2, CharMax: 3})
	assert.Equal(t, "v1-d1024-w0-c2-3-cw1", chars.Model().Version)
	assert.InDelta(t, 1, Norm(encodeOne(t, chars, "ab")), 1e-6)

	for _, cfg := range []HashingConfig{
		{Dim: -1},
		{WordNGrams: -1, CharMax: -1},
		{CharMin: 6},
		{CharMin: -2, CharMax: 4},
		{CharWeight: -1},
		{CharWeight: math.NaN()},
	} {
		_, err := NewHashing(cfg)
		var ce *ConfigError
		assert.True(t, errors.As(err, &ce), "%+v: %v", cfg, err)
	}
}

func TestHashingCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newHashing(t, HashingConfig{}).Encode(ctx, []string{"a"})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestHashingConcurrent(t *testing.T) {
	h := newHashing(t, HashingConfig{Dim: 256})
	texts := []string{"alpha beta", "gamma delta epsilon", "zeta"}
	want, err := h.Encode(context.Background(), texts)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				got, err := h.Encode(context.Background(), texts)
				if !assert.NoError(t, err) || !assert.Equal(t, want, got) {
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNormalizeAndCosine(t *testing.T) {
	assert.Equal(t, []float32{0.6, 0.8}, normalize([]float64{3, 4}))
	assert.Equal(t, []float32{0, 0}, normalize([]float64{0, 0}))
	// Huge and tiny values neither overflow nor underflow.
	assert.InDelta(t, 1, Norm(normalize([]float64{1e300, 1e300})), 1e-6)
	assert.InDelta(t, 1, Norm(normalize([]float64{1e-300, 1e-300})), 1e-6)
	assert.InDelta(t, 0, Cosine([]float32{1, 0}, []float32{0, 1}), 1e-12)
	assert.InDelta(t, -1, Cosine([]float32{1, 2}, []float32{-2, -4}), 1e-12)
	assert.Zero(t, Cosine([]float32{0, 0}, []float32{1, 0}))
	assert.Zero(t, Cosine([]float32{1}, []float32{1, 0}))
}

func BenchmarkHashing(b *testing.B) {
	h, err := NewHashing(HashingConfig{})
	require.NoError(b, err)
	text := []string{"Retrieve the current weather forecast for a given city, including temperature, humidity and wind speed."}
	for b.Loop() {
		if _, err := h.Encode(context.Background(), text); err != nil {
			b.Fatal(err)
		}
	}
}
