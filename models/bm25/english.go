package bm25

// isStopword reports whether the lowercased term is one of Lucene's
// EnglishAnalyzer stopwords. A switch, not a map: no package state, and
// string(b) in a switch does not allocate.
func isStopword(b []byte) bool {
	switch string(b) {
	case "a", "an", "and", "are", "as", "at", "be", "but", "by", "for",
		"if", "in", "into", "is", "it", "no", "not", "of", "on", "or",
		"such", "that", "the", "their", "then", "there", "these", "they",
		"this", "to", "was", "will", "with":
		return true
	}
	return false
}

// stemMinimal is Lucene's EnglishMinimalStemmer (after Harman, "How
// effective is suffixing?", JASIS 1991) on a lowercased term, in place:
// -ies → -y (not after a or e), -es after i, a, o, e kept, -ss and -us
// kept, any other final -s dropped. Terms under three bytes are kept.
func stemMinimal(s []byte) []byte {
	n := len(s)
	if n < 3 || s[n-1] != 's' {
		return s
	}
	switch s[n-2] {
	case 'u', 's':
		return s
	case 'e':
		if n > 3 && s[n-3] == 'i' && s[n-4] != 'a' && s[n-4] != 'e' {
			s[n-3] = 'y'
			return s[:n-2]
		}
		switch s[n-3] {
		case 'i', 'a', 'o', 'e':
			return s
		}
	}
	return s[:n-1]
}
