package bm25

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sealTools is the Seal-Tools level-0 retrieval task: the documents of the
// 2,276 sub-field capabilities, their ids (positional), and the queries.
type sealTools struct {
	docs    []string
	ids     []string
	queries []featurestore.Query
}

func loadSealTools(t testing.TB) sealTools {
	t.Helper()
	d, err := featurestore.ReadSealTools(context.Background(), testenv.SealToolsDir(t), featurestore.Config{})
	require.NoError(t, err)
	tools := make(map[string]featurestore.Tool, len(d.Tools))
	for _, tl := range d.Tools {
		tools[tl.ID] = tl
	}
	caps := make(map[string]featurestore.Capability, len(d.Capabilities))
	for _, c := range d.Capabilities {
		caps[c.ID] = c
	}
	var st sealTools
	for _, c := range d.Capabilities {
		if c.Level == 0 {
			st.docs = append(st.docs, CapabilityDocument(c, tools, caps))
			st.ids = append(st.ids, c.ID)
		}
	}
	st.queries = d.Queries
	return st
}

// metrics are the retrieval figures over a query set.
type metrics struct {
	Queries                      int
	NDCG5, MRR, Hit1, Hit3, Hit5 float64
}

// evaluate ranks the documents for every query whose id has prefix and
// averages nDCG@5 (binary gains, ideal DCG over min(5, |relevant|)), MRR
// and Hit@1/3/5. The ranking is TopK over all documents: only documents
// sharing a term with the query are ranked (a relevant document with score
// 0 counts as not found), ties by document order.
func evaluate(ix *Index, st sealTools, prefix string) metrics {
	pos := make(map[string]int, len(st.ids))
	for i, id := range st.ids {
		pos[id] = i
	}
	var m metrics
	for _, q := range st.queries {
		if !strings.HasPrefix(q.ID, prefix) {
			continue
		}
		rel := make(map[int]bool, len(q.Relevant))
		for _, id := range q.Relevant {
			rel[pos[id]] = true
		}
		hits := ix.TopK(q.Intent, ix.Len())
		var dcg, idcg float64
		first := 0
		for r, h := range hits {
			if !rel[h.Doc] {
				continue
			}
			if r < 5 {
				dcg += 1 / math.Log2(float64(r+2))
			}
			if first == 0 {
				first = r + 1
			}
		}
		for r := range min(5, len(rel)) {
			idcg += 1 / math.Log2(float64(r+2))
		}
		m.Queries++
		m.NDCG5 += dcg / idcg
		if first > 0 {
			m.MRR += 1 / float64(first)
		}
		for _, k := range []struct {
			k int
			p *float64
		}{{1, &m.Hit1}, {3, &m.Hit3}, {5, &m.Hit5}} {
			if first > 0 && first <= k.k {
				*k.p++
			}
		}
	}
	n := float64(m.Queries)
	m.NDCG5 /= n
	m.MRR /= n
	m.Hit1 /= n
	m.Hit3 /= n
	m.Hit5 /= n
	return m
}

// TestSealToolsRetrieval ranks the 2,276 level-0 capabilities of Seal-Tools
// for each query (relevant = the query's fields, all level 0).
//
// The issue's figure is nDCG@5 = 0.705 on test_in_domain with k1 1.5,
// b 0.75, tokenizer unstated. Words lowercased and split on non-letters
// alone (Tokenizer{}, no case split), with Lucene's idf, give 0.699;
// rank_bm25's own idf on the same tokens gives 0.712 (computed with the
// package in a throwaway run), so 0.705 lies between the two idf variants
// of that tokenizer. Splitting on whitespace only (str.split) gives 0.662
// (Lucene idf) / 0.676 (rank_bm25 idf): punctuation stuck to words.
//
// Observed, k1 1.5 / b 0.75 (dev nDCG@5 chose the default; test reported):
//
//	tokenizer                     dev nDCG@5   test nDCG@5  MRR    Hit@1  Hit@3  Hit@5
//	no case split                 0.681        0.699        0.844  0.759  0.921  0.949
//	SplitCase                     0.723        0.730        0.874  0.814  0.926  0.954
//	SplitCase+Stopwords (default) 0.742        0.752        0.869  0.800  0.943  0.970
//	 + Stem                       0.743        0.750        0.867  0.793  0.940  0.974
//	 + KeepCompound + Stem        0.744        0.748        0.863  0.786  0.941  0.974
//
// Paired per-query differences on dev: SplitCase +0.041 (standard error
// 0.007), then Stopwords +0.019 (0.005); Stem +0.001 (0.003) and
// KeepCompound +0.003 (0.002) are noise, so they stay off. A k1 ∈ {0.9,
// 1.2, 1.5, 2} × b ∈ {0.3, 0.5, 0.75, 1} grid moves dev nDCG@5 within
// 0.729–0.746: the issue's 1.5 / 0.75 stays.
func TestSealToolsRetrieval(t *testing.T) {
	st := loadSealTools(t)
	require.Len(t, st.docs, 2276)

	issue := DefaultConfig()
	issue.Tokenizer = Tokenizer{}
	for _, tc := range []struct {
		name     string
		cfg      Config
		lo, hi   float64 // band for test nDCG@5
		devFloor float64
	}{
		// The issue's 0.705 ± 0.02.
		{"issue (no case split)", issue, 0.685, 0.725, 0.65},
		// The default: 0.752 observed; the band fails a tokenizer that
		// loses the case split or the stopwords (0.730) or breaks ranking.
		{"default", DefaultConfig(), 0.735, 0.78, 0.725},
	} {
		ix, err := New(st.docs, tc.cfg)
		require.NoError(t, err)
		dev := evaluate(ix, st, featurestore.SealToolsDevPrefix)
		test := evaluate(ix, st, featurestore.SealToolsTestPrefix)
		require.Equal(t, 700, dev.Queries)
		require.Equal(t, 700, test.Queries)
		t.Logf("%-22s dev  nDCG@5 %.4f MRR %.4f Hit@1 %.4f Hit@3 %.4f Hit@5 %.4f", tc.name, dev.NDCG5, dev.MRR, dev.Hit1, dev.Hit3, dev.Hit5)
		t.Logf("%-22s test nDCG@5 %.4f MRR %.4f Hit@1 %.4f Hit@3 %.4f Hit@5 %.4f", tc.name, test.NDCG5, test.MRR, test.Hit1, test.Hit3, test.Hit5)
		assert.GreaterOrEqual(t, test.NDCG5, tc.lo, tc.name)
		assert.LessOrEqual(t, test.NDCG5, tc.hi, tc.name)
		assert.GreaterOrEqual(t, dev.NDCG5, tc.devFloor, tc.name)
		// Internal consistency of the figures.
		assert.LessOrEqual(t, test.Hit1, test.Hit3)
		assert.LessOrEqual(t, test.Hit3, test.Hit5)
		assert.GreaterOrEqual(t, test.MRR, test.Hit1)
	}
}
