// Package node2vec learns graph embeddings of the capability↔tool graph:
// second-order biased random walks (Grover & Leskovec 2016) fed to skip-gram
// with negative sampling (Mikolov et al. 2013), trained Hogwild-style over all
// cores and deterministic with a seed and one worker.
package node2vec

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/capflow/capflow/featurestore"
)

// Graph is an undirected weighted graph over string node ids, stored as
// compressed sparse rows: node i's neighbours are adj[off[i]:off[i+1]],
// sorted ascending so that an edge lookup is a binary search.
type Graph struct {
	ids   []string
	index map[string]int32
	off   []int64
	adj   []int32
	w     []float32
}

// NumNodes is the number of nodes, isolated ones included.
func (g *Graph) NumNodes() int { return len(g.ids) }

// NumEdges is the number of undirected edges.
func (g *Graph) NumEdges() int { return len(g.adj) / 2 }

// IDs returns the node ids in index order (a copy).
func (g *Graph) IDs() []string { return slices.Clone(g.ids) }

// Index returns the index of node id.
func (g *Graph) Index(id string) (int, bool) {
	i, ok := g.index[id]
	return int(i), ok
}

// Degree is the number of neighbours of node id (0 when unknown).
func (g *Graph) Degree(id string) int {
	i, ok := g.index[id]
	if !ok {
		return 0
	}
	return int(g.off[i+1] - g.off[i])
}

// Weight returns the weight of edge {u, v}.
func (g *Graph) Weight(u, v string) (float64, bool) {
	i, ok1 := g.index[u]
	j, ok2 := g.index[v]
	if !ok1 || !ok2 {
		return 0, false
	}
	k, ok := g.find(i, j)
	if !ok {
		return 0, false
	}
	return float64(g.w[k]), true
}

// Neighbors returns id's neighbours and edge weights, in index order.
func (g *Graph) Neighbors(id string) ([]string, []float64) {
	i, ok := g.index[id]
	if !ok {
		return nil, nil
	}
	var ns []string
	var ws []float64
	for k := g.off[i]; k < g.off[i+1]; k++ {
		ns = append(ns, g.ids[g.adj[k]])
		ws = append(ws, float64(g.w[k]))
	}
	return ns, ws
}

// find returns the CSR position of edge (i, j).
func (g *Graph) find(i, j int32) (int64, bool) {
	lo, hi := g.off[i], g.off[i+1]
	k, ok := slices.BinarySearch(g.adj[lo:hi], j)
	return lo + int64(k), ok
}

// edges calls fn for each undirected edge once, with i < j.
func (g *Graph) edges(fn func(i, j int32, w float32)) {
	for i := range int32(len(g.ids)) {
		for k := g.off[i]; k < g.off[i+1]; k++ {
			if j := g.adj[k]; i < j {
				fn(i, j, g.w[k])
			}
		}
	}
}

// GraphError names what is wrong with an edge or a catalog.
type GraphError struct {
	U, V   string
	Reason string
}

func (e *GraphError) Error() string {
	if e.V == "" {
		return fmt.Sprintf("node2vec: node %q: %s", e.U, e.Reason)
	}
	return fmt.Sprintf("node2vec: edge %q–%q: %s", e.U, e.V, e.Reason)
}

// Builder accumulates nodes and edges; Build freezes them into a Graph.
// Adding the same edge twice adds the weights: a repeated relation (two
// capabilities listing the same member twice, two co-usages) is a stronger one.
type Builder struct {
	ids   []string
	index map[string]int32
	edges map[[2]int32]float64
}

// NewBuilder returns an empty builder.
func NewBuilder() *Builder {
	return &Builder{index: map[string]int32{}, edges: map[[2]int32]float64{}}
}

// AddNode adds id (a no-op when present), so that a node without edges is
// still embedded (as an isolated node).
func (b *Builder) AddNode(id string) {
	if _, ok := b.index[id]; !ok {
		b.index[id] = int32(len(b.ids))
		b.ids = append(b.ids, id)
	}
}

// AddEdge adds the undirected edge {u, v} with weight w > 0 (finite).
// Self-loops are refused: a walk would stay put and the second-order bias
// is undefined for them.
func (b *Builder) AddEdge(u, v string, w float64) error {
	switch {
	case u == v:
		return &GraphError{U: u, V: v, Reason: "self-loop"}
	case !(w > 0) || math.IsInf(w, 0):
		return &GraphError{U: u, V: v, Reason: fmt.Sprintf("weight %v is not positive and finite", w)}
	}
	b.AddNode(u)
	b.AddNode(v)
	i, j := b.index[u], b.index[v]
	if i > j {
		i, j = j, i
	}
	b.edges[[2]int32{i, j}] += w
	return nil
}

// CatalogOptions weights the three kinds of edge of the capability graph.
// Zero means the default, 1.
//
// All three default to 1 because a walk should treat "is a member of", "is
// nested in" and "was used right after" as equally strong hints that two
// nodes belong together; a co-use edge's weight grows with its count (see
// AddCoUse), so a pattern many sessions repeat pulls walks harder than a
// single session's step.
type CatalogOptions struct {
	ToolWeight        float64 // capability — member tool
	ContainmentWeight float64 // capability — member capability
	CoUseWeight       float64 // capability — capability, per successive successful use (AddCoUse)
}

// AddCatalog adds every tool and capability as a node, an edge from each
// capability to each member tool (ToolWeight) and to each member capability
// (ContainmentWeight). A member that is neither a listed tool nor a listed
// capability is an error naming it.
func (b *Builder) AddCatalog(tools []featurestore.Tool, caps []featurestore.Capability, opts CatalogOptions) error {
	tw, cw := opts.ToolWeight, opts.ContainmentWeight
	if tw == 0 {
		tw = 1
	}
	if cw == 0 {
		cw = 1
	}
	isTool := make(map[string]bool, len(tools))
	for _, t := range tools {
		b.AddNode(t.ID)
		isTool[t.ID] = true
	}
	isCap := make(map[string]bool, len(caps))
	for _, c := range caps {
		b.AddNode(c.ID)
		isCap[c.ID] = true
	}
	for _, c := range caps {
		for _, m := range c.Members {
			var w float64
			switch {
			case isTool[m]:
				w = tw
			case isCap[m]:
				w = cw
			default:
				return &GraphError{U: c.ID, V: m, Reason: "member is neither a listed tool nor a listed capability"}
			}
			if err := b.AddEdge(c.ID, m, w); err != nil {
				return err
			}
		}
	}
	return nil
}

// CoUse is an undirected co-use edge: capabilities U and V (U < V) were
// selected one right after the other, both successfully, Count times within
// logged sessions.
type CoUse struct {
	U, V  string
	Count int
}

// CoUseEdges derives the co-use edges of exps. Within each session
// (experiences with an empty SessionID belong to none and are skipped), the
// successful selections (OutcomeSuccess; partial and failed ones are not
// evidence that the two capabilities go together) are put in time order —
// Timestamp, then the store's ID, then input order — and each pair of
// successive selections of two different capabilities counts once for the
// pair. A failure between two successes does not break the succession: a
// retry or a rejected candidate between two steps leaves them successive
// steps of the task. The edges come sorted by (U, V).
//
// Which sessions exps holds is the caller's decision: only the training
// split's sessions may contribute, or the graph features would leak the
// evaluation split's answers.
func CoUseEdges(exps []featurestore.Experience) []CoUse {
	type step struct {
		at       time.Time
		id       int64
		pos      int
		selected string
	}
	sessions := map[string][]step{}
	for i, e := range exps {
		if e.SessionID == "" || e.Outcome != featurestore.OutcomeSuccess {
			continue
		}
		sessions[e.SessionID] = append(sessions[e.SessionID], step{e.Timestamp, e.ID, i, e.SelectedCapability})
	}
	counts := map[[2]string]int{}
	for _, steps := range sessions {
		slices.SortFunc(steps, func(a, b step) int {
			return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.id, b.id), cmp.Compare(a.pos, b.pos))
		})
		for k := 1; k < len(steps); k++ {
			u, v := steps[k-1].selected, steps[k].selected
			if u == v {
				continue // a repeated step is no relation between two capabilities
			}
			counts[[2]string{min(u, v), max(u, v)}]++
		}
	}
	out := make([]CoUse, 0, len(counts))
	for k, n := range counts {
		out = append(out, CoUse{U: k[0], V: k[1], Count: n})
	}
	slices.SortFunc(out, func(a, b CoUse) int { return cmp.Or(cmp.Compare(a.U, b.U), cmp.Compare(a.V, b.V)) })
	return out
}

// AddCoUse adds each co-use edge with weight opts.CoUseWeight·Count between
// two nodes that must already be in the builder (AddCatalog first): a co-use
// of a capability the catalog does not hold is an error naming it. An edge
// that coincides with a catalog edge (a capability used right after its own
// member) adds to that edge's weight.
func (b *Builder) AddCoUse(edges []CoUse, opts CatalogOptions) error {
	w := opts.CoUseWeight
	if w == 0 {
		w = 1
	}
	for _, e := range edges {
		for _, id := range []string{e.U, e.V} {
			if _, ok := b.index[id]; !ok {
				return &GraphError{U: e.U, V: e.V, Reason: fmt.Sprintf("co-used capability %q is not in the graph", id)}
			}
		}
		if e.Count < 1 {
			return &GraphError{U: e.U, V: e.V, Reason: fmt.Sprintf("co-use count %d is not positive", e.Count)}
		}
		if err := b.AddEdge(e.U, e.V, w*float64(e.Count)); err != nil {
			return err
		}
	}
	return nil
}

// Build returns the graph; the builder may be used again afterwards.
func (b *Builder) Build() *Graph {
	n := len(b.ids)
	g := &Graph{ids: slices.Clone(b.ids), index: make(map[string]int32, n), off: make([]int64, n+1)}
	for i, id := range g.ids {
		g.index[id] = int32(i)
	}
	for e := range b.edges {
		g.off[e[0]+1]++
		g.off[e[1]+1]++
	}
	for i := range n {
		g.off[i+1] += g.off[i]
	}
	g.adj = make([]int32, 2*len(b.edges))
	g.w = make([]float32, 2*len(b.edges))
	pos := slices.Clone(g.off[:n])
	for e, w := range b.edges {
		for _, d := range [][2]int32{e, {e[1], e[0]}} {
			g.adj[pos[d[0]]] = d[1]
			g.w[pos[d[0]]] = float32(w)
			pos[d[0]]++
		}
	}
	// Map iteration order is random: sort each row so the CSR (and hence
	// every walk) is a function of the edges alone.
	type nw struct {
		n int32
		w float32
	}
	var row []nw
	for i := range n {
		lo, hi := g.off[i], g.off[i+1]
		row = row[:0]
		for k := lo; k < hi; k++ {
			row = append(row, nw{g.adj[k], g.w[k]})
		}
		slices.SortFunc(row, func(a, b nw) int { return cmp.Compare(a.n, b.n) })
		for k, r := range row {
			g.adj[lo+int64(k)], g.w[lo+int64(k)] = r.n, r.w
		}
	}
	return g
}

// FromCatalog builds the capability↔tool graph: tools and capabilities as
// nodes, capability—member edges, containment edges between capabilities.
func FromCatalog(tools []featurestore.Tool, caps []featurestore.Capability, opts CatalogOptions) (*Graph, error) {
	b := NewBuilder()
	if err := b.AddCatalog(tools, caps, opts); err != nil {
		return nil, err
	}
	return b.Build(), nil
}
