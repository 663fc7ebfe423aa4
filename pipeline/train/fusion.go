package train

import (
	"context"

	"github.com/capflow/capflow/evaluation/metrics"

	"github.com/capflow/capflow/models/shgat"
)

// fitFusion fits the evidence weights by full-batch Adam on the listwise
// loss of the training sessions (each relevant capability against the whole
// pool), with everything else frozen: the dense scores are computed once,
// so each step costs O(queries × pool × F).
func (t *Trainer) fitFusion(ctx context.Context) error {
	data := t.data
	qs := queries(data.Train)
	batch := make([]shgat.Example, len(qs))
	rows := make([][][]float64, len(qs))
	for i, q := range qs {
		batch[i] = shgat.Example{Intent: q.intent, Context: q.context, Candidates: data.Pool}
		rows[i] = rowsOf(t.model, q.intent, q.parts)
	}
	// Reliability 1 gives the raw dense scores; the factors are applied
	// below, after the evidence, as the model does.
	pb := expandRows(batch, rows)
	out, err := t.model.Forward(shgat.Input{Graph: data.Graph, Features: data.Features, Batch: pb.Examples})
	if err != nil {
		return err
	}
	dense, _ := pb.combine(out.Scores)
	nf := len(t.model.Params.Evid)
	ev := make([][]float64, len(qs))
	for i, q := range qs {
		ev[i] = gatherEvidence(q.evidence, data.Pool, nf)
	}
	rel := make([]float64, len(data.Pool))
	for j, c := range data.Pool {
		rel[j] = 1
		if data.Reliability != nil {
			rel[j] = data.Reliability[c]
		}
	}
	w := t.model.Params.Evid
	opt := NewAdam(nf, t.cfg.FusionLR)
	grad := make([]float64, nf)
	scores := make([]float64, len(data.Pool))
	dr := make([]float64, len(data.Pool))
	for range t.cfg.FusionSteps {
		if err := ctx.Err(); err != nil {
			return err
		}
		clear(grad)
		for i, q := range qs {
			for j := range data.Pool {
				raw := dense[i][j] + dot(w, ev[i][j*nf:(j+1)*nf])
				scores[j] = shgat.Reliable(raw, rel[j])
				dr[j] = rel[j]
				if raw < 0 {
					dr[j] = 1 / rel[j]
				}
			}
			p := metrics.Softmax(scores, 1)
			// −(1/|R|)·Σ_{r∈R} log p_r: its gradient by score j is p_j − [j∈R]/|R|.
			inv := 1 / float64(len(q.relevant))
			for j, c := range data.Pool {
				g := p[j]
				if q.relevant[c] {
					g -= inv
				}
				g *= dr[j] / float64(len(qs))
				for k := range nf {
					grad[k] += g * ev[i][j*nf+k]
				}
			}
		}
		opt.Update(w, grad, t.cfg.FusionLR)
	}
	return nil
}

func dot(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}
