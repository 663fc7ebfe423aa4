package counterfactual

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/capflow/capflow/internal/testenv"
)

// TestCrossCheckPython compares Evaluate with testdata/reference.py, an
// independent numpy/scipy implementation of the documented formulas, on a
// random log with lists of 2..7 items, some propensities logged and some
// estimated, and clipping that binds. The reference finds the position
// model's MAP with a generic optimiser rather than the MM iteration, so
// agreement to 1e-6 checks the fit as well as the estimators.
func TestCrossCheckPython(t *testing.T) {
	py := testenv.Python(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if msg, err := exec.CommandContext(ctx, py, "-c", "import numpy, scipy").CombinedOutput(); err != nil {
		testenv.Missing(t, "numpy/scipy in the venv: %s", msg)
	}

	rng := rand.New(rand.NewPCG(5, 6))
	theta := []float64{1, 0.7, 0.5, 0.35, 0.3, 0.2, 0.15}
	var rounds []Round
	for i := range 3000 {
		n := 2 + rng.IntN(6)
		var z float64
		for _, t := range theta[:n] {
			z += t
		}
		u, k := rng.Float64()*z, 0
		for u > theta[k] && k < n-1 {
			u -= theta[k]
			k++
		}
		rd := Round{Rank: k + 1}
		for j := range n {
			rd.Candidates = append(rd.Candidates, fmt.Sprintf("c%d", rng.IntN(25)+j*25))
			rd.Scores = append(rd.Scores, rng.NormFloat64())
		}
		rd.Reward = []float64{0, 0.5, 1}[rng.IntN(3)]
		if i%3 == 0 {
			rd.Propensity = theta[k] / z // logged
		}
		rounds = append(rounds, rd)
	}
	cfg := Config{Policy: SoftmaxPolicy(0.4, 0.02), Clip: 6, Smoothing: 0.5, Folds: 3, Shrinkage: 4}
	rep, err := Evaluate(context.Background(), rounds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.IPS.Clipped == 0 {
		t.Fatal("clipping should bind in this case")
	}

	type jsonRound struct {
		Candidates []string  `json:"candidates"`
		Rank       int       `json:"rank"`
		Reward     float64   `json:"reward"`
		Propensity float64   `json:"propensity"`
		Scores     []float64 `json:"scores"`
	}
	in := map[string]any{"kind": "softmax", "temperature": cfg.Policy.Temperature, "epsilon": cfg.Policy.Epsilon,
		"clip": cfg.Clip, "smoothing": cfg.Smoothing, "folds": cfg.Folds, "shrinkage": cfg.Shrinkage}
	var jr []jsonRound
	for _, r := range rounds {
		jr = append(jr, jsonRound{r.Candidates, r.Rank, r.Reward, r.Propensity, r.Scores})
	}
	in["rounds"] = jr
	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inPath, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.CommandContext(ctx, py, filepath.Join("testdata", "reference.py"), inPath, outPath).CombinedOutput(); err != nil {
		t.Fatalf("reference.py: %v\n%s", err, msg)
	}
	body, err = os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		IPS, IPSSE, SNIPS, SNIPSSE, DR, DRSE, DM, ESS, Clipped, MaxWeight float64
		MuLongest                                                         []float64
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for k, dst := range map[string]any{"ips": &want.IPS, "ips_se": &want.IPSSE, "snips": &want.SNIPS, "snips_se": &want.SNIPSSE,
		"dr": &want.DR, "dr_se": &want.DRSE, "dm": &want.DM, "ess": &want.ESS, "clipped": &want.Clipped,
		"max_weight": &want.MaxWeight, "mu_longest": &want.MuLongest} {
		if err := json.Unmarshal(raw[k], dst); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}

	rel := func(what string, got, want float64) {
		t.Helper()
		if d := math.Abs(got - want); d > 1e-9*math.Max(math.Abs(want), 1e-3) {
			t.Errorf("%s = %.12g, reference %.12g", what, got, want)
		}
	}
	mu, err := rep.Position.Distribution(len(theta))
	if err != nil {
		t.Fatal(err)
	}
	for k := range mu {
		rel(fmt.Sprintf("μ(%d|7)", k+1), mu[k], want.MuLongest[k])
	}
	rel("IPS", rep.IPS.Value, want.IPS)
	rel("IPS SE", rep.IPS.StdErr, want.IPSSE)
	rel("SNIPS", rep.SNIPS.Value, want.SNIPS)
	rel("SNIPS SE", rep.SNIPS.StdErr, want.SNIPSSE)
	rel("DR", rep.DR.Value, want.DR)
	rel("DR SE", rep.DR.StdErr, want.DRSE)
	rel("DM", rep.DM.Value, want.DM)
	rel("ESS", rep.IPS.ESS, want.ESS)
	rel("clipped", rep.IPS.Clipped, want.Clipped)
	rel("max weight", rep.IPS.MaxWeight, want.MaxWeight)
	t.Logf("IPS %.6f SNIPS %.6f DR %.6f DM %.6f; clipped %.2f%%, ESS %.0f of %d; μ(·|7) %.4f",
		rep.IPS.Value, rep.SNIPS.Value, rep.DR.Value, rep.DM.Value, 100*rep.IPS.Clipped, rep.IPS.ESS, rep.N, mu)
}
