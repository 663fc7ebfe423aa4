// Package ranker ranks a catalog's capabilities for an intent with a
// packaged SHGAT model: the MLflow Model folder's ONNX scorer run by ONNX
// Runtime, its precomputed catalog, and the evidence features computed by
// models/evidence. Evaluation and serving rank through it, so both score
// exactly what the registry holds.
package ranker

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/models/evidence"
	"github.com/capflow/capflow/models/shgat"
)

// Options configure Open.
type Options struct {
	ORTLibrary     string // libonnxruntime.so (default: ONNXRUNTIME_SHARED_LIBRARY_PATH)
	IntraOpThreads int    // ORT threads per call (default 1)
}

// Ranker ranks capabilities with one packaged model. Safe for concurrent use.
type Ranker struct {
	pkg      *shgat.Package
	proj     *shgat.Projection // the catalog as the ONNX scorer takes it
	ort      *shgat.ORTScorer
	ev       *evidence.Index // nil when the package has no tool text embeddings
	cols     []int           // evidence.Features columns the model reads, in its order
	capIndex map[string]int
	toolIdx  map[string]int
	dim      int
	bufs     sync.Pool // *gathered
}

// gathered holds one request's candidate keys, reliabilities and evidence.
type gathered struct{ keys, rel, ev []float32 }

// Error says why a model cannot rank.
type Error struct{ Reason string }

func (e *Error) Error() string { return "ranker: " + e.Reason }

// Catalog is a catalog to rank that the model was not packaged with: its
// records and the features message passing starts from.
type Catalog struct {
	Tools       []featurestore.Tool
	Caps        []featurestore.Capability
	CapText     [][]float32 // unit text embeddings of Caps (the features stage's), in order
	ToolText    [][]float32 // unit text embeddings of Tools (evidence.ToolText), in order
	Reliability []float64   // per capability (nil: all 1)
}

// OpenFor opens the model like Open but ranks another catalog: the model's
// checkpoint runs message passing over cat's graph (shgat.Represent) to
// compute that catalog's keys and tool representations. The ONNX scorer is
// catalog-independent (keys are inputs), so a model trained on one catalog
// ranks any other once its features are built.
func OpenFor(ctx context.Context, dir string, cat Catalog, opts Options) (*Ranker, error) {
	pkg, err := shgat.ReadMLflowModel(dir)
	if err != nil {
		return nil, err
	}
	d := pkg.Catalog.Dim
	if len(cat.CapText) != len(cat.Caps) || len(cat.ToolText) != len(cat.Tools) {
		return nil, &Error{Reason: fmt.Sprintf("%d capability and %d tool embeddings for %d capabilities and %d tools", len(cat.CapText), len(cat.ToolText), len(cat.Caps), len(cat.Tools))}
	}
	g, err := shgat.NewGraph(cat.Tools, cat.Caps)
	if err != nil {
		return nil, err
	}
	feats := shgat.Features{Tools: make([]float64, 0, len(cat.Tools)*d), Caps: make([]float64, 0, len(cat.Caps)*d)}
	for _, rows := range []struct {
		src [][]float32
		dst *[]float64
	}{{cat.ToolText, &feats.Tools}, {cat.CapText, &feats.Caps}} {
		for i, v := range rows.src {
			if len(v) != d {
				return nil, &Error{Reason: fmt.Sprintf("embedding %d has dimension %d, the model takes %d", i, len(v), d)}
			}
			for _, x := range v {
				*rows.dst = append(*rows.dst, float64(x))
			}
		}
	}
	reps, err := pkg.Model.Represent(g, feats)
	if err != nil {
		return nil, err
	}
	c, err := shgat.NewCatalog(g, reps, cat.Reliability, pkg.Catalog.FeatureVersion)
	if err != nil {
		return nil, err
	}
	for _, v := range cat.ToolText {
		c.ToolText = append(c.ToolText, v...)
	}
	pkg.Catalog = c
	return OpenPackage(ctx, pkg, cat.Tools, cat.Caps, opts)
}

// Open reads the MLflow Model folder dir (shgat.ReadMLflowModel), loads its
// ONNX scorer, checks that ONNX Runtime reproduces the folder's stored
// example scores, and builds the evidence index from the catalog's tools and
// capabilities as the store has them (tools and caps: every id of the
// model's catalog must be there; extra records are ignored).
func Open(ctx context.Context, dir string, tools []featurestore.Tool, caps []featurestore.Capability, opts Options) (*Ranker, error) {
	pkg, err := shgat.ReadMLflowModel(dir)
	if err != nil {
		return nil, err
	}
	return OpenPackage(ctx, pkg, tools, caps, opts)
}

// OpenPackage is Open for a folder already read with shgat.ReadMLflowModel.
func OpenPackage(ctx context.Context, pkg *shgat.Package, tools []featurestore.Tool, caps []featurestore.Capability, opts Options) (*Ranker, error) {
	cat := pkg.Catalog
	s, err := shgat.OpenORT(ctx, pkg.Folder.ModelPath(), shgat.ORTOptions{LibraryPath: opts.ORTLibrary, Dim: cat.Dim, IntraOpThreads: opts.IntraOpThreads})
	if err != nil {
		return nil, err
	}
	r := &Ranker{pkg: pkg, ort: s, dim: cat.Dim, capIndex: map[string]int{}, toolIdx: map[string]int{}}
	r.bufs.New = func() any { return &gathered{} }
	if err := r.verify(); err != nil {
		s.Close()
		return nil, err
	}
	if r.proj, err = pkg.Model.Scorer().Project(cat); err != nil {
		s.Close()
		return nil, err
	}
	for i, id := range cat.CapabilityIDs {
		r.capIndex[id] = i
	}
	for i, id := range cat.ToolIDs {
		r.toolIdx[id] = i
	}
	// The model reads the evidence columns it was trained with, by name.
	if cols, err := evidence.Columns(pkg.Model.Config.Evidence); err == nil && cat.ToolText != nil && s.Features() == len(cols) {
		r.cols = cols
		if r.ev, err = evidenceIndex(cat, tools, caps); err != nil {
			s.Close()
			return nil, err
		}
	}
	return r, nil
}

// verify scores the folder's input example through ONNX Runtime and
// compares with the scores stored at packaging time.
func (r *Ranker) verify() error {
	ex := r.pkg.Folder.Example
	mask := ex[shgat.InputContextMask]
	b, c := int(mask.Shape[0]), int(mask.Shape[1])
	n := int(ex[shgat.InputReliability].Shape[0])
	got, err := r.ort.Score(shgat.Batch{B: b, C: c, N: n, Intent: ex[shgat.InputIntent].Data, Context: ex[shgat.InputContext].Data,
		ContextKeys: ex[shgat.InputContextKeys].Data, ContextMask: mask.Data, Candidates: ex[shgat.InputCandidates].Data, Reliability: ex[shgat.InputReliability].Data,
		Evidence: ex[shgat.InputEvidence].Data})
	if err != nil {
		return &Error{Reason: fmt.Sprintf("scoring the model's input example: %v", err)}
	}
	for i, v := range got {
		want := r.pkg.ExampleScores[i]
		if math.Abs(float64(v-want)) > 1e-4*math.Max(1, math.Abs(float64(want))) {
			return &Error{Reason: fmt.Sprintf("ONNX Runtime scores the input example %v, the folder stores %v", got, r.pkg.ExampleScores)}
		}
	}
	return nil
}

func evidenceIndex(cat *shgat.Catalog, tools []featurestore.Tool, caps []featurestore.Capability) (*evidence.Index, error) {
	toolByID := map[string]featurestore.Tool{}
	for _, t := range tools {
		toolByID[t.ID] = t
	}
	capByID := map[string]featurestore.Capability{}
	for _, c := range caps {
		capByID[c.ID] = c
	}
	ts := make([]featurestore.Tool, len(cat.ToolIDs))
	emb := make([][]float32, len(cat.ToolIDs))
	for i, id := range cat.ToolIDs {
		t, ok := toolByID[id]
		if !ok {
			return nil, &Error{Reason: fmt.Sprintf("the model's tool %q is not in the catalog given", id)}
		}
		ts[i], emb[i] = t, cat.ToolText[i*cat.Dim:(i+1)*cat.Dim]
	}
	cs := make([]featurestore.Capability, len(cat.CapabilityIDs))
	for i, id := range cat.CapabilityIDs {
		c, ok := capByID[id]
		if !ok {
			return nil, &Error{Reason: fmt.Sprintf("the model's capability %q is not in the catalog given", id)}
		}
		cs[i] = c
	}
	return evidence.New(ts, cs, emb)
}

// Close releases the ONNX Runtime session.
func (r *Ranker) Close() error { return r.ort.Close() }

// Package is the model the ranker serves.
func (r *Ranker) Package() *shgat.Package { return r.pkg }

// Dim is the intent embedding width the model takes.
func (r *Ranker) Dim() int { return r.dim }

// Capabilities lists the catalog's capability ids in index order.
func (r *Ranker) Capabilities() []string { return r.pkg.Catalog.CapabilityIDs }

// Query is one ranking request.
type Query struct {
	Text      string    // the intent (for the lexical evidence)
	Embedding []float32 // unit intent embedding [Dim]
	// Parts are the intent's clauses (evidence.Parts) with their unit
	// embeddings, for the part evidence features; nil: the intent is its
	// own only part.
	Parts        []evidence.Part
	ContextTools []string // tool ids in context
	Candidates   []string // capability ids to rank; nil: the whole catalog
}

// Scored is one ranked capability.
type Scored struct {
	ID    string
	Score float64
}

// Rank scores the candidates and returns them best first (ties in the
// order of q.Candidates, or catalog order). Unknown candidate or context
// ids are an *Error naming them.
func (r *Ranker) Rank(ctx context.Context, q Query) ([]Scored, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(q.Embedding) != r.dim {
		return nil, &Error{Reason: fmt.Sprintf("intent embedding has dimension %d, the model takes %d", len(q.Embedding), r.dim)}
	}
	for i, p := range q.Parts {
		if len(p.Embedding) != r.dim {
			return nil, &Error{Reason: fmt.Sprintf("part %d of the intent has a %d-d embedding, the model takes %d", i, len(p.Embedding), r.dim)}
		}
	}
	cat := r.pkg.Catalog
	idx := make([]int, 0, len(cat.CapabilityIDs))
	if q.Candidates == nil {
		for i := range cat.CapabilityIDs {
			idx = append(idx, i)
		}
	} else {
		for _, id := range q.Candidates {
			i, ok := r.capIndex[id]
			if !ok {
				return nil, &Error{Reason: fmt.Sprintf("unknown capability %q", id)}
			}
			idx = append(idx, i)
		}
	}
	d, ncat := r.dim, len(cat.CapabilityIDs)
	var ctxRows, ctxKeys, mask []float32
	for _, id := range q.ContextTools {
		t, ok := r.toolIdx[id]
		if !ok {
			return nil, &Error{Reason: fmt.Sprintf("unknown context tool %q", id)}
		}
		ctxRows = append(ctxRows, cat.Tools[t*d:(t+1)*d]...)
		ctxKeys = append(ctxKeys, r.proj.Context[t*d:(t+1)*d]...)
		mask = append(mask, 1)
	}
	buf := r.bufs.Get().(*gathered)
	defer r.bufs.Put(buf)
	// A candidate's score depends only on the query and its own row, so
	// scoring the whole catalog and picking the candidates gives the same
	// scores. When the candidates are most of the catalog that is cheaper
	// than gathering their keys: at D = 1,024 a gathered key row is 4 KB
	// written and read again, where the catalog's keys are read in place.
	whole := q.Candidates == nil || 2*len(idx) >= ncat
	keys, rel, n := r.proj.Candidates, cat.Reliability, ncat
	row := func(j int) int { // candidate j's row in the scored batch
		if whole {
			return idx[j]
		}
		return j
	}
	if !whole {
		buf.keys, buf.rel = buf.keys[:0], buf.rel[:0]
		for _, i := range idx {
			buf.keys = append(buf.keys, keys[i*d:(i+1)*d]...)
			buf.rel = append(buf.rel, cat.Reliability[i])
		}
		keys, rel, n = buf.keys, buf.rel, len(idx)
	}
	var ev []float32
	if r.ev != nil {
		eq := evidence.Query{Text: q.Text, Embedding: q.Embedding}
		if slices.ContainsFunc(r.cols, func(c int) bool { return c >= evidence.FirstPart }) {
			// Only the part features read the parts: a model packaged with
			// the whole-intent features alone does not pay a BM25 pass and
			// the tool cosines per part for columns it drops.
			eq.Parts = q.Parts
		}
		f, err := r.ev.Features(eq, idx)
		if err != nil {
			return nil, err
		}
		// Rows of capabilities that are not candidates stay zero: their
		// scores are dropped.
		nf := len(r.cols)
		ev = slices.Grow(buf.ev[:0], n*nf)[:n*nf]
		clear(ev)
		buf.ev = ev
		for j := range idx {
			for k, col := range r.cols {
				ev[row(j)*nf+k] = float32(f[j*evidence.F+col])
			}
		}
	}
	b := shgat.Batch{B: 1, C: len(mask), N: n, Intent: q.Embedding, Context: ctxRows,
		ContextKeys: ctxKeys, ContextMask: mask, Candidates: keys, Reliability: rel, Evidence: ev}
	if r.pkg.Model.Config.IntentParts && len(q.Parts) > 0 {
		b = partRows(b, q)
	}
	scores, err := r.ort.Score(b)
	if err != nil {
		return nil, err
	}
	// A model that scores intents as the best of their parts gets one row
	// per part; each candidate keeps its best row (shgat.Config.IntentParts).
	for p := 1; p < b.B; p++ {
		for j, s := range scores[p*n : (p+1)*n] {
			scores[j] = max(scores[j], s)
		}
	}
	// Best first, ties in candidate order. Each candidate becomes one
	// uint64, (descending score key << 32) | position, so a plain sort of
	// integers does it: 4–5× faster than a comparison sort of the results.
	order := make([]uint64, len(idx))
	for j := range idx {
		order[j] = uint64(descending(scores[row(j)]))<<32 | uint64(j)
	}
	slices.Sort(order)
	out := make([]Scored, len(idx))
	for k, key := range order {
		j := int(uint32(key))
		out[k] = Scored{ID: cat.CapabilityIDs[idx[j]], Score: float64(scores[row(j)])}
	}
	return out, nil
}

// descending maps a score to a uint32 whose ascending order is the scores'
// descending order; NaN sorts last.
func descending(f float32) uint32 {
	if f != f {
		return math.MaxUint32
	}
	b := math.Float32bits(f)
	if b&(1<<31) != 0 {
		b = ^b // negative: larger magnitude is smaller
	} else {
		b |= 1 << 31
	}
	return ^b
}

// partRows turns a one-row batch into one row per intent row, the whole
// intent then each part, with the same context, evidence and candidates.
func partRows(b shgat.Batch, q Query) shgat.Batch {
	rows := 1 + len(q.Parts)
	out := b
	out.B = rows
	out.Intent = make([]float32, 0, rows*len(q.Embedding))
	out.Intent = append(out.Intent, q.Embedding...)
	for _, p := range q.Parts {
		out.Intent = append(out.Intent, p.Embedding...)
	}
	repeat := func(v []float32) []float32 {
		if v == nil {
			return nil
		}
		r := make([]float32, 0, rows*len(v))
		for range rows {
			r = append(r, v...)
		}
		return r
	}
	out.Context, out.ContextKeys, out.ContextMask, out.Evidence = repeat(b.Context), repeat(b.ContextKeys), repeat(b.ContextMask), repeat(b.Evidence)
	return out
}
