package textembed

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

type tokenizerGolden struct {
	Versions   map[string]string `json:"versions"`
	Tokenizers map[string]struct {
		File  string `json:"file"`
		Cases []struct {
			Text string `json:"text"`
			IDs  []int  `json:"ids"`
		} `json:"cases"`
	} `json:"tokenizers"`
}

// TestTokenizerGolden checks the Go tokenizer against ids produced by the
// reference (Rust) tokenizers library: scripts/golden_tokenizers.py.
func TestTokenizerGolden(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "tokenizers_golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g tokenizerGolden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Tokenizers) < 3 {
		t.Fatalf("golden file has %d tokenizers, want WordPiece and two Unigram", len(g.Tokenizers))
	}
	for name, tc := range g.Tokenizers {
		t.Run(name, func(t *testing.T) {
			tk, err := LoadTokenizer(filepath.Join("testdata", tc.File), 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.Cases) < 20 {
				t.Fatalf("only %d cases", len(tc.Cases))
			}
			for _, c := range tc.Cases {
				ids, typeIDs, err := tk.Encode(c.Text)
				if err != nil {
					t.Errorf("%q: %v", c.Text, err)
					continue
				}
				if !slices.Equal(ids, c.IDs) {
					t.Errorf("%q:\n got  %v\n want %v", c.Text, ids, c.IDs)
				}
				if len(typeIDs) != len(ids) {
					t.Errorf("%q: %d type ids for %d ids", c.Text, len(typeIDs), len(ids))
				}
			}
		})
	}
}

func TestTokenizerTruncates(t *testing.T) {
	tk, err := LoadTokenizer(filepath.Join("testdata", "minilm", "tokenizer.json"), 8)
	if err != nil {
		t.Fatal(err)
	}
	ids, _, err := tk.Encode("one two three four five six seven eight nine ten")
	if err != nil {
		t.Fatal(err)
	}
	// [CLS] one … six [SEP]: the special tokens count towards the limit.
	want := []int{101, 2028, 2048, 2093, 2176, 2274, 2416, 102}
	if !slices.Equal(ids, want) {
		t.Fatalf("got %v, want %v", ids, want)
	}
}

func TestLoadTokenizerErrors(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"notjson.json": "{",
		"nomodel.json": `{"model": {"type": "Nope"}}`,
		"badnorm.json": `{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"}, "normalizer": {"type": "Replace", "pattern": {"Regex": "("}, "content": ""}}`,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadTokenizer(p, 0)
		var te *TokenizerError
		if !errors.As(err, &te) {
			t.Errorf("%s: got %v, want *TokenizerError", name, err)
		}
	}
	_, err := LoadTokenizer(filepath.Join(dir, "missing.json"), 0)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want os.ErrNotExist", err)
	}
}
