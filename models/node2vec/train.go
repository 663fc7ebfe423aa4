package node2vec

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas/blas32"
)

// Config sets the walks and the skip-gram. DefaultConfig has the design's
// values.
type Config struct {
	Dimensions   int     // embedding size (design: 64)
	WalkLength   int     // nodes per walk, the start included (design: 15)
	WalksPerNode int     // walks started from each non-isolated node (design: 40)
	Window       int     // skip-gram context on each side (design: 5)
	P            float64 // return parameter: α = 1/p for going back
	Q            float64 // in-out parameter: α = 1/q for moving away
	Negative     int     // negative samples per positive pair (5)
	Epochs       int     // passes over the walks (1)
	Workers      int     // goroutines; 0 means GOMAXPROCS. 1 is deterministic
	Seed         uint64
	LearningRate float64 // starting rate, decayed linearly to 1e-4 of it (0.025)
}

// DefaultConfig is the design's Node2Vec: walkLength 15, walksPerNode 40,
// window 5, 64 dimensions, p = q = 1, word2vec's learning rate and negatives.
func DefaultConfig() Config {
	return Config{
		Dimensions: 64, WalkLength: 15, WalksPerNode: 40, Window: 5,
		P: 1, Q: 1, Negative: 5, Epochs: 1, Workers: 0, Seed: 1, LearningRate: 0.025,
	}
}

// ConfigError names an invalid Config field.
type ConfigError struct {
	Field  string
	Value  any
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("node2vec: config %s = %v: %s", e.Field, e.Value, e.Reason)
}

// Validate reports the first invalid field as a *ConfigError.
func (c Config) Validate() error {
	pos := func(name string, v int) error {
		if v < 1 {
			return &ConfigError{Field: name, Value: v, Reason: "must be at least 1"}
		}
		return nil
	}
	posF := func(name string, v float64) error {
		if !(v > 0) || math.IsInf(v, 0) {
			return &ConfigError{Field: name, Value: v, Reason: "must be positive and finite"}
		}
		return nil
	}
	for _, err := range []error{
		pos("Dimensions", c.Dimensions),
		pos("WalksPerNode", c.WalksPerNode),
		pos("Window", c.Window),
		posF("P", c.P),
		posF("Q", c.Q),
		pos("Negative", c.Negative),
		pos("Epochs", c.Epochs),
		posF("LearningRate", c.LearningRate),
	} {
		if err != nil {
			return err
		}
	}
	if c.WalkLength < 2 {
		// A one-node walk has no context: nothing would be learned.
		return &ConfigError{Field: "WalkLength", Value: c.WalkLength, Reason: "must be at least 2"}
	}
	if c.Workers < 0 {
		return &ConfigError{Field: "Workers", Value: c.Workers, Reason: "must be 0 (all cores) or more"}
	}
	return nil
}

// Embeddings maps node ids to vectors.
type Embeddings struct {
	ids   []string
	index map[string]int32
	dim   int
	data  []float32 // row-major, len(ids)·dim
}

// NewEmbeddings wraps vectors computed elsewhere (another implementation's
// output, a stored model) so that they can be scored like Train's: data is
// row-major, one row of dim values per id, and is kept, not copied.
func NewEmbeddings(ids []string, dim int, data []float32) (*Embeddings, error) {
	if dim < 1 || len(data) != len(ids)*dim {
		return nil, fmt.Errorf("node2vec: embeddings of %d ids × %d dimensions need %d values, got %d", len(ids), dim, len(ids)*max(dim, 0), len(data))
	}
	e := &Embeddings{ids: slices.Clone(ids), index: make(map[string]int32, len(ids)), dim: dim, data: data}
	for i, id := range e.ids {
		if _, dup := e.index[id]; dup {
			return nil, fmt.Errorf("node2vec: embeddings list id %q twice", id)
		}
		e.index[id] = int32(i)
	}
	return e, nil
}

// Dim is the vector size.
func (e *Embeddings) Dim() int { return e.dim }

// IDs are the embedded node ids, in the graph's order (a copy).
func (e *Embeddings) IDs() []string { return slices.Clone(e.ids) }

// Vector returns a copy of id's vector. An isolated node (no edges, so no
// walk ever visits it and it has no context to learn from) is the zero
// vector: a defined "nothing known" that a downstream normalization must
// treat as such, rather than a random initialization that would pass for
// information.
func (e *Embeddings) Vector(id string) ([]float32, bool) {
	i, ok := e.index[id]
	if !ok {
		return nil, false
	}
	return slices.Clone(e.data[int(i)*e.dim : int(i+1)*e.dim]), true
}

// Train learns an embedding of every node of g. ctx is checked between
// walks and between sentences; a cancelled ctx returns ctx's error.
//
// Training is word2vec's skip-gram with negative sampling: for each walk
// position a reduced window b ∈ [1, Window] is drawn, and each context node
// within b is trained to predict the centre node against Negative noise
// nodes drawn from the unigram distribution of the walks raised to 0.75.
// The learning rate decays linearly from LearningRate to 1e-4·LearningRate
// over all epochs. There is no subsampling of frequent nodes.
//
// With Workers > 1 the workers update the shared float32 matrices without
// locks (Hogwild, Recht et al. 2011), as word2vec and gensim do: two workers
// may touch the same row at once and one update can overwrite part of
// another. That race is benign by design — updates are sparse, each loss is
// a small perturbation, and Go's memory model guarantees a racing read of a
// float32 observes some value actually written (no tearing for word-sized
// values) — but it makes the result depend on scheduling, and the race
// detector reports it. Workers = 1 is fully deterministic for a seed: the
// same graph and Config give the same vectors bit for bit.
func Train(ctx context.Context, g *Graph, cfg Config) (*Embeddings, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	workers := cfg.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	n, dim := g.NumNodes(), cfg.Dimensions
	emb := &Embeddings{ids: slices.Clone(g.ids), index: make(map[string]int32, n), dim: dim, data: make([]float32, n*dim)}
	for i, id := range emb.ids {
		emb.index[id] = int32(i)
	}
	c, err := walks(ctx, g, cfg, workers)
	if err != nil {
		return nil, err
	}
	if len(c.lens) == 0 {
		return emb, nil // every node isolated
	}

	counts := make([]float64, n)
	var total int64
	for i := range c.lens {
		for _, v := range c.walk(i) {
			counts[v]++
		}
		total += int64(c.lens[i])
	}
	noise := newNoise(counts)

	// word2vec's initialization: input vectors uniform in ±0.5/dim for
	// visited nodes, output vectors zero. Isolated nodes stay zero.
	init := rand.New(rand.NewPCG(cfg.Seed, 0x696e6974))
	syn0 := emb.data
	for v := range n {
		if counts[v] > 0 {
			for k := range dim {
				syn0[v*dim+k] = (init.Float32() - 0.5) / float32(dim)
			}
		}
	}
	syn1 := make([]float32, n*dim)

	tr := &trainer{
		cfg: cfg, dim: dim, syn0: syn0, syn1: syn1, noise: noise, corpus: c,
		totalWords: float64(total) * float64(cfg.Epochs),
		sigmoid:    newSigmoidTable(),
	}
	for epoch := range cfg.Epochs {
		err := parallel(ctx, workers, len(c.lens), func(ctx context.Context, lo, hi int) error {
			return tr.run(ctx, epoch, lo, hi)
		})
		if err != nil {
			return nil, err
		}
	}
	return emb, nil
}

// trainer is the shared state of one Train call.
type trainer struct {
	cfg        Config
	dim        int
	syn0, syn1 []float32
	noise      *aliasSampler
	corpus     *corpus
	totalWords float64
	processed  atomic.Int64
	sigmoid    []float32
}

const (
	maxExp          = 6
	sigmoidTableLen = 1000
	// progressEvery is how often (in words) a worker publishes its progress
	// for the shared learning-rate schedule, as word2vec does every 10,000.
	progressEvery = 10000
)

func newSigmoidTable() []float32 {
	t := make([]float32, sigmoidTableLen)
	for i := range t {
		x := (float64(i)/sigmoidTableLen*2 - 1) * maxExp
		t[i] = float32(1 / (1 + math.Exp(-x)))
	}
	return t
}

// run trains on walks [lo, hi) for one epoch.
func (t *trainer) run(ctx context.Context, epoch, lo, hi int) error {
	dim, neg := t.dim, t.cfg.Negative
	// The vector loops are ~70% of training. gonum's level-1 BLAS runs them
	// in SIMD assembly (about twice Go's scalar loops at 64 dimensions); its
	// summation order is fixed, so one worker stays deterministic.
	vec := blas32.Implementation()
	rng := rand.New(rand.NewPCG(t.cfg.Seed^uint64(epoch+1)*0x9e3779b97f4a7c15, uint64(lo)))
	neu1e := make([]float32, dim)
	startRate := float32(t.cfg.LearningRate)
	minRate := startRate * 1e-4
	alpha := startRate
	var local int64
	update := func() {
		done := t.processed.Add(local)
		local = 0
		alpha = max(startRate*float32(1-float64(done)/(t.totalWords+1)), minRate)
	}
	for s := lo; s < hi; s++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if local >= progressEvery {
			update()
		}
		walk := t.corpus.walk(s)
		local += int64(len(walk))
		for i, word := range walk {
			b := t.cfg.Window - rng.IntN(t.cfg.Window) // reduced window in [1, Window]
			for j := max(0, i-b); j <= min(len(walk)-1, i+b); j++ {
				if j == i {
					continue
				}
				l1 := t.syn0[int(walk[j])*dim : int(walk[j]+1)*dim]
				clear(neu1e)
				for d := 0; d <= neg; d++ {
					target, label := word, float32(1)
					if d > 0 {
						target, label = t.noise.sample(rng), 0
						if target == word {
							continue
						}
					}
					l2 := t.syn1[int(target)*dim : int(target+1)*dim]
					f := vec.Sdot(dim, l1, 1, l2, 1)
					var g float32
					switch {
					case f >= maxExp:
						g = (label - 1) * alpha
					case f <= -maxExp:
						g = label * alpha
					default:
						k := min(int((f+maxExp)*(sigmoidTableLen/(2.0*maxExp))), sigmoidTableLen-1)
						g = (label - t.sigmoid[k]) * alpha
					}
					vec.Saxpy(dim, g, l2, 1, neu1e, 1)
					vec.Saxpy(dim, g, l1, 1, l2, 1)
				}
				vec.Saxpy(dim, 1, neu1e, 1, l1, 1)
			}
		}
	}
	update()
	return nil
}

// aliasSampler draws from a fixed discrete distribution in O(1) (Walker's
// alias method): the exact unigram^0.75 noise law rather than word2vec's
// 1e8-entry approximation table.
type aliasSampler struct {
	// One 8-byte entry per column, so that a draw touches one cache line:
	// keep the column when the coin (32 bits) is below thr, else take alias.
	// A column kept outright has alias = itself.
	cols []aliasCol
}

type aliasCol struct {
	thr   uint32
	alias int32
}

// newNoise builds the sampler of counts^0.75.
func newNoise(counts []float64) *aliasSampler {
	n := len(counts)
	s := &aliasSampler{cols: make([]aliasCol, n)}
	var sum float64
	p := make([]float64, n)
	for i, c := range counts {
		p[i] = math.Pow(c, 0.75)
		sum += p[i]
	}
	var small, large []int32
	for i := range p {
		p[i] *= float64(n) / sum
		if p[i] < 1 {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		sm, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		// p < 1, so p·2³² fits; the law is kept to within 2⁻³².
		s.cols[sm] = aliasCol{thr: uint32(p[sm] * (1 << 32)), alias: l}
		p[l] -= 1 - p[sm]
		if p[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, k := range append(small, large...) {
		// Rounding leftovers; a zero-count node can only land here with
		// p ≈ 0 when every count is zero, which Train rules out.
		s.cols[k] = aliasCol{thr: math.MaxUint32, alias: k}
	}
	return s
}

// sample uses one 64-bit draw: the high 32 bits pick the column
// (multiply-shift; its bias, under n/2³², is immaterial for noise) and the
// low 32 bits the coin. Noise sampling is the next-hottest step after the
// vector loops.
func (s *aliasSampler) sample(rng *rand.Rand) int32 {
	r := rng.Uint64()
	k := (r >> 32) * uint64(len(s.cols)) >> 32
	if c := s.cols[k]; uint32(r) >= c.thr {
		return c.alias
	}
	return int32(k)
}

// parallel splits [0, n) into workers contiguous chunks and runs fn on each
// in its own goroutine, returning the first error. Workers = 1 runs inline.
func parallel(ctx context.Context, workers, n int, fn func(ctx context.Context, lo, hi int) error) error {
	workers = max(1, min(workers, n))
	if workers == 1 {
		return fn(ctx, 0, n)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*n/workers, (w+1)*n/workers
		wg.Go(func() {
			if err := fn(ctx, lo, hi); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}
