package featurestore

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
)

// IntentHash is the key of an intent's features (IntentFeatures.IntentHash):
// the hex SHA-256 of the intent text and its context tools, sorted, so the
// same request finds the same row whatever the order of its context tools.
// The feature pipeline writes rows under this key and serving reads them.
func IntentHash(text string, contextTools []string) string {
	h := sha256.New()
	h.Write([]byte(text))
	tools := slices.Clone(contextTools)
	slices.Sort(tools)
	tools = slices.Compact(tools)
	// A NUL cannot occur in validated text or ids, so the encoding is
	// unambiguous.
	h.Write([]byte("\x00" + strings.Join(tools, "\x00")))
	return hex.EncodeToString(h.Sum(nil))
}
