package node2vec

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Link prediction, the standard check of a graph embedding (Grover &
// Leskovec 2016, §4.4): hide some edges, embed the rest, and see whether a
// classifier on the embeddings of node pairs tells hidden edges from
// non-edges.

// Pair is an unordered node pair, oriented as the caller's candidates are
// (e.g. tool first, capability second).
type Pair struct{ U, V string }

// Split is a link-prediction split: the residual graph to embed, the pairs
// that train the classifier (residual edges and non-edges) and the pairs
// that test it (held-out edges and other non-edges), positives and negatives
// of equal count.
type Split struct {
	Train              *Graph
	TrainPos, TrainNeg []Pair
	TestPos, TestNeg   []Pair
}

// HoldOut hides about frac of the candidate edges (which must be edges of g)
// and returns the split. Like node2vec's protocol, an edge is only hidden
// when both its endpoints keep another edge, so no test pair involves a node
// the embedding knows nothing about (its vector would be a tell, not a
// prediction). Negatives are candidate-shaped non-edges: a U drawn from the
// candidates' first endpoints and a V from their second endpoints, not an
// edge of g, no pair twice.
func HoldOut(g *Graph, candidates []Pair, frac float64, seed uint64) (*Split, error) {
	return HoldOutExcept(g, candidates, frac, seed, nil)
}

// HoldOutExcept is HoldOut whose negatives also avoid the pairs of except,
// in either orientation. It is for a validation split carved out of another
// split's residual graph (g = outer.Train, candidates from outer.TrainPos):
// the outer test edges are non-edges of that graph, and passing them (and
// the outer test negatives) as except keeps them out of the validation
// pairs, so choosing hyperparameters on the validation split never looks at
// the pairs the outer AUC is reported on. With no exceptions it draws
// exactly what HoldOut draws.
func HoldOutExcept(g *Graph, candidates []Pair, frac float64, seed uint64, except []Pair) (*Split, error) {
	if !(frac > 0 && frac < 1) {
		return nil, fmt.Errorf("node2vec: hold-out fraction %v is not in (0, 1)", frac)
	}
	idx := make([][2]int32, len(candidates))
	for k, p := range candidates {
		i, ok1 := g.index[p.U]
		j, ok2 := g.index[p.V]
		if !ok1 || !ok2 {
			return nil, &GraphError{U: p.U, V: p.V, Reason: "candidate is not an edge of the graph"}
		}
		if _, ok := g.find(i, j); !ok {
			return nil, &GraphError{U: p.U, V: p.V, Reason: "candidate is not an edge of the graph"}
		}
		idx[k] = [2]int32{i, j}
	}
	rng := rand.New(rand.NewPCG(seed, 0x686f6c64))
	deg := make([]int64, g.NumNodes())
	for i := range deg {
		deg[i] = g.off[i+1] - g.off[i]
	}
	want := int(math.Round(frac * float64(len(candidates))))
	hidden := map[[2]int32]bool{}
	s := &Split{}
	for _, k := range rng.Perm(len(candidates)) {
		if len(s.TestPos) == want {
			break
		}
		e := idx[k]
		key := [2]int32{min(e[0], e[1]), max(e[0], e[1])}
		if deg[e[0]] < 2 || deg[e[1]] < 2 || hidden[key] {
			continue
		}
		deg[e[0]]--
		deg[e[1]]--
		hidden[key] = true
		s.TestPos = append(s.TestPos, candidates[k])
	}
	if len(s.TestPos) == 0 {
		return nil, errors.New("node2vec: no candidate edge can be held out without isolating a node")
	}
	for k, p := range candidates {
		e := idx[k]
		if !hidden[[2]int32{min(e[0], e[1]), max(e[0], e[1])}] {
			s.TrainPos = append(s.TrainPos, p)
		}
	}

	b := NewBuilder()
	for _, id := range g.ids {
		b.AddNode(id)
	}
	var err error
	g.edges(func(i, j int32, w float32) {
		if !hidden[[2]int32{i, j}] && err == nil {
			err = b.AddEdge(g.ids[i], g.ids[j], float64(w))
		}
	})
	if err != nil {
		return nil, err
	}
	s.Train = b.Build()

	us, vs := distinct(candidates, func(p Pair) string { return p.U }), distinct(candidates, func(p Pair) string { return p.V })
	seen := make(map[Pair]bool, 2*len(except))
	for _, p := range except {
		seen[p] = true
	}
	draw := func(n int) ([]Pair, error) {
		var out []Pair
		for tries := 0; len(out) < n; tries++ {
			if tries > 100*n+1000 {
				return nil, errors.New("node2vec: too few non-edges to sample negatives from")
			}
			p := Pair{us[rng.IntN(len(us))], vs[rng.IntN(len(vs))]}
			if _, isEdge := g.Weight(p.U, p.V); isEdge || p.U == p.V || seen[p] || seen[Pair{p.V, p.U}] {
				continue
			}
			seen[p] = true
			out = append(out, p)
		}
		return out, nil
	}
	if s.TestNeg, err = draw(len(s.TestPos)); err != nil {
		return nil, err
	}
	if s.TrainNeg, err = draw(len(s.TrainPos)); err != nil {
		return nil, err
	}
	return s, nil
}

func distinct(ps []Pair, key func(Pair) string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range ps {
		if k := key(p); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// Hadamard is the element-wise product of the two vectors: the edge feature
// that worked best in node2vec's link-prediction study.
func Hadamard(a, b []float32) []float64 {
	out := make([]float64, min(len(a), len(b)))
	for i := range out {
		out[i] = float64(a[i]) * float64(b[i])
	}
	return out
}

// LinkPredictionAUC trains a logistic regression on the Hadamard features of
// s's training pairs under emb and returns the AUC of its scores on s's test
// pairs. A pair with an unknown id uses the zero vector.
func LinkPredictionAUC(ctx context.Context, emb *Embeddings, s *Split, l2 float64) (float64, error) {
	features := func(ps []Pair) [][]float64 {
		out := make([][]float64, len(ps))
		zero := make([]float32, emb.Dim())
		for i, p := range ps {
			a, ok := emb.Vector(p.U)
			if !ok {
				a = zero
			}
			b, ok := emb.Vector(p.V)
			if !ok {
				b = zero
			}
			out[i] = Hadamard(a, b)
		}
		return out
	}
	x := append(features(s.TrainPos), features(s.TrainNeg)...)
	y := make([]bool, len(x))
	for i := range s.TrainPos {
		y[i] = true
	}
	m, err := FitLogistic(ctx, x, y, LogisticConfig{L2: l2})
	if err != nil {
		return 0, err
	}
	var scores []float64
	var labels []bool
	for _, f := range features(s.TestPos) {
		scores, labels = append(scores, m.Score(f)), append(labels, true)
	}
	for _, f := range features(s.TestNeg) {
		scores, labels = append(scores, m.Score(f)), append(labels, false)
	}
	return AUC(scores, labels)
}

// LogisticConfig sets FitLogistic. Zero fields take the defaults.
type LogisticConfig struct {
	L2         float64 // penalty L2/2·‖w‖² on the weights, not the bias (default 1e-4)
	Iterations int     // full-batch gradient steps (default 2000)
	Rate       float64 // step size (default 0.5, after standardizing features)
}

// Logistic is a fitted logistic-regression model.
type Logistic struct {
	W         []float64
	B         float64
	mean, std []float64
}

// FitLogistic fits P(y | x) = σ(w·z + b), z the standardized x, by full-batch
// gradient descent on the mean log-loss plus L2/2·‖w‖². The loss is convex, so
// the fixed step on standardized features converges to its unique minimum
// for L2 > 0.
func FitLogistic(ctx context.Context, x [][]float64, y []bool, cfg LogisticConfig) (*Logistic, error) {
	if len(x) == 0 || len(x) != len(y) {
		return nil, fmt.Errorf("node2vec: logistic regression needs matching non-empty x (%d) and y (%d)", len(x), len(y))
	}
	if cfg.L2 == 0 {
		cfg.L2 = 1e-4
	}
	if cfg.Iterations == 0 {
		cfg.Iterations = 2000
	}
	if cfg.Rate == 0 {
		cfg.Rate = 0.5
	}
	if cfg.L2 < 0 || cfg.Iterations < 0 || !(cfg.Rate > 0) {
		return nil, fmt.Errorf("node2vec: invalid logistic config %+v", cfg)
	}
	d := len(x[0])
	m := &Logistic{W: make([]float64, d), mean: make([]float64, d), std: make([]float64, d)}
	for i, row := range x {
		if len(row) != d {
			return nil, fmt.Errorf("node2vec: logistic regression row %d has %d features, want %d", i, len(row), d)
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("node2vec: logistic regression row %d feature %d is %v", i, j, v)
			}
			m.mean[j] += v
		}
	}
	n := float64(len(x))
	for j := range m.mean {
		m.mean[j] /= n
	}
	for _, row := range x {
		for j, v := range row {
			m.std[j] += (v - m.mean[j]) * (v - m.mean[j])
		}
	}
	for j := range m.std {
		m.std[j] = math.Sqrt(m.std[j] / n)
		if m.std[j] == 0 {
			m.std[j] = 1 // a constant feature carries nothing; keep it at 0
		}
	}
	z := make([][]float64, len(x))
	for i, row := range x {
		z[i] = make([]float64, d)
		for j, v := range row {
			z[i][j] = (v - m.mean[j]) / m.std[j]
		}
	}
	gw := make([]float64, d)
	for it := range cfg.Iterations {
		if it%100 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		clear(gw)
		var gb float64
		for i, row := range z {
			r := sigmoid(m.linear(row))
			if y[i] {
				r--
			}
			for j, v := range row {
				gw[j] += r * v
			}
			gb += r
		}
		for j := range m.W {
			m.W[j] -= cfg.Rate * (gw[j]/n + cfg.L2*m.W[j])
		}
		m.B -= cfg.Rate * gb / n
	}
	return m, nil
}

func (m *Logistic) linear(z []float64) float64 {
	s := m.B
	for j, v := range z {
		s += m.W[j] * v
	}
	return s
}

// Score is P(y = true | x).
func (m *Logistic) Score(x []float64) float64 {
	var s = m.B
	for j, v := range x {
		s += m.W[j] * (v - m.mean[j]) / m.std[j]
	}
	return sigmoid(s)
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// AUC is the area under the ROC curve by the Mann–Whitney rank statistic:
// the probability that a random positive scores above a random negative,
// ties counting one half (tied scores get their average rank).
func AUC(scores []float64, labels []bool) (float64, error) {
	if len(scores) != len(labels) {
		return 0, fmt.Errorf("node2vec: AUC of %d scores and %d labels", len(scores), len(labels))
	}
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
		if math.IsNaN(scores[i]) {
			return 0, fmt.Errorf("node2vec: AUC score %d is NaN", i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return scores[order[a]] < scores[order[b]] })
	var rankSum float64
	var pos, neg int
	for i := 0; i < len(order); {
		j := i
		for j < len(order) && scores[order[j]] == scores[order[i]] {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1..j
		for _, k := range order[i:j] {
			if labels[k] {
				rankSum += avg
				pos++
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return 0, fmt.Errorf("node2vec: AUC needs both classes (%d positives, %d negatives)", pos, neg)
	}
	return (rankSum - float64(pos)*float64(pos+1)/2) / (float64(pos) * float64(neg)), nil
}
