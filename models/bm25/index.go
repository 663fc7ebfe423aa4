package bm25

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"
)

// Defaults of Config (Robertson's and Lucene's usual values).
const (
	DefaultK1 = 1.5
	DefaultB  = 0.75
)

// Config sets BM25's parameters and the tokenizer. The zero value is not
// usable (K1 = 0 is refused); start from DefaultConfig.
type Config struct {
	// K1 > 0 saturates term frequency: the contribution of a term tends to
	// idf·(K1+1) as its count grows.
	K1 float64
	// B in [0, 1] is the strength of document-length normalisation: 0
	// ignores length, 1 divides tf by the length relative to the mean.
	B float64
	// Tokenizer turns documents and queries into terms.
	Tokenizer Tokenizer
}

// DefaultConfig is K1 1.5, B 0.75 and DefaultTokenizer.
func DefaultConfig() Config {
	return Config{K1: DefaultK1, B: DefaultB, Tokenizer: DefaultTokenizer()}
}

// InputError names an argument New or ScoreDocs refused and why.
type InputError struct {
	Field  string // "docs", "K1", "B", "idx[3]"
	Reason string
}

func (e *InputError) Error() string { return "bm25: " + e.Field + ": " + e.Reason }

// Hit is one ranked document: its position in New's docs and its score.
type Hit struct {
	Doc   int
	Score float64
}

// Index is a BM25 index over a fixed corpus. It is immutable once built and
// safe for concurrent use.
type Index struct {
	cfg   Config
	n     int
	avgdl float64
	vocab map[string]int32 // term → term id
	// The postings of term t are docs[offsets[t]:offsets[t+1]], ascending,
	// with impacts[i] the whole BM25 contribution of t to docs[i].
	offsets []int32
	docs    []int32
	impacts []float64
	scratch sync.Pool // *scratch: per-query buffers, so queries do not allocate
}

type scratch struct {
	term   []byte    // the tokenizer's buffer
	terms  []int32   // the query's term ids
	scores []float64 // a dense accumulator for TopK and ScoreDocs
}

// New indexes docs; document i is docs[i]. Empty documents are allowed (they
// never score); an empty corpus is not.
func New(docs []string, cfg Config) (*Index, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, &InputError{Field: "docs", Reason: "no documents"}
	}
	if len(docs) > math.MaxInt32 {
		return nil, &InputError{Field: "docs", Reason: fmt.Sprintf("%d documents, more than an int32 holds", len(docs))}
	}

	// One pass over the corpus collects each document's (term, tf) pairs;
	// a counting sort by term then lays them out as postings in doc order.
	type pair struct{ term, tf int32 }
	var (
		vocab   = map[string]int32{}
		pairs   []pair
		docEnd  = make([]int, len(docs)) // pairs of doc i end at docEnd[i]
		docLen  = make([]int, len(docs))
		df      []int32
		ids     []int32
		buf     []byte
		totalTf int
	)
	for i, d := range docs {
		ids = ids[:0]
		buf = cfg.Tokenizer.terms(d, buf, func(term []byte) {
			id, ok := vocab[string(term)]
			if !ok {
				id = int32(len(vocab))
				vocab[string(term)] = id
				df = append(df, 0)
			}
			ids = append(ids, id)
		})
		docLen[i] = len(ids)
		totalTf += len(ids)
		slices.Sort(ids)
		for j := 0; j < len(ids); {
			k := j + 1
			for k < len(ids) && ids[k] == ids[j] {
				k++
			}
			pairs = append(pairs, pair{ids[j], int32(k - j)})
			df[ids[j]]++
			j = k
		}
		docEnd[i] = len(pairs)
	}
	if len(pairs) > math.MaxInt32 {
		return nil, &InputError{Field: "docs", Reason: fmt.Sprintf("%d postings, more than an int32 holds", len(pairs))}
	}

	ix := &Index{
		cfg:     cfg,
		n:       len(docs),
		avgdl:   float64(totalTf) / float64(len(docs)),
		vocab:   vocab,
		offsets: make([]int32, len(df)+1),
		docs:    make([]int32, len(pairs)),
		impacts: make([]float64, len(pairs)),
	}
	idf := make([]float64, len(df))
	for t, n := range df {
		ix.offsets[t+1] = ix.offsets[t] + n
		idf[t] = IDF(len(docs), int(n))
	}
	next := slices.Clone(ix.offsets[:len(df)])
	k1, b := cfg.K1, cfg.B
	start := 0
	for d, end := range docEnd {
		// The length norm of document d; avgdl > 0 whenever d has a term.
		norm := k1 * (1 - b + b*float64(docLen[d])/ix.avgdl)
		for _, p := range pairs[start:end] {
			tf := float64(p.tf)
			at := next[p.term]
			next[p.term]++
			ix.docs[at] = int32(d)
			ix.impacts[at] = idf[p.term] * (tf * (k1 + 1) / (tf + norm))
		}
		start = end
	}
	ix.scratch.New = func() any { return new(scratch) }
	return ix, nil
}

// IDF is the inverse document frequency New uses for a term found in n of
// N documents: Lucene's ln(1 + (N − n + 0.5)/(n + 0.5)), positive for
// every 0 ≤ n ≤ N.
func IDF(N, n int) float64 {
	return math.Log(1 + (float64(N)-float64(n)+0.5)/(float64(n)+0.5))
}

func (c Config) validate() error {
	if !(c.K1 > 0) || math.IsInf(c.K1, 0) {
		return &InputError{Field: "K1", Reason: fmt.Sprintf("must be positive and finite, got %v (start from DefaultConfig)", c.K1)}
	}
	if !(c.B >= 0 && c.B <= 1) {
		return &InputError{Field: "B", Reason: fmt.Sprintf("must be in [0, 1], got %v", c.B)}
	}
	return nil
}

// Len is the number of documents.
func (ix *Index) Len() int { return ix.n }

// Config is the configuration the index was built with.
func (ix *Index) Config() Config { return ix.cfg }

// Scores returns the score of every document for query: dst resized to
// Len(), with dst[i] the score of document i. It allocates only when dst
// is too small. Documents that share no term with the query score 0, and
// so does every document for a query without terms.
func (ix *Index) Scores(query string, dst []float64) []float64 {
	dst = slices.Grow(dst[:0], ix.n)[:ix.n]
	clear(dst)
	s := ix.scratch.Get().(*scratch)
	ix.queryTerms(query, s)
	ix.accumulate(s.terms, dst)
	ix.scratch.Put(s)
	return dst
}

// accumulate adds the impacts of terms to scores along their postings.
func (ix *Index) accumulate(terms []int32, scores []float64) {
	for _, t := range terms {
		lo, hi := ix.offsets[t], ix.offsets[t+1]
		for i, d := range ix.docs[lo:hi] {
			scores[d] += ix.impacts[int(lo)+i]
		}
	}
}

// queryTerms sets s.terms to the ids of query's terms that are in the
// vocabulary, in query order, repeats kept.
func (ix *Index) queryTerms(query string, s *scratch) {
	s.terms = s.terms[:0]
	s.term = ix.cfg.Tokenizer.terms(query, s.term, func(term []byte) {
		if t, ok := ix.vocab[string(term)]; ok {
			s.terms = append(s.terms, t)
		}
	})
}

// ScoreDocs returns the scores of the documents idx for query, in idx's
// order (repeats allowed), in dst resized to len(idx); they equal Scores'
// bit for bit. It allocates only when dst is too small. An index outside
// [0, Len()) is an *InputError.
func (ix *Index) ScoreDocs(query string, idx []int, dst []float64) ([]float64, error) {
	for i, d := range idx {
		if d < 0 || d >= ix.n {
			return nil, &InputError{Field: fmt.Sprintf("idx[%d]", i), Reason: fmt.Sprintf("document %d out of range [0, %d)", d, ix.n)}
		}
	}
	dst = slices.Grow(dst[:0], len(idx))[:len(idx)]
	clear(dst)
	s := ix.scratch.Get().(*scratch)
	defer ix.scratch.Put(s)
	ix.queryTerms(query, s)

	// Binary search of each document in each term's postings costs
	// len(idx)·log2(df) probes per term; adding every posting into a dense
	// array and gathering costs df per term plus clearing Len(). A probe and
	// an add cost about the same: on Seal-Tools queries (about 35 known
	// terms) the dense path wins from about 15 of 2,276 documents on.
	var search, dense int
	for _, t := range s.terms {
		df := int(ix.offsets[t+1] - ix.offsets[t])
		search += len(idx) * bits.Len(uint(df))
		dense += df
	}
	if search <= dense+ix.n/4 {
		ix.searchDocs(s.terms, idx, dst)
	} else {
		s.scores = ix.gatherDocs(s.terms, idx, dst, s.scores)
	}
	return dst, nil
}

// searchDocs adds to dst[i] the impacts of terms for document idx[i],
// found by binary search in the postings.
func (ix *Index) searchDocs(terms []int32, idx []int, dst []float64) {
	for _, t := range terms {
		lo, hi := ix.offsets[t], ix.offsets[t+1]
		post := ix.docs[lo:hi]
		for i, d := range idx {
			if j, found := slices.BinarySearch(post, int32(d)); found {
				dst[i] += ix.impacts[int(lo)+j]
			}
		}
	}
}

// gatherDocs sets dst[i] to the score of document idx[i] by accumulating
// all of terms' postings into dense (resized to Len() and returned).
func (ix *Index) gatherDocs(terms []int32, idx []int, dst, dense []float64) []float64 {
	dense = slices.Grow(dense[:0], ix.n)[:ix.n]
	clear(dense)
	ix.accumulate(terms, dense)
	for i, d := range idx {
		dst[i] = dense[d]
	}
	return dense
}

// TopK returns the (at most) k best documents for query, best first; ties
// go to the lower document index. Only documents that share a term with
// the query (score > 0) are ranked, so fewer than k may come back, and
// none for k ≤ 0 or a query without known terms.
func (ix *Index) TopK(query string, k int) []Hit {
	if k <= 0 {
		return nil
	}
	s := ix.scratch.Get().(*scratch)
	defer ix.scratch.Put(s)
	ix.queryTerms(query, s)
	s.scores = slices.Grow(s.scores[:0], ix.n)[:ix.n]
	clear(s.scores)
	ix.accumulate(s.terms, s.scores)

	// A min-heap of the best k so far, its root the weakest. A document
	// must beat thresh to enter: 0 until the heap is full, then the root's
	// score (a later document never wins a tie). One predictable branch per
	// document: most lose.
	worse := func(a, b Hit) bool { return a.Score < b.Score || (a.Score == b.Score && a.Doc > b.Doc) }
	heap := make([]Hit, 0, min(k, ix.n))
	thresh := 0.0
	for d, sc := range s.scores {
		if sc <= thresh {
			continue
		}
		if len(heap) < k {
			heap = append(heap, Hit{Doc: d, Score: sc})
			siftUp(heap, len(heap)-1, worse)
		} else {
			heap[0] = Hit{Doc: d, Score: sc}
			siftDown(heap, 0, worse)
		}
		if len(heap) == k {
			thresh = heap[0].Score
		}
	}
	slices.SortFunc(heap, func(a, b Hit) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.Doc, b.Doc)
	})
	return heap
}

func siftUp(h []Hit, i int, less func(a, b Hit) bool) {
	for i > 0 {
		p := (i - 1) / 2
		if !less(h[i], h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func siftDown(h []Hit, i int, less func(a, b Hit) bool) {
	for {
		m, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && less(h[l], h[m]) {
			m = l
		}
		if r < len(h) && less(h[r], h[m]) {
			m = r
		}
		if m == i {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
