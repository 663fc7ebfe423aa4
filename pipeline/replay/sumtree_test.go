package replay

import (
	"math"
	"math/rand/v2"
	"testing"
)

// neumaier sums xs with compensation: an accurate reference for the tree.
func neumaier(xs []float64) float64 {
	var sum, c float64
	for _, x := range xs {
		t := sum + x
		if math.Abs(sum) >= math.Abs(x) {
			c += (sum - t) + x
		} else {
			c += (x - t) + sum
		}
		sum = t
	}
	return sum + c
}

// After a million overwrites with values over ten orders of magnitude the
// root is still exactly the pairwise sum of the current leaves (no drift)
// and within rounding of their exact sum.
func TestSumTreeTotalAfterManyUpdates(t *testing.T) {
	const n = 100_000
	tr := newSumTree(n)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		tr.set(rng.IntN(n), math.Exp(rng.NormFloat64()*4))
	}
	leaves := tr.leaves()[:n]
	exact := neumaier(leaves)
	got := tr.total()
	if rel := math.Abs(got-exact) / exact; rel > 1e-12 {
		t.Errorf("total %v, exact sum of leaves %v: relative error %.3g", got, exact, rel)
	}
	fresh := newSumTree(n)
	copy(fresh.leaves(), leaves)
	fresh.rebuild()
	for l := range tr.levels {
		for j, v := range tr.levels[l] {
			if fresh.levels[l][j] != v {
				t.Fatalf("level %d node %d: %v after updates, %v rebuilt from the same leaves: drift", l, j, v, fresh.levels[l][j])
			}
		}
	}
}

func TestSumTreeFind(t *testing.T) {
	tr := newSumTree(5) // 8 leaves, 3 of them empty
	if len(tr.levels) != 2 || len(tr.leaves()) != 8 {
		t.Fatalf("capacity 5: %d levels, %d leaves", len(tr.levels), len(tr.leaves()))
	}
	ps := []float64{1, 2, 3, 4, 0.5}
	for j, p := range ps {
		tr.set(j, p)
	}
	find := func(tr sumTree, mass float64) int {
		slots := []ID{0}
		tr.findAll([]float64{mass}, slots)
		return int(slots[0])
	}
	cases := []struct {
		mass float64
		want int
	}{
		{0, 0}, {0.999, 0}, {1, 1}, {2.999, 1}, {3, 2}, {6, 3}, {9.999, 3}, {10, 4}, {10.499, 4},
		// Rounded past the total: the last held item, never an empty leaf.
		{10.5, 4}, {10.5 * (1 + 1e-15), 4}, {11, 4},
	}
	for _, c := range cases {
		if got := find(tr, c.mass); got != c.want {
			t.Errorf("find(%v) = %d, want %d", c.mass, got, c.want)
		}
	}
	// Deep enough for every branch: 1000 leaves under 8, 8·8, 8·8·8 … nodes.
	big := newSumTree(1000)
	cum := 0.0
	for j := range 1000 {
		big.set(j, float64(j%3+1))
	}
	for j := range 1000 {
		p := float64(j%3 + 1)
		if got := find(big, cum+p/2); got != j {
			t.Fatalf("find(middle of leaf %d) = %d", j, got)
		}
		cum += p
	}
	if got := find(big, cum*1.01); got != 999 {
		t.Errorf("find past the total = %d, want 999", got)
	}
	one := newSumTree(1)
	one.set(0, 0.25)
	if one.total() != 0.25 || find(one, 0.3) != 0 {
		t.Errorf("capacity 1: total %v, find %d", one.total(), find(one, 0.3))
	}
}
