package features

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/capflow/capflow/featurestore"
)

// Defaults of GraphOptions.
const (
	DefaultDamping          = 0.85
	DefaultPageRankTol      = 1e-10
	DefaultPageRankMaxIter  = 1000
	DefaultPriorSuccessRate = 0.75
)

// GraphOptions configures GraphFeatures. The zero value selects the defaults.
type GraphOptions struct {
	// Damping is PageRank's damping factor, in (0, 1); 0 selects
	// DefaultDamping.
	Damping float64
	// Tol stops the PageRank power iteration once the L1 change of the rank
	// vector is below it; 0 selects DefaultPageRankTol.
	Tol float64
	// MaxIter bounds the power iteration; 0 selects DefaultPageRankMaxIter.
	MaxIter int
	// CoUsageWeight adds, to the edge between two capabilities, this weight
	// per session in which both were selected (experiences before asOf with
	// a non-empty SessionID). 0, the default, leaves the graph purely
	// structural.
	CoUsageWeight float64
	// PriorSuccessRate is the success rate of a capability with no
	// experiences and no catalog SuccessRate, in [0, 1]; 0 selects
	// DefaultPriorSuccessRate. The default 0.75 lies inside (0.5, 0.9), where
	// the design's reliability factor is 1.0, so an unused capability is
	// neither boosted nor penalised.
	PriorSuccessRate float64
}

func (o GraphOptions) withDefaults() (GraphOptions, error) {
	if o.Damping == 0 {
		o.Damping = DefaultDamping
	}
	if o.Tol == 0 {
		o.Tol = DefaultPageRankTol
	}
	if o.MaxIter == 0 {
		o.MaxIter = DefaultPageRankMaxIter
	}
	if o.PriorSuccessRate == 0 {
		o.PriorSuccessRate = DefaultPriorSuccessRate
	}
	switch {
	case !(o.Damping > 0 && o.Damping < 1):
		return o, &GraphInputError{What: "options", Reason: fmt.Sprintf("damping %v outside (0, 1)", o.Damping)}
	case !(o.Tol > 0) || math.IsInf(o.Tol, 1):
		return o, &GraphInputError{What: "options", Reason: fmt.Sprintf("tolerance %v not a positive number", o.Tol)}
	case o.MaxIter < 0:
		return o, &GraphInputError{What: "options", Reason: fmt.Sprintf("max iterations %d negative", o.MaxIter)}
	case !(o.CoUsageWeight >= 0) || math.IsInf(o.CoUsageWeight, 1):
		return o, &GraphInputError{What: "options", Reason: fmt.Sprintf("co-usage weight %v not a finite non-negative number", o.CoUsageWeight)}
	case !(o.PriorSuccessRate >= 0 && o.PriorSuccessRate <= 1):
		return o, &GraphInputError{What: "options", Reason: fmt.Sprintf("prior success rate %v outside [0, 1]", o.PriorSuccessRate)}
	}
	return o, nil
}

// GraphInputError reports bad input to GraphFeatures: What names the item
// (a capability id, "experience 3", "options", "pagerank") and Reason says
// what is wrong with it.
type GraphInputError struct {
	What, Reason string
}

func (e *GraphInputError) Error() string {
	return "features: graph features: " + e.What + ": " + e.Reason
}

// CapabilityStats are the non-embedding columns of a capability_features row.
// Fill copies them into a featurestore.CapabilityFeatures.
type CapabilityStats struct {
	ToolCount             int
	PageRank              float64
	ClusteringCoefficient float64
	AvgExecutionTimeMs    float64
	SuccessRate           float64
	UsageCount1d          int
	UsageCount7d          int
	UsageCount30d         int
}

// Fill copies s into the matching fields of f, leaving the id, embeddings,
// version and timestamp alone.
func (s CapabilityStats) Fill(f *featurestore.CapabilityFeatures) {
	f.ToolCount = s.ToolCount
	f.PageRank = s.PageRank
	f.ClusteringCoefficient = s.ClusteringCoefficient
	f.AvgExecutionTimeMs = s.AvgExecutionTimeMs
	f.SuccessRate = s.SuccessRate
	f.UsageCount1d = s.UsageCount1d
	f.UsageCount7d = s.UsageCount7d
	f.UsageCount30d = s.UsageCount30d
}

// outcomeScore maps an outcome to its contribution to the success rate.
func outcomeScore(o featurestore.Outcome) (float64, bool) {
	switch o {
	case featurestore.OutcomeSuccess:
		return 1, true
	case featurestore.OutcomePartial:
		return 0.5, true
	case featurestore.OutcomeFailure:
		return 0, true
	}
	return 0, false
}

// GraphFeatures computes, for every capability of the catalog, its graph and
// usage features as of asOf. Only experiences strictly before asOf are used,
// so features computed for a past time never see that time's future.
//
//   - ToolCount is the number of distinct tools the capability holds,
//     transitively through member capabilities.
//   - The graph is the capability overlap projection: one node per
//     capability and an undirected edge between two capabilities weighted by
//     the number of tools their transitive tool sets share, plus
//     opts.CoUsageWeight per session that selected both. Capabilities, not
//     tools, are the nodes because the features describe capabilities;
//     weighting by shared tools keeps nesting visible (a parent is linked to
//     each child by the child's size) and lets capabilities that overlap
//     without nesting meet. PageRank is the weighted PageRank of this graph
//     with each edge taken in both directions (isolated nodes are dangling
//     and spread their rank uniformly); the ranks sum to 1. The clustering
//     coefficient is the unweighted local one, 2·T/(k·(k−1)) for a node of
//     degree k in T triangles, and 0 when k < 2.
//   - AvgExecutionTimeMs and SuccessRate are the means over experiences that
//     selected the capability, scoring success 1, partial 0.5, failure 0.
//     Without experiences they fall back to the catalog's
//     AvgExecutionTimeMs (else 0) and SuccessRate (else
//     opts.PriorSuccessRate).
//   - UsageCountNd counts experiences that selected the capability with a
//     timestamp in [asOf − N·24h, asOf).
//
// Duplicate or unknown ids, member cycles, experiences with an invalid
// outcome, a non-finite execution time or an unknown selected capability are
// *GraphInputError. The result is deterministic: it depends on neither map
// order nor input order beyond the catalog itself.
func GraphFeatures(tools []featurestore.Tool, caps []featurestore.Capability, exps []featurestore.Experience, asOf time.Time, opts GraphOptions) (map[string]CapabilityStats, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}

	toolIdx := make(map[string]int, len(tools))
	for _, t := range tools {
		if _, dup := toolIdx[t.ID]; dup {
			return nil, &GraphInputError{What: "tool " + t.ID, Reason: "duplicate id"}
		}
		toolIdx[t.ID] = len(toolIdx)
	}
	capIdx := make(map[string]int, len(caps))
	for i, c := range caps {
		if _, dup := capIdx[c.ID]; dup {
			return nil, &GraphInputError{What: "capability " + c.ID, Reason: "duplicate id"}
		}
		if _, clash := toolIdx[c.ID]; clash {
			return nil, &GraphInputError{What: "capability " + c.ID, Reason: "is also a tool id"}
		}
		capIdx[c.ID] = i
	}

	toolSets, err := transitiveTools(caps, capIdx, toolIdx)
	if err != nil {
		return nil, err
	}

	// Usage statistics, and the sessions each capability was selected in.
	type usage struct {
		n, withTime int
		score, ms   float64
		d1, d7, d30 int
	}
	use := make([]usage, len(caps))
	sessions := make(map[string][]int)
	for i, e := range exps {
		what := fmt.Sprintf("experience %d", i)
		c, ok := capIdx[e.SelectedCapability]
		if !ok {
			return nil, &GraphInputError{What: what, Reason: fmt.Sprintf("selected capability %q is not in the catalog", e.SelectedCapability)}
		}
		s, ok := outcomeScore(e.Outcome)
		if !ok {
			return nil, &GraphInputError{What: what, Reason: fmt.Sprintf("invalid outcome %q", e.Outcome)}
		}
		if math.IsNaN(e.ExecutionTimeMs) || math.IsInf(e.ExecutionTimeMs, 0) || e.ExecutionTimeMs < 0 {
			return nil, &GraphInputError{What: what, Reason: fmt.Sprintf("execution time %v not a finite non-negative number", e.ExecutionTimeMs)}
		}
		if !e.Timestamp.Before(asOf) {
			continue
		}
		u := &use[c]
		u.n++
		u.score += s
		u.ms += e.ExecutionTimeMs
		age := asOf.Sub(e.Timestamp)
		if age <= 24*time.Hour {
			u.d1++
		}
		if age <= 7*24*time.Hour {
			u.d7++
		}
		if age <= 30*24*time.Hour {
			u.d30++
		}
		if opts.CoUsageWeight > 0 && e.SessionID != "" {
			sessions[e.SessionID] = append(sessions[e.SessionID], c)
		}
	}

	adj := overlapGraph(toolSets, len(tools))
	if opts.CoUsageWeight > 0 {
		addCoUsage(adj, sessions, opts.CoUsageWeight)
	}
	rank, err := pageRank(adj, opts.Damping, opts.Tol, opts.MaxIter)
	if err != nil {
		return nil, err
	}
	cc := clustering(adj)

	out := make(map[string]CapabilityStats, len(caps))
	for i, c := range caps {
		u := use[i]
		s := CapabilityStats{
			ToolCount:             len(toolSets[i]),
			PageRank:              rank[i],
			ClusteringCoefficient: cc[i],
			UsageCount1d:          u.d1,
			UsageCount7d:          u.d7,
			UsageCount30d:         u.d30,
		}
		switch {
		case u.n > 0:
			s.SuccessRate = u.score / float64(u.n)
			s.AvgExecutionTimeMs = u.ms / float64(u.n)
		default:
			s.SuccessRate = opts.PriorSuccessRate
			if c.SuccessRate != nil && *c.SuccessRate >= 0 && *c.SuccessRate <= 1 {
				s.SuccessRate = *c.SuccessRate
			}
			if c.AvgExecutionTimeMs != nil && *c.AvgExecutionTimeMs >= 0 && !math.IsInf(*c.AvgExecutionTimeMs, 1) {
				s.AvgExecutionTimeMs = *c.AvgExecutionTimeMs
			}
		}
		out[c.ID] = s
	}
	return out, nil
}

// transitiveTools returns, per capability, the sorted indices of the tools it
// holds directly or through member capabilities.
func transitiveTools(caps []featurestore.Capability, capIdx, toolIdx map[string]int) ([][]int, error) {
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]int, len(caps))
	sets := make([][]int, len(caps))
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case done:
			return nil
		case visiting:
			return &GraphInputError{What: "capability " + caps[i].ID, Reason: "is part of a member cycle"}
		}
		state[i] = visiting
		var set []int
		for _, m := range caps[i].Members {
			if t, ok := toolIdx[m]; ok {
				set = append(set, t)
				continue
			}
			c, ok := capIdx[m]
			if !ok {
				return &GraphInputError{What: "capability " + caps[i].ID, Reason: fmt.Sprintf("member %q is neither a tool nor a capability", m)}
			}
			if err := visit(c); err != nil {
				return err
			}
			set = append(set, sets[c]...)
		}
		slices.Sort(set)
		sets[i] = slices.Compact(set)
		state[i] = done
		return nil
	}
	for i := range caps {
		if err := visit(i); err != nil {
			return nil, err
		}
	}
	return sets, nil
}

// edge is a weighted neighbour in an adjacency list.
type edge struct {
	to int
	w  float64
}

// overlapGraph returns the capability overlap projection as sorted adjacency
// lists: u and v are joined with weight |tools(u) ∩ tools(v)| when positive.
// It inverts the tool sets so the cost is Σ_tool (capabilities holding it)²,
// not all capability pairs.
func overlapGraph(toolSets [][]int, nTools int) [][]edge {
	holders := make([][]int, nTools)
	for c, set := range toolSets {
		for _, t := range set {
			holders[t] = append(holders[t], c)
		}
	}
	shared := make([]map[int]float64, len(toolSets))
	for _, hs := range holders {
		for a, u := range hs {
			for _, v := range hs[a+1:] {
				if shared[u] == nil {
					shared[u] = make(map[int]float64)
				}
				if shared[v] == nil {
					shared[v] = make(map[int]float64)
				}
				shared[u][v]++
				shared[v][u]++
			}
		}
	}
	return adjacency(shared)
}

// addCoUsage adds w to the edge between every two distinct capabilities
// selected in the same session, once per session.
func addCoUsage(adj [][]edge, sessions map[string][]int, w float64) {
	extra := make([]map[int]float64, len(adj))
	for _, cs := range sessions {
		slices.Sort(cs)
		cs = slices.Compact(cs)
		for a, u := range cs {
			for _, v := range cs[a+1:] {
				if extra[u] == nil {
					extra[u] = make(map[int]float64)
				}
				if extra[v] == nil {
					extra[v] = make(map[int]float64)
				}
				extra[u][v] += w
				extra[v][u] += w
			}
		}
	}
	for u, es := range adj {
		if extra[u] == nil {
			continue
		}
		for _, e := range es {
			extra[u][e.to] += e.w
		}
	}
	for u, list := range adjacency(extra) {
		if list != nil {
			adj[u] = list
		}
	}
}

// adjacency turns per-node neighbour maps into adjacency lists sorted by
// neighbour, so every later sum runs in a fixed order.
func adjacency(nbrs []map[int]float64) [][]edge {
	adj := make([][]edge, len(nbrs))
	for u, m := range nbrs {
		if len(m) == 0 {
			continue
		}
		list := make([]edge, 0, len(m))
		for v, w := range m {
			list = append(list, edge{to: v, w: w})
		}
		slices.SortFunc(list, func(a, b edge) int { return a.to - b.to })
		adj[u] = list
	}
	return adj
}

// pageRank is weighted PageRank by power iteration on the undirected graph
// adj, each edge used in both directions: r'(v) = (1−d)/n + d·(Σ_u r(u)·
// w(u,v)/W(u) + Σ_dangling r(u)/n), where W(u) is u's total edge weight. It
// starts from the uniform vector and iterates in a fixed order, so unlike
// gonum's network.PageRank (which seeds its start vector from the global
// math/rand source) it returns the same bits on every run; the tests check it
// against gonum.
func pageRank(adj [][]edge, damp, tol float64, maxIter int) ([]float64, error) {
	n := len(adj)
	if n == 0 {
		return nil, nil
	}
	out := make([]float64, n)
	for u, es := range adj {
		for _, e := range es {
			out[u] += e.w
		}
	}
	r := make([]float64, n)
	next := make([]float64, n)
	for i := range r {
		r[i] = 1 / float64(n)
	}
	for range maxIter {
		var dangling float64
		for u := range adj {
			if out[u] == 0 {
				dangling += r[u]
			}
		}
		base := (1-damp)/float64(n) + damp*dangling/float64(n)
		for i := range next {
			next[i] = base
		}
		for u, es := range adj {
			if out[u] == 0 {
				continue
			}
			f := damp * r[u] / out[u]
			for _, e := range es {
				next[e.to] += f * e.w
			}
		}
		var diff, sum float64
		for i := range next {
			diff += math.Abs(next[i] - r[i])
			sum += next[i]
		}
		// Renormalise against rounding drift so the ranks sum to 1.
		for i := range next {
			next[i] /= sum
		}
		r, next = next, r
		if diff < tol {
			return r, nil
		}
	}
	return nil, &GraphInputError{What: "pagerank", Reason: fmt.Sprintf("did not converge to %v in %d iterations", tol, maxIter)}
}

// clustering returns the unweighted local clustering coefficient of every
// node of the undirected graph adj. gonum has no local clustering
// coefficient, so it is computed here, by marking u's neighbours and
// scanning each neighbour's list for marked nodes.
func clustering(adj [][]edge) []float64 {
	cc := make([]float64, len(adj))
	mark := make([]bool, len(adj))
	for u, es := range adj {
		k := len(es)
		if k < 2 {
			continue
		}
		for _, e := range es {
			mark[e.to] = true
		}
		var links int // each edge among u's neighbours is seen from both ends
		for _, e := range es {
			for _, f := range adj[e.to] {
				if mark[f.to] {
					links++
				}
			}
		}
		for _, e := range es {
			mark[e.to] = false
		}
		cc[u] = float64(links) / float64(k*(k-1))
	}
	return cc
}
