package textembed

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/rivo/uniseg"
	"github.com/sugarme/tokenizer"
	"github.com/sugarme/tokenizer/normalizer"
	"github.com/sugarme/tokenizer/pretokenizer"
	"github.com/sugarme/tokenizer/pretrained"
	"github.com/sugarme/tokenizer/spm"
	"golang.org/x/text/unicode/norm"
)

// This file holds the smallest substitutes for the pieces of
// github.com/sugarme/tokenizer v0.3.0 that give ids different from the
// reference tokenizers library (the golden tests found each one):
//
//   - NFC/NFD/NFKC/NFKD: the library's NFKC only decomposes (e + U+0301
//     stayed two characters).
//   - BertNormalizer: clean_text mapped only 4 ASCII whitespace characters
//     (U+00A0, U+3000 … made the word [UNK]), strip_accents did not
//     decompose first and "strip_accents": null was read as false.
//   - Replace with a Regex pattern was read as an empty literal.
//   - Precompiled (SentencePiece charsmap) panicked on tabs and some
//     combining sequences.
//   - Strip: done here with Unicode whitespace, as the reference does.
//   - Metaspace replaced every \s (tabs, newlines) by ▁ where the reference
//     replaces only ' ', and ignored "split": false.
//
// The substitutes rewrite the normalized text and start a fresh
// NormalizedString, so token offsets into the original text are not
// tracked through them; the encoder uses ids only.

// textNormalizer is a normalizer given as a function on the text.
type textNormalizer func(string) string

func (f textNormalizer) Normalize(n *normalizer.NormalizedString) (*normalizer.NormalizedString, error) {
	s := n.GetNormalized()
	if out := f(s); out != s {
		return normalizer.NewNormalizedFrom(out), nil
	}
	return n, nil
}

// buildNormalizer builds a normalizer as the reference library reads it,
// substituting the pieces listed above and delegating the rest.
func buildNormalizer(cfg map[string]any) (normalizer.Normalizer, error) {
	switch cfg["type"] {
	case "Sequence":
		list, _ := cfg["normalizers"].([]any)
		norms := make([]normalizer.Normalizer, 0, len(list))
		for i, item := range list {
			m, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("normalizer Sequence item %d is not an object", i)
			}
			n, err := buildNormalizer(m)
			if err != nil {
				return nil, err
			}
			norms = append(norms, n)
		}
		return normalizer.NewSequence(norms), nil
	case "NFC":
		return textNormalizer(norm.NFC.String), nil
	case "NFD":
		return textNormalizer(norm.NFD.String), nil
	case "NFKC":
		return textNormalizer(norm.NFKC.String), nil
	case "NFKD":
		return textNormalizer(norm.NFKD.String), nil
	case "Precompiled":
		b64, _ := cfg["precompiled_charsmap"].(string)
		data, err := spm.FromBase64(b64)
		if err != nil || len(data) < 4 {
			return nil, fmt.Errorf("precompiled_charsmap is not a base64 charsmap: %v", err)
		}
		p, err := spm.NewPrecompiledFrom(data)
		if err != nil {
			return nil, fmt.Errorf("precompiled_charsmap: %w", err)
		}
		return textNormalizer(precompiled{p}.normalize), nil
	case "Strip":
		left, _ := cfg["strip_left"].(bool)
		right, _ := cfg["strip_right"].(bool)
		return textNormalizer(func(s string) string {
			if left {
				s = strings.TrimLeftFunc(s, unicode.IsSpace)
			}
			if right {
				s = strings.TrimRightFunc(s, unicode.IsSpace)
			}
			return s
		}), nil
	case "Lowercase":
		return textNormalizer(strings.ToLower), nil
	case "StripAccents":
		// The reference removes combining marks without decomposing;
		// tokenizer.json pipelines put an NFD before it.
		return textNormalizer(removeMn), nil
	case "BertNormalizer":
		flag := func(key string, dflt bool) bool {
			if b, ok := cfg[key].(bool); ok {
				return b
			}
			return dflt
		}
		b := bertNormalizer{
			clean:   flag("clean_text", true),
			chinese: flag("handle_chinese_chars", true),
			lower:   flag("lowercase", true),
		}
		b.strip = flag("strip_accents", b.lower) // null: follow lowercase
		return textNormalizer(b.normalize), nil
	case "Replace":
		pat, _ := cfg["pattern"].(map[string]any)
		content, _ := cfg["content"].(string)
		if expr, ok := pat["Regex"].(string); ok {
			// Go's RE2 covers the simple patterns converters emit (" {2,}").
			re, err := regexp.Compile(expr)
			if err != nil {
				return nil, fmt.Errorf("replace regex %q: %w", expr, err)
			}
			return textNormalizer(func(s string) string { return re.ReplaceAllLiteralString(s, content) }), nil
		}
		if lit, ok := pat["String"].(string); ok {
			return textNormalizer(func(s string) string { return strings.ReplaceAll(s, lit, content) }), nil
		}
		return nil, fmt.Errorf("replace pattern %v is neither String nor Regex", cfg["pattern"])
	}
	return pretrained.CreateNormalizer(cfg)
}

// precompiled is the reference Precompiled normalizer (SentencePiece's
// compiled normalisation rules, e.g. nmt_nfkc in XLM-R and BGE-M3): each
// grapheme shorter than 6 bytes is looked up whole, else each of its
// characters; a hit is replaced by its mapping (possibly empty), a miss
// kept. It reuses the library's charsmap parser and trie, whose own
// normalizer panics on some inputs (tabs, combining marks) and cannot tell
// "maps to nothing" from "no rule".
type precompiled struct{ p *spm.Precompiled }

func (c precompiled) transform(chunk string) (string, bool) {
	hits := c.p.Trie.CommonPrefixSearch([]byte(chunk))
	if len(hits) == 0 || hits[0] < 0 || hits[0] > len(c.p.Normalized) {
		return "", false
	}
	out := c.p.Normalized[hits[0]:]
	if i := strings.IndexByte(out, 0); i >= 0 {
		out = out[:i]
	}
	return out, true
}

func (c precompiled) normalize(s string) string {
	var sb strings.Builder
	g := uniseg.NewGraphemes(s)
	for g.Next() {
		gr := g.Str()
		if len(gr) < 6 {
			if n, ok := c.transform(gr); ok {
				sb.WriteString(n)
				continue
			}
		}
		for _, r := range gr {
			if n, ok := c.transform(string(r)); ok {
				sb.WriteString(n)
			} else {
				sb.WriteRune(r)
			}
		}
	}
	return sb.String()
}

// bertNormalizer is the reference BertNormalizer: clean, pad CJK
// ideographs with spaces, strip accents (NFD, drop Mn), lowercase.
type bertNormalizer struct{ clean, chinese, strip, lower bool }

func (b bertNormalizer) normalize(s string) string {
	var sb strings.Builder
	for _, r := range s {
		switch {
		case b.clean && (r == 0 || r == 0xfffd || isBertControl(r)):
			continue
		case b.clean && isBertWhitespace(r):
			sb.WriteByte(' ')
		case b.chinese && normalizer.IsChinese(r):
			sb.WriteByte(' ')
			sb.WriteRune(r)
			sb.WriteByte(' ')
		default:
			sb.WriteRune(r)
		}
	}
	s = sb.String()
	if b.strip {
		s = removeMn(norm.NFD.String(s))
	}
	if b.lower {
		s = strings.ToLower(s)
	}
	return s
}

func isBertWhitespace(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || unicode.Is(unicode.White_Space, r)
}

// isBertControl is Rust's char::is_other (Cc, Cf, Cs, Co, Cn) except tab,
// newline and carriage return, which are whitespace.
func isBertControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Cs, unicode.Co) ||
		!unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.C)
}

func removeMn(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) {
			return -1
		}
		return r
	}, s)
}

// buildPreTokenizer builds a pre-tokenizer as the reference reads it,
// substituting Metaspace and delegating the rest.
func buildPreTokenizer(cfg map[string]any) (tokenizer.PreTokenizer, error) {
	switch cfg["type"] {
	case "Sequence":
		list, _ := cfg["pretokenizers"].([]any)
		pts := make([]tokenizer.PreTokenizer, 0, len(list))
		for i, item := range list {
			m, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("pre-tokenizer Sequence item %d is not an object", i)
			}
			p, err := buildPreTokenizer(m)
			if err != nil {
				return nil, err
			}
			pts = append(pts, p)
		}
		return pretokenizer.NewSequence(pts), nil
	case "Metaspace":
		m := metaspace{replacement: "▁", prepend: "always", split: true}
		if s, ok := cfg["replacement"].(string); ok && s != "" {
			m.replacement = s
		}
		if s, ok := cfg["prepend_scheme"].(string); ok {
			m.prepend = s
		} else if b, ok := cfg["add_prefix_space"].(bool); ok && !b {
			m.prepend = "never" // the pre-0.19 spelling
		}
		if b, ok := cfg["split"].(bool); ok {
			m.split = b
		}
		switch m.prepend {
		case "always", "first", "never":
		default:
			return nil, fmt.Errorf("metaspace prepend_scheme %q is not always, first or never", m.prepend)
		}
		return m, nil
	}
	return pretrained.CreatePreTokenizer(cfg)
}

// metaspace is the reference Metaspace pre-tokenizer: ' ' becomes the
// replacement, which is prepended (always, or on the first split only) and,
// when split is set, starts each piece.
type metaspace struct {
	replacement, prepend string
	split                bool
}

func (m metaspace) PreTokenize(pt *tokenizer.PreTokenizedString) (*tokenizer.PreTokenizedString, error) {
	return pt.Split(func(idx int, n *normalizer.NormalizedString) []tokenizer.SplitIdx {
		s := strings.ReplaceAll(n.GetNormalized(), " ", m.replacement)
		if !strings.HasPrefix(s, m.replacement) && (m.prepend == "always" || m.prepend == "first" && idx == 0) {
			s = m.replacement + s
		}
		if !m.split {
			return []tokenizer.SplitIdx{{Normalized: normalizer.NewNormalizedFrom(s)}}
		}
		var out []tokenizer.SplitIdx
		for len(s) > 0 {
			// Each piece runs up to (not including) the next replacement.
			end := strings.Index(s[len(m.replacement):], m.replacement)
			if !strings.HasPrefix(s, m.replacement) {
				end = strings.Index(s, m.replacement)
			} else if end >= 0 {
				end += len(m.replacement)
			}
			if end < 0 {
				end = len(s)
			}
			out = append(out, tokenizer.SplitIdx{Normalized: normalizer.NewNormalizedFrom(s[:end])})
			s = s[end:]
		}
		return out
	}), nil
}
