package evidence

import (
	"regexp"
	"strings"
)

// MaxParts bounds the parts of one intent: each part costs a BM25 pass and
// an encoder call, and a long intent's tail is kept as one last part.
const MaxParts = 8

// partBreak ends a part: a sentence end, or a sequencing word between
// clauses ("…, then convert…", "… Also, find…"). Measured on Seal-Tools dev,
// where most queries chain three or four requests in as many sentences.
var partBreak = regexp.MustCompile(`(?i)[.?!;]\s+(?:(?:and then|then|after that|also|additionally|finally|next)\b\s*,?\s*)?|\s+(?:and then|then|after that|also|additionally|finally|next)\b\s*,?\s+`)

// minPartWords drops fragments too short to name a request ("Also", "If
// possible") that a break leaves behind.
const minPartWords = 3

// Parts splits an intent into the clauses that each ask for one thing. An
// intent with a single clause is its own only part; so is one whose clauses
// are all shorter than three words. The parts are substrings of the intent,
// trimmed, in order.
func Parts(intent string) []string {
	var out []string
	for _, p := range partBreak.Split(intent, -1) {
		p = strings.TrimSpace(p)
		if len(strings.Fields(p)) >= minPartWords {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return []string{strings.TrimSpace(intent)}
	}
	if len(out) > MaxParts {
		out = append(out[:MaxParts-1], strings.Join(out[MaxParts-1:], ". "))
	}
	return out
}
