package train

import (
	"fmt"
	"os"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/models/bm25"

	"github.com/capflow/capflow/evaluation/metrics"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// EvaluateCosine ranks the pool by plain cosine similarity of the intent and
// capability embeddings (the features the model starts from): the baseline
// a learned scorer must beat.
func EvaluateCosine(data *Data, samples []Sample) Validation {
	d := data.Dim()
	qs := queries(samples)
	var v Validation
	v.Queries = len(qs)
	scores := make([]float64, len(data.Pool))
	ranked := make([]int, len(data.Pool))
	for _, q := range qs {
		for j, c := range data.Pool {
			scores[j] = dot(q.intent, data.Features.Caps[c*d:(c+1)*d])
		}
		for r, j := range metrics.Rank(scores) {
			ranked[r] = data.Pool[j]
		}
		v.add(ranked, q.relevant)
	}
	v.mean()
	return v
}

// EvaluateBM25 ranks the pool by Okapi BM25 of the query text against each
// capability's document (bm25.CapabilityDocument): the strongest classical
// baseline on Seal-Tools. text gives each session's intent.
func EvaluateBM25(data *Data, tools []featurestore.Tool, caps []featurestore.Capability, samples []Sample, text map[string]string) (Validation, error) {
	toolByID := make(map[string]featurestore.Tool, len(tools))
	for _, t := range tools {
		toolByID[t.ID] = t
	}
	capByID := make(map[string]featurestore.Capability, len(caps))
	for _, c := range caps {
		capByID[c.ID] = c
	}
	docs := make([]string, len(data.Graph.Caps))
	for i, id := range data.Graph.Caps {
		c, ok := capByID[id]
		if !ok {
			return Validation{}, &DataError{Reason: fmt.Sprintf("capability %q of the graph has no record", id)}
		}
		docs[i] = bm25.CapabilityDocument(c, toolByID, capByID)
	}
	ix, err := bm25.New(docs, bm25.DefaultConfig())
	if err != nil {
		return Validation{}, err
	}
	var v Validation
	scores := make([]float64, len(data.Pool))
	ranked := make([]int, len(data.Pool))
	for _, q := range queries(samples) {
		t, ok := text[q.session]
		if !ok {
			return Validation{}, &DataError{Reason: fmt.Sprintf("no intent text for session %q", q.session)}
		}
		all := ix.Scores(t, nil)
		for j, c := range data.Pool {
			scores[j] = all[c]
		}
		for r, j := range metrics.Rank(scores) {
			ranked[r] = data.Pool[j]
		}
		v.add(ranked, q.relevant)
		v.Queries++
	}
	v.mean()
	return v, nil
}

func (v *Validation) add(ranked []int, relevant map[int]bool) {
	q := QueryScore{NDCG5: metrics.NDCGAt(ranked, relevant, 5), RR: metrics.ReciprocalRank(ranked, relevant)}
	v.PerQuery = append(v.PerQuery, q)
	v.MRR += q.RR
	v.Hit1 += metrics.HitAt(ranked, relevant, 1)
	v.Hit3 += metrics.HitAt(ranked, relevant, 3)
	v.Hit5 += metrics.HitAt(ranked, relevant, 5)
	v.NDCG5 += q.NDCG5
	v.Comp5 += metrics.CompletenessAt(ranked, relevant, 5)
}

func (v *Validation) mean() {
	n := float64(max(v.Queries, 1))
	v.MRR, v.Hit1, v.Hit3, v.Hit5, v.NDCG5, v.Comp5 = v.MRR/n, v.Hit1/n, v.Hit3/n, v.Hit5/n, v.NDCG5/n, v.Comp5/n
}

// curves collects the loss per step and validation MRR per epoch for the
// training-curves plot.
type curves struct {
	loss, mrr plotter.XYs
}

func (c *curves) step(step int, loss float64) {
	c.loss = append(c.loss, plotter.XY{X: float64(step), Y: loss})
}
func (c *curves) valid(step int, mrr float64) {
	c.mrr = append(c.mrr, plotter.XY{X: float64(step), Y: mrr})
}

// plot draws loss (left) and validation MRR (right) against the step.
func (c *curves) plot(path string) error {
	p1 := plot.New()
	p1.Title.Text = "training loss"
	p1.X.Label.Text, p1.Y.Label.Text = "step", "loss"
	p2 := plot.New()
	p2.Title.Text = "validation MRR"
	p2.X.Label.Text, p2.Y.Label.Text = "step", "MRR"
	if len(c.loss) > 0 {
		l, err := plotter.NewLine(c.loss)
		if err != nil {
			return err
		}
		p1.Add(l)
	}
	if len(c.mrr) > 0 {
		l, pts, err := plotter.NewLinePoints(c.mrr)
		if err != nil {
			return err
		}
		p2.Add(l, pts)
	}
	img := vgimg.New(12*vg.Inch, 4*vg.Inch)
	dc := draw.New(img)
	t := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 4}
	canvases := plot.Align([][]*plot.Plot{{p1, p2}}, t, dc)
	p1.Draw(canvases[0][0])
	p2.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
