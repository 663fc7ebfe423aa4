package metrics

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// defaultKs are the cut-offs when Options.Ks is empty.
var defaultKs = []int{1, 3, 5, 10}

// Ranking is one query's scored candidates and its ground truth.
type Ranking struct {
	QueryID    string
	Candidates []string           // capability IDs, unique
	Scores     []float64          // one per candidate, finite; higher ranks first, ties by candidate order
	Relevant   map[string]float64 // graded relevance; > 0 is relevant, 0 is not, at least one > 0
}

// Options configures Compute. The zero value is usable.
type Options struct {
	Ks          []int    // cut-offs for Hit, nDCG, coverage and Gini; default 1, 3, 5, 10
	Bins        int      // ECE bins; default DefaultBins (15)
	Catalog     []string // capabilities for coverage and Gini; default: every candidate of every ranking
	Temperature float64  // softmax temperature (e.g. from FitTemperature); 0 means 1, the raw scores
}

// Report is every metric of a set of rankings: means over queries, except
// where a field says otherwise.
type Report struct {
	Queries     int
	Pairs       int // (query, candidate) pairs behind ECE and Brier
	Catalog     int // catalog size behind coverage and Gini
	Temperature float64
	Bins        int

	MRR        float64
	MAP        float64
	NDCG       float64 // binary gains, whole list
	NDCGGraded float64 // linear gains, whole list
	Cutoffs    []AtK   // one per Options.Ks, in that order

	NLL     float64 // mean −log p of the relevant candidates, over queries that have one among their candidates
	ECE     float64 // over all (query, candidate) pairs
	ECETop1 float64 // over each query's top candidate: confidence against "it is relevant"
	Brier   float64 // over all (query, candidate) pairs

	PerQuery []QueryMetrics // in the order of the rankings, for paired statistics
}

// AtK holds the metrics at one cut-off k.
type AtK struct {
	K          int
	Hit        float64
	NDCG       float64
	NDCGGraded float64
	Comp       float64 // COMP@k: share of queries with every relevant item in the top k
	Coverage   float64 // fraction (not percent) of the catalog in at least one query's top k
	Gini       float64 // of the catalog's top-k counts, never-recommended capabilities as zeros
}

// QueryMetrics is one query's share of a Report.
type QueryMetrics struct {
	QueryID            string
	Candidates         int
	Relevant           int // items with grade > 0
	RelevantCandidates int // of which among the candidates
	RR, AP             float64
	NDCG, NDCGGraded   float64
	Hit                []float64 // parallel to Report.Cutoffs
	NDCGAt             []float64
	NDCGGradedAt       []float64
	CompAt             []float64
	NLL                float64 // 0 when RelevantCandidates is 0 (then left out of Report.NLL)
	Brier              float64 // mean over this query's candidates
}

// At returns the metrics at cut-off k, if k was computed.
func (r Report) At(k int) (AtK, bool) {
	for _, a := range r.Cutoffs {
		if a.K == k {
			return a, true
		}
	}
	return AtK{}, false
}

// Map returns the metrics under names MLflow accepts (letters, digits and
// _ - . / space): mrr, map, ndcg, ndcg_graded, hit_at_K, ndcg_at_K,
// ndcg_graded_at_K, comp_at_K, coverage_at_K, gini_at_K, nll, ece, ece_top1, brier,
// temperature, queries, pairs, catalog_size.
func (r Report) Map() map[string]float64 {
	m := map[string]float64{
		"mrr": r.MRR, "map": r.MAP, "ndcg": r.NDCG, "ndcg_graded": r.NDCGGraded,
		"nll": r.NLL, "ece": r.ECE, "ece_top1": r.ECETop1, "brier": r.Brier,
		"temperature": r.Temperature, "queries": float64(r.Queries), "pairs": float64(r.Pairs),
		"catalog_size": float64(r.Catalog),
	}
	for _, a := range r.Cutoffs {
		k := strconv.Itoa(a.K)
		m["hit_at_"+k] = a.Hit
		m["ndcg_at_"+k] = a.NDCG
		m["ndcg_graded_at_"+k] = a.NDCGGraded
		m["comp_at_"+k] = a.Comp
		m["coverage_at_"+k] = a.Coverage
		m["gini_at_"+k] = a.Gini
	}
	return m
}

// Series returns the per-query values, in ranking order, of a metric that
// Map reports as a mean over queries (mrr, map, ndcg, ndcg_graded, hit_at_K,
// ndcg_at_K, ndcg_graded_at_K, comp_at_K), for paired statistics between two systems
// evaluated on the same queries. False for any other name.
func (r Report) Series(name string) ([]float64, bool) {
	pick := func(f func(q QueryMetrics) float64) []float64 {
		out := make([]float64, len(r.PerQuery))
		for i, q := range r.PerQuery {
			out[i] = f(q)
		}
		return out
	}
	switch name {
	case "mrr":
		return pick(func(q QueryMetrics) float64 { return q.RR }), true
	case "map":
		return pick(func(q QueryMetrics) float64 { return q.AP }), true
	case "ndcg":
		return pick(func(q QueryMetrics) float64 { return q.NDCG }), true
	case "ndcg_graded":
		return pick(func(q QueryMetrics) float64 { return q.NDCGGraded }), true
	}
	for ki, a := range r.Cutoffs {
		k := strconv.Itoa(a.K)
		switch name {
		case "hit_at_" + k:
			return pick(func(q QueryMetrics) float64 { return q.Hit[ki] }), true
		case "ndcg_at_" + k:
			return pick(func(q QueryMetrics) float64 { return q.NDCGAt[ki] }), true
		case "ndcg_graded_at_" + k:
			return pick(func(q QueryMetrics) float64 { return q.NDCGGradedAt[ki] }), true
		case "comp_at_" + k:
			return pick(func(q QueryMetrics) float64 { return q.CompAt[ki] }), true
		}
	}
	return nil, false
}

// Kinds of bad input, wrapped by InputError (errors.Is).
var (
	ErrEmpty        = errors.New("empty")
	ErrLength       = errors.New("scores and candidates differ in length")
	ErrNotFinite    = errors.New("score is not finite")
	ErrDuplicate    = errors.New("duplicate")
	ErrGrade        = errors.New("relevance grade is negative or not finite")
	ErrNoRelevant   = errors.New("no relevant item")
	ErrNotInCatalog = errors.New("candidate is not in the catalog")
)

// InputError is a bad ranking, named by its index and query ID.
type InputError struct {
	Index   int // in the rankings slice; -1 when about the slice as a whole
	QueryID string
	Err     error // one of the Err* kinds above
	Reason  string
}

func (e *InputError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("metrics: %v: %s", e.Err, e.Reason)
	}
	return fmt.Sprintf("metrics: ranking %d (query %q): %v: %s", e.Index, e.QueryID, e.Err, e.Reason)
}

func (e *InputError) Unwrap() error { return e.Err }

// OptionsError is a bad Options field.
type OptionsError struct {
	Field  string
	Reason string
}

func (e *OptionsError) Error() string { return "metrics: options: " + e.Field + ": " + e.Reason }

// validate checks one ranking; seen holds the query IDs of earlier rankings.
func (r Ranking) validate(i int, seen map[string]bool) error {
	bad := func(kind error, format string, args ...any) error {
		return &InputError{Index: i, QueryID: r.QueryID, Err: kind, Reason: fmt.Sprintf(format, args...)}
	}
	if seen[r.QueryID] {
		return bad(ErrDuplicate, "query ID repeats an earlier ranking's")
	}
	seen[r.QueryID] = true
	if len(r.Candidates) == 0 {
		return bad(ErrEmpty, "no candidates")
	}
	if len(r.Scores) != len(r.Candidates) {
		return bad(ErrLength, "%d scores for %d candidates", len(r.Scores), len(r.Candidates))
	}
	ids := make(map[string]bool, len(r.Candidates))
	for j, c := range r.Candidates {
		if s := r.Scores[j]; math.IsNaN(s) || math.IsInf(s, 0) {
			return bad(ErrNotFinite, "candidate %q scores %v", c, s)
		}
		if ids[c] {
			return bad(ErrDuplicate, "candidate %q appears twice", c)
		}
		ids[c] = true
	}
	relevant := false
	for id, g := range r.Relevant {
		if math.IsNaN(g) || math.IsInf(g, 0) || g < 0 {
			return bad(ErrGrade, "item %q has grade %v", id, g)
		}
		relevant = relevant || g > 0
	}
	if !relevant {
		return bad(ErrNoRelevant, "no item has a grade > 0")
	}
	return nil
}

// withDefaults validates opts and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if len(o.Ks) == 0 {
		o.Ks = defaultKs
	}
	seen := map[int]bool{}
	for _, k := range o.Ks {
		if k < 1 {
			return o, &OptionsError{Field: "Ks", Reason: fmt.Sprintf("cut-off %d is below 1", k)}
		}
		if seen[k] {
			return o, &OptionsError{Field: "Ks", Reason: fmt.Sprintf("cut-off %d appears twice", k)}
		}
		seen[k] = true
	}
	if o.Bins == 0 {
		o.Bins = DefaultBins
	}
	if o.Bins < 1 {
		return o, &OptionsError{Field: "Bins", Reason: fmt.Sprintf("%d bins", o.Bins)}
	}
	if o.Temperature == 0 {
		o.Temperature = 1
	}
	if !(o.Temperature > 0) || math.IsInf(o.Temperature, 0) {
		return o, &OptionsError{Field: "Temperature", Reason: fmt.Sprintf("%v is not a positive finite number", o.Temperature)}
	}
	return o, nil
}

// Compute evaluates rankings: every query is ranked by Rank (ties by
// candidate order), scored by the functions of this package, and averaged
// with equal weight; probabilities are softmax(scores/opts.Temperature) per
// query. Bad input is an *InputError or *OptionsError, checked before any
// metric is computed.
func Compute(rankings []Ranking, opts Options) (Report, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Report{}, err
	}
	if len(rankings) == 0 {
		return Report{}, &InputError{Index: -1, Err: ErrEmpty, Reason: "no rankings"}
	}
	catalog := make(map[string]int, len(opts.Catalog)) // ID → index into counts
	for _, id := range opts.Catalog {
		if _, dup := catalog[id]; dup {
			return Report{}, &OptionsError{Field: "Catalog", Reason: fmt.Sprintf("capability %q appears twice", id)}
		}
		catalog[id] = len(catalog)
	}
	seen := make(map[string]bool, len(rankings))
	for i, r := range rankings {
		if err := r.validate(i, seen); err != nil {
			return Report{}, err
		}
		for _, c := range r.Candidates {
			if _, ok := catalog[c]; ok {
				continue
			}
			if len(opts.Catalog) > 0 {
				return Report{}, &InputError{Index: i, QueryID: r.QueryID, Err: ErrNotInCatalog, Reason: fmt.Sprintf("candidate %q", c)}
			}
			catalog[c] = len(catalog)
		}
	}

	rep := Report{
		Queries: len(rankings), Catalog: len(catalog), Temperature: opts.Temperature, Bins: opts.Bins,
		Cutoffs: make([]AtK, len(opts.Ks)), PerQuery: make([]QueryMetrics, len(rankings)),
	}
	counts := make([][]float64, len(opts.Ks))
	for ki, k := range opts.Ks {
		rep.Cutoffs[ki].K = k
		counts[ki] = make([]float64, len(catalog))
	}
	all, top1 := newBinner(opts.Bins), newBinner(opts.Bins)
	var nllQueries int
	for i, r := range rankings {
		order := Rank(r.Scores)
		ranked := make([]string, len(order))
		for pos, j := range order {
			ranked[pos] = r.Candidates[j]
		}
		rel := make(map[string]bool, len(r.Relevant))
		for id, g := range r.Relevant {
			if g > 0 {
				rel[id] = true
			}
		}
		q := QueryMetrics{
			QueryID: r.QueryID, Candidates: len(ranked), Relevant: len(rel),
			RR: ReciprocalRank(ranked, rel), AP: AveragePrecision(ranked, rel),
			NDCG: NDCGAt(ranked, rel, 0), NDCGGraded: GradedNDCGAt(ranked, r.Relevant, 0),
			Hit: make([]float64, len(opts.Ks)), NDCGAt: make([]float64, len(opts.Ks)), NDCGGradedAt: make([]float64, len(opts.Ks)),
			CompAt: make([]float64, len(opts.Ks)),
		}
		for ki, k := range opts.Ks {
			q.Hit[ki] = HitAt(ranked, rel, k)
			q.NDCGAt[ki] = NDCGAt(ranked, rel, k)
			q.NDCGGradedAt[ki] = GradedNDCGAt(ranked, r.Relevant, k)
			q.CompAt[ki] = CompletenessAt(ranked, rel, k)
			for _, id := range ranked[:min(k, len(ranked))] {
				counts[ki][catalog[id]]++
			}
		}

		p := Softmax(r.Scores, opts.Temperature)
		own := newBinner(1) // this query's Brier
		var relMean float64
		for j, c := range r.Candidates {
			all.add(p[j], rel[c])
			own.add(p[j], rel[c])
			if rel[c] {
				q.RelevantCandidates++
				relMean += r.Scores[j]
			}
		}
		top1.add(p[order[0]], rel[ranked[0]])
		q.Brier = own.brier()
		if q.RelevantCandidates > 0 {
			q.NLL = queryNLL(r.Scores, relMean/float64(q.RelevantCandidates), opts.Temperature)
			rep.NLL += q.NLL
			nllQueries++
		}
		rep.PerQuery[i] = q

		rep.MRR += q.RR
		rep.MAP += q.AP
		rep.NDCG += q.NDCG
		rep.NDCGGraded += q.NDCGGraded
		for ki := range opts.Ks {
			rep.Cutoffs[ki].Hit += q.Hit[ki]
			rep.Cutoffs[ki].NDCG += q.NDCGAt[ki]
			rep.Cutoffs[ki].NDCGGraded += q.NDCGGradedAt[ki]
			rep.Cutoffs[ki].Comp += q.CompAt[ki]
		}
	}

	n := float64(len(rankings))
	rep.MRR /= n
	rep.MAP /= n
	rep.NDCG /= n
	rep.NDCGGraded /= n
	for ki := range rep.Cutoffs {
		a := &rep.Cutoffs[ki]
		a.Hit /= n
		a.NDCG /= n
		a.NDCGGraded /= n
		a.Comp /= n
		covered := 0
		for _, c := range counts[ki] {
			if c > 0 {
				covered++
			}
		}
		a.Coverage = float64(covered) / float64(len(catalog))
		a.Gini = Gini(counts[ki])
	}
	if nllQueries > 0 {
		rep.NLL /= float64(nllQueries)
	}
	rep.Pairs = all.total
	rep.ECE, rep.Brier = all.ece(), all.brier()
	rep.ECETop1 = top1.ece()
	return rep, nil
}
