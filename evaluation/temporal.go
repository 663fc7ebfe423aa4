package evaluation

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/capflow/capflow/evaluation/metrics"
)

// Defaults of TemporalOptions.
const (
	DefaultTrainWindow = 30 * 24 * time.Hour
	DefaultTestWindow  = 7 * 24 * time.Hour
)

// maxWindows bounds the windows of one Temporal call, so that a tiny Step
// is an error rather than a loop over billions of empty windows.
const maxWindows = 100_000

// TemporalOptions configures Temporal. The zero value is 30-day training
// windows, 7-day test windows advancing by 7 days from the earliest query,
// and the default metrics.
type TemporalOptions struct {
	Train time.Duration // training window; 0 means DefaultTrainWindow
	Test  time.Duration // test window; 0 means DefaultTestWindow
	Step  time.Duration // advance between windows; 0 means Test
	Start time.Time     // start of the first training window; zero means the earliest timestamp

	// A window with fewer training or test queries is skipped; 0 means 1.
	MinTrain, MinTest int

	Metrics metrics.Options
}

// Window is one rolling window: training on [TrainStart, TestStart), test
// on [TestStart, TestEnd).
type Window struct {
	Index      int                `json:"index"` // in the sequence of windows, skipped ones included
	TrainStart time.Time          `json:"train_start"`
	TestStart  time.Time          `json:"test_start"` // = TrainStart + Train, the end of training
	TestEnd    time.Time          `json:"test_end"`
	Train      int                `json:"train"` // query counts
	Test       int                `json:"test"`
	Metrics    map[string]float64 `json:"metrics,omitempty"` // Report.Map(); nil when skipped
	Report     metrics.Report     `json:"-"`                 // zero when skipped
}

// TemporalReport is a rolling temporal validation: the evaluated windows,
// the skipped ones, and the mean and sample standard deviation of each
// metric of Report.Map across the evaluated windows (Std is nil when only
// one was evaluated).
type TemporalReport struct {
	Options TemporalOptions    `json:"options"` // defaults filled in
	Windows []Window           `json:"windows"`
	Skipped []Window           `json:"skipped"` // too few training or test queries; not evaluated
	Mean    map[string]float64 `json:"mean"`
	Std     map[string]float64 `json:"std,omitempty"`
}

// Map returns the mean and standard deviation of every metric, as
// "<metric>_mean" and "<metric>_std", for MLflow.
func (r *TemporalReport) Map() map[string]float64 { return joinMeanStd(r.Mean, r.Std) }

// Temporal runs rolling temporal validation: for t = Start, Start+Step, …,
// f builds a ranker from the queries in [t, t+Train), which is evaluated on
// those in [t+Train, t+Train+Test). Windows advance while their test window
// starts at or before the latest timestamp, so the last one may reach past
// the data. Queries before Start are in no window.
//
// Every query needs a Timestamp. Each window's split is checked with
// CheckChronological before f sees it. Queries are given to f, and tested,
// in timestamp order (ties in their order in qs); f must not modify them.
// Bad input is a *SplitError (ErrNoWindows when no window has enough
// queries); errors of f and metrics.Compute are wrapped with the window.
func Temporal(ctx context.Context, qs []Query, f Factory, opts TemporalOptions) (*TemporalReport, error) {
	if err := checkIDs(qs); err != nil {
		return nil, err
	}
	for i, q := range qs {
		if q.Timestamp.IsZero() {
			return nil, &SplitError{Err: ErrNoTimestamp, Index: i, QueryID: q.ID, Reason: "temporal validation orders queries by time"}
		}
	}
	byTime := slices.Clone(qs)
	slices.SortStableFunc(byTime, func(a, b Query) int { return a.Timestamp.Compare(b.Timestamp) })
	opts, err := opts.withDefaults(byTime[0].Timestamp)
	if err != nil {
		return nil, err
	}
	if err := checkMetricsOptions(opts.Metrics); err != nil {
		return nil, err
	}
	last := byTime[len(byTime)-1].Timestamp
	firstTest := opts.Start.Add(opts.Train)
	if last.Before(firstTest) {
		return nil, splitErr(ErrNoWindows, "the latest query (%s) precedes the first test window (%s)", last.Format(time.RFC3339), firstTest.Format(time.RFC3339))
	}
	count := int64(last.Sub(firstTest)/opts.Step) + 1
	if count > maxWindows {
		return nil, splitErr(ErrOption, "Step %v gives over %d windows", opts.Step, maxWindows)
	}
	// index returns the position of the first query at or after t.
	index := func(t time.Time) int {
		return sort.Search(len(byTime), func(i int) bool { return !byTime[i].Timestamp.Before(t) })
	}

	out := &TemporalReport{Options: opts}
	var reps []metrics.Report
	for w := range int(count) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := opts.Start.Add(time.Duration(w) * opts.Step)
		win := Window{Index: w, TrainStart: start, TestStart: start.Add(opts.Train)}
		win.TestEnd = win.TestStart.Add(opts.Test)
		lo, mid, hi := index(win.TrainStart), index(win.TestStart), index(win.TestEnd)
		win.Train, win.Test = mid-lo, hi-mid
		if win.Train < opts.MinTrain || win.Test < opts.MinTest {
			out.Skipped = append(out.Skipped, win)
			continue
		}
		rep, err := trainAndTest(ctx, f, byTime[lo:mid:mid], byTime[mid:hi:hi], opts.Metrics, CheckChronological)
		if err != nil {
			return nil, fmt.Errorf("evaluation: temporal window %d (test from %s): %w", w, win.TestStart.Format(time.RFC3339), err)
		}
		win.Report, win.Metrics = rep, rep.Map()
		out.Windows = append(out.Windows, win)
		reps = append(reps, rep)
	}
	if len(out.Windows) == 0 {
		return nil, splitErr(ErrNoWindows, "all %d windows have fewer than %d training or %d test queries", count, opts.MinTrain, opts.MinTest)
	}
	out.Mean, out.Std = meanStd(reps)
	return out, nil
}

// withDefaults validates o and fills in its defaults; earliest is the
// earliest timestamp of the data.
func (o TemporalOptions) withDefaults(earliest time.Time) (TemporalOptions, error) {
	if o.Train == 0 {
		o.Train = DefaultTrainWindow
	}
	if o.Test == 0 {
		o.Test = DefaultTestWindow
	}
	if o.Step == 0 {
		o.Step = o.Test
	}
	if o.Train < 0 || o.Test < 0 || o.Step < 0 {
		return o, splitErr(ErrOption, "Train = %v, Test = %v, Step = %v, must not be negative", o.Train, o.Test, o.Step)
	}
	if o.MinTrain == 0 {
		o.MinTrain = 1
	}
	if o.MinTest == 0 {
		o.MinTest = 1
	}
	if o.MinTrain < 0 || o.MinTest < 0 {
		return o, splitErr(ErrOption, "MinTrain = %d, MinTest = %d, must not be negative", o.MinTrain, o.MinTest)
	}
	if o.Start.IsZero() {
		o.Start = earliest
	}
	return o, nil
}

// CheckChronological returns a *SplitError unless every training query
// precedes every test query: max(train timestamp) < min(test timestamp),
// strictly. A query without a timestamp is ErrNoTimestamp; a violation is
// ErrLeak naming the earliest test query and the latest training query. An
// empty side is trivially in order.
func CheckChronological(train, test []Query) error {
	latest, earliest := -1, -1
	for i, q := range train {
		if q.Timestamp.IsZero() {
			return &SplitError{Err: ErrNoTimestamp, Index: i, QueryID: q.ID, Reason: "training query"}
		}
		if latest < 0 || q.Timestamp.After(train[latest].Timestamp) {
			latest = i
		}
	}
	for i, q := range test {
		if q.Timestamp.IsZero() {
			return &SplitError{Err: ErrNoTimestamp, Index: i, QueryID: q.ID, Reason: "test query"}
		}
		if earliest < 0 || q.Timestamp.Before(test[earliest].Timestamp) {
			earliest = i
		}
	}
	if latest < 0 || earliest < 0 {
		return nil
	}
	if tr, te := train[latest], test[earliest]; !tr.Timestamp.Before(te.Timestamp) {
		return &SplitError{Err: ErrLeak, Index: earliest, QueryID: te.ID, Reason: fmt.Sprintf(
			"test query at %s does not follow training query %q at %s",
			te.Timestamp.Format(time.RFC3339Nano), tr.ID, tr.Timestamp.Format(time.RFC3339Nano))}
	}
	return nil
}
