// Package evidence computes the per-candidate evidence features the SHGAT
// scorer fuses with its dense score: lexical matches of the intent against a
// capability's document and against its tools' own texts, and the best
// dense similarity to one of its tools. Training, evaluation and serving
// call the same code, so the model sees the same features everywhere.
//
// Why tool-level features: a capability is a set of tools, and an intent
// usually asks for one of them. Matching the intent against the capability
// as a whole dilutes that one tool among the others; taking the best tool
// keeps it. On Seal-Tools (dev split) the best tool's BM25 ranks better than
// the capability document's, and the best tool's cosine far better than the
// capability text's.
package evidence

import (
	"fmt"
	"math"
	"slices"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/models/bm25"
	"gonum.org/v1/gonum/blas/blas32"
)

// Names are the features, in the order Features writes them; they match
// shgat.DefaultEvidence. The first three read the intent as a whole, the
// last three take the best of its parts (Parts): a Seal-Tools query asks for
// three or four things in as many sentences, and the whole-intent embedding
// of such a query sits between its tools, close to none of them.
var Names = []string{
	"bm25_capability", "bm25_tool_max", "cos_tool_max",
	"bm25_capability_part_max", "bm25_tool_part_max", "cos_tool_part_max",
}

// F is the number of features per candidate.
const F = 6

// FirstPart is the first column that reads the intent's parts: Names[:FirstPart]
// read the whole intent only.
const FirstPart = 3

// Columns maps feature names (a model's shgat.Config.Evidence) to their
// columns in Features' rows, so a model packaged with fewer or reordered
// features reads exactly the ones it was trained on.
func Columns(names []string) ([]int, error) {
	out := make([]int, len(names))
	for i, n := range names {
		k := slices.Index(Names, n)
		if k < 0 {
			return nil, &Error{Reason: fmt.Sprintf("unknown evidence feature %q (known: %v)", n, Names)}
		}
		out[i] = k
	}
	return out, nil
}

// Index holds what the features need: BM25 over capability documents and
// over tool texts, the tools' text embeddings, and each capability's tools.
// Safe for concurrent use.
type Index struct {
	caps     *bm25.Index
	tools    *bm25.Index
	toolEmb  [][]float32 // unit text embeddings, per tool
	capTools [][]int     // per capability: indices of its tools, at any depth
}

// Error says why an index cannot be built.
type Error struct{ Reason string }

func (e *Error) Error() string { return "evidence: " + e.Reason }

// New indexes a catalog. caps and tools give the index order (features of
// capability i are row i); toolEmb[i] is tool i's unit text embedding
// (textembed of ToolText), all of one dimension.
func New(tools []featurestore.Tool, caps []featurestore.Capability, toolEmb [][]float32) (*Index, error) {
	if len(toolEmb) != len(tools) {
		return nil, &Error{Reason: fmt.Sprintf("%d tool embeddings for %d tools", len(toolEmb), len(tools))}
	}
	for i, e := range toolEmb {
		if len(e) == 0 || len(e) != len(toolEmb[0]) {
			return nil, &Error{Reason: fmt.Sprintf("tool %q has a %d-d embedding, want %d", tools[i].ID, len(e), len(toolEmb[0]))}
		}
	}
	toolIdx := make(map[string]int, len(tools))
	toolByID := make(map[string]featurestore.Tool, len(tools))
	tdocs := make([]string, len(tools))
	for i, t := range tools {
		toolIdx[t.ID], toolByID[t.ID] = i, t
		tdocs[i] = ToolText(t)
	}
	capIdx := make(map[string]int, len(caps))
	capByID := make(map[string]featurestore.Capability, len(caps))
	cdocs := make([]string, len(caps))
	for i, c := range caps {
		capIdx[c.ID], capByID[c.ID] = i, c
	}
	for i, c := range caps {
		cdocs[i] = bm25.CapabilityDocument(c, toolByID, capByID)
	}
	ix := &Index{toolEmb: toolEmb, capTools: make([][]int, len(caps))}
	var err error
	if ix.caps, err = bm25.New(cdocs, bm25.DefaultConfig()); err != nil {
		return nil, err
	}
	if ix.tools, err = bm25.New(tdocs, bm25.DefaultConfig()); err != nil {
		return nil, err
	}
	// Tools beneath each capability, through member capabilities; a visited
	// set cuts cycles.
	for i, c := range caps {
		seen := map[string]bool{c.ID: true}
		var walk func(members []string)
		walk = func(members []string) {
			for _, m := range members {
				if seen[m] {
					continue
				}
				seen[m] = true
				if t, ok := toolIdx[m]; ok {
					ix.capTools[i] = append(ix.capTools[i], t)
				} else if sub, ok := capByID[m]; ok {
					walk(sub.Members)
				}
			}
		}
		walk(c.Members)
	}
	return ix, nil
}

// ToolText is the text a tool is embedded and indexed from.
func ToolText(t featurestore.Tool) string {
	if t.Description == "" {
		return t.Name
	}
	return t.Name + ": " + t.Description
}

// Dim is the width of the tool embeddings (and of the intent embedding
// Features expects).
func (ix *Index) Dim() int { return len(ix.toolEmb[0]) }

// Len is the number of capabilities.
func (ix *Index) Len() int { return len(ix.capTools) }

// Query is an intent as the features read it: its text and unit embedding,
// and its parts (Parts(Text)) with their unit embeddings. Without parts the
// whole intent is its only part.
type Query struct {
	Text      string
	Embedding []float32
	Parts     []Part
}

// Part is one clause of an intent.
type Part struct {
	Text      string
	Embedding []float32
}

// Features returns the F features of each capability in caps (indices; nil:
// all), row-major [len(caps)×F], for a query:
//
//	bm25_capability           log(1 + BM25(intent, capability document))
//	bm25_tool_max             log(1 + max over its tools of BM25(intent, tool text))
//	cos_tool_max              max over its tools of cos(intent, tool text embedding); 0 without tools
//	bm25_capability_part_max  the first three, each the maximum over the intent's parts
//	bm25_tool_part_max
//	cos_tool_part_max
//
// The logs keep BM25's long tail on the scale of the dense score.
func (ix *Index) Features(q Query, caps []int) ([]float64, error) {
	if len(q.Embedding) != ix.Dim() {
		return nil, &Error{Reason: fmt.Sprintf("intent embedding has dimension %d, want %d", len(q.Embedding), ix.Dim())}
	}
	for i, p := range q.Parts {
		if len(p.Embedding) != ix.Dim() {
			return nil, &Error{Reason: fmt.Sprintf("part %d (%q) has a %d-d embedding, want %d", i, p.Text, len(p.Embedding), ix.Dim())}
		}
	}
	if caps == nil {
		caps = make([]int, ix.Len())
		for i := range caps {
			caps[i] = i
		}
	}
	for _, c := range caps {
		if c < 0 || c >= ix.Len() {
			return nil, &Error{Reason: fmt.Sprintf("capability index %d out of range [0,%d)", c, ix.Len())}
		}
	}
	need := make([]bool, len(ix.toolEmb))
	for _, c := range caps {
		for _, t := range ix.capTools[c] {
			need[t] = true
		}
	}
	out := make([]float64, len(caps)*F)
	whole := ix.features(q.Text, q.Embedding, caps, need)
	parts := q.Parts
	if len(parts) == 0 || (len(parts) == 1 && parts[0].Text == q.Text) {
		// One part, the intent itself: the part maxima are the whole's.
		for r := range caps {
			copy(out[r*F:], whole[r*3:r*3+3])
			copy(out[r*F+3:], whole[r*3:r*3+3])
		}
		return out, nil
	}
	for r := range caps {
		copy(out[r*F:], whole[r*3:r*3+3])
		for k := range 3 {
			out[r*F+3+k] = math.Inf(-1)
		}
	}
	for _, p := range parts {
		f := ix.features(p.Text, p.Embedding, caps, need)
		for r := range caps {
			for k := range 3 {
				out[r*F+3+k] = max(out[r*F+3+k], f[r*3+k])
			}
		}
	}
	return out, nil
}

// features computes the three whole-text features of caps for one text;
// need marks the tools of the candidates.
func (ix *Index) features(text string, intent []float32, caps []int, need []bool) []float64 {
	capScores := ix.caps.Scores(text, nil)
	toolScores := ix.tools.Scores(text, nil)
	// The tool cosines are most of a request's cost at D = 1,024, and they
	// are bound by memory, not arithmetic: each tool's embedding is read
	// once, in index order (the rows are usually one contiguous block, which
	// the hardware prefetcher streams), and only for tools of a candidate.
	cos := make([]float64, len(ix.toolEmb))
	x := blas32.Vector{N: len(intent), Data: intent, Inc: 1}
	for t, ok := range need {
		if ok {
			cos[t] = float64(blas32.Dot(blas32.Vector{N: len(intent), Data: ix.toolEmb[t], Inc: 1}, x))
		}
	}
	out := make([]float64, len(caps)*3)
	for r, c := range caps {
		bestBM, bestCos := 0.0, math.Inf(-1)
		for _, t := range ix.capTools[c] {
			bestBM = max(bestBM, toolScores[t])
			bestCos = max(bestCos, cos[t])
		}
		if math.IsInf(bestCos, -1) {
			bestCos = 0
		}
		out[r*3], out[r*3+1], out[r*3+2] = math.Log1p(capScores[c]), math.Log1p(bestBM), bestCos
	}
	return out
}
