package train

import (
	"math"
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

// TestPairedHandComputed: differences {0.5, 0, −0.25} have mean 1/12 and
// variance ((5/12)² + (1/12)² + (4/12)²)/2 = 7/48, so the 95% interval is
// 1/12 ± 1.96·√(7/48)/√3; the ablation pairs one row's queries, the
// cross-validation pools its folds' sessions in fold order.
func TestPairedHandComputed(t *testing.T) {
	scores := func(ndcg ...float64) Validation {
		v := Validation{}
		for _, x := range ndcg {
			v.PerQuery = append(v.PerQuery, QueryScore{NDCG5: x, RR: 1 - x})
		}
		return v
	}
	half := 1.96 * math.Sqrt(7.0/48) / math.Sqrt(3)
	check := func(name string, d Diff, ok bool, mean float64) {
		t.Helper()
		if !ok || math.Abs(d.Mean-mean) > 1e-12 || math.Abs(d.Low-(mean-half)) > 1e-12 || math.Abs(d.High-(mean+half)) > 1e-12 || d.Queries != 3 {
			t.Errorf("%s: %+v (ok %v), want mean %v ± %v over 3", name, d, ok, mean, half)
		}
	}
	ab := &Ablation{Rows: []AblationRow{{Variant: VariantFull, Report: scores(1, 0.5, 0.25)}, {Variant: VariantEvidence, Report: scores(0.5, 0.5, 0.5)}}}
	d, ok := ab.Paired(VariantFull, VariantEvidence)
	check("ablation", d, ok, 1.0/12)
	cv := &CrossValidation{Folds: []CVFold{
		{Systems: map[string]Validation{SystemTrained: scores(1, 0.5), VariantEvidence: scores(0.5, 0.5)}},
		{Systems: map[string]Validation{SystemTrained: scores(0.25), VariantEvidence: scores(0.5)}},
	}}
	d, ok = cv.Paired(SystemTrained, VariantEvidence, "ndcg_at_5")
	check("cross-validation nDCG@5", d, ok, 1.0/12)
	d, ok = cv.Paired(SystemTrained, VariantEvidence, "mrr") // RR = 1 − nDCG: the differences change sign
	check("cross-validation MRR", d, ok, -1.0/12)
	if _, ok := cv.Paired(SystemTrained, VariantBM25, "mrr"); ok {
		t.Error("a system no fold measured has no difference")
	}
	if _, ok := cv.Paired(SystemTrained, VariantEvidence, "hit_at_1"); ok {
		t.Error("hit_at_1 has no per-session scores")
	}
}
