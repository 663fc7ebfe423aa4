package evaluation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/capflow/capflow/evaluation/metrics"
	"github.com/capflow/capflow/models/ranker"
)

// fnRanker scores each candidate with a function; best first, ties in
// candidate order.
type fnRanker func(q ranker.Query, c string) float64

func (f fnRanker) Rank(ctx context.Context, q ranker.Query) ([]ranker.Scored, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]ranker.Scored, len(q.Candidates))
	for i, c := range q.Candidates {
		out[i] = ranker.Scored{ID: c, Score: f(q, c)}
	}
	slices.SortStableFunc(out, func(a, b ranker.Scored) int {
		if a.Score > b.Score {
			return -1
		}
		if a.Score < b.Score {
			return 1
		}
		return 0
	})
	return out, nil
}

// popularityFactory learns how often each capability was relevant in
// training and ranks by that count.
func popularityFactory(_ context.Context, train []Query) (Ranker, error) {
	count := map[string]float64{}
	for _, q := range train {
		for id, g := range q.Relevant {
			if g > 0 {
				count[id]++
			}
		}
	}
	return fnRanker(func(_ ranker.Query, c string) float64 { return count[c] }), nil
}

// memoriserFactory remembers the relevant capabilities of each training
// query text: perfect on a text it has seen, all ties (candidate order) on
// any other. A test query whose text leaked into training scores a hit.
func memoriserFactory(_ context.Context, train []Query) (Ranker, error) {
	seen := map[string]bool{} // text + "\x00" + capability
	for _, q := range train {
		for id, g := range q.Relevant {
			if g > 0 {
				seen[q.Text+"\x00"+id] = true
			}
		}
	}
	return fnRanker(func(q ranker.Query, c string) float64 {
		if seen[q.Text+"\x00"+c] {
			return 1
		}
		return 0
	}), nil
}

// recorder wraps a factory and keeps the training query IDs of each call.
type recorder struct {
	f     Factory
	mu    sync.Mutex
	calls [][]string
}

func (r *recorder) factory(ctx context.Context, train []Query) (Ranker, error) {
	ids := make([]string, len(train))
	for i, q := range train {
		ids[i] = q.ID
	}
	r.mu.Lock()
	r.calls = append(r.calls, ids)
	r.mu.Unlock()
	return r.f(ctx, train)
}

// cvQuery is a query whose only relevant capability is rel, among the
// candidates c, b, a (in that order: an untrained ranker's ties favour c).
func cvQuery(id, session, rel string) Query {
	return Query{
		Query:    ranker.Query{Text: id, Candidates: []string{"c", "b", "a"}},
		ID:       id,
		Session:  session,
		Relevant: map[string]float64{rel: 1},
	}
}

func testIDs(rep metrics.Report) []string {
	ids := make([]string, len(rep.PerQuery))
	for i, q := range rep.PerQuery {
		ids[i] = q.QueryID
	}
	return ids
}

func TestBalanceFolds(t *testing.T) {
	// Each in turn to the lightest fold (loads after it in brackets):
	// a→0 (1,0,0), b→1 (1,3,0), c→2 (1,3,2), d→0 (4,3,2), e→2 (4,3,3),
	// f→1 (4,5,3): the tie of folds 1 and 2 goes to the lower index.
	size := map[string]int{"a": 1, "b": 3, "c": 2, "d": 3, "e": 1, "f": 2}
	got := balanceFolds([]string{"a", "b", "c", "d", "e", "f"}, size, 3)
	want := map[string]int{"a": 0, "d": 0, "b": 1, "f": 1, "c": 2, "e": 2}
	if !mapsEqual(got, want) {
		t.Errorf("uneven groups: got %v, want %v", got, want)
	}

	// One query per group: round-robin in the given order.
	order := []string{"g4", "g0", "g6", "g1", "g5", "g3", "g2"}
	ones := map[string]int{}
	for _, g := range order {
		ones[g] = 1
	}
	got = balanceFolds(order, ones, 3)
	want = map[string]int{"g4": 0, "g0": 1, "g6": 2, "g1": 0, "g5": 1, "g3": 2, "g2": 0}
	if !mapsEqual(got, want) {
		t.Errorf("singletons: got %v, want %v", got, want)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestCrossValidatePopularity: 10 queries where a is relevant and 5 where
// b is, one per group, 5 folds of 3. Every fold's training set has ≥ 7 a's,
// ≤ 5 b's and ≥ 2 b's, no c: the ranking is always a, b, c, so an a-query
// has RR 1 and a b-query RR 1/2. With equal folds the mean MRR is the
// overall one, 12.5/15.
func TestCrossValidatePopularity(t *testing.T) {
	var qs []Query
	for i := range 15 {
		rel := "a"
		if i%3 == 2 {
			rel = "b"
		}
		qs = append(qs, cvQuery(fmt.Sprintf("q%02d-%s", i, rel), "", rel))
	}
	rec := &recorder{f: popularityFactory}
	rep, err := CrossValidate(context.Background(), qs, rec.factory, CVOptions{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Options.K != DefaultFolds || len(rep.Folds) != 5 || len(rec.calls) != 5 {
		t.Fatalf("K %d, %d folds, %d factory calls; want 5 of each", rep.Options.K, len(rep.Folds), len(rec.calls))
	}

	tested := map[string]int{}
	var mrrs []float64
	for i, f := range rep.Folds {
		ids := testIDs(f.Report)
		if f.Test != 3 || f.Train != 12 || len(ids) != 3 || len(rec.calls[i]) != 12 {
			t.Errorf("fold %d: %d test (%d reported), %d train (factory saw %d); want 3 and 12", i, f.Test, len(ids), f.Train, len(rec.calls[i]))
		}
		if !slices.Equal(f.Groups, slices.Sorted(slices.Values(ids))) {
			t.Errorf("fold %d: groups %v, test queries %v", i, f.Groups, ids)
		}
		for _, id := range ids {
			tested[id]++
			if slices.Contains(rec.calls[i], id) {
				t.Errorf("fold %d: test query %s was in training", i, id)
			}
		}
		var want float64 // independent of the code under test: RR by the query's label
		for _, id := range ids {
			if strings.HasSuffix(id, "-a") {
				want += 1
			} else {
				want += 0.5
			}
		}
		want /= 3
		if math.Abs(f.Report.MRR-want) > 1e-12 || f.Metrics["mrr"] != f.Report.MRR {
			t.Errorf("fold %d: MRR %v (map %v), want %v", i, f.Report.MRR, f.Metrics["mrr"], want)
		}
		mrrs = append(mrrs, want)
	}
	if len(tested) != 15 {
		t.Errorf("%d queries tested, want each of 15 once: %v", len(tested), tested)
	}
	for id, n := range tested {
		if n != 1 {
			t.Errorf("query %s tested %d times", id, n)
		}
	}

	if got := rep.Mean["mrr"]; math.Abs(got-12.5/15) > 1e-12 {
		t.Errorf("mean MRR %v, want %v", got, 12.5/15)
	}
	if got := rep.Mean["hit_at_1"]; math.Abs(got-10.0/15) > 1e-12 {
		t.Errorf("mean Hit@1 %v, want %v", got, 10.0/15)
	}
	var ss float64
	for _, m := range mrrs {
		ss += (m - 12.5/15) * (m - 12.5/15)
	}
	if got, want := rep.Std["mrr"], math.Sqrt(ss/4); math.Abs(got-want) > 1e-12 {
		t.Errorf("std MRR %v, want %v", got, want)
	}
	if rep.Std["queries"] != 0 || rep.Mean["queries"] != 3 {
		t.Errorf("queries: mean %v std %v, want 3 and 0", rep.Mean["queries"], rep.Std["queries"])
	}
	m := rep.Map()
	if m["mrr_mean"] != rep.Mean["mrr"] || m["mrr_std"] != rep.Std["mrr"] || len(m) != 2*len(rep.Mean) {
		t.Errorf("Map: %d entries, mrr_mean %v, mrr_std %v", len(m), m["mrr_mean"], m["mrr_std"])
	}
}

// TestCrossValidateNoLeak: 10 sessions of 2 queries that share a text and
// an answer. The memoriser hits only a text it trained on, so with folds
// grouped by session it never hits (MRR = 1/10: the answer is the last
// candidate). Folding the same queries by query ID lets twins straddle
// folds, and the memoriser scores: this is the failure the grouping
// prevents, and what the first half would show if it leaked.
func TestCrossValidateNoLeak(t *testing.T) {
	caps := make([]string, 10)
	for i := range caps {
		caps[i] = fmt.Sprintf("cap%d", i)
	}
	var qs []Query
	for s := range 10 {
		cands := append(slices.Clone(caps[:s]), caps[s+1:]...)
		cands = append(cands, caps[s])
		for j := range 2 {
			qs = append(qs, Query{
				Query:    ranker.Query{Text: fmt.Sprintf("task %d", s), Candidates: cands},
				ID:       fmt.Sprintf("s%d-q%d", s, j),
				Session:  fmt.Sprintf("s%d", s),
				Relevant: map[string]float64{caps[s]: 1},
			})
		}
	}
	ctx := context.Background()

	rep, err := CrossValidate(ctx, qs, memoriserFactory, CVOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range rep.Folds {
		if f.Metrics["hit_at_1"] != 0 || math.Abs(f.Report.MRR-0.1) > 1e-12 {
			t.Errorf("fold %d (groups %v): Hit@1 %v, MRR %v; want 0 and 0.1: test sessions leaked into training", i, f.Groups, f.Metrics["hit_at_1"], f.Report.MRR)
		}
		if len(f.Groups) != 2 || f.Test != 4 {
			t.Errorf("fold %d: groups %v, %d test queries; want 2 sessions, 4 queries", i, f.Groups, f.Test)
		}
	}
	if rep.Mean["hit_at_1"] != 0 || rep.Std["mrr"] > 1e-12 {
		t.Errorf("mean Hit@1 %v, std MRR %v; want 0 and 0", rep.Mean["hit_at_1"], rep.Std["mrr"])
	}

	// The memoriser works: trained on everything, it is perfect.
	all, err := memoriserFactory(ctx, qs)
	if err != nil {
		t.Fatal(err)
	}
	if self, _, err := Holdout(ctx, all, qs, metrics.Options{}); err != nil || self.MRR != 1 {
		t.Fatalf("memoriser on its training data: MRR %v, err %v; want 1", self.MRR, err)
	}
	// Without sessions, twins land in different folds and the memoriser hits.
	ungrouped := slices.Clone(qs)
	for i := range ungrouped {
		ungrouped[i].Session = ""
	}
	leaky, err := CrossValidate(ctx, ungrouped, memoriserFactory, CVOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if leaky.Mean["hit_at_1"] <= 0 {
		t.Errorf("folded by query ID, mean Hit@1 %v; want > 0 (twins straddling folds)", leaky.Mean["hit_at_1"])
	}
}

func TestCrossValidateGroupsAndSeed(t *testing.T) {
	// 8 sessions of sizes 1..8 (36 queries), 3 folds.
	var qs []Query
	for s := 1; s <= 8; s++ {
		for j := range s {
			qs = append(qs, cvQuery(fmt.Sprintf("s%d-%d", s, j), fmt.Sprintf("s%d", s), "a"))
		}
	}
	ctx := context.Background()
	assignments := map[string]bool{}
	for seed := range uint64(10) {
		rep, err := CrossValidate(ctx, qs, popularityFactory, CVOptions{K: 3, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		again, err := CrossValidate(ctx, qs, popularityFactory, CVOptions{K: 3, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		var key []string
		lo, hi := len(qs), 0
		for i, f := range rep.Folds {
			if !slices.Equal(f.Groups, again.Folds[i].Groups) {
				t.Errorf("seed %d fold %d: groups %v then %v", seed, i, f.Groups, again.Folds[i].Groups)
			}
			for _, id := range testIDs(f.Report) {
				if s := strings.Split(id, "-")[0]; !slices.Contains(f.Groups, s) {
					t.Errorf("seed %d fold %d: query %s outside the fold's sessions %v", seed, i, id, f.Groups)
				}
			}
			lo, hi = min(lo, f.Test), max(hi, f.Test)
			key = append(key, strings.Join(f.Groups, ","))
		}
		if hi-lo > 8 { // at most the largest session
			t.Errorf("seed %d: fold sizes range %d..%d", seed, lo, hi)
		}
		assignments[strings.Join(key, "|")] = true
	}
	if len(assignments) < 2 {
		t.Errorf("10 seeds gave %d assignment(s); the seed does not shuffle", len(assignments))
	}
}

func TestCheckDisjointGroups(t *testing.T) {
	train := []Query{cvQuery("t1", "s1", "a"), cvQuery("t2", "", "a")}
	if err := CheckDisjointGroups(train, []Query{cvQuery("x1", "s2", "a"), cvQuery("x2", "", "a")}); err != nil {
		t.Errorf("disjoint: %v", err)
	}
	for name, test := range map[string][]Query{
		"shared session":         {cvQuery("x1", "s2", "a"), cvQuery("x2", "s1", "a")},
		"ID is a training group": {cvQuery("x1", "s2", "a"), cvQuery("x2", "t2", "a")},
	} {
		err := CheckDisjointGroups(train, test)
		var se *SplitError
		if !errors.Is(err, ErrLeak) || !errors.As(err, &se) || se.Index != 1 || se.QueryID != "x2" {
			t.Errorf("%s: got %v, want ErrLeak on query 1 (x2)", name, err)
		}
	}
}

func TestCrossValidateBadInput(t *testing.T) {
	ctx := context.Background()
	qs := []Query{cvQuery("q1", "s1", "a"), cvQuery("q2", "s1", "b"), cvQuery("q3", "s2", "a"), cvQuery("q4", "", "b")}
	calls := 0
	counting := func(ctx context.Context, train []Query) (Ranker, error) {
		calls++
		return popularityFactory(ctx, train)
	}
	for _, c := range []struct {
		name  string
		qs    []Query
		opts  CVOptions
		kind  error
		index int
	}{
		{"default K over 3 groups", qs, CVOptions{}, ErrFolds, -1},
		{"K 1", qs, CVOptions{K: 1}, ErrFolds, -1},
		{"K negative", qs, CVOptions{K: -2}, ErrFolds, -1},
		{"K 4 over 3 groups", qs, CVOptions{K: 4}, ErrFolds, -1},
		{"no queries", nil, CVOptions{K: 2}, ErrNoQueries, -1},
		{"empty ID", append(slices.Clone(qs), cvQuery("", "s3", "a")), CVOptions{K: 2}, ErrQueryID, 4},
		{"repeated ID", append(slices.Clone(qs), cvQuery("q2", "s3", "a")), CVOptions{K: 2}, ErrQueryID, 4},
	} {
		_, err := CrossValidate(ctx, c.qs, counting, c.opts)
		var se *SplitError
		if !errors.Is(err, c.kind) || !errors.As(err, &se) || se.Index != c.index {
			t.Errorf("%s: got %v, want %v at index %d", c.name, err, c.kind, c.index)
		}
	}
	var oe *metrics.OptionsError
	if _, err := CrossValidate(ctx, qs, counting, CVOptions{K: 3, Metrics: metrics.Options{Ks: []int{0}}}); !errors.As(err, &oe) {
		t.Errorf("bad metrics options: got %v, want *metrics.OptionsError", err)
	}
	if calls != 0 {
		t.Errorf("the factory ran %d times on bad input", calls)
	}

	// Errors during a fold name it and wrap the cause.
	boom := errors.New("boom")
	_, err := CrossValidate(ctx, qs, func(context.Context, []Query) (Ranker, error) { return nil, boom }, CVOptions{K: 3})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "fold 0 of 3") {
		t.Errorf("factory error: got %v", err)
	}
	bad := slices.Clone(qs)
	bad[3].Relevant = map[string]float64{"a": 0}
	var ie *metrics.InputError
	if _, err := CrossValidate(ctx, bad, popularityFactory, CVOptions{K: 3}); !errors.As(err, &ie) || !errors.Is(err, metrics.ErrNoRelevant) {
		t.Errorf("query without a relevant item: got %v, want metrics.ErrNoRelevant", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := CrossValidate(cancelled, qs, popularityFactory, CVOptions{K: 3}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
}

func TestMeanStd(t *testing.T) {
	var reps []metrics.Report
	for _, x := range []float64{1, 2, 3, 4} {
		reps = append(reps, metrics.Report{MRR: x, Queries: 10})
	}
	mean, std := meanStd(reps)
	if mean["mrr"] != 2.5 || math.Abs(std["mrr"]-math.Sqrt(5.0/3)) > 1e-15 {
		t.Errorf("mrr: mean %v std %v, want 2.5 and %v (sample)", mean["mrr"], std["mrr"], math.Sqrt(5.0/3))
	}
	if mean["queries"] != 10 || std["queries"] != 0 || len(mean) != len(reps[0].Map()) || len(std) != len(mean) {
		t.Errorf("queries: mean %v std %v; %d means, %d stds", mean["queries"], std["queries"], len(mean), len(std))
	}
	mean, std = meanStd(reps[:1])
	if mean["mrr"] != 1 || std != nil {
		t.Errorf("one report: mean %v, std %v; want 1 and nil", mean["mrr"], std)
	}
}
