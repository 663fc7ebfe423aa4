package evaluation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capflow/capflow/evaluation/metrics"
)

var day0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func day(d int) time.Time { return day0.Add(time.Duration(d) * 24 * time.Hour) }

// dailyQueries returns one query at midnight of each given day, ID "d<day>",
// a relevant for even days and b for odd ones.
func dailyQueries(days ...int) []Query {
	qs := make([]Query, len(days))
	for i, d := range days {
		rel := "a"
		if d%2 == 1 {
			rel = "b"
		}
		qs[i] = cvQuery(fmt.Sprintf("d%d", d), "", rel)
		qs[i].Timestamp = day(d)
	}
	return qs
}

func dayRange(from, to int) []int {
	var out []int
	for d := from; d <= to; d++ {
		out = append(out, d)
	}
	return out
}

func ids(days ...int) []string {
	out := make([]string, len(days))
	for i, d := range days {
		out[i] = fmt.Sprintf("d%d", d)
	}
	return out
}

// TestTemporalWindows: days 0..9, train 3 d, test 2 d, step 2 d:
//
//	window 0: train days 0 1 2, test 3 4
//	window 1: train 2 3 4,      test 5 6
//	window 2: train 4 5 6,      test 7 8
//	window 3: train 6 7 8,      test 9 (10 is past the data)
//
// and no window 4: its test would start on day 11, after the last query.
func TestTemporalWindows(t *testing.T) {
	qs := dailyQueries(dayRange(0, 9)...)
	slices.Reverse(qs) // input order must not matter
	rec := &recorder{f: popularityFactory}
	opts := TemporalOptions{Train: 3 * 24 * time.Hour, Test: 2 * 24 * time.Hour}
	rep, err := Temporal(context.Background(), qs, rec.factory, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		train, test []int
	}{{[]int{0, 1, 2}, []int{3, 4}}, {[]int{2, 3, 4}, []int{5, 6}}, {[]int{4, 5, 6}, []int{7, 8}}, {[]int{6, 7, 8}, []int{9}}}
	if len(rep.Windows) != len(want) || len(rep.Skipped) != 0 || len(rec.calls) != len(want) {
		t.Fatalf("%d windows, %d skipped, %d factory calls; want %d, 0, %d", len(rep.Windows), len(rep.Skipped), len(rec.calls), len(want), len(want))
	}
	if o := rep.Options; o.Step != 2*24*time.Hour || !o.Start.Equal(day(0)) || o.MinTrain != 1 || o.MinTest != 1 {
		t.Errorf("options with defaults: %+v", o)
	}
	for i, w := range rep.Windows {
		start := 2 * i
		if w.Index != i || !w.TrainStart.Equal(day(start)) || !w.TestStart.Equal(day(start+3)) || !w.TestEnd.Equal(day(start+5)) {
			t.Errorf("window %d: index %d, %s / %s / %s", i, w.Index, w.TrainStart, w.TestStart, w.TestEnd)
		}
		if !slices.Equal(rec.calls[i], ids(want[i].train...)) {
			t.Errorf("window %d: trained on %v, want %v (in time order)", i, rec.calls[i], ids(want[i].train...))
		}
		if got := testIDs(w.Report); !slices.Equal(got, ids(want[i].test...)) {
			t.Errorf("window %d: tested %v, want %v", i, got, ids(want[i].test...))
		}
		if w.Train != len(want[i].train) || w.Test != len(want[i].test) || w.Metrics["queries"] != float64(w.Test) {
			t.Errorf("window %d: counts %d/%d, want %d/%d", i, w.Train, w.Test, len(want[i].train), len(want[i].test))
		}
	}
	// Popularity: every window trains on two a days and one b day, so it
	// ranks a, b, c; an a day has RR 1, a b day RR 1/2. Windows 0..2 test a
	// b day and an a day (0.75), window 3 only day 9, a b day (0.5).
	for i, wantMRR := range []float64{0.75, 0.75, 0.75, 0.5} {
		if got := rep.Windows[i].Report.MRR; got != wantMRR {
			t.Errorf("window %d: MRR %v, want %v", i, got, wantMRR)
		}
	}
	if got := rep.Mean["mrr"]; got != 2.75/4 {
		t.Errorf("mean MRR %v, want %v", got, 2.75/4)
	}
	if got := rep.Std["mrr"]; got != 0.125 { // deviations 1/16 ×3 and −3/16: √((3+9)/256/3) = 1/8
		t.Errorf("std MRR %v, want 0.125", got)
	}

	// MinTest 2 skips window 3 and counts it.
	opts.MinTest = 2
	rep, err = Temporal(context.Background(), qs, popularityFactory, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Windows) != 3 || len(rep.Skipped) != 1 || rep.Skipped[0].Index != 3 || rep.Skipped[0].Test != 1 || rep.Skipped[0].Metrics != nil {
		t.Errorf("MinTest 2: %d windows, skipped %+v; want 3 and window 3 (1 test query)", len(rep.Windows), rep.Skipped)
	}
}

// TestTemporalDefaults: daily queries over days 0..59 with 30-day training
// and 7-day test windows: tests start on days 30, 37, 44, 51, 58 (the last
// holds days 58 and 59); a sixth would start on day 65.
func TestTemporalDefaults(t *testing.T) {
	qs := dailyQueries(dayRange(0, 59)...)
	rep, err := Temporal(context.Background(), qs, popularityFactory, TemporalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o := rep.Options
	if o.Train != 30*24*time.Hour || o.Test != 7*24*time.Hour || o.Step != o.Test || !o.Start.Equal(day(0)) {
		t.Errorf("defaults: %+v", o)
	}
	var starts, tests []int
	for _, w := range rep.Windows {
		starts = append(starts, int(w.TestStart.Sub(day0)/(24*time.Hour)))
		tests = append(tests, w.Test)
		if w.Train != 30 {
			t.Errorf("window %d: %d training queries, want 30", w.Index, w.Train)
		}
	}
	if !slices.Equal(starts, []int{30, 37, 44, 51, 58}) || !slices.Equal(tests, []int{7, 7, 7, 7, 2}) {
		t.Errorf("test windows start on days %v with %v queries", starts, tests)
	}
}

// TestTemporalGapAndStart: a gap in the data and a Start before it give
// skipped windows, counted, and no queries from before Start.
func TestTemporalGapAndStart(t *testing.T) {
	qs := dailyQueries(append(dayRange(0, 3), dayRange(10, 13)...)...)
	rec := &recorder{f: popularityFactory}
	rep, err := Temporal(context.Background(), qs, rec.factory, TemporalOptions{
		Start: day(1), Train: 2 * 24 * time.Hour, Test: 24 * time.Hour, Step: 24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Windows start on days 1..11 (tests on days 3..13). Evaluated: train
	// 1 2 / test 3; train 10 / test 11; train 10 11 / test 12; train 11 12 /
	// test 13. The others lack training or test queries (train 2 3 / test 4,
	// …, train 8 9 / test 10).
	var evaluated []int
	for _, w := range rep.Windows {
		evaluated = append(evaluated, w.Index)
	}
	if !slices.Equal(evaluated, []int{0, 8, 9, 10}) || len(rep.Skipped) != 7 {
		t.Errorf("evaluated windows %v, %d skipped; want [0 8 9 10] and 7", evaluated, len(rep.Skipped))
	}
	if len(rec.calls) != 4 || !slices.Equal(rec.calls[0], ids(1, 2)) || !slices.Equal(rec.calls[1], ids(10)) || !slices.Equal(rec.calls[3], ids(11, 12)) {
		t.Errorf("training sets %v", rec.calls)
	}
	if rep.Std == nil {
		t.Error("no std over 4 windows")
	}

	// One window: a mean but no standard deviation.
	rep, err = Temporal(context.Background(), dailyQueries(0, 1, 2, 3), popularityFactory, TemporalOptions{Train: 3 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if m := rep.Map(); len(rep.Windows) != 1 || rep.Std != nil || len(m) != len(rep.Mean) || m["mrr_mean"] != rep.Windows[0].Report.MRR {
		t.Errorf("one window: %d windows, std %v, map %v", len(rep.Windows), rep.Std, m)
	}
}

// TestTemporalNoLeak: every query has its own text, so the memoriser can
// only hit a test query that is also in training. It never may.
func TestTemporalNoLeak(t *testing.T) {
	qs := dailyQueries(dayRange(0, 40)...)
	ctx := context.Background()
	rep, err := Temporal(ctx, qs, memoriserFactory, TemporalOptions{Train: 10 * 24 * time.Hour, Test: 5 * 24 * time.Hour, Step: 3 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range rep.Windows {
		if w.Metrics["hit_at_1"] != 0 {
			t.Errorf("window %d: Hit@1 %v, want 0: test queries leaked into training", w.Index, w.Metrics["hit_at_1"])
		}
	}
	// The memoriser works: trained on everything, it is perfect.
	all, _ := memoriserFactory(ctx, qs)
	if self, _, err := Holdout(ctx, all, qs, metrics.Options{}); err != nil || self.MRR != 1 {
		t.Fatalf("memoriser on its training data: MRR %v, err %v; want 1", self.MRR, err)
	}
}

func TestCheckChronological(t *testing.T) {
	at := func(id string, ts time.Time) Query {
		q := cvQuery(id, "", "a")
		q.Timestamp = ts
		return q
	}
	train := []Query{at("t1", day(2)), at("t2", day(4)), at("t3", day(1))}
	for name, c := range map[string]struct {
		train, test []Query
		kind        error
		index       int
		id          string
	}{
		"in order":                 {train, []Query{at("x1", day(6)), at("x2", day(4).Add(time.Nanosecond))}, nil, 0, ""},
		"empty test":               {train, nil, nil, 0, ""},
		"empty train":              {nil, []Query{at("x1", day(0))}, nil, 0, ""},
		"equal timestamps":         {train, []Query{at("x1", day(6)), at("x2", day(4))}, ErrLeak, 1, "x2"},
		"same instant, other zone": {train, []Query{at("x1", day(4).In(time.FixedZone("X", 3600)))}, ErrLeak, 0, "x1"},
		"test before train":        {train, []Query{at("x1", day(6)), at("x2", day(5)), at("x3", day(3))}, ErrLeak, 2, "x3"},
		"untimed test":             {train, []Query{at("x1", day(6)), at("x2", time.Time{})}, ErrNoTimestamp, 1, "x2"},
		"untimed train":            {[]Query{at("t1", day(1)), at("t2", time.Time{})}, []Query{at("x1", day(6))}, ErrNoTimestamp, 1, "t2"},
	} {
		err := CheckChronological(c.train, c.test)
		if c.kind == nil {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		var se *SplitError
		if !errors.Is(err, c.kind) || !errors.As(err, &se) || se.Index != c.index || se.QueryID != c.id {
			t.Errorf("%s: got %v, want %v on query %d (%s)", name, err, c.kind, c.index, c.id)
			continue
		}
		if c.kind == ErrLeak && !strings.Contains(err.Error(), `"t2"`) {
			t.Errorf("%s: %v does not name the latest training query t2", name, err)
		}
	}
}

func TestTemporalBadInput(t *testing.T) {
	ctx := context.Background()
	qs := dailyQueries(dayRange(0, 9)...)
	untimed := slices.Clone(qs)
	untimed[4].Timestamp = time.Time{}
	short := TemporalOptions{Train: 3 * 24 * time.Hour, Test: 24 * time.Hour}
	calls := 0
	counting := func(ctx context.Context, train []Query) (Ranker, error) {
		calls++
		return popularityFactory(ctx, train)
	}
	for _, c := range []struct {
		name  string
		qs    []Query
		opts  TemporalOptions
		kind  error
		index int
	}{
		{"no timestamp", untimed, short, ErrNoTimestamp, 4},
		{"no queries", nil, short, ErrNoQueries, -1},
		{"repeated ID", append(slices.Clone(qs), qs[2]), short, ErrQueryID, 10},
		{"negative Train", qs, TemporalOptions{Train: -time.Hour}, ErrOption, -1},
		{"negative Step", qs, TemporalOptions{Train: time.Hour, Step: -time.Hour}, ErrOption, -1},
		{"negative MinTest", qs, TemporalOptions{Train: time.Hour, MinTest: -1}, ErrOption, -1},
		{"tiny Step", qs, TemporalOptions{Train: time.Hour, Step: time.Second}, ErrOption, -1},
		{"default 30-day training over 10 days", qs, TemporalOptions{}, ErrNoWindows, -1},
		{"Start after the data", qs, TemporalOptions{Train: time.Hour, Start: day(20)}, ErrNoWindows, -1},
		{"every window too small", qs, TemporalOptions{Train: 3 * 24 * time.Hour, MinTrain: 4}, ErrNoWindows, -1},
	} {
		_, err := Temporal(ctx, c.qs, counting, c.opts)
		var se *SplitError
		if !errors.Is(err, c.kind) || !errors.As(err, &se) || se.Index != c.index {
			t.Errorf("%s: got %v, want %v at index %d", c.name, err, c.kind, c.index)
		}
	}
	var oe *metrics.OptionsError
	if _, err := Temporal(ctx, qs, counting, TemporalOptions{Train: 3 * 24 * time.Hour, Metrics: metrics.Options{Bins: -1}}); !errors.As(err, &oe) {
		t.Errorf("bad metrics options: got %v, want *metrics.OptionsError", err)
	}
	if calls != 0 {
		t.Errorf("the factory ran %d times on bad input", calls)
	}
	boom := errors.New("boom")
	_, err := Temporal(ctx, qs, func(context.Context, []Query) (Ranker, error) { return nil, boom }, short)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "window 0") {
		t.Errorf("factory error: got %v", err)
	}
}
