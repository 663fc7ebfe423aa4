package shgat

import (
	"fmt"
	"slices"

	"github.com/capflow/capflow/featurestore"
)

// Graph is the capability↔tool hypergraph in index form. Node i < len(Tools)
// is a tool; node len(Tools)+j is capability j.
type Graph struct {
	Tools   []string // tool ids
	Caps    []string // capability ids
	Level   []int    // per capability: 0 when all members are tools, else 1 + max member level
	Members [][]int  // per capability: member node indices

	toolIndex map[string]int
	capIndex  map[string]int
}

// step is one message-passing step: every target gathers from its sources.
type step struct {
	param   int   // index of the step's parameters in Params.Steps
	targets []int // node indices
	ptr     []int // sources of targets[i] are src[ptr[i]:ptr[i+1]]
	src     []int // node indices
}

// GraphError says why a catalog cannot be made a graph.
type GraphError struct {
	ID, Reason string
}

func (e *GraphError) Error() string {
	if e.ID == "" {
		return "shgat: graph: " + e.Reason
	}
	return fmt.Sprintf("shgat: graph: capability %q: %s", e.ID, e.Reason)
}

// NewGraph indexes a catalog. Members must be known tools or capabilities
// and the membership must be acyclic.
func NewGraph(tools []featurestore.Tool, caps []featurestore.Capability) (*Graph, error) {
	g := &Graph{toolIndex: make(map[string]int, len(tools)), capIndex: make(map[string]int, len(caps))}
	for _, t := range tools {
		if _, dup := g.toolIndex[t.ID]; dup {
			return nil, &GraphError{Reason: fmt.Sprintf("duplicate tool id %q", t.ID)}
		}
		g.toolIndex[t.ID] = len(g.Tools)
		g.Tools = append(g.Tools, t.ID)
	}
	for _, c := range caps {
		if _, dup := g.capIndex[c.ID]; dup {
			return nil, &GraphError{ID: c.ID, Reason: "duplicate capability id"}
		}
		if _, clash := g.toolIndex[c.ID]; clash {
			return nil, &GraphError{ID: c.ID, Reason: "id is also a tool id"}
		}
		g.capIndex[c.ID] = len(g.Caps)
		g.Caps = append(g.Caps, c.ID)
	}
	nt := len(tools)
	g.Members = make([][]int, len(caps))
	for j, c := range caps {
		if len(c.Members) == 0 {
			return nil, &GraphError{ID: c.ID, Reason: "no members"}
		}
		seen := map[int]bool{}
		for _, m := range c.Members {
			n, ok := g.toolIndex[m]
			if !ok {
				k, ok := g.capIndex[m]
				if !ok {
					return nil, &GraphError{ID: c.ID, Reason: fmt.Sprintf("unknown member %q", m)}
				}
				n = nt + k
			}
			if !seen[n] {
				seen[n] = true
				g.Members[j] = append(g.Members[j], n)
			}
		}
	}
	if err := g.computeLevels(); err != nil {
		return nil, err
	}
	return g, nil
}

// computeLevels assigns levels by depth-first search, rejecting cycles.
func (g *Graph) computeLevels() error {
	nt := len(g.Tools)
	g.Level = make([]int, len(g.Caps))
	const unseen, active, done = 0, 1, 2
	state := make([]int, len(g.Caps))
	var visit func(j int) error
	visit = func(j int) error {
		switch state[j] {
		case done:
			return nil
		case active:
			return &GraphError{ID: g.Caps[j], Reason: "membership cycle"}
		}
		state[j] = active
		lvl := 0
		for _, n := range g.Members[j] {
			if n < nt {
				continue
			}
			if err := visit(n - nt); err != nil {
				return err
			}
			lvl = max(lvl, g.Level[n-nt]+1)
		}
		g.Level[j], state[j] = lvl, done
		return nil
	}
	for j := range g.Caps {
		if err := visit(j); err != nil {
			return err
		}
	}
	return nil
}

// Levels is the number of capability levels (max level + 1; 0 when empty).
func (g *Graph) Levels() int {
	l := 0
	for _, v := range g.Level {
		l = max(l, v+1)
	}
	return l
}

// Nodes is the number of nodes (tools + capabilities).
func (g *Graph) Nodes() int { return len(g.Tools) + len(g.Caps) }

// ToolIndex returns the node index of a tool id.
func (g *Graph) ToolIndex(id string) (int, bool) { i, ok := g.toolIndex[id]; return i, ok }

// CapIndex returns the capability index (not the node index) of an id.
func (g *Graph) CapIndex(id string) (int, bool) { i, ok := g.capIndex[id]; return i, ok }

// StepCount is the number of parameter sets a model with the given number of
// levels needs: one upward step per level, one downward step into every
// level but the top, one into the tools.
func StepCount(levels int) int { return 2 * max(levels, 1) }

// schedule returns the message-passing steps for a model built for
// modelLevels levels. A graph may have fewer levels than the model (steps of
// missing levels are skipped), not more.
func (g *Graph) schedule(modelLevels int) ([]step, error) {
	L := g.Levels()
	if L > max(modelLevels, 1) {
		return nil, &GraphError{Reason: fmt.Sprintf("graph has %d capability levels, the model was built for %d", L, modelLevels)}
	}
	nt := len(g.Tools)
	byLevel := make([][]int, L)
	for j, l := range g.Level {
		byLevel[l] = append(byLevel[l], j)
	}
	parents := make([][]int, g.Nodes())
	for j, ms := range g.Members {
		for _, n := range ms {
			parents[n] = append(parents[n], nt+j)
		}
	}
	var steps []step
	for k := range L { // up: members → level k
		s := step{param: k, ptr: []int{0}}
		for _, j := range byLevel[k] {
			s.targets = append(s.targets, nt+j)
			s.src = append(s.src, g.Members[j]...)
			s.ptr = append(s.ptr, len(s.src))
		}
		steps = append(steps, s)
	}
	down := func(param int, nodes []int) step {
		s := step{param: param, ptr: []int{0}}
		for _, n := range nodes {
			if len(parents[n]) == 0 {
				continue
			}
			s.targets = append(s.targets, n)
			s.src = append(s.src, parents[n]...)
			s.ptr = append(s.ptr, len(s.src))
		}
		return s
	}
	M := max(modelLevels, 1)
	for k := L - 2; k >= 0; k-- { // down: parents → level k
		nodes := make([]int, len(byLevel[k]))
		for i, j := range byLevel[k] {
			nodes[i] = nt + j
		}
		steps = append(steps, down(M+k, nodes))
	}
	tools := make([]int, nt)
	for i := range tools {
		tools[i] = i
	}
	steps = append(steps, down(StepCount(M)-1, tools)) // parents → tools
	return slices.DeleteFunc(steps, func(s step) bool { return len(s.targets) == 0 }), nil
}
