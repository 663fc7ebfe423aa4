package evaluation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/capflow/capflow/evaluation/metrics"
)

// DefaultFolds is the number of cross-validation folds when CVOptions.K is 0.
const DefaultFolds = 5

// Kinds of bad input and broken splits, wrapped by *SplitError (errors.Is).
var (
	ErrNoQueries   = errors.New("no queries")
	ErrQueryID     = errors.New("query ID is empty or repeated")
	ErrFolds       = errors.New("bad number of folds")
	ErrOption      = errors.New("bad option")
	ErrNoTimestamp = errors.New("query has no timestamp")
	ErrNoWindows   = errors.New("no window has enough queries")
	ErrLeak        = errors.New("test data leaks into training")
)

// SplitError is bad input to CrossValidate or Temporal, or a split that
// breaks its invariant (ErrLeak).
type SplitError struct {
	Err     error // one of the Err* kinds above
	Index   int   // of the query in the slice the error is about; -1 when not about one query
	QueryID string
	Reason  string
}

func (e *SplitError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("evaluation: %v: %s", e.Err, e.Reason)
	}
	return fmt.Sprintf("evaluation: query %d (%q): %v: %s", e.Index, e.QueryID, e.Err, e.Reason)
}

func (e *SplitError) Unwrap() error { return e.Err }

func splitErr(kind error, format string, args ...any) *SplitError {
	return &SplitError{Err: kind, Index: -1, Reason: fmt.Sprintf(format, args...)}
}

// CVOptions configures CrossValidate. The zero value is 5 folds, seed 0 and
// the default metrics.
type CVOptions struct {
	K       int    // folds; 0 means DefaultFolds; at least 2, at most the number of groups
	Seed    uint64 // drives the shuffle of the groups
	Metrics metrics.Options
}

// Fold is one fold: its test groups and the report of the ranker built on
// every other fold.
type Fold struct {
	Groups  []string           `json:"groups"` // test groups (sessions, else query IDs), sorted
	Train   int                `json:"train"`  // query counts
	Test    int                `json:"test"`
	Metrics map[string]float64 `json:"metrics"` // Report.Map()
	Report  metrics.Report     `json:"-"`
}

// CVReport is a cross-validation: every fold, and the mean and sample
// standard deviation of each metric of Report.Map across folds.
type CVReport struct {
	Options CVOptions          `json:"options"` // K filled in
	Folds   []Fold             `json:"folds"`
	Mean    map[string]float64 `json:"mean"`
	Std     map[string]float64 `json:"std"`
}

// CrossValidate runs k-fold cross-validation grouped by Query.Session (a
// query without one is its own group): fold i's queries are the test set of
// a ranker f builds from all the others, so no session is on both sides.
//
// Folds are assigned deterministically from opts.Seed: the distinct groups
// are sorted and shuffled, then each in turn goes into the fold with the
// fewest queries so far (ties: the lower index). With one query per group
// this is round-robin over the shuffled groups; in general, fold sizes
// differ by at most the largest group's size.
//
// The queries given to f and to each fold's test set keep their order in qs.
// f must not modify them. Bad input is a *SplitError; errors of f and of
// metrics.Compute are wrapped with the fold's index.
func CrossValidate(ctx context.Context, qs []Query, f Factory, opts CVOptions) (*CVReport, error) {
	if opts.K == 0 {
		opts.K = DefaultFolds
	}
	if err := checkIDs(qs); err != nil {
		return nil, err
	}
	if err := checkMetricsOptions(opts.Metrics); err != nil {
		return nil, err
	}
	groups, size := groupSizes(qs)
	if opts.K < 2 || opts.K > len(groups) {
		return nil, splitErr(ErrFolds, "K = %d, want 2 ≤ K ≤ %d (the number of groups)", opts.K, len(groups))
	}
	rand.New(rand.NewPCG(opts.Seed, 0x63766f6c64)).Shuffle(len(groups), func(i, j int) {
		groups[i], groups[j] = groups[j], groups[i]
	})
	fold := balanceFolds(groups, size, opts.K)

	out := &CVReport{Options: opts, Folds: make([]Fold, opts.K)}
	reps := make([]metrics.Report, opts.K)
	for i := range opts.K {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var train, test []Query
		for _, q := range qs {
			if fold[q.group()] == i {
				test = append(test, q)
			} else {
				train = append(train, q)
			}
		}
		rep, err := trainAndTest(ctx, f, train, test, opts.Metrics, CheckDisjointGroups)
		if err != nil {
			return nil, fmt.Errorf("evaluation: cross-validation fold %d of %d: %w", i, opts.K, err)
		}
		var names []string
		for g, fi := range fold {
			if fi == i {
				names = append(names, g)
			}
		}
		slices.Sort(names)
		reps[i] = rep
		out.Folds[i] = Fold{Groups: names, Train: len(train), Test: len(test), Metrics: rep.Map(), Report: rep}
	}
	out.Mean, out.Std = meanStd(reps)
	return out, nil
}

// Map returns the mean and standard deviation of every metric, as
// "<metric>_mean" and "<metric>_std", for MLflow.
func (r *CVReport) Map() map[string]float64 { return joinMeanStd(r.Mean, r.Std) }

// CheckDisjointGroups returns a *SplitError (ErrLeak) naming the first test
// query whose group (session, else ID) also has a training query: the
// invariant of a grouped split.
func CheckDisjointGroups(train, test []Query) error {
	seen := make(map[string]string, len(train)) // group → a training query's ID
	for _, q := range train {
		seen[q.group()] = q.ID
	}
	for i, q := range test {
		if id, ok := seen[q.group()]; ok {
			return &SplitError{Err: ErrLeak, Index: i, QueryID: q.ID,
				Reason: fmt.Sprintf("test query's group %q also has training query %q", q.group(), id)}
		}
	}
	return nil
}

// trainAndTest checks the split with check, builds a ranker on train and
// evaluates it on test.
func trainAndTest(ctx context.Context, f Factory, train, test []Query, opts metrics.Options, check func(train, test []Query) error) (metrics.Report, error) {
	if err := check(train, test); err != nil {
		return metrics.Report{}, err
	}
	r, err := f(ctx, train)
	if err != nil {
		return metrics.Report{}, fmt.Errorf("factory on %d training queries: %w", len(train), err)
	}
	rep, _, err := Holdout(ctx, r, test, opts)
	if err != nil {
		return metrics.Report{}, fmt.Errorf("test on %d queries: %w", len(test), err)
	}
	return rep, nil
}

// checkIDs requires queries, each with a non-empty ID of its own: reports
// and fold assignments name queries by ID.
func checkIDs(qs []Query) error {
	if len(qs) == 0 {
		return splitErr(ErrNoQueries, "nothing to split")
	}
	seen := make(map[string]int, len(qs))
	for i, q := range qs {
		if q.ID == "" {
			return &SplitError{Err: ErrQueryID, Index: i, Reason: "empty ID"}
		}
		if j, dup := seen[q.ID]; dup {
			return &SplitError{Err: ErrQueryID, Index: i, QueryID: q.ID, Reason: fmt.Sprintf("same ID as query %d", j)}
		}
		seen[q.ID] = i
	}
	return nil
}

// checkMetricsOptions rejects bad metrics options before any ranker is
// built. metrics has no exported validator; Compute checks its options
// before its rankings, so on no rankings it fails with either the options
// error or ErrEmpty.
func checkMetricsOptions(opts metrics.Options) error {
	_, err := metrics.Compute(nil, opts)
	if oe := (*metrics.OptionsError)(nil); errors.As(err, &oe) {
		return fmt.Errorf("evaluation: %w", err)
	}
	return nil
}

// groupSizes returns the distinct groups of qs, sorted, and their query
// counts.
func groupSizes(qs []Query) ([]string, map[string]int) {
	size := map[string]int{}
	for _, q := range qs {
		size[q.group()]++
	}
	groups := make([]string, 0, len(size))
	for g := range size {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	return groups, size
}

// balanceFolds assigns groups, in the given order, each to the fold with
// the fewest queries so far (ties: the lower index). Fold sizes then differ
// by at most the largest group's size, and the first k groups go to k
// different folds, so with k ≤ len(groups) no fold is empty.
func balanceFolds(groups []string, size map[string]int, k int) map[string]int {
	load := make([]int, k)
	fold := make(map[string]int, len(groups))
	for _, g := range groups {
		i := 0
		for j := range load {
			if load[j] < load[i] {
				i = j
			}
		}
		fold[g] = i
		load[i] += size[g]
	}
	return fold
}

// meanStd returns the mean and the sample standard deviation of every
// metric of Report.Map across reps; std is nil for fewer than two reports,
// where it is undefined.
func meanStd(reps []metrics.Report) (mean, std map[string]float64) {
	if len(reps) == 0 {
		return nil, nil
	}
	maps := make([]map[string]float64, len(reps))
	for i, r := range reps {
		maps[i] = r.Map()
	}
	n := float64(len(reps))
	mean = make(map[string]float64, len(maps[0]))
	for name := range maps[0] {
		var s float64
		for _, m := range maps {
			s += m[name]
		}
		mean[name] = s / n
	}
	if len(reps) < 2 {
		return mean, nil
	}
	std = make(map[string]float64, len(mean))
	for name, mu := range mean {
		var ss float64
		for _, m := range maps {
			d := m[name] - mu
			ss += d * d
		}
		std[name] = math.Sqrt(ss / (n - 1))
	}
	return mean, std
}

func joinMeanStd(mean, std map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(mean)+len(std))
	for name, v := range mean {
		out[name+"_mean"] = v
	}
	for name, v := range std {
		out[name+"_std"] = v
	}
	return out
}
