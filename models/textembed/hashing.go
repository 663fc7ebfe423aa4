package textembed

import (
	"context"
	"fmt"
	"math"
	"strings"
	"unicode"
)

// HashingConfig configures the hashing encoder. Zero fields take defaults.
type HashingConfig struct {
	// Dim is the output dimension (default 1024, the store's default TextDim).
	Dim int
	// WordNGrams is the longest word n-gram: 1 unigrams, 2 unigrams and
	// bigrams (default 2). Negative disables word features.
	WordNGrams int
	// CharMin and CharMax bound the character n-grams taken inside each word
	// padded with a space on either side (default 3 and 5). A negative
	// CharMax disables character features.
	CharMin, CharMax int
	// CharWeight is the weight of the character block relative to the word
	// block, which has weight 1 (default 1).
	CharWeight float64
}

func (c HashingConfig) withDefaults() HashingConfig {
	if c.Dim == 0 {
		c.Dim = 1024
	}
	if c.WordNGrams == 0 {
		c.WordNGrams = 2
	}
	if c.CharMin == 0 {
		c.CharMin = 3
	}
	if c.CharMax == 0 {
		c.CharMax = 5
	}
	if c.CharWeight == 0 {
		c.CharWeight = 1
	}
	return c
}

func (c HashingConfig) validate() error {
	switch {
	case c.Dim < 1:
		return &ConfigError{Field: "Dim", Reason: fmt.Sprintf("is %d, must be positive", c.Dim)}
	case c.WordNGrams < 1 && c.CharMax < 1:
		return &ConfigError{Field: "WordNGrams", Reason: "and CharMax disable every feature"}
	case c.CharMax >= 1 && (c.CharMin < 1 || c.CharMin > c.CharMax):
		return &ConfigError{Field: "CharMin", Reason: fmt.Sprintf("is %d, must be in [1, CharMax=%d]", c.CharMin, c.CharMax)}
	case c.CharWeight < 0 || math.IsNaN(c.CharWeight) || math.IsInf(c.CharWeight, 0):
		return &ConfigError{Field: "CharWeight", Reason: fmt.Sprintf("is %v, must be finite and non-negative", c.CharWeight)}
	}
	return nil
}

// HashingModelName is the Name in the hashing encoder's ModelInfo.
const HashingModelName = "capflow-hashing"

// hashingAlgo versions the feature extraction and hashing below: bump it
// whenever a change would alter any output, so cached vectors miss.
const hashingAlgo = "1"

// Hashing is the offline encoder: no model, no state, no randomness. A text
// becomes hashed word n-grams and in-word character n-grams, each weighted
// by sublinear term frequency 1+ln(tf), placed by signed feature hashing
// (64-bit FNV-1a: index = h mod Dim, sign = top bit) into Dim dimensions.
// The word and character blocks are L2-normalised separately and summed
// with CharWeight, so long words cannot drown the word features, and the sum
// is L2-normalised. There is no IDF: the encoder is fitted to no corpus, so
// one text's vector never depends on the others.
//
// Text is lowercased rune by rune with Unicode case mapping (strings.ToLower:
// no context rules such as the Greek final sigma) and split into words at every
// rune that is not a letter, digit or combining mark. A text with no word
// encodes to the zero vector (see the package comment).
type Hashing struct {
	cfg HashingConfig
}

// NewHashing returns a hashing encoder for cfg.
func NewHashing(cfg HashingConfig) (*Hashing, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Hashing{cfg: cfg}, nil
}

// Dim returns the configured dimension.
func (h *Hashing) Dim() int { return h.cfg.Dim }

// Model names the algorithm and every setting that changes the output, so
// two configurations never share cache entries.
func (h *Hashing) Model() ModelInfo {
	c := h.cfg
	chars := "none"
	if c.CharMax >= 1 {
		chars = fmt.Sprintf("%d-%d", c.CharMin, c.CharMax)
	}
	words := max(c.WordNGrams, 0)
	return ModelInfo{
		Name:    HashingModelName,
		Version: fmt.Sprintf("v%s-d%d-w%d-c%s-cw%g", hashingAlgo, c.Dim, words, chars, c.CharWeight),
		Dim:     c.Dim,
	}
}

// Encode encodes each text independently.
func (h *Hashing) Encode(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		out[i] = h.encode(t)
	}
	return out, nil
}

// Feature namespaces: the first byte hashed, so the word "abc" and the
// character gram "abc" (or a unigram and a bigram) land independently.
const (
	nsWord = 'w'
	nsChar = 'c'
)

func (h *Hashing) encode(text string) []float32 {
	c := h.cfg
	words := tokenize(text)
	wordVec := make([]float64, c.Dim)
	if c.WordNGrams >= 1 {
		tf := make(map[uint64]int)
		for n := 1; n <= c.WordNGrams; n++ {
			for i := 0; i+n <= len(words); i++ {
				// Words hold no spaces, so a space joins them unambiguously.
				tf[featureHash(nsWord, byte(n), strings.Join(words[i:i+n], " "))]++
			}
		}
		h.accumulate(wordVec, tf)
	}
	charVec := make([]float64, c.Dim)
	if c.CharMax >= 1 {
		tf := make(map[uint64]int)
		for _, w := range words {
			r := []rune(" " + w + " ")
			for n := c.CharMin; n <= c.CharMax; n++ {
				for i := 0; i+n <= len(r); i++ {
					tf[featureHash(nsChar, byte(n), string(r[i:i+n]))]++
				}
			}
		}
		h.accumulate(charVec, tf)
	}
	wn, cn := l2(wordVec), l2(charVec)
	sum := make([]float64, c.Dim)
	for i := range sum {
		if wn > 0 {
			sum[i] += wordVec[i] / wn
		}
		if cn > 0 {
			sum[i] += c.CharWeight * charVec[i] / cn
		}
	}
	return normalize(sum)
}

// accumulate adds each feature's sublinear TF weight, signed, at its bucket.
func (h *Hashing) accumulate(v []float64, tf map[uint64]int) {
	d := uint64(len(v))
	for f, n := range tf {
		w := 1 + math.Log(float64(n))
		if f>>63 == 1 {
			w = -w
		}
		v[f%d] += w
	}
}

func l2(v []float64) float64 {
	var ss float64
	for _, x := range v {
		ss += x * x
	}
	return math.Sqrt(ss)
}

// featureHash is 64-bit FNV-1a over namespace, n and the feature's UTF-8
// bytes: fixed by its specification, so stable across processes, machines
// and Go versions.
// It is written out rather than taken from hash/fnv to avoid an allocation
// per feature; a test checks it against hash/fnv.
func featureHash(ns, n byte, s string) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	h = (h ^ uint64(ns)) * prime64
	h = (h ^ uint64(n)) * prime64
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * prime64
	}
	return h
}

// tokenize lowercases text and splits it into words: maximal runs of
// letters, digits and combining marks (so "café" written with a combining
// accent stays one word).
func tokenize(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r))
	})
}
