package features

import (
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/capflow/capflow/featurestore"
)

// ProjectionPlot draws the hybrid embeddings of rows projected on their
// first two principal components, one colour per capability level, as a PNG
// at path. PCA rather than t-SNE/UMAP: it is deterministic and linear, so
// distances in the plot mean what they mean in the embedding, up to the
// variance the two axes explain (shown in the axis labels).
func ProjectionPlot(path string, rows []featurestore.CapabilityFeatures, caps []featurestore.Capability) error {
	if len(rows) < 3 {
		return fmt.Errorf("need at least 3 rows to project, have %d", len(rows))
	}
	dim := len(rows[0].HybridEmbedding)
	x := mat.NewDense(len(rows), dim, nil)
	for i, r := range rows {
		if len(r.HybridEmbedding) != dim {
			return fmt.Errorf("capability %s: hybrid dimension %d, want %d", r.CapabilityID, len(r.HybridEmbedding), dim)
		}
		for j, v := range r.HybridEmbedding {
			x.Set(i, j, float64(v))
		}
	}
	vecs, vars, total := topComponents(x, 2, 60)
	var proj mat.Dense
	proj.Mul(x, vecs)

	level := make(map[string]int, len(caps))
	for _, c := range caps {
		level[c.ID] = c.Level
	}
	byLevel := map[int]plotter.XYs{}
	for i, r := range rows {
		l := level[r.CapabilityID]
		byLevel[l] = append(byLevel[l], plotter.XY{X: proj.At(i, 0), Y: proj.At(i, 1)})
	}

	p := plot.New()
	p.Title.Text = fmt.Sprintf("Capability hybrid embeddings (PCA, %d capabilities)", len(rows))
	p.X.Label.Text = fmt.Sprintf("PC1 (%.1f%% of variance)", 100*vars[0]/total)
	p.Y.Label.Text = fmt.Sprintf("PC2 (%.1f%% of variance)", 100*vars[1]/total)
	p.Legend.Top = true
	palette := []color.Color{
		color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
		color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255},
	}
	levels := make([]int, 0, len(byLevel))
	for l := range byLevel {
		levels = append(levels, l)
	}
	slices.Sort(levels)
	for k, l := range levels {
		s, err := plotter.NewScatter(byLevel[l])
		if err != nil {
			return err
		}
		s.GlyphStyle.Color = palette[k%len(palette)]
		s.GlyphStyle.Radius = vg.Points(1.5)
		s.GlyphStyle.Shape = draw.CircleGlyph{}
		p.Add(s)
		p.Legend.Add(fmt.Sprintf("level %d (%d)", l, len(byLevel[l])), s)
	}
	return p.Save(8*vg.Inch, 6*vg.Inch, path)
}

// topComponents returns the k leading principal directions of the rows of x
// (d×k), their variances and the total variance, by subspace iteration with
// a Rayleigh–Ritz step: a few matrix products with x instead of the full SVD
// that stat.PC computes, which took ~30 s for 2,400 × 1,024 here. The start
// is a fixed matrix, so the plot is deterministic.
func topComponents(x *mat.Dense, k, iters int) (*mat.Dense, []float64, float64) {
	n, d := x.Dims()
	xc := mat.DenseCopyOf(x)
	var total float64
	for j := range d {
		col := mat.Col(nil, j, xc)
		mean := stat.Mean(col, nil)
		for i := range n {
			v := xc.At(i, j) - mean
			xc.Set(i, j, v)
			total += v * v
		}
	}
	total /= float64(n - 1)
	q := mat.NewDense(d, k, nil)
	for i := range d {
		for j := range k {
			// A fixed, full-rank start: any start not orthogonal to the
			// leading subspace converges.
			q.Set(i, j, math.Cos(float64((i+1)*(j+1))))
		}
	}
	var y mat.Dense
	for range iters {
		y.Mul(xc, q)
		q.Mul(xc.T(), &y)
		orthonormalize(q)
	}
	y.Mul(xc, q)
	var b mat.SymDense
	b.SymOuterK(1, y.T())
	var eig mat.EigenSym
	eig.Factorize(&b, true)
	vals := eig.Values(nil)
	var ev mat.Dense
	eig.VectorsTo(&ev)
	// EigenSym sorts ascending; the leading component comes last.
	var rot mat.Dense
	rot.Mul(q, &ev)
	out := mat.NewDense(d, k, nil)
	vars := make([]float64, k)
	for j := range k {
		src := k - 1 - j
		vars[j] = vals[src] / float64(n-1)
		for i := range d {
			out.Set(i, j, rot.At(i, src))
		}
	}
	return out, vars, total
}

// orthonormalize makes q's columns orthonormal in place (modified
// Gram–Schmidt; k is tiny, so this beats forming a d×d Q).
func orthonormalize(q *mat.Dense) {
	_, k := q.Dims()
	for j := range k {
		cj := q.ColView(j).(*mat.VecDense)
		for i := range j {
			ci := q.ColView(i)
			cj.AddScaledVec(cj, -mat.Dot(ci, cj), ci)
		}
		if nrm := mat.Norm(cj, 2); nrm > 0 {
			cj.ScaleVec(1/nrm, cj)
		}
	}
}
