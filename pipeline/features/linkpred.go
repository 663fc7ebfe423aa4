package features

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/models/node2vec"
	"github.com/capflow/capflow/pipeline"
)

// Kinds of edge the link-prediction check holds out (Summary.LinkPrediction.Edges).
const (
	EdgesCoUse          = "co-use"
	EdgesCapabilityTool = "capability-tool"
	EdgesContainment    = "containment"
)

// minCandidates is the fewest edges of a kind worth holding out: below it
// the held-out sample is a handful of pairs and its AUC is noise.
const minCandidates = 10

// linkPredictionL2 is the logistic regression's penalty on the Hadamard
// features of the link-prediction check.
const linkPredictionL2 = 1e-3

// TunePoint is one (p, q) of the Node2Vec grid and the AUC it reached on the
// validation split.
type TunePoint struct {
	P, Q float64
	AUC  float64
}

// LinkPrediction is what the held-out link-prediction check measured.
type LinkPrediction struct {
	// Edges is the kind of edge held out (EdgesCoUse, EdgesCapabilityTool,
	// EdgesContainment), "" when the check was skipped.
	Edges string
	// Candidates is how many edges of that kind could be held out: neither
	// bridges nor (for co-use) coinciding with a catalog edge.
	Candidates int
	// HeldOut are the test edges the AUC is reported on (with as many
	// sampled non-edges).
	HeldOut []node2vec.Pair
	// AUC is the held-out AUC of the embedding trained with the full
	// Node2Vec configuration and the chosen P, Q on the graph without the
	// held-out edges; 0 when skipped.
	AUC float64
	// Validation are the edges the grid was scored on: held out from the
	// training side of the test split, never the test edges.
	Validation []node2vec.Pair
	// Grid holds one point per (p, q) tried, in grid order; empty when p
	// and q were not chosen by the check.
	Grid []TunePoint
	// ValidationNullSD is the standard deviation of a validation AUC that
	// carries no signal, √((n₊+n₋+1)/(12·n₊·n₋)): grid AUCs closer than
	// about twice this are not told apart by the measurement.
	ValidationNullSD float64
	// P and Q are the Node2Vec parameters the features were trained with.
	P, Q float64
	// Skipped says why p and q were not tuned although a grid was set, ""
	// otherwise.
	Skipped string
}

// linkPrediction measures the graph embedding and chooses Node2Vec's p and q
// by it. It holds out a fraction of one kind of edge, embeds the rest and
// returns the AUC of telling held-out edges from non-edges of the same kind
// (mixing kinds would let the classifier tell positives from negatives by
// node type alone). The kind is the first with enough candidates of:
//
//   - co-use edges (capability — capability used right after it in a logged
//     session), the relation the issue asks the embedding to predict, and
//     the only kind with cycles on a catalog that is a forest;
//   - capability—tool edges;
//   - containment edges (sub-capability — capability).
//
// Only edges on a cycle are candidates. Holding out a bridge disconnects its
// endpoints, so no walk-based embedding can predict it and the AUC would
// measure nothing (≈0.5). A co-use edge that coincides with a catalog edge
// (a capability used right after its own member) is no candidate either:
// holding it out would remove catalog structure too. Seal-Tools' catalog
// alone is a forest (every tool has one field, every field one parent), so
// without co-use edges the check is skipped (Edges "").
//
// When cfg.PGrid or cfg.QGrid is set, p and q are chosen on a validation
// split carved out of the test split's training side (another fraction of
// its candidates, negatives avoiding the test pairs), with
// cfg.TuneWalksPerNode walks per node to keep the grid cheap; the reported
// AUC is then measured once, on the test edges, with the full configuration
// and the chosen values. Choosing on the test edges themselves would report
// the best of several noisy AUCs and overstate the embedding.
func linkPrediction(ctx context.Context, g, catalog *node2vec.Graph, caps []featurestore.Capability, coUse []node2vec.CoUse, cfg Config, log *slog.Logger, prog pipeline.Progress) (LinkPrediction, error) {
	res := LinkPrediction{P: cfg.Node2Vec.P, Q: cfg.Node2Vec.Q}
	isCap := make(map[string]bool, len(caps))
	for _, c := range caps {
		isCap[c.ID] = true
	}
	bridge := bridges(g)
	isBridge := func(p node2vec.Pair) bool { return bridge[p] || bridge[node2vec.Pair{U: p.V, V: p.U}] }
	var coUsePairs, toolEdges, containment []node2vec.Pair
	for _, e := range coUse {
		p := node2vec.Pair{U: e.U, V: e.V}
		if _, onCatalog := catalog.Weight(e.U, e.V); !onCatalog && !isBridge(p) {
			coUsePairs = append(coUsePairs, p)
		}
	}
	for _, c := range caps {
		for _, m := range c.Members {
			p := node2vec.Pair{U: m, V: c.ID}
			switch {
			case isBridge(p):
			case isCap[m]:
				containment = append(containment, p)
			default:
				toolEdges = append(toolEdges, p)
			}
		}
	}
	for _, kind := range []struct {
		name  string
		pairs []node2vec.Pair
	}{{EdgesCoUse, coUsePairs}, {EdgesCapabilityTool, toolEdges}, {EdgesContainment, containment}} {
		if len(kind.pairs) < minCandidates {
			continue
		}
		split, err := node2vec.HoldOut(g, kind.pairs, cfg.LinkPredictionFraction, cfg.Node2Vec.Seed)
		if err != nil {
			log.Warn("link prediction: cannot hold out edges of this kind", "edges", kind.name, "candidates", len(kind.pairs), "err", err)
			continue
		}
		res.Edges, res.Candidates, res.HeldOut = kind.name, len(kind.pairs), split.TestPos
		if len(cfg.PGrid) > 0 || len(cfg.QGrid) > 0 {
			if err := tune(ctx, split, cfg, &res, log, prog); err != nil {
				return res, err
			}
		}
		n2v := cfg.Node2Vec
		n2v.P, n2v.Q = res.P, res.Q
		emb, err := node2vec.Train(ctx, split.Train, n2v)
		if err != nil {
			return res, fmt.Errorf("features: node2vec on the link-prediction split: %w", err)
		}
		if res.AUC, err = node2vec.LinkPredictionAUC(ctx, emb, split, linkPredictionL2); err != nil {
			return res, fmt.Errorf("features: link-prediction AUC: %w", err)
		}
		return res, nil
	}
	if len(cfg.PGrid) > 0 || len(cfg.QGrid) > 0 {
		res.Skipped = "no edge kind can be held out"
	}
	return res, nil
}

// tune scores every (p, q) of the grid on a validation split carved out of
// split.Train and sets res.P, res.Q to the best; on a tie the earlier grid
// point wins. When no validation split can be drawn it keeps the configured
// values and says why in res.Skipped.
func tune(ctx context.Context, split *node2vec.Split, cfg Config, res *LinkPrediction, log *slog.Logger, prog pipeline.Progress) error {
	inner := split.Train
	bridge := bridges(inner)
	var cands []node2vec.Pair
	for _, p := range split.TrainPos {
		if !bridge[p] && !bridge[node2vec.Pair{U: p.V, V: p.U}] {
			cands = append(cands, p)
		}
	}
	if len(cands) < minCandidates {
		res.Skipped = fmt.Sprintf("%d validation candidates, fewer than %d", len(cands), minCandidates)
		log.Warn("node2vec p/q not tuned: too few edges for a validation split", "candidates", len(cands))
		return nil
	}
	except := slices.Concat(split.TestPos, split.TestNeg)
	val, err := node2vec.HoldOutExcept(inner, cands, cfg.LinkPredictionFraction, cfg.Node2Vec.Seed+1, except)
	if err != nil {
		res.Skipped = "validation split: " + err.Error()
		log.Warn("node2vec p/q not tuned: no validation split", "err", err)
		return nil
	}
	res.Validation = val.TestPos
	np, nn := float64(len(val.TestPos)), float64(len(val.TestNeg))
	res.ValidationNullSD = math.Sqrt((np + nn + 1) / (12 * np * nn))

	ps, qs := cfg.PGrid, cfg.QGrid
	if len(ps) == 0 {
		ps = []float64{cfg.Node2Vec.P}
	}
	if len(qs) == 0 {
		qs = []float64{cfg.Node2Vec.Q}
	}
	tc := cfg.Node2Vec
	tc.WalksPerNode = min(cfg.TuneWalksPerNode, tc.WalksPerNode)
	bar := prog.Start("node2vec p/q grid", len(ps)*len(qs))
	defer bar.Done()
	best := -1
	for _, p := range ps {
		for _, q := range qs {
			tc.P, tc.Q = p, q
			emb, err := node2vec.Train(ctx, val.Train, tc)
			if err != nil {
				return fmt.Errorf("features: node2vec p=%v q=%v on the validation split: %w", p, q, err)
			}
			auc, err := node2vec.LinkPredictionAUC(ctx, emb, val, linkPredictionL2)
			if err != nil {
				return fmt.Errorf("features: validation AUC at p=%v q=%v: %w", p, q, err)
			}
			res.Grid = append(res.Grid, TunePoint{P: p, Q: q, AUC: auc})
			if best < 0 || auc > res.Grid[best].AUC {
				best = len(res.Grid) - 1
			}
			log.Info("node2vec grid point", "p", p, "q", q, "validation_auc", auc, "walks_per_node", tc.WalksPerNode)
			bar.Add(1)
		}
	}
	res.P, res.Q = res.Grid[best].P, res.Grid[best].Q
	log.Info("node2vec p/q chosen by validation link-prediction AUC", "p", res.P, "q", res.Q,
		"validation_auc", res.Grid[best].AUC, "null_sd", res.ValidationNullSD, "validation_edges", len(val.TestPos))
	return nil
}

// bridges returns the edges of g whose removal disconnects their endpoints
// (Tarjan's low-link, iteratively so a long path cannot overflow the stack).
func bridges(g *node2vec.Graph) map[node2vec.Pair]bool {
	ids := g.IDs()
	n := len(ids)
	nbrs := make([][]int, n)
	for i, id := range ids {
		ns, _ := g.Neighbors(id)
		for _, m := range ns {
			j, _ := g.Index(m)
			nbrs[i] = append(nbrs[i], j)
		}
	}
	disc, low := make([]int, n), make([]int, n)
	for i := range disc {
		disc[i] = -1
	}
	out := map[node2vec.Pair]bool{}
	type frame struct{ v, parent, next int }
	t := 0
	for root := range n {
		if disc[root] >= 0 {
			continue
		}
		stack := []frame{{root, -1, 0}}
		disc[root], low[root] = t, t
		t++
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if f.next < len(nbrs[f.v]) {
				w := nbrs[f.v][f.next]
				f.next++
				switch {
				case disc[w] < 0:
					disc[w], low[w] = t, t
					t++
					stack = append(stack, frame{w, f.v, 0})
				case w != f.parent:
					low[f.v] = min(low[f.v], disc[w])
				}
				continue
			}
			stack = stack[:len(stack)-1]
			if f.parent >= 0 {
				low[f.parent] = min(low[f.parent], low[f.v])
				if low[f.v] > disc[f.parent] {
					out[node2vec.Pair{U: ids[f.parent], V: ids[f.v]}] = true
				}
			}
		}
	}
	return out
}
