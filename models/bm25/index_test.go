package bm25

import (
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The hand-computed corpus, tokenized by the zero Tokenizer:
//
//	d0 "cat dog"        |d0| = 2
//	d1 "Cat cat mouse"  |d1| = 3
//	d2 "bird"           |d2| = 1
//
// N = 3, avgdl = 2. With k1 = 1.5, b = 0.75 the length norms
// k1·(1 − b + b·|d|/avgdl) are 1.5, 2.0625 and 0.9375, and
// idf(cat) = ln(1 + 1.5/2.5) = ln 1.6, idf(dog) = idf(mouse) = idf(bird) =
// ln(1 + 2.5/1.5) = ln(8/3).
var handDocs = []string{"cat dog", "Cat cat mouse", "bird"}

var (
	idfCat  = math.Log(1.6)
	idfRare = math.Log(8.0 / 3.0)
	// tf·(k1+1)/(tf + norm) per (term, doc):
	catD0   = idfCat * (1 * 2.5 / (1 + 1.5))     // = idf
	catD1   = idfCat * (2 * 2.5 / (2 + 2.0625))  // = idf·16/13
	dogD0   = idfRare * (1 * 2.5 / (1 + 1.5))    // = idf
	mouseD1 = idfRare * (1 * 2.5 / (1 + 2.0625)) // = idf·40/49
	birdD2  = idfRare * (1 * 2.5 / (1 + 0.9375)) // = idf·40/31
)

func handIndex(t *testing.T) *Index {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Tokenizer = Tokenizer{}
	ix, err := New(handDocs, cfg)
	require.NoError(t, err)
	return ix
}

func TestScoresHandComputed(t *testing.T) {
	ix := handIndex(t)
	require.Equal(t, 3, ix.Len())

	for _, tc := range []struct {
		query string
		want  []float64
	}{
		{"cat", []float64{catD0, catD1, 0}},
		{"CAT?!", []float64{catD0, catD1, 0}},
		{"dog mouse", []float64{dogD0, mouseD1, 0}},
		{"bird", []float64{0, 0, birdD2}},
		{"cat cat", []float64{2 * catD0, 2 * catD1, 0}}, // a repeated query term counts twice
		{"cat zebra", []float64{catD0, catD1, 0}},       // unknown terms add nothing
		{"cat dog mouse bird", []float64{catD0 + dogD0, catD1 + mouseD1, birdD2}},
	} {
		got := ix.Scores(tc.query, nil)
		require.Len(t, got, 3, tc.query)
		for i := range got {
			assert.InDelta(t, tc.want[i], got[i], 1e-12, "%q doc %d", tc.query, i)
		}
	}
	// The same five impacts as decimals, for a reader checking by hand.
	for i, want := range []float64{0.470004, 0.578466, 0.980829, 0.800677, 1.265586} {
		assert.InDelta(t, want, []float64{catD0, catD1, dogD0, mouseD1, birdD2}[i], 5e-7)
	}
}

func TestIDF(t *testing.T) {
	assert.InDelta(t, math.Log(1.6), IDF(3, 2), 1e-15)
	assert.InDelta(t, math.Log(1+0.5/3.5), IDF(3, 3), 1e-15) // in every document: small but positive
	for n := 0; n <= 100; n++ {
		assert.Greater(t, IDF(100, n), 0.0)
	}
}

func TestTopK(t *testing.T) {
	ix := handIndex(t)
	hits := ix.TopK("cat dog", 5)
	require.Len(t, hits, 2) // bird shares no term, so it is not ranked
	assert.Equal(t, 0, hits[0].Doc)
	assert.InDelta(t, catD0+dogD0, hits[0].Score, 1e-12)
	assert.Equal(t, 1, hits[1].Doc)
	assert.InDelta(t, catD1, hits[1].Score, 1e-12)

	assert.Equal(t, []Hit{{Doc: 0, Score: hits[0].Score}}, ix.TopK("cat dog", 1))
	assert.Empty(t, ix.TopK("cat", 0))
	assert.Empty(t, ix.TopK("cat", -3))
	assert.Empty(t, ix.TopK("zebra", 3))

	// Ties go to the lower document index, whatever k.
	ties, err := New([]string{"x", "y", "x", "x"}, DefaultConfig())
	require.NoError(t, err)
	got := ties.TopK("x", 2)
	require.Len(t, got, 2)
	assert.Equal(t, []int{0, 2}, []int{got[0].Doc, got[1].Doc})
	assert.Equal(t, got[0].Score, got[1].Score)
}

// TestTopKMatchesScores ranks a larger corpus both ways.
func TestTopKMatchesScores(t *testing.T) {
	docs := make([]string, 300)
	for i := range docs {
		docs[i] = "w" + strconv.Itoa(i%7) + " w" + strconv.Itoa(i%11) + " w" + strconv.Itoa(i%13) + " filler"
	}
	ix, err := New(docs, DefaultConfig())
	require.NoError(t, err)
	for _, q := range []string{"w3", "w3 w5 w12", "w1 filler", "w0 w0 w10"} {
		scores := ix.Scores(q, nil)
		hits := ix.TopK(q, 20)
		require.Len(t, hits, 20, q)
		for r, h := range hits {
			assert.Equal(t, scores[h.Doc], h.Score)
			if r > 0 {
				prev := hits[r-1]
				assert.True(t, prev.Score > h.Score || (prev.Score == h.Score && prev.Doc < h.Doc), "%q rank %d", q, r)
			}
		}
		// Nothing outside the top 20 beats the 20th.
		last := hits[len(hits)-1]
		in := map[int]bool{}
		for _, h := range hits {
			in[h.Doc] = true
		}
		for d, s := range scores {
			if !in[d] {
				assert.True(t, s < last.Score || (s == last.Score && d > last.Doc), "%q doc %d", q, d)
			}
		}
	}
}

func TestScoreDocs(t *testing.T) {
	ix := handIndex(t)
	got, err := ix.ScoreDocs("cat mouse", []int{2, 1, 0, 1}, nil)
	require.NoError(t, err)
	want := []float64{0, catD1 + mouseD1, catD0, catD1 + mouseD1}
	require.Len(t, got, 4)
	for i := range want {
		assert.InDelta(t, want[i], got[i], 1e-12, "position %d", i)
	}
	got, err = ix.ScoreDocs("cat", nil, got)
	require.NoError(t, err)
	assert.Empty(t, got)

	for _, bad := range [][]int{{0, 3}, {-1}} {
		_, err = ix.ScoreDocs("cat", bad, nil)
		var ie *InputError
		require.ErrorAs(t, err, &ie, "%v", bad)
		assert.Equal(t, "idx["+strconv.Itoa(len(bad)-1)+"]", ie.Field)
	}
}

func TestEmptyQuery(t *testing.T) {
	ix := handIndex(t)
	for _, q := range []string{"", "   ", "?!-_", "\xff\xfe"} {
		assert.Equal(t, []float64{0, 0, 0}, ix.Scores(q, nil), "%q", q)
		assert.Empty(t, ix.TopK(q, 3), "%q", q)
		got, err := ix.ScoreDocs(q, []int{0, 2}, nil)
		require.NoError(t, err)
		assert.Equal(t, []float64{0, 0}, got, "%q", q)
	}
}

func TestScoresReusesDst(t *testing.T) {
	ix := handIndex(t)
	dst := []float64{9, 9, 9, 9, 9, 9}
	got := ix.Scores("bird", dst)
	require.Len(t, got, 3)
	assert.Equal(t, &dst[0], &got[0])
	assert.Equal(t, []float64{0, 0}, got[:2])
	assert.InDelta(t, birdD2, got[2], 1e-12)
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		docs  []string
		cfg   Config
		field string
	}{
		{"no docs", nil, DefaultConfig(), "docs"},
		{"empty docs", []string{}, DefaultConfig(), "docs"},
		{"zero config", []string{"a"}, Config{}, "K1"},
		{"negative k1", []string{"a"}, Config{K1: -1, B: 0.5}, "K1"},
		{"NaN k1", []string{"a"}, Config{K1: math.NaN(), B: 0.5}, "K1"},
		{"infinite k1", []string{"a"}, Config{K1: math.Inf(1), B: 0.5}, "K1"},
		{"b above 1", []string{"a"}, Config{K1: 1.2, B: 1.5}, "B"},
		{"NaN b", []string{"a"}, Config{K1: 1.2, B: math.NaN()}, "B"},
	} {
		_, err := New(tc.docs, tc.cfg)
		var ie *InputError
		require.ErrorAs(t, err, &ie, tc.name)
		assert.Equal(t, tc.field, ie.Field, tc.name)
		assert.Contains(t, err.Error(), "bm25: "+tc.field+": ", tc.name)
	}
}

// TestEmptyDocuments: documents without terms (even all of them) are legal
// and never score; nothing divides by a zero mean length.
func TestEmptyDocuments(t *testing.T) {
	ix, err := New([]string{"", "!!", ""}, DefaultConfig())
	require.NoError(t, err)
	assert.Equal(t, []float64{0, 0, 0}, ix.Scores("anything", nil))

	ix, err = New([]string{"", "solar panel", ""}, DefaultConfig())
	require.NoError(t, err)
	s := ix.Scores("solar", nil)
	assert.Equal(t, 0.0, s[0])
	assert.Greater(t, s[1], 0.0)
	assert.False(t, math.IsNaN(s[1]) || math.IsInf(s[1], 0))
}

// TestBZeroIgnoresLength: with b = 0 a term scores the same in a short and
// a long document.
func TestBZeroIgnoresLength(t *testing.T) {
	cfg := DefaultConfig()
	cfg.B = 0
	ix, err := New([]string{"solar", "solar wind tide wave", "coal"}, cfg)
	require.NoError(t, err)
	s := ix.Scores("solar", nil)
	assert.Equal(t, s[0], s[1])
	assert.InDelta(t, IDF(3, 2), s[0], 1e-15) // tf 1: (k1+1)/(1+k1) = 1
}

func TestConcurrentQueries(t *testing.T) {
	docs := make([]string, 200)
	for i := range docs {
		docs[i] = "getItem" + strconv.Itoa(i%17) + " fetch the item number " + strconv.Itoa(i%23) + " from store"
	}
	ix, err := New(docs, DefaultConfig())
	require.NoError(t, err)
	queries := []string{"fetch item 5", "store number 7 getItem3", "the store", "item item item 11"}
	want := make([][]float64, len(queries))
	for i, q := range queries {
		want[i] = ix.Scores(q, nil)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			var dst []float64
			for r := range 50 {
				i := (g + r) % len(queries)
				dst = ix.Scores(queries[i], dst)
				assert.Equal(t, want[i], dst)
				if hits := ix.TopK(queries[i], 3); assert.Len(t, hits, 3) {
					assert.Equal(t, want[i][hits[0].Doc], hits[0].Score)
				}
				sd, err := ix.ScoreDocs(queries[i], []int{r % 200}, nil)
				assert.NoError(t, err)
				assert.Equal(t, want[i][r%200], sd[0])
			}
		})
	}
	wg.Wait()
}

// TestQueriesDoNotAllocate: with a dst of the right size, Scores and
// ScoreDocs allocate nothing; TopK allocates only its result.
func TestQueriesDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	ix, err := New([]string{"getWeatherForecast for a city", "get the current weather", "book a flight"}, DefaultConfig())
	require.NoError(t, err)
	q := "What's the weather forecast for Paris? getWeather"
	dst := ix.Scores(q, nil)
	sd, err := ix.ScoreDocs(q, []int{2, 0}, nil)
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(100, func() { dst = ix.Scores(q, dst) }))
	assert.Zero(t, testing.AllocsPerRun(100, func() { sd, _ = ix.ScoreDocs(q, []int{2, 0}, sd) }))
	assert.LessOrEqual(t, testing.AllocsPerRun(100, func() { ix.TopK(q, 2) }), 1.0)
}

// TestScoreDocsPaths: both of ScoreDocs' strategies, and ScoreDocs itself
// at every size, give Scores' values bit for bit.
func TestScoreDocsPaths(t *testing.T) {
	docs := make([]string, 300)
	for i := range docs {
		docs[i] = "w" + strconv.Itoa(i%7) + " w" + strconv.Itoa(i%11) + " w" + strconv.Itoa(i%13) + " filler" + strings.Repeat(" pad", i%5)
	}
	ix, err := New(docs, DefaultConfig())
	require.NoError(t, err)
	s := &scratch{}
	for _, q := range []string{"w3", "w3 w5 w12 w3", "w1 filler pad", "nothing"} {
		all := ix.Scores(q, nil)
		ix.queryTerms(q, s)
		for _, n := range []int{1, 2, 7, 40, 300, 600} {
			idx := make([]int, n)
			want := make([]float64, n)
			for i := range idx {
				idx[i] = (i * 37) % len(docs)
				want[i] = all[idx[i]]
			}
			viaSearch := make([]float64, n)
			ix.searchDocs(s.terms, idx, viaSearch)
			assert.Equal(t, want, viaSearch, "search %q n=%d", q, n)
			viaGather := make([]float64, n)
			ix.gatherDocs(s.terms, idx, viaGather, nil)
			assert.Equal(t, want, viaGather, "gather %q n=%d", q, n)
			got, err := ix.ScoreDocs(q, idx, nil)
			require.NoError(t, err)
			assert.Equal(t, want, got, "ScoreDocs %q n=%d", q, n)
		}
	}
}
