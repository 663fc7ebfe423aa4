package replay

// fanout is the sum tree's branching factor: 8 float64 siblings fill one
// 64-byte cache line, so a descent through 100,000 leaves reads 6 lines
// where a binary tree reads 17 nodes. Sampling a large buffer is bound by
// these memory reads.
const fanout = 8

// sumTree keeps each level in its own slice: levels[0] is {total}, the last
// level holds the leaves, and the children of node j of level l are nodes
// j·fanout … j·fanout+fanout-1 of level l+1. Every level but the root has a
// multiple of fanout entries; leaves past the items held are 0.
type sumTree struct {
	levels [][]float64
}

func newSumTree(capacity int) sumTree {
	// Sizes from the leaves up: each level has one node per fanout children.
	var sizes []int
	for n := capacity; ; n = (n + fanout - 1) / fanout {
		sizes = append(sizes, n)
		if n == 1 {
			break
		}
	}
	t := sumTree{levels: make([][]float64, len(sizes))}
	t.levels[0] = make([]float64, 1)
	for l := 1; l < len(sizes); l++ {
		// Room for all children of the level above.
		t.levels[l] = make([]float64, sizes[len(sizes)-l]*fanout)
	}
	return t
}

func (t *sumTree) total() float64 { return t.levels[0][0] }

func (t *sumTree) leaves() []float64 { return t.levels[len(t.levels)-1] }

func (t *sumTree) get(j int) float64 { return t.leaves()[j] }

// set writes leaf j and recomputes its ancestors from their children, so no
// rounding error carries over from earlier values.
func (t *sumTree) set(j int, p float64) {
	l := len(t.levels) - 1
	t.levels[l][j] = p
	for ; l > 0; l-- {
		j /= fanout
		t.levels[l-1][j] = sum(t.levels[l][j*fanout : (j+1)*fanout])
	}
}

// rebuild recomputes every inner node from the leaves; the result equals
// what the same leaves written by set give, bit for bit.
func (t *sumTree) rebuild() {
	for l := len(t.levels) - 1; l > 0; l-- {
		for j := range len(t.levels[l]) / fanout { // the level above may be padded
			t.levels[l-1][j] = sum(t.levels[l][j*fanout : (j+1)*fanout])
		}
	}
}

// sum adds in index order, the one order set and rebuild share.
func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

// findAll sets slots[i] to the leaf whose cumulative range holds masses[i],
// overwriting masses. It descends all masses together, level by level, so
// the memory reads of different draws overlap instead of each descent
// waiting on its own cache misses. It only descends into children of
// positive mass, so a mass rounded past the total still lands on a held
// item (the last one) and never on an empty leaf. The total must be
// positive.
func (t *sumTree) findAll(masses []float64, slots []ID) {
	clear(slots)
	for _, level := range t.levels[1:] {
		for i, j := range slots {
			mass := masses[i]
			// rest is mass within the picked child. Past the last positive
			// child (rounding), it keeps that child and its whole mass, so
			// the descent goes on to the child's last leaf.
			pick, rest := -1, mass
			for c, m := range level[j*fanout : (j+1)*fanout] {
				if m <= 0 {
					continue
				}
				pick, rest = c, mass
				if mass < m {
					break
				}
				mass -= m
			}
			slots[i], masses[i] = j*fanout+ID(pick), rest
		}
	}
}
