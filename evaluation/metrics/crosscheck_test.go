package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCrossCheckSklearn compares Compute and FitTemperature with
// scripts/metrics_crosscheck.py (scikit-learn, scipy, numpy) on random
// rankings: 400 queries of 2–60 candidates, 1–6 relevant with graded
// relevance, every fifth query with tied scores, a catalog with capabilities
// that are never candidates. Everything must agree to 1e-9.
func TestCrossCheckSklearn(t *testing.T) {
	py := testenv.Python(t)
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	script := filepath.Join(root, "scripts", "metrics_crosscheck.py")

	catalog := make([]string, 250)
	for i := range catalog {
		catalog[i] = fmt.Sprintf("cap-%03d", i)
	}
	rng := rand.New(rand.NewPCG(7, 3))
	fitSet := randomRankings(rng, "fit", 300, catalog[:220])
	evalSet := randomRankings(rng, "eval", 400, catalog[:220])

	fit, err := FitTemperature(fitSet)
	require.NoError(t, err)
	t.Logf("fitted T = %.12g, NLL %.6f over %d queries in %d iterations", fit.Temperature, fit.NLL, fit.Queries, fit.Iterations)

	for _, c := range []struct {
		name string
		opts Options
	}{
		{"fitted T, bins 15, k 1 3 5 10", Options{Ks: []int{1, 3, 5, 10}, Bins: 15, Catalog: catalog, Temperature: fit.Temperature}},
		{"T 1, bins 7, k 2 4 25", Options{Ks: []int{2, 4, 25}, Bins: 7, Catalog: catalog}},
		{"T 0.3, bins 40, k 1 60", Options{Ks: []int{1, 60}, Bins: 40, Catalog: catalog, Temperature: 0.3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep, err := Compute(evalSet, c.opts)
			require.NoError(t, err)
			res := runCrossCheck(t, py, script, evalSet, fitSet, rep)
			compareReport(t, rep, res)
			compareFit(t, fit, res)
		})
	}
}

// randomRankings draws n queries over pool; relevant candidates score higher
// on average so that every metric lies strictly inside its range.
func randomRankings(rng *rand.Rand, prefix string, n int, pool []string) []Ranking {
	out := make([]Ranking, n)
	for i := range out {
		size := 2 + rng.IntN(59)
		nRel := 1 + rng.IntN(min(6, size-1)) // at least one irrelevant candidate
		r := Ranking{QueryID: fmt.Sprintf("%s-%d", prefix, i), Relevant: map[string]float64{}}
		for _, j := range rng.Perm(len(pool))[:size] {
			r.Candidates = append(r.Candidates, pool[j])
		}
		for _, c := range r.Candidates[:nRel] {
			r.Relevant[c] = []float64{1, 2, 3, 0.5, 4}[rng.IntN(5)]
		}
		if rng.IntN(10) == 0 {
			r.Relevant[r.Candidates[nRel]] = 0 // an explicit 0 grade
		}
		rng.Shuffle(size, func(a, b int) { r.Candidates[a], r.Candidates[b] = r.Candidates[b], r.Candidates[a] })
		for _, c := range r.Candidates {
			s := rng.NormFloat64() + 0.8*r.Relevant[c]
			if i%5 == 0 {
				s = math.Round(s*2) / 2 // ties
			}
			r.Scores = append(r.Scores, s)
		}
		out[i] = r
	}
	return out
}

type crossResult struct {
	Versions map[string]string `json:"versions"`
	PerQuery []struct {
		RR           float64    `json:"rr"`
		AP           float64    `json:"ap"`
		APLRAP       float64    `json:"ap_lrap"`
		NDCG         float64    `json:"ndcg"`
		NDCGGraded   float64    `json:"ndcg_graded"`
		Hit          []float64  `json:"hit"`
		NDCGAt       []float64  `json:"ndcg_at"`
		NDCGGradedAt []float64  `json:"ndcg_graded_at"`
		CompAt       []float64  `json:"comp_at"`
		TopK         []*float64 `json:"top_k_accuracy"`
		NLL          float64    `json:"nll"`
		Brier        float64    `json:"brier"`
	} `json:"per_query"`
	Aggregate map[string]float64 `json:"aggregate"`
	Fit       struct {
		TBrentq    float64 `json:"temperature_brentq"`
		TMinimize  float64 `json:"temperature_minimize"`
		NLLBrentq  float64 `json:"nll_at_brentq"`
		NLLMinimze float64 `json:"nll_at_minimize"`
		Queries    int     `json:"queries"`
	} `json:"fit"`
}

func runCrossCheck(t *testing.T, py, script string, evalSet, fitSet []Ranking, rep Report) crossResult {
	type jr struct {
		QueryID    string             `json:"query_id"`
		Candidates []string           `json:"candidates"`
		Scores     []float64          `json:"scores"`
		Relevant   map[string]float64 `json:"relevant"`
	}
	conv := func(rs []Ranking) []jr {
		out := make([]jr, len(rs))
		for i, r := range rs {
			out[i] = jr{r.QueryID, r.Candidates, r.Scores, r.Relevant}
		}
		return out
	}
	ks := make([]int, len(rep.Cutoffs))
	for i, a := range rep.Cutoffs {
		ks[i] = a.K
	}
	var catalog []string
	for i := range rep.Catalog {
		catalog = append(catalog, fmt.Sprintf("cap-%03d", i))
	}
	req, err := json.Marshal(map[string]any{
		"ks": ks, "bins": rep.Bins, "temperature": rep.Temperature, "catalog": catalog,
		"rankings": conv(evalSet), "fit": conv(fitSet),
	})
	require.NoError(t, err)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	require.NoError(t, os.WriteFile(in, req, 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	msg, err := exec.CommandContext(ctx, py, script, in, out).CombinedOutput()
	if err != nil && strings.Contains(string(msg), "ModuleNotFoundError") {
		testenv.Missing(t, "scikit-learn, scipy or numpy in the venv (scripts/requirements.txt): %s", msg)
	}
	require.NoError(t, err, "%s", msg)
	body, err := os.ReadFile(out)
	require.NoError(t, err)
	var res crossResult
	require.NoError(t, json.Unmarshal(body, &res))
	require.Len(t, res.PerQuery, len(evalSet))
	return res
}

const tol = 1e-9

func compareReport(t *testing.T, rep Report, res crossResult) {
	var topK int
	for i, q := range rep.PerQuery {
		want := res.PerQuery[i]
		id := q.QueryID
		assert.InDelta(t, want.RR, q.RR, tol, "%s RR", id)
		assert.InDelta(t, want.AP, q.AP, tol, "%s AP vs average_precision_score", id)
		assert.InDelta(t, want.APLRAP, q.AP, tol, "%s AP vs label_ranking_average_precision_score", id)
		assert.InDelta(t, want.NDCG, q.NDCG, tol, "%s nDCG", id)
		assert.InDelta(t, want.NDCGGraded, q.NDCGGraded, tol, "%s graded nDCG", id)
		for ki, a := range rep.Cutoffs {
			assert.InDelta(t, want.Hit[ki], q.Hit[ki], tol, "%s Hit@%d", id, a.K)
			assert.InDelta(t, want.NDCGAt[ki], q.NDCGAt[ki], tol, "%s nDCG@%d", id, a.K)
			assert.InDelta(t, want.NDCGGradedAt[ki], q.NDCGGradedAt[ki], tol, "%s graded nDCG@%d", id, a.K)
			assert.Equal(t, want.CompAt[ki], q.CompAt[ki], "%s COMP@%d", id, a.K)
			if v := want.TopK[ki]; v != nil {
				topK++
				assert.InDelta(t, *v, q.Hit[ki], tol, "%s Hit@%d vs top_k_accuracy_score", id, a.K)
			}
		}
		assert.InDelta(t, want.NLL, q.NLL, tol, "%s NLL", id)
		assert.InDelta(t, want.Brier, q.Brier, tol, "%s Brier", id)
	}
	m := rep.Map()
	for name, got := range m {
		want, ok := res.Aggregate[name]
		if assert.True(t, ok, "the script has no %s", name) {
			assert.InDelta(t, want, got, tol, name)
		}
	}
	assert.Len(t, res.Aggregate, len(m)+1, "the script has metrics Map() lacks") // + ece_numpy
	assert.InDelta(t, res.Aggregate["ece_numpy"], rep.ECE, tol, "ECE vs numpy")

	// The data must exercise the metrics: nothing trivially 0 or 1.
	for _, v := range []float64{rep.MRR, rep.MAP, rep.NDCG, rep.NDCGGraded, rep.ECE, rep.ECETop1, rep.Brier, rep.Cutoffs[0].Hit, rep.Cutoffs[0].Coverage, rep.Cutoffs[0].Gini} {
		assert.True(t, v > 0 && v < 1, "metric %v at a bound", v)
	}
	assert.Greater(t, topK, 50, "top_k_accuracy_score must check many queries")
	t.Logf("sklearn %s: mrr %.4f map %.4f ndcg %.4f ndcg_graded %.4f hit_at_%d %.4f coverage_at_%d %.4f gini_at_%d %.4f ece %.4f ece_top1 %.4f brier %.5f nll %.4f (T %.4g); %d top_k_accuracy checks",
		res.Versions["sklearn"], rep.MRR, rep.MAP, rep.NDCG, rep.NDCGGraded, rep.Cutoffs[0].K, rep.Cutoffs[0].Hit, rep.Cutoffs[0].K, rep.Cutoffs[0].Coverage,
		rep.Cutoffs[0].K, rep.Cutoffs[0].Gini, rep.ECE, rep.ECETop1, rep.Brier, rep.NLL, rep.Temperature, topK)
}

func compareFit(t *testing.T, fit Fit, res crossResult) {
	assert.Equal(t, res.Fit.Queries, fit.Queries)
	assert.InEpsilon(t, res.Fit.TBrentq, fit.Temperature, tol, "T vs brentq on the gradient")
	assert.InDelta(t, res.Fit.NLLBrentq, fit.NLL, tol, "NLL at T")
	// minimize_scalar stops on a flat minimum: its T is looser, its NLL no lower.
	assert.InEpsilon(t, res.Fit.TMinimize, fit.Temperature, 1e-5, "T vs minimize_scalar")
	assert.LessOrEqual(t, fit.NLL, res.Fit.NLLMinimze+1e-12)
}
