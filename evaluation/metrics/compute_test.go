package metrics

import (
	"errors"
	"math"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// handRankings: q1 has a tie (c before d, by candidate order) and graded
// relevance; q2 has a relevant item "f" that is not a candidate.
func handRankings() []Ranking {
	return []Ranking{
		{QueryID: "q1", Candidates: []string{"a", "b", "c", "d"}, Scores: []float64{0.1, 0.9, 0.5, 0.5},
			Relevant: map[string]float64{"c": 2, "a": 1, "d": 0}},
		{QueryID: "q2", Candidates: []string{"e", "a", "b"}, Scores: []float64{2, 1, 0},
			Relevant: map[string]float64{"e": 1, "f": 3}},
	}
}

func TestComputeByHand(t *testing.T) {
	l2 := math.Log2
	rep, err := Compute(handRankings(), Options{Ks: []int{1, 3}, Catalog: []string{"a", "b", "c", "d", "e", "f"}})
	require.NoError(t, err)

	// q1 ranks b c d a: relevant at 2 and 4. q2 ranks e a b: relevant at 1, f never.
	q1, q2 := rep.PerQuery[0], rep.PerQuery[1]
	assert.Equal(t, "q1", q1.QueryID)
	assert.Equal(t, []int{4, 2, 2}, []int{q1.Candidates, q1.Relevant, q1.RelevantCandidates})
	assert.Equal(t, []int{3, 2, 1}, []int{q2.Candidates, q2.Relevant, q2.RelevantCandidates})
	assert.Equal(t, 0.5, q1.RR)
	assert.Equal(t, 1.0, q2.RR)
	assert.Equal(t, 0.5, q1.AP) // (1/2 + 2/4)/2
	assert.Equal(t, 0.5, q2.AP) // (1/1 + 0)/2
	assert.Equal(t, []float64{0, 1}, q1.Hit)
	assert.Equal(t, []float64{1, 1}, q2.Hit)
	assert.InDelta(t, (1/l2(3)+1/l2(5))/(1+1/l2(3)), q1.NDCG, 1e-15)
	assert.InDelta(t, (2/l2(3)+1/l2(5))/(2+1/l2(3)), q1.NDCGGraded, 1e-15)
	assert.InDelta(t, 1/(1+1/l2(3)), q2.NDCG, 1e-15)
	assert.InDelta(t, 1/(3+1/l2(3)), q2.NDCGGraded, 1e-15)
	assert.Equal(t, []float64{0, (1 / l2(3)) / (1 + 1/l2(3))}, q1.NDCGAt)
	assert.InDelta(t, (2/l2(3))/(2+1/l2(3)), q1.NDCGGradedAt[1], 1e-15)
	assert.InDelta(t, 1/3.0, q2.NDCGGradedAt[0], 1e-15) // e (1) first; ideal f (3)

	assert.Equal(t, 2, rep.Queries)
	assert.Equal(t, 7, rep.Pairs)
	assert.Equal(t, 6, rep.Catalog)
	assert.Equal(t, 1.0, rep.Temperature)
	assert.Equal(t, DefaultBins, rep.Bins)
	assert.Equal(t, 0.75, rep.MRR)
	assert.Equal(t, 0.5, rep.MAP)
	assert.InDelta(t, (q1.NDCG+q2.NDCG)/2, rep.NDCG, 1e-15)
	assert.InDelta(t, (q1.NDCGGraded+q2.NDCGGraded)/2, rep.NDCGGraded, 1e-15)

	// Top 1: b, e → coverage 2/6; counts 0 1 0 0 1 0 → Gini (3·1 + 5·1)/(6·2).
	at1, ok := rep.At(1)
	require.True(t, ok)
	assert.Equal(t, AtK{K: 1, Hit: 0.5, NDCG: 0.5, NDCGGraded: 1 / 6.0, Coverage: 2 / 6.0, Gini: 8 / 12.0}, at1)
	// Top 3: b c d and e a b → a 1, b 2, c 1, d 1, e 1, f 0: coverage 5/6,
	// Gini Σ(2i−7)c over 0 1 1 1 1 2 = 10, / (6·6).
	at3, _ := rep.At(3)
	assert.Equal(t, 1.0, at3.Hit)
	assert.InDelta(t, 5/6.0, at3.Coverage, 1e-15)
	assert.InDelta(t, 10/36.0, at3.Gini, 1e-15)
	_, ok = rep.At(5)
	assert.False(t, ok)

	// Calibration at T = 1 over the 7 pairs and the 2 top candidates.
	p1, p2 := Softmax([]float64{0.1, 0.9, 0.5, 0.5}, 1), Softmax([]float64{2, 1, 0}, 1)
	probs := append(append([]float64{}, p1...), p2...)
	labels := []bool{true, false, true, false, true, false, false}
	assert.InDelta(t, ECE(probs, labels, 15), rep.ECE, 1e-15)
	assert.InDelta(t, Brier(probs, labels), rep.Brier, 1e-15)
	assert.InDelta(t, ECE([]float64{p1[1], p2[0]}, []bool{false, true}, 15), rep.ECETop1, 1e-15)
	assert.InDelta(t, Brier(p1, labels[:4]), q1.Brier, 1e-15)
	// NLL: q1 mean −log p over a and c; q2 −log p(e) (f has no probability).
	assert.InDelta(t, -(math.Log(p1[0])+math.Log(p1[2]))/2, q1.NLL, 1e-14)
	assert.InDelta(t, -math.Log(p2[0]), q2.NLL, 1e-14)
	assert.InDelta(t, (q1.NLL+q2.NLL)/2, rep.NLL, 1e-15)

	// A temperature changes the probabilities only.
	hot, err := Compute(handRankings(), Options{Ks: []int{1, 3}, Temperature: 2.5})
	require.NoError(t, err)
	assert.Equal(t, rep.MRR, hot.MRR)
	assert.Equal(t, 2.5, hot.Temperature)
	assert.InDelta(t, Brier(append(Softmax([]float64{0.1, 0.9, 0.5, 0.5}, 2.5), Softmax([]float64{2, 1, 0}, 2.5)...), labels), hot.Brier, 1e-15)
	// Without a catalog it is the union of the candidates: a b c d e.
	assert.Equal(t, 5, hot.Catalog)
	assert.InDelta(t, 2/5.0, hot.Cutoffs[0].Coverage, 1e-15)
}

func TestComputeDefaults(t *testing.T) {
	rep, err := Compute(handRankings(), Options{})
	require.NoError(t, err)
	var ks []int
	for _, a := range rep.Cutoffs {
		ks = append(ks, a.K)
	}
	assert.Equal(t, []int{1, 3, 5, 10}, ks)
	assert.Equal(t, 15, rep.Bins)
	// k beyond every list: the whole list.
	at10, _ := rep.At(10)
	assert.Equal(t, 1.0, at10.Hit)
	assert.Equal(t, 1.0, at10.Coverage)
}

var mlflowName = regexp.MustCompile(`^[A-Za-z0-9_\-./ ]+$`)

func TestReportMapNames(t *testing.T) {
	rep, err := Compute(handRankings(), Options{Ks: []int{1, 5, 10}})
	require.NoError(t, err)
	m := rep.Map()
	for name := range m {
		assert.Regexp(t, mlflowName, name)
	}
	for _, name := range []string{"mrr", "map", "ndcg", "ndcg_graded", "nll", "ece", "ece_top1", "brier", "temperature",
		"queries", "pairs", "catalog_size", "hit_at_1", "hit_at_5", "hit_at_10", "ndcg_at_10", "ndcg_graded_at_5",
		"coverage_at_10", "gini_at_1", "comp_at_5"} {
		assert.Contains(t, m, name)
	}
	assert.Len(t, m, 12+6*3)
	at5, _ := rep.At(5)
	assert.Equal(t, at5.Gini, m["gini_at_5"])
	assert.Equal(t, rep.MAP, m["map"])
}

func TestComputeBadInput(t *testing.T) {
	good := func() Ranking {
		return Ranking{QueryID: "q", Candidates: []string{"a", "b"}, Scores: []float64{1, 0}, Relevant: map[string]float64{"a": 1}}
	}
	with := func(f func(*Ranking)) []Ranking {
		r := good()
		f(&r)
		return []Ranking{{QueryID: "ok", Candidates: []string{"a", "b"}, Scores: []float64{0, 1}, Relevant: map[string]float64{"b": 1}}, r}
	}
	for name, c := range map[string]struct {
		rankings []Ranking
		kind     error
	}{
		"NaN score":          {with(func(r *Ranking) { r.Scores[1] = math.NaN() }), ErrNotFinite},
		"Inf score":          {with(func(r *Ranking) { r.Scores[0] = math.Inf(-1) }), ErrNotFinite},
		"length mismatch":    {with(func(r *Ranking) { r.Scores = r.Scores[:1] }), ErrLength},
		"no candidates":      {with(func(r *Ranking) { r.Candidates, r.Scores = nil, nil }), ErrEmpty},
		"duplicate cand":     {with(func(r *Ranking) { r.Candidates[1] = "a" }), ErrDuplicate},
		"duplicate query":    {with(func(r *Ranking) { r.QueryID = "ok" }), ErrDuplicate},
		"negative grade":     {with(func(r *Ranking) { r.Relevant["b"] = -1 }), ErrGrade},
		"NaN grade":          {with(func(r *Ranking) { r.Relevant["a"] = math.NaN() }), ErrGrade},
		"nothing relevant":   {with(func(r *Ranking) { r.Relevant = map[string]float64{"a": 0} }), ErrNoRelevant},
		"nil relevant":       {with(func(r *Ranking) { r.Relevant = nil }), ErrNoRelevant},
		"not in the catalog": {with(func(r *Ranking) { r.Candidates[1] = "zz" }), ErrNotInCatalog},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Compute(c.rankings, Options{Catalog: []string{"a", "b"}})
			require.Error(t, err)
			assert.ErrorIs(t, err, c.kind)
			var ie *InputError
			require.True(t, errors.As(err, &ie), "%T", err)
			assert.Equal(t, 1, ie.Index)
			assert.Equal(t, c.rankings[1].QueryID, ie.QueryID)
			assert.Contains(t, err.Error(), `"`+c.rankings[1].QueryID+`"`)
		})
	}

	_, err := Compute(nil, Options{})
	assert.ErrorIs(t, err, ErrEmpty)

	for name, o := range map[string]Options{
		"k 0":            {Ks: []int{0}},
		"k twice":        {Ks: []int{5, 5}},
		"bins":           {Bins: -1},
		"negative T":     {Temperature: -1},
		"NaN T":          {Temperature: math.NaN()},
		"Inf T":          {Temperature: math.Inf(1)},
		"catalog repeat": {Catalog: []string{"a", "b", "a"}},
	} {
		_, err := Compute([]Ranking{good()}, o)
		var oe *OptionsError
		assert.True(t, errors.As(err, &oe), "%s: %v", name, err)
	}
}

func TestReportSeries(t *testing.T) {
	rep, err := Compute(handRankings(), Options{Ks: []int{1, 3}})
	require.NoError(t, err)
	m := rep.Map()
	var n int
	for name := range m {
		s, ok := rep.Series(name)
		if !ok {
			continue
		}
		n++
		require.Len(t, s, 2, name)
		assert.InDelta(t, m[name], (s[0]+s[1])/2, 1e-15, name)
	}
	assert.Equal(t, 4+4*2, n)
	s, _ := rep.Series("hit_at_1")
	assert.Equal(t, []float64{0, 1}, s)
	for _, name := range []string{"brier", "nll", "ece", "coverage_at_1", "hit_at_5", "nope"} {
		_, ok := rep.Series(name)
		assert.False(t, ok, name)
	}
}
