package evaluation

import (
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/capflow/capflow/evaluation/metrics"
)

// Result is one ranker's evaluation.
type Result struct {
	Name     string             `json:"name"`  // candidate, production, cosine, bm25
	Model    string             `json:"model"` // URI or baseline
	Metrics  map[string]float64 `json:"metrics"`
	Report   metrics.Report     `json:"-"`
	Rankings []metrics.Ranking  `json:"-"`
}

// Evaluation is a whole evaluation: every ranker on the same queries, the
// gate's decision when there is a candidate (from Results only), and every
// ranker on the report queries, which decide nothing.
type Evaluation struct {
	Queries     int       `json:"queries"`
	Source      string    `json:"source"` // where the queries came from
	Levels      []int     `json:"levels,omitempty"`
	Calibration string    `json:"calibration"` // where the softmax temperatures were fitted
	Results     []Result  `json:"results"`
	Decision    *Decision `json:"decision,omitempty"`

	ReportQueries int      `json:"report_queries,omitempty"`
	ReportSource  string   `json:"report_source,omitempty"`
	Reported      []Result `json:"reported,omitempty"` // same rankers and order as Results
}

// JSON is the machine-readable report.
func (e *Evaluation) JSON() []byte {
	b, _ := json.MarshalIndent(e, "", "  ")
	return b
}

// tableColumns are the metrics of the summary table, as Report.Map names.
var tableColumns = []struct{ key, title string }{
	{"mrr", "MRR"}, {"hit_at_1", "Hit@1"}, {"hit_at_3", "Hit@3"}, {"hit_at_5", "Hit@5"}, {"hit_at_10", "Hit@10"},
	{"ndcg_at_5", "NDCG@5"}, {"ndcg_at_10", "NDCG@10"}, {"map", "MAP"}, {"ece", "ECE"}, {"ece_top1", "ECE top-1"}, {"brier", "Brier"},
	{"coverage_at_10", "Coverage@10"}, {"gini_at_10", "Gini@10"},
}

// WriteTable writes the summary table (Markdown) of every result.
func (e *Evaluation) WriteTable(w io.Writer) error { return writeTable(w, e.Results) }

// WriteReportTable writes the table of the report queries (nothing without
// them).
func (e *Evaluation) WriteReportTable(w io.Writer) error {
	if len(e.Reported) == 0 {
		return nil
	}
	return writeTable(w, e.Reported)
}

func writeTable(w io.Writer, results []Result) error {
	var b strings.Builder
	b.WriteString("| model |")
	for _, c := range tableColumns {
		b.WriteString(" " + c.title + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(tableColumns)) + "\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s |", r.Name)
		for _, c := range tableColumns {
			v, ok := r.Metrics[c.key]
			if !ok {
				b.WriteString(" – |")
				continue
			}
			fmt.Fprintf(&b, " %.4f |", v)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Markdown is the human-readable report: sources, the table, the gate.
func (e *Evaluation) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Evaluation\n\n%d queries from %s", e.Queries, e.Source)
	if len(e.Levels) > 0 {
		fmt.Fprintf(&b, ", capability levels %v", e.Levels)
	}
	fmt.Fprintf(&b, ". Calibration (ECE, Brier): per-query softmax of the scores with a temperature fitted on %s.\n\n", e.Calibration)
	for _, r := range e.Results {
		fmt.Fprintf(&b, "- **%s**: %s\n", r.Name, r.Model)
	}
	b.WriteString("\n")
	_ = e.WriteTable(&b)
	if e.Decision != nil {
		fmt.Fprintf(&b, "\n## Gate: improved = %v\n\n", e.Decision.Improved)
		for _, c := range e.Decision.Checks {
			mark := "pass"
			if !c.Passed {
				mark = "FAIL"
			}
			fmt.Fprintf(&b, "- %s — %s: %s\n", mark, c.Rule, c.Detail)
		}
	}
	if len(e.Reported) > 0 {
		fmt.Fprintf(&b, "\n## Reported only: %d queries from %s\n\n", e.ReportQueries, e.ReportSource)
		b.WriteString("The gate does not read these, and no temperature is fitted on them.\n\n")
		_ = e.WriteReportTable(&b)
	}
	return b.String()
}

// WritePlots writes reliability.png (reliability diagram), metrics_at_k.png
// (Hit@k and NDCG@k per model) and scores.png (score histograms by model)
// into dir and returns their paths.
func (e *Evaluation) WritePlots(dir string) ([]string, error) {
	var paths []string
	for name, draw := range map[string]func(string) error{
		"reliability.png": e.reliabilityPlot, "metrics_at_k.png": e.atKPlot, "scores.png": e.scorePlot,
	} {
		p := filepath.Join(dir, name)
		if err := draw(p); err != nil {
			return nil, fmt.Errorf("evaluation: plot %s: %w", name, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// reliabilityPlot: mean predicted probability vs fraction relevant, 10
// equal-width bins over every (query, candidate) pair.
func (e *Evaluation) reliabilityPlot(path string) error {
	p := plot.New()
	p.Title.Text = "Reliability diagram"
	p.X.Label.Text, p.Y.Label.Text = "predicted probability (softmax, fitted temperature)", "fraction relevant"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	diag, _ := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	diag.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	p.Add(diag)
	for i, r := range e.Results {
		const bins = 10
		var conf, acc, n [bins]float64
		for _, rk := range r.Rankings {
			probs := metrics.Softmax(rk.Scores, r.Report.Temperature)
			for j, c := range rk.Candidates {
				b := min(int(probs[j]*bins), bins-1)
				conf[b] += probs[j]
				if rk.Relevant[c] > 0 {
					acc[b]++
				}
				n[b]++
			}
		}
		var pts plotter.XYs
		for b := range bins {
			if n[b] > 0 {
				pts = append(pts, plotter.XY{X: conf[b] / n[b], Y: acc[b] / n[b]})
			}
		}
		if err := addLine(p, r.Name, i, pts); err != nil {
			return err
		}
	}
	return p.Save(6*vg.Inch, 5*vg.Inch, path)
}

func (e *Evaluation) atKPlot(path string) error {
	hit, ndcg := plot.New(), plot.New()
	hit.Title.Text, ndcg.Title.Text = "Hit@k", "NDCG@k"
	for _, p := range []*plot.Plot{hit, ndcg} {
		p.X.Label.Text = "k"
		p.Y.Min, p.Y.Max = 0, 1
	}
	for i, r := range e.Results {
		var h, n plotter.XYs
		for _, a := range r.Report.Cutoffs {
			h = append(h, plotter.XY{X: float64(a.K), Y: a.Hit})
			n = append(n, plotter.XY{X: float64(a.K), Y: a.NDCG})
		}
		if err := addLine(hit, r.Name, i, h); err != nil {
			return err
		}
		if err := addLine(ndcg, r.Name, i, n); err != nil {
			return err
		}
	}
	return saveTiles(path, []*plot.Plot{hit, ndcg}, 11*vg.Inch, 4*vg.Inch)
}

// scorePlot: per model, the scores of relevant candidates and of the rest.
func (e *Evaluation) scorePlot(path string) error {
	var plots []*plot.Plot
	for _, r := range e.Results {
		var rel, other plotter.Values
		for _, rk := range r.Rankings {
			for j, c := range rk.Candidates {
				if rk.Relevant[c] > 0 {
					rel = append(rel, rk.Scores[j])
				} else {
					other = append(other, rk.Scores[j])
				}
			}
		}
		p := plot.New()
		p.Title.Text = r.Name
		p.X.Label.Text = "score"
		for i, vs := range []plotter.Values{other, rel} {
			if len(vs) == 0 {
				continue
			}
			h, err := plotter.NewHist(vs, 40)
			if err != nil {
				return err
			}
			h.Normalize(1)
			h.FillColor = []color.Color{color.RGBA{160, 160, 160, 120}, color.RGBA{200, 40, 40, 140}}[i]
			p.Add(h)
			p.Legend.Add([]string{"other candidates", "relevant"}[i], h)
		}
		plots = append(plots, p)
	}
	if len(plots) == 0 {
		return nil
	}
	return saveTiles(path, plots, vg.Length(len(plots))*4*vg.Inch, 3.5*vg.Inch)
}

func addLine(p *plot.Plot, name string, i int, pts plotter.XYs) error {
	if len(pts) == 0 {
		return nil
	}
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	l.Color, s.Color = plotutil.Color(i), plotutil.Color(i)
	s.Shape = plotutil.Shape(i)
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}

func saveTiles(path string, plots []*plot.Plot, w, h vg.Length) error {
	img := vgimg.New(w, h)
	dc := draw.New(img)
	t := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Millimeter * 4}
	canvases := plot.Align([][]*plot.Plot{plots}, t, dc)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
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
