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

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/models/bm25"
	"gonum.org/v1/gonum/blas/blas32"
)

// Names are the features, in the order Features writes them; they match
// shgat.DefaultEvidence.
var Names = []string{"bm25_capability", "bm25_tool_max", "cos_tool_max"}

// F is the number of features per candidate.
const F = 3

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

// Features returns the F features of each capability in caps (indices; nil:
// all), row-major [len(caps)×F], for an intent's text and unit embedding:
//
//	bm25_capability  log(1 + BM25(intent, capability document))
//	bm25_tool_max    log(1 + max over its tools of BM25(intent, tool text))
//	cos_tool_max     max over its tools of cos(intent, tool text embedding); 0 without tools
//
// The logs keep BM25's long tail on the scale of the dense score.
func (ix *Index) Features(text string, intent []float32, caps []int) ([]float64, error) {
	if len(intent) != ix.Dim() {
		return nil, &Error{Reason: fmt.Sprintf("intent embedding has dimension %d, want %d", len(intent), ix.Dim())}
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
	capScores := ix.caps.Scores(text, nil)
	toolScores := ix.tools.Scores(text, nil)
	// The tool cosines are most of a request's cost at D = 1,024, and they
	// are bound by memory, not arithmetic: each tool's embedding is read
	// once, in index order (the rows are usually one contiguous block, which
	// the hardware prefetcher streams), and only for tools of a candidate.
	need := make([]bool, len(ix.toolEmb))
	for _, c := range caps {
		for _, t := range ix.capTools[c] {
			need[t] = true
		}
	}
	cos := make([]float64, len(ix.toolEmb))
	x := blas32.Vector{N: len(intent), Data: intent, Inc: 1}
	for t, ok := range need {
		if ok {
			cos[t] = float64(blas32.Dot(blas32.Vector{N: len(intent), Data: ix.toolEmb[t], Inc: 1}, x))
		}
	}
	out := make([]float64, len(caps)*F)
	for r, c := range caps {
		bestBM, bestCos := 0.0, math.Inf(-1)
		for _, t := range ix.capTools[c] {
			bestBM = max(bestBM, toolScores[t])
			bestCos = max(bestCos, cos[t])
		}
		if math.IsInf(bestCos, -1) {
			bestCos = 0
		}
		out[r*F], out[r*F+1], out[r*F+2] = math.Log1p(capScores[c]), math.Log1p(bestBM), bestCos
	}
	return out, nil
}
