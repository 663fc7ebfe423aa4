package node2vec

import (
	"context"
	"math/rand/v2"
	"slices"
)

// The second-order walk: having come from t to v, the next node x is drawn
// with probability ∝ w(v,x)·α(t,x), where α is 1/p when x = t, 1 when x is a
// neighbour of t, and 1/q otherwise.
//
// Why rejection sampling (KnightKing, Yang et al. SOSP 2019) rather than
// per-edge alias tables: alias tables for every (t, v) pair need
// Σ_v deg(v)² entries — quadratic in hub degree (a top-level capability
// with thousands of tools reachable through its sub-fields, or a tool used
// with many others, makes that blow up) and they take longer to build than
// the walks take to run. Rejection sampling keeps one first-order alias
// table per node (O(E) memory), proposes x ∝ w(v,x) in O(1), and accepts
// with probability α(t,x)/max(1/p, 1, 1/q), checking "x is a neighbour of t"
// by binary search in t's sorted row. The accepted x is distributed exactly
// as the second-order law; the expected number of trials is at most
// max(1/p,1,1/q)/min(1/p,1,1/q), i.e. 1 for p = q = 1 (where the check is
// skipped altogether).

// aliasTables holds Walker's alias tables of the first-order transition
// weights, laid out like the CSR rows.
type aliasTables struct {
	prob  []float32
	alias []int32 // offset within the row
}

func newAliasTables(g *Graph) aliasTables {
	at := aliasTables{prob: make([]float32, len(g.adj)), alias: make([]int32, len(g.adj))}
	var small, large []int32
	var scaled []float64
	for i := range len(g.ids) {
		lo, hi := g.off[i], g.off[i+1]
		d := int(hi - lo)
		if d == 0 {
			continue
		}
		var sum float64
		for _, w := range g.w[lo:hi] {
			sum += float64(w)
		}
		scaled = scaled[:0]
		small, large = small[:0], large[:0]
		for k, w := range g.w[lo:hi] {
			s := float64(w) * float64(d) / sum
			scaled = append(scaled, s)
			if s < 1 {
				small = append(small, int32(k))
			} else {
				large = append(large, int32(k))
			}
		}
		for len(small) > 0 && len(large) > 0 {
			s, l := small[len(small)-1], large[len(large)-1]
			small = small[:len(small)-1]
			at.prob[lo+int64(s)] = float32(scaled[s])
			at.alias[lo+int64(s)] = l
			scaled[l] -= 1 - scaled[s]
			if scaled[l] < 1 {
				large = large[:len(large)-1]
				small = append(small, l)
			}
		}
		// What is left is 1 up to rounding.
		for _, k := range append(small, large...) {
			at.prob[lo+int64(k)] = 1
			at.alias[lo+int64(k)] = k
		}
	}
	return at
}

// walker draws node2vec walks on one graph; not safe for concurrent use
// (each worker has its own).
type walker struct {
	g           *Graph
	at          *aliasTables
	invP, invQ  float64
	maxBias     float64
	uniformBias bool
	pcg         *rand.PCG
	rng         *rand.Rand
}

func newWalker(g *Graph, at *aliasTables, p, q float64) *walker {
	w := &walker{g: g, at: at, invP: 1 / p, invQ: 1 / q, pcg: rand.NewPCG(0, 0)}
	w.rng = rand.New(w.pcg)
	w.maxBias = max(w.invP, 1, w.invQ)
	w.uniformBias = p == 1 && q == 1
	return w
}

// firstOrder draws a neighbour of v ∝ edge weight; v must have one.
func (w *walker) firstOrder(v int32) int32 {
	lo := w.g.off[v]
	k := int64(w.rng.IntN(int(w.g.off[v+1] - lo)))
	if w.rng.Float32() >= w.at.prob[lo+k] {
		k = int64(w.at.alias[lo+k])
	}
	return w.g.adj[lo+k]
}

// next draws the node after v, having come from t.
func (w *walker) next(t, v int32) int32 {
	for {
		x := w.firstOrder(v)
		if w.uniformBias {
			return x
		}
		var bias float64
		switch {
		case x == t:
			bias = w.invP
		case w.isNeighbor(t, x):
			bias = 1
		default:
			bias = w.invQ
		}
		if bias >= w.maxBias || w.rng.Float64()*w.maxBias < bias {
			return x
		}
	}
}

func (w *walker) isNeighbor(t, x int32) bool {
	_, ok := slices.BinarySearch(w.g.adj[w.g.off[t]:w.g.off[t+1]], x)
	return ok
}

// walk fills dst (len = walk length) with a walk from start and returns the
// filled prefix: just start when it is isolated. The walk's randomness comes
// from (seed, round, start) alone, so the corpus does not depend on how
// walks are split among workers.
func (w *walker) walk(dst []int32, start int32, seed uint64, round int) []int32 {
	w.pcg.Seed(seed^0x9e3779b97f4a7c15, uint64(round)<<32|uint64(uint32(start)))
	dst[0] = start
	if len(dst) == 1 || w.g.off[start] == w.g.off[start+1] {
		return dst[:1]
	}
	dst[1] = w.firstOrder(start)
	for k := 2; k < len(dst); k++ {
		dst[k] = w.next(dst[k-2], dst[k-1])
	}
	return dst
}

// corpus is every walk, each in a fixed-size slot of length walkLen;
// lens[i] says how much of slot i is used.
type corpus struct {
	walkLen int
	nodes   []int32
	lens    []int32
}

func (c *corpus) walk(i int) []int32 {
	return c.nodes[i*c.walkLen : i*c.walkLen+int(c.lens[i])]
}

// walks generates WalksPerNode walks from every non-isolated node, round by
// round, each round in a seeded random node order (as the reference
// implementation shuffles), split among workers.
func walks(ctx context.Context, g *Graph, cfg Config, workers int) (*corpus, error) {
	at := newAliasTables(g)
	var starts []int32
	for i := range int32(len(g.ids)) {
		if g.off[i] < g.off[i+1] {
			starts = append(starts, i)
		}
	}
	n := len(starts) * cfg.WalksPerNode
	c := &corpus{walkLen: cfg.WalkLength, nodes: make([]int32, n*cfg.WalkLength), lens: make([]int32, n)}
	order := make([]int32, 0, n)
	shuffle := rand.New(rand.NewPCG(cfg.Seed, 0x6e32762d6f726472))
	for range cfg.WalksPerNode {
		round := slices.Clone(starts)
		shuffle.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		order = append(order, round...)
	}
	err := parallel(ctx, workers, n, func(ctx context.Context, lo, hi int) error {
		wk := newWalker(g, &at, cfg.P, cfg.Q)
		for i := lo; i < hi; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			slot := c.nodes[i*c.walkLen : (i+1)*c.walkLen]
			c.lens[i] = int32(len(wk.walk(slot, order[i], cfg.Seed, i/len(starts))))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}
