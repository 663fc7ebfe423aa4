package textembed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/sugarme/tokenizer"
	"github.com/sugarme/tokenizer/pretrained"
)

// TokenizerError is a tokenizer.json that cannot be loaded, or a text the
// tokenizer failed on.
type TokenizerError struct {
	Path   string
	Reason string
	Err    error
}

func (e *TokenizerError) Error() string {
	s := fmt.Sprintf("textembed: tokenizer %s: %s", e.Path, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *TokenizerError) Unwrap() error { return e.Err }

// Tokenizer turns text into model input ids as described by a HuggingFace
// tokenizer.json (WordPiece for the BERT family, Unigram with Metaspace for
// the XLM-RoBERTa/SentencePiece family), with the file's post-processor
// adding the special tokens ([CLS] … [SEP], <s> … </s>).
//
// It is github.com/sugarme/tokenizer with its normalizers and the Metaspace
// pre-tokenizer replaced where that library departs from the reference
// (Rust) tokenizers library (see tokenize_fix.go).
//
// The golden tests (testdata/tokenizers_golden.json) pin the ids against the
// reference library for both families.
//
// A Tokenizer is safe for concurrent use: the library makes no such
// promise (its models keep caches), so calls are serialised.
type Tokenizer struct {
	path   string
	maxLen int

	mu sync.Mutex
	tk *tokenizer.Tokenizer
}

// LoadTokenizer reads a tokenizer.json. maxLen > 0 truncates every encoding
// to at most maxLen ids, special tokens included; the file's own truncation
// and padding settings are ignored (the encoder pads per batch).
func LoadTokenizer(path string, maxLen int) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &TokenizerError{Path: path, Reason: "cannot read", Err: err}
	}
	var head struct {
		Normalizer   map[string]any `json:"normalizer"`
		PreTokenizer map[string]any `json:"pre_tokenizer"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, &TokenizerError{Path: path, Reason: "invalid JSON", Err: err}
	}
	tk, err := buildTokenizer(data, head.Normalizer, head.PreTokenizer)
	if err != nil {
		return nil, &TokenizerError{Path: path, Reason: "unsupported or invalid", Err: err}
	}
	tk.WithPadding(nil)
	if maxLen > 0 {
		tk.WithTruncation(&tokenizer.TruncationParams{MaxLength: maxLen, Strategy: tokenizer.LongestFirst})
	} else {
		tk.WithTruncation(nil)
	}
	return &Tokenizer{path: path, maxLen: maxLen, tk: tk}, nil
}

// buildTokenizer runs the library's loader, which type-asserts its way
// through the JSON and panics on shapes it does not expect; a panic becomes
// an error so a bad file cannot bring the process down.
func buildTokenizer(data []byte, normCfg, preCfg map[string]any) (tk *tokenizer.Tokenizer, err error) {
	defer func() {
		if r := recover(); r != nil {
			tk, err = nil, fmt.Errorf("sugarme/tokenizer: %v", r)
		}
	}()
	tk, err = pretrained.FromReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if normCfg != nil {
		n, err := buildNormalizer(normCfg)
		if err != nil {
			return nil, fmt.Errorf("normalizer: %w", err)
		}
		tk.WithNormalizer(n)
	}
	if preCfg != nil {
		p, err := buildPreTokenizer(preCfg)
		if err != nil {
			return nil, fmt.Errorf("pre-tokenizer: %w", err)
		}
		tk.WithPreTokenizer(p)
	}
	return tk, nil
}

// MaxLen is the truncation length (0: none).
func (t *Tokenizer) MaxLen() int { return t.maxLen }

// Encode returns the ids and token type ids of text with special tokens,
// truncated to MaxLen.
func (t *Tokenizer) Encode(text string) (ids, typeIDs []int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			ids, typeIDs, err = nil, nil, &TokenizerError{Path: t.path, Reason: fmt.Sprintf("encoding %.40q", text), Err: fmt.Errorf("panic: %v", r)}
		}
	}()
	enc, err := t.tk.EncodeSingle(text, true)
	if err != nil {
		return nil, nil, &TokenizerError{Path: t.path, Reason: fmt.Sprintf("encoding %.40q", text), Err: err}
	}
	return enc.Ids, enc.TypeIds, nil
}
