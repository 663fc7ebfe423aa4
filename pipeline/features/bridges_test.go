package features

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/models/node2vec"
)

func TestBridges(t *testing.T) {
	// A triangle a-b-c, a pendant c-d, and a separate edge e-f: the bridges
	// are c-d and e-f.
	b := node2vec.NewBuilder()
	for _, e := range [][2]string{{"a", "b"}, {"b", "c"}, {"c", "a"}, {"c", "d"}, {"e", "f"}} {
		require.NoError(t, b.AddEdge(e[0], e[1], 1))
	}
	b.AddNode("lonely")
	got := bridges(b.Build())
	norm := map[[2]string]bool{}
	for p := range got {
		u, v := min(p.U, p.V), max(p.U, p.V)
		norm[[2]string{u, v}] = true
	}
	assert.Equal(t, map[[2]string]bool{{"c", "d"}: true, {"e", "f"}: true}, norm)
}

func TestBridgesLongPath(t *testing.T) {
	// 100,000 nodes in a path: every edge a bridge, and no recursion to
	// overflow.
	b := node2vec.NewBuilder()
	const n = 100_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = string(rune('a'+i%26)) + strconv.Itoa(i)
	}
	for i := 1; i < n; i++ {
		require.NoError(t, b.AddEdge(ids[i-1], ids[i], 1))
	}
	assert.Len(t, bridges(b.Build()), n-1)
}
