package train

import (
	"slices"
	"testing"
)

// TestSelectSessionsKeepsLinks: selecting sessions out of a side and
// appending another keeps every Next on the same step of the same session.
func TestSelectSessionsKeepsLinks(t *testing.T) {
	// a0 → a1 → a2, b0 → b1, c0 (terminal), interleaved as a split leaves
	// them.
	in := []Sample{
		{Session: "a", Cap: 0, Next: 2}, {Session: "b", Cap: 10, Next: 3}, {Session: "a", Cap: 1, Next: 5},
		{Session: "b", Cap: 11, Next: -1}, {Session: "c", Cap: 20, Next: -1}, {Session: "a", Cap: 2, Next: -1},
	}
	notB := selectSessions(in, func(s string) bool { return s != "b" })
	caps := func(ss []Sample) (out []int) {
		for _, s := range ss {
			out = append(out, s.Cap)
		}
		return out
	}
	if got := caps(notB); !slices.Equal(got, []int{0, 1, 20, 2}) {
		t.Fatalf("kept %v", got)
	}
	if got := []int{notB[0].Next, notB[1].Next, notB[2].Next, notB[3].Next}; !slices.Equal(got, []int{1, 3, -1, -1}) {
		t.Errorf("links %v, want [1 3 -1 -1]", got)
	}
	b := selectSessions(in, func(s string) bool { return s == "b" })
	all := concatSamples(notB, b)
	if got := caps(all); !slices.Equal(got, []int{0, 1, 20, 2, 10, 11}) {
		t.Fatalf("concatenated %v", got)
	}
	if all[4].Next != 5 || all[5].Next != -1 || all[0].Next != 1 {
		t.Errorf("links after concatenation: %d %d %d, want 5 -1 1", all[4].Next, all[5].Next, all[0].Next)
	}
	if in[0].Next != 2 || in[1].Next != 3 {
		t.Error("the input was modified")
	}
	for i, s := range all {
		if s.Next >= 0 && all[s.Next].Session != s.Session {
			t.Errorf("sample %d (session %s) links to session %s", i, s.Session, all[s.Next].Session)
		}
	}
}
