package train

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/models/shgat"
)

// Sample is one transition resolved against a catalog.
type Sample struct {
	Intent  []float64 // unit intent embedding [D]
	Context []int     // tool indices of the context tools
	Cap     int       // capability index of the selected capability
	Reward  float64
	Success bool
	Next    int // index of the session's next sample on the same side; -1: terminal
	Session string
	// Parts are the unit embeddings of the intent's parts (evidence.Parts);
	// nil when the intent is one part or parts are not used. Shared by the
	// samples of one intent.
	Parts [][]float64
	// Evidence holds the evidence features (models/evidence) of every
	// capability, [C×F] in graph order; nil without evidence. Shared by the
	// samples of one intent.
	Evidence []float64
}

// Data is everything the trainer reads: the graph and its node features, the
// candidate pool, and the resolved transitions of both sides of a split.
type Data struct {
	Graph       *shgat.Graph
	Features    shgat.Features // unit embeddings, [T×D] and [C×D]
	Reliability []float64      // per capability; nil: all 1
	// Pool lists the capabilities ranked in the listwise loss and in
	// validation (e.g. all level-0 capabilities); a selected capability
	// outside it is appended for its own example.
	Pool         []int
	Train, Valid []Sample
}

// Dim is the embedding width.
func (d *Data) Dim() int { return len(d.Features.Caps) / max(len(d.Graph.Caps), 1) }

// DataError says why data cannot be assembled. Err, when set, is the kind
// (ErrNoExperiences, ErrNoFeatures) and what caused it, for errors.Is/As.
type DataError struct {
	Reason string
	Err    error
}

func (e *DataError) Error() string { return "train: data: " + e.Reason }

func (e *DataError) Unwrap() error { return e.Err }

// Kinds of DataError that callers act on: a command line says which
// command to run first.
var (
	// ErrNoExperiences: the store has no experiences to train on.
	ErrNoExperiences = errors.New("no experiences")
	// ErrNoFeatures: a capability has no features row (the features stage
	// has not run on this catalog).
	ErrNoFeatures = errors.New("capability features not built")
)

// Resolve turns transitions into samples: intent embeddings come from
// intents (keyed by featurestore.IntentHash), ids become indices. A
// transition naming an unknown capability or tool, or whose intent has no
// embedding, is an error naming it.
//
// ev, when not nil, adds each intent's evidence features; parts, when not
// nil, the embeddings of its parts (for shgat.Config.IntentParts).
func Resolve(ctx context.Context, g *shgat.Graph, ts []Transition, intents map[string][]float64, ev *Evidence, parts *Parts) ([]Sample, error) {
	out := make([]Sample, len(ts))
	rows := map[string][][]float64{} // shared by the samples of one intent
	for i, t := range ts {
		e := t.Experience
		c, ok := g.CapIndex(e.SelectedCapability)
		if !ok {
			return nil, &DataError{Reason: fmt.Sprintf("experience in session %q selects unknown capability %q", t.Session, e.SelectedCapability)}
		}
		emb, ok := intents[featurestore.IntentHash(e.Intent, e.ContextTools)]
		if !ok {
			return nil, &DataError{Reason: fmt.Sprintf("no intent embedding for %q (session %q): build features first", shorten(e.Intent), t.Session)}
		}
		s := Sample{Intent: emb, Cap: c, Reward: t.Reward, Success: e.Outcome == featurestore.OutcomeSuccess, Next: t.Next, Session: t.Session}
		if ev != nil {
			var err error
			if s.Evidence, err = ev.Features(ctx, e.Intent, emb); err != nil {
				return nil, err
			}
		}
		if parts != nil {
			r, ok := rows[e.Intent]
			if !ok {
				var err error
				if r, err = partRows(ctx, parts, e.Intent); err != nil {
					return nil, err
				}
				rows[e.Intent] = r
			}
			s.Parts = r
		}
		for _, id := range e.ContextTools {
			k, ok := g.ToolIndex(id)
			if !ok {
				return nil, &DataError{Reason: fmt.Sprintf("experience in session %q has unknown context tool %q", t.Session, id)}
			}
			s.Context = append(s.Context, k)
		}
		out[i] = s
	}
	return out, nil
}

// PoolOfLevels returns the capabilities whose level is in levels (all when
// levels is empty).
func PoolOfLevels(g *shgat.Graph, levels []int) []int {
	var pool []int
	for c, l := range g.Level {
		if len(levels) == 0 || slices.Contains(levels, l) {
			pool = append(pool, c)
		}
	}
	return pool
}

// query is one validation session: its intent, context and the capabilities
// that succeeded in it.
type query struct {
	session  string
	intent   []float64
	parts    [][]float64
	context  []int
	evidence []float64
	relevant map[int]bool
}

// queries groups samples by session (in first-appearance order); sessions
// without a success are dropped: they have nothing to rank first. A query
// is ranked with its session's first sample's intent and context, and
// every capability that succeeded in the session is relevant: for a
// pseudo-session (PseudoTransitions) that is the query's own context and
// its relevant capabilities, as evaluation ranks them, not one step of its
// plan.
func queries(samples []Sample) []query {
	idx := map[string]int{}
	var out []query
	for _, s := range samples {
		k, ok := idx[s.Session]
		if !ok {
			k = len(out)
			idx[s.Session] = k
			out = append(out, query{session: s.Session, intent: s.Intent, parts: s.Parts, context: s.Context, evidence: s.Evidence, relevant: map[int]bool{}})
		}
		if s.Success {
			out[k].relevant[s.Cap] = true
		}
	}
	return slices.DeleteFunc(out, func(q query) bool { return len(q.relevant) == 0 })
}

// gatherEvidence returns the rows idx of ev ([C×f]), nil when ev is nil.
func gatherEvidence(ev []float64, idx []int, f int) []float64 {
	if ev == nil {
		return nil
	}
	out := make([]float64, 0, len(idx)*f)
	for _, c := range idx {
		out = append(out, ev[c*f:(c+1)*f]...)
	}
	return out
}

func shorten(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return s
}

// rowsOf returns the intent rows a sample is scored with: the whole intent,
// then its parts when the model scores parts (shgat.Config.IntentParts).
func rowsOf(m *shgat.Model, intent []float64, parts [][]float64) [][]float64 {
	if !m.Config.IntentParts || len(parts) == 0 {
		return [][]float64{intent}
	}
	return append([][]float64{intent}, parts...)
}

// partBatch is a batch of examples expanded into one example per intent
// row; a candidate's score is its best row's (IntentParts).
type partBatch struct {
	Examples []shgat.Example
	first    []int // per original example: the index of its first row
	rows     []int // per original example: its number of rows
}

// expandRows gives each example one copy per row of rows[i] (same context,
// candidates and evidence).
func expandRows(examples []shgat.Example, rows [][][]float64) partBatch {
	var pb partBatch
	for i, ex := range examples {
		pb.first = append(pb.first, len(pb.Examples))
		pb.rows = append(pb.rows, len(rows[i]))
		for _, r := range rows[i] {
			e := ex
			e.Intent = r
			pb.Examples = append(pb.Examples, e)
		}
	}
	return pb
}

// combine returns each original example's scores, the max over its rows,
// and for each candidate the row that gave it. The max commutes with the
// evidence (the same for every row) and with the reliability factor (which
// is increasing), so it is the max of the dense scores, fused as usual.
func (pb partBatch) combine(scores [][]float64) (best [][]float64, arg [][]int) {
	best, arg = make([][]float64, len(pb.first)), make([][]int, len(pb.first))
	for i, f := range pb.first {
		best[i] = append([]float64(nil), scores[f]...)
		arg[i] = make([]int, len(best[i]))
		for r := 1; r < pb.rows[i]; r++ {
			for j, s := range scores[f+r] {
				if s > best[i][j] {
					best[i][j], arg[i][j] = s, r
				}
			}
		}
	}
	return best, arg
}

// spread sends each original example's score gradient to the rows that
// gave the scores (the max's subgradient).
func (pb partBatch) spread(dS [][]float64, arg [][]int) [][]float64 {
	out := make([][]float64, len(pb.Examples))
	for i, f := range pb.first {
		for r := range pb.rows[i] {
			out[f+r] = make([]float64, len(dS[i]))
		}
		for j, g := range dS[i] {
			out[f+arg[i][j]][j] = g
		}
	}
	return out
}
