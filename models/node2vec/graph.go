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

// CatalogOptions weights the two kinds of edge of the capability↔tool graph.
// Zero means the default, 1.
type CatalogOptions struct {
	ToolWeight        float64 // capability — member tool
	ContainmentWeight float64 // capability — member capability
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
