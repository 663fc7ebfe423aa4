package node2vec

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
)

func TestCoUseEdges(t *testing.T) {
	at := func(m int) time.Time { return time.Date(2025, 1, 1, 0, m, 0, 0, time.UTC) }
	ok, fail, partial := featurestore.OutcomeSuccess, featurestore.OutcomeFailure, featurestore.OutcomePartial
	exp := func(session, sel string, m int, o featurestore.Outcome) featurestore.Experience {
		return featurestore.Experience{SessionID: session, SelectedCapability: sel, Timestamp: at(m), Outcome: o}
	}
	exps := []featurestore.Experience{
		// Session s1, listed out of time order: a → b → (x fails) → c → c → a.
		exp("s1", "c", 3, ok),
		exp("s1", "a", 0, ok),
		exp("s1", "x", 2, fail), // a failure between b and c: b—c still counts
		exp("s1", "b", 1, ok),
		exp("s1", "c", 4, ok), // c again right after c: no self-edge
		exp("s1", "a", 5, ok),
		// Session s2: b → a (the same pair as a → b, so its count grows),
		// then a partial d, which is not a success.
		exp("s2", "b", 0, ok),
		exp("s2", "a", 1, ok),
		exp("s2", "d", 2, partial),
		// No session: never successive to anything.
		exp("", "d", 0, ok),
		exp("", "e", 1, ok),
		// One success only: no edge.
		exp("s3", "e", 0, ok),
	}
	got := CoUseEdges(exps)
	assert.Equal(t, []CoUse{{"a", "b", 2}, {"a", "c", 1}, {"b", "c", 1}}, got)

	// Equal timestamps fall back on the store's ID, then on input order.
	tie := []featurestore.Experience{
		{ID: 2, SessionID: "s", SelectedCapability: "q", Timestamp: at(0), Outcome: ok},
		{ID: 1, SessionID: "s", SelectedCapability: "p", Timestamp: at(0), Outcome: ok},
		{ID: 3, SessionID: "s", SelectedCapability: "r", Timestamp: at(0), Outcome: ok},
	}
	assert.Equal(t, []CoUse{{"p", "q", 1}, {"q", "r", 1}}, CoUseEdges(tie))
	assert.Empty(t, CoUseEdges(nil))
}

func TestAddCoUse(t *testing.T) {
	tools := []featurestore.Tool{{ID: "t1"}, {ID: "t2"}, {ID: "t3"}}
	caps := []featurestore.Capability{
		{ID: "c1", Members: []string{"t1"}},
		{ID: "c2", Members: []string{"t2", "t3"}},
		{ID: "top", Members: []string{"c1", "c2"}, Level: 1},
	}
	b := NewBuilder()
	opts := CatalogOptions{CoUseWeight: 0.5}
	require.NoError(t, b.AddCatalog(tools, caps, opts))
	require.NoError(t, b.AddCoUse([]CoUse{{"c1", "c2", 3}, {"c2", "top", 2}}, opts))
	g := b.Build()
	w, ok := g.Weight("c1", "c2")
	require.True(t, ok)
	assert.Equal(t, 1.5, w, "co-use weight × count")
	w, _ = g.Weight("c2", "top")
	assert.Equal(t, 2.0, w, "a co-use on a containment edge adds to it: 1 + 0.5×2")

	// Default weight 1 per count.
	b = NewBuilder()
	require.NoError(t, b.AddCatalog(tools, caps, CatalogOptions{}))
	require.NoError(t, b.AddCoUse([]CoUse{{"c1", "c2", 3}}, CatalogOptions{}))
	w, _ = b.Build().Weight("c1", "c2")
	assert.Equal(t, 3.0, w)

	var ge *GraphError
	err := b.AddCoUse([]CoUse{{"c1", "nope", 1}}, CatalogOptions{})
	require.True(t, errors.As(err, &ge), "%v", err)
	assert.Contains(t, err.Error(), `"nope" is not in the graph`)
	err = b.AddCoUse([]CoUse{{"c1", "c2", 0}}, CatalogOptions{})
	require.True(t, errors.As(err, &ge), "%v", err)
	assert.Contains(t, err.Error(), "count 0")
	err = b.AddCoUse([]CoUse{{"c1", "c2", 1}}, CatalogOptions{CoUseWeight: -1})
	require.True(t, errors.As(err, &ge), "%v", err)
}

func TestHoldOutExcept(t *testing.T) {
	// A ring of 30 capabilities with chords: plenty of non-edges.
	var edges [][3]any
	var cands []Pair
	for i := range 30 {
		for _, d := range []int{1, 7} {
			u, v := fmt.Sprint("c", i), fmt.Sprint("c", (i+d)%30)
			edges = append(edges, [3]any{u, v, 1.0})
			cands = append(cands, Pair{u, v})
		}
	}
	g := mustBuild(t, edges)
	plain, err := HoldOut(g, cands, 0.2, 3)
	require.NoError(t, err)
	same, err := HoldOutExcept(g, cands, 0.2, 3, nil)
	require.NoError(t, err)
	assert.Equal(t, plain.TestPos, same.TestPos)
	assert.Equal(t, plain.TestNeg, same.TestNeg, "no exceptions draw what HoldOut draws")

	// Forbid every negative the plain split drew, in reversed orientation.
	var except []Pair
	for _, p := range append(plain.TestNeg, plain.TrainNeg...) {
		except = append(except, Pair{p.V, p.U})
	}
	s, err := HoldOutExcept(g, cands, 0.2, 3, except)
	require.NoError(t, err)
	assert.Equal(t, plain.TestPos, s.TestPos, "exceptions only change the negatives")
	forbidden := map[Pair]bool{}
	for _, p := range except {
		forbidden[p], forbidden[Pair{p.V, p.U}] = true, true
	}
	for _, p := range append(s.TestNeg, s.TrainNeg...) {
		assert.False(t, forbidden[p], "negative %v is an exception", p)
	}
}
