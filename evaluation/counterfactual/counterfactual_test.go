package counterfactual

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/capflow/capflow/featurestore"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.12g, want %.12g", what, got, want)
	}
}

func TestEstimatorsByHand(t *testing.T) {
	pi := []float64{0.5, 0.2, 1}
	mu := []float64{0.25, 0.4, 0.5}
	r := []float64{1, 0, 0.5}
	// w = [2, 0.5, 2]; w·r = [2, 0, 1].
	ips, err := IPS(pi, mu, r, math.Inf(1))
	if err != nil {
		t.Fatal(err)
	}
	near(t, "IPS", ips.Value, 1, 1e-15)
	near(t, "IPS SE", ips.StdErr, 1/math.Sqrt(3), 1e-15) // sd of [2,0,1] is 1
	near(t, "IPS low", ips.Low, 1-z95/math.Sqrt(3), 1e-15)
	near(t, "ESS", ips.ESS, 4.5*4.5/8.25, 1e-12)
	if ips.Clipped != 0 || ips.MaxWeight != 2 || ips.N != 3 {
		t.Errorf("diagnostics %+v", ips)
	}

	sn, err := SNIPS(pi, mu, r, math.Inf(1))
	if err != nil {
		t.Fatal(err)
	}
	v := 3 / 4.5
	near(t, "SNIPS", sn.Value, v, 1e-15)
	near(t, "SNIPS SE", sn.StdErr, math.Sqrt(4*(1-v)*(1-v)+0.25*v*v+4*(0.5-v)*(0.5-v))/4.5, 1e-15)

	dr, err := DR(pi, mu, r, []float64{0.6, 0.3, 0.4}, []float64{0.8, 0.1, 0.4}, math.Inf(1))
	if err != nil {
		t.Fatal(err)
	}
	// terms: 0.6+2·0.2 = 1, 0.3+0.5·(−0.1) = 0.25, 0.4+2·0.1 = 0.6
	near(t, "DR", dr.Value, (1+0.25+0.6)/3, 1e-15)

	// Clipping at 1.5 caps two of the three weights.
	c, err := IPS(pi, mu, r, 1.5)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "clipped IPS", c.Value, (1.5+0+0.75)/3, 1e-15)
	near(t, "clipped fraction", c.Clipped, 2.0/3, 1e-15)
	if c.MaxWeight != 2 {
		t.Errorf("max weight %v, want the unclipped 2", c.MaxWeight)
	}
	// DR clips the correction only.
	dc, _ := DR(pi, mu, r, []float64{0.6, 0.3, 0.4}, []float64{0.8, 0.1, 0.4}, 1.5)
	near(t, "clipped DR", dc.Value, (0.6+1.5*0.2+0.25+0.4+1.5*0.1)/3, 1e-15)

	dm, _ := DirectMethod([]float64{0.6, 0.3, 0.4})
	near(t, "DM", dm.Value, 1.3/3, 1e-15)
}

func TestPolicyByHand(t *testing.T) {
	// exp(0), exp(ln 2), exp(ln 4) → 1/7, 2/7, 4/7, then 0.7·that + 0.1.
	p, err := SoftmaxPolicy(1, 0.3).Probabilities([]float64{0, math.Ln2, 2 * math.Ln2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for j, want := range []float64{0.2, 0.3, 0.5} {
		near(t, "softmax", p[j], want, 1e-15)
	}
	// Temperature 2 halves the log-odds: 1, √2, 2.
	p, _ = SoftmaxPolicy(2, 0).Probabilities([]float64{0, math.Ln2, 2 * math.Ln2}, p)
	near(t, "softmax T=2", p[2], 2/(3+math.Sqrt2), 1e-15)

	g, err := GreedyPolicy(0.2).Probabilities([]float64{1, 3, 3, 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for j, want := range []float64{0.05, 0.45, 0.45, 0.05} {
		near(t, "greedy", g[j], want, 1e-15)
	}
	// Huge scores at a tiny temperature must not overflow.
	h, err := SoftmaxPolicy(0.01, 0).Probabilities([]float64{1000, 1001}, nil)
	if err != nil || !(h[1] > 0.999) || math.IsNaN(h[0]) {
		t.Errorf("softmax of large scores: %v, %v", h, err)
	}
}

func TestPositionModel(t *testing.T) {
	// One list length: the fit is additive smoothing of the rank counts.
	ranks := []int{1, 1, 1, 1, 1, 2, 2, 3, 1, 2}
	lengths := []int{4, 4, 4, 4, 4, 4, 4, 4, 4, 4}
	m, err := FitPositionModel(ranks, lengths, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := m.Distribution(4)
	for k, c := range []float64{6, 3, 1, 0} {
		near(t, "smoothed frequency", d[k], (c+1)/(10+4), 1e-9)
	}

	// Mixed lengths, no smoothing: the one-item lists say nothing about
	// rank 2, so μ(2|2) is the two-item lists' frequency 1/4 — not the
	// naive 1/9 over all selections.
	ranks = []int{1, 1, 1, 2, 1, 1, 1, 1, 1}
	lengths = []int{2, 2, 2, 2, 1, 1, 1, 1, 1}
	m, err = FitPositionModel(ranks, lengths, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := m.Propensity(2, 2)
	near(t, "μ(2|2)", p, 0.25, 1e-9)
	p, _ = m.Propensity(1, 1)
	near(t, "μ(1|1)", p, 1, 1e-15)

	// Recovery from many selections over lists of 3..6 items.
	rng := rand.New(rand.NewPCG(1, 2))
	ranks, lengths = nil, nil
	for range 200_000 {
		n := 3 + rng.IntN(4)
		var z float64
		for _, t := range trueTheta[:n] {
			z += t
		}
		u, k := rng.Float64()*z, 0
		for u > trueTheta[k] && k < n-1 {
			u -= trueTheta[k]
			k++
		}
		ranks, lengths = append(ranks, k+1), append(lengths, n)
	}
	m, err = FitPositionModel(ranks, lengths, 1)
	if err != nil {
		t.Fatal(err)
	}
	for n := 3; n <= 6; n++ {
		d, _ := m.Distribution(n)
		var z float64
		for _, t := range trueTheta[:n] {
			z += t
		}
		for k := range n {
			near(t, "recovered μ", d[k], trueTheta[k]/z, 0.005)
		}
	}
	// The fit is the MAP: the fixed point θ_k·(D_k + α) = c_k + α holds
	// with D_k = Σ_{rounds with n ≥ k} 1/S_n, and Σθ = K.
	var sum float64
	for _, th := range m.Theta {
		sum += th
	}
	near(t, "Σθ", sum, 6, 1e-9)
	for k := range 6 {
		var c, d float64
		for i := range ranks {
			if ranks[i] == k+1 {
				c++
			}
			if lengths[i] > k {
				var s float64
				for _, th := range m.Theta[:lengths[i]] {
					s += th
				}
				d += 1 / s
			}
		}
		near(t, "stationarity", m.Theta[k]*(d+1)/(c+1), 1, 1e-9)
	}
	if _, err := m.Propensity(1, 7); !errors.Is(err, ErrRange) {
		t.Errorf("unseen list length: %v, want ErrRange", err)
	}
}

func TestFromExperiences(t *testing.T) {
	exps := []featurestore.Experience{
		{CandidateIDs: []string{"a", "b"}, SelectedCapability: "b", Rank: 2, Outcome: featurestore.OutcomeSuccess},
		{CandidateIDs: []string{"a", "b", "c"}, SelectedCapability: "a", Rank: 1, Outcome: featurestore.OutcomePartial},
		{CandidateIDs: []string{"c"}, SelectedCapability: "c", Rank: 1, Outcome: featurestore.OutcomeFailure},
	}
	rounds, err := FromExperiences(exps, DefaultRewards())
	if err != nil {
		t.Fatal(err)
	}
	if len(rounds) != 3 || rounds[0].Reward != 1 || rounds[1].Reward != 0.5 || rounds[2].Reward != 0 ||
		rounds[0].Selected() != "b" || rounds[1].Propensity != 0 {
		t.Errorf("rounds %+v", rounds)
	}
	success, _ := FromExperiences(exps, Rewards{Success: 1})
	if success[1].Reward != 0 {
		t.Error("success-rate rewards: partial must be 0")
	}
}

type badReward struct {
	q   []float64
	err error
	nan bool // one NaN per round, right length
}

func (b badReward) Predict(_ context.Context, _ int, r Round) ([]float64, error) {
	if b.nan {
		q := make([]float64, len(r.Candidates))
		q[len(q)-1] = math.NaN()
		return q, nil
	}
	return b.q, b.err
}

// TestBadInput checks that every malformed input gives a typed error
// naming the problem, and nothing panics.
func TestBadInput(t *testing.T) {
	good := func() []Round {
		return []Round{
			{Candidates: []string{"a", "b"}, Rank: 1, Reward: 1, Scores: []float64{1, 0}},
			{Candidates: []string{"a", "b"}, Rank: 2, Reward: 0, Scores: []float64{0, 1}},
			{Candidates: []string{"b", "c", "a"}, Rank: 1, Reward: 0.5, Scores: []float64{0, 1, 2}},
		}
	}
	pol := SoftmaxPolicy(1, 0)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	boom := errors.New("boom")
	cases := []struct {
		name string
		run  func() error
		want error // a sentinel for errors.Is, or nil for *ConfigError
	}{
		{"zero policy", func() error { _, err := Evaluate(context.Background(), good(), Config{}); return err }, nil},
		{"epsilon > 1", func() error {
			_, err := Evaluate(context.Background(), good(), Config{Policy: GreedyPolicy(1.5)})
			return err
		}, nil},
		{"negative clip", func() error {
			_, err := Evaluate(context.Background(), good(), Config{Policy: pol, Clip: -1})
			return err
		}, nil},
		{"too many folds", func() error {
			_, err := Evaluate(context.Background(), good(), Config{Policy: pol, Folds: 4})
			return err
		}, nil},
		{"one round", func() error { _, err := Evaluate(context.Background(), good()[:1], Config{Policy: pol}); return err }, ErrEmpty},
		{"rank 0", func() error {
			r := good()
			r[1].Rank = 0
			_, err := Evaluate(context.Background(), r, Config{Policy: pol})
			return err
		}, ErrRange},
		{"no candidates", func() error {
			r := good()
			r[0].Candidates = nil
			_, err := Evaluate(context.Background(), r, Config{Policy: pol})
			return err
		}, ErrEmpty},
		{"missing scores", func() error {
			r := good()
			r[2].Scores = r[2].Scores[:2]
			_, err := Evaluate(context.Background(), r, Config{Policy: pol})
			return err
		}, ErrLength},
		{"NaN score", func() error {
			r := good()
			r[2].Scores[1] = math.NaN()
			_, err := Evaluate(context.Background(), r, Config{Policy: pol})
			return err
		}, ErrNonFinite},
		{"infinite reward", func() error {
			r := good()
			r[0].Reward = math.Inf(1)
			_, err := Evaluate(context.Background(), r, Config{Policy: pol})
			return err
		}, ErrNonFinite},
		{"propensity > 1", func() error {
			r := good()
			r[0].Propensity = 1.5
			_, err := Evaluate(context.Background(), r, Config{Policy: pol})
			return err
		}, ErrRange},
		{"short position model", func() error {
			_, err := Evaluate(context.Background(), good(), Config{Policy: pol, Position: &PositionModel{Theta: []float64{1, 1}}})
			return err
		}, ErrRange},
		{"reward model length", func() error {
			_, err := Evaluate(context.Background(), good(), Config{Policy: pol, Reward: badReward{q: []float64{1}}})
			return err
		}, ErrLength},
		{"reward model NaN", func() error {
			_, err := Evaluate(context.Background(), good(), Config{Policy: pol, Reward: badReward{nan: true}})
			return err
		}, ErrNonFinite},
		{"reward model error", func() error {
			_, err := Evaluate(context.Background(), good(), Config{Policy: pol, Reward: badReward{err: boom}})
			return err
		}, boom},
		{"canceled", func() error { _, err := Evaluate(canceled, good(), Config{Policy: pol}); return err }, context.Canceled},
		{"no support", func() error {
			_, err := SNIPS([]float64{0, 0}, []float64{0.5, 0.5}, []float64{1, 1}, 10)
			return err
		}, ErrNoSupport},
		{"mu 0", func() error { _, err := IPS([]float64{1, 1}, []float64{0.5, 0}, []float64{1, 1}, 10); return err }, ErrRange},
		{"pi > 1", func() error { _, err := IPS([]float64{2, 1}, []float64{0.5, 1}, []float64{1, 1}, 10); return err }, ErrRange},
		{"r length", func() error { _, err := IPS([]float64{1, 1}, []float64{0.5, 1}, []float64{1}, 10); return err }, ErrLength},
		{"NaN clip", func() error { _, err := IPS([]float64{1, 1}, []float64{1, 1}, []float64{1, 1}, math.NaN()); return err }, nil},
		{"DR qA NaN", func() error {
			_, err := DR([]float64{1, 1}, []float64{1, 1}, []float64{1, 1}, []float64{0, 0}, []float64{0, math.NaN()}, 10)
			return err
		}, ErrNonFinite},
		{"fit rank > length", func() error { _, err := FitPositionModel([]int{3}, []int{2}, 1); return err }, ErrRange},
		{"fit no rounds", func() error { _, err := FitPositionModel(nil, nil, 1); return err }, ErrEmpty},
		{"fit negative smoothing", func() error { _, err := FitPositionModel([]int{1}, []int{1}, -1); return err }, nil},
		{"negative theta", func() error { _, err := (&PositionModel{Theta: []float64{1, -1}}).Propensity(1, 2); return err }, ErrRange},
		{"nil model", func() error { _, err := (*PositionModel)(nil).Distribution(1); return err }, ErrEmpty},
		{"experience rank mismatch", func() error {
			_, err := FromExperiences([]featurestore.Experience{{CandidateIDs: []string{"a", "b"}, SelectedCapability: "a", Rank: 2, Outcome: featurestore.OutcomeSuccess}}, DefaultRewards())
			return err
		}, ErrRange},
		{"experience outcome", func() error {
			_, err := FromExperiences([]featurestore.Experience{{CandidateIDs: []string{"a"}, SelectedCapability: "a", Rank: 1, Outcome: "meh"}}, DefaultRewards())
			return err
		}, ErrRange},
	}
	for _, c := range cases {
		err := c.run()
		switch {
		case err == nil:
			t.Errorf("%s: no error", c.name)
		case c.want == nil:
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("%s: %v, want a *ConfigError", c.name, err)
			}
		case !errors.Is(err, c.want):
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if err != nil {
			t.Logf("%s: %v", c.name, err)
		}
	}
}

func TestReportMetrics(t *testing.T) {
	rounds := []Round{
		{Candidates: []string{"a", "b"}, Rank: 1, Reward: 1, Scores: []float64{1, 0}, Propensity: 0.5},
		{Candidates: []string{"a", "b"}, Rank: 2, Reward: 0, Scores: []float64{0, 1}, Propensity: 0.5},
		{Candidates: []string{"a", "b"}, Rank: 1, Reward: 1, Scores: []float64{2, 0}, Propensity: 0.5},
		{Candidates: []string{"a", "b"}, Rank: 2, Reward: 1, Scores: []float64{0, 0}, Propensity: 0.5},
	}
	rep, err := Evaluate(context.Background(), rounds, Config{Policy: GreedyPolicy(0)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.EstimatedPropensities != 0 || rep.Position != nil {
		t.Errorf("all propensities were logged, yet %d estimated", rep.EstimatedPropensities)
	}
	// Greedy weights: 2, 2, 2, 1 (a tie: π = ½); IPS = (2+0+2+1)/4.
	near(t, "IPS", rep.IPS.Value, 5.0/4, 1e-15)
	near(t, "SNIPS", rep.SNIPS.Value, 5.0/7, 1e-15)
	near(t, "logged", rep.Logged.Value, 0.75, 1e-15)
	// Cross-fitting over 2 folds (i mod 2): rounds 0 and 2 are predicted by
	// MeanReward fitted on rounds 1 and 3 (b: rewards 0, 1 → everything
	// 0.5), rounds 1 and 3 by the fit on rounds 0 and 2 (a: 1, 1 →
	// everything 1). DR terms: 0.5+2·0.5, 1+2·(0−1), 0.5+2·0.5, 1+1·0.
	near(t, "DR", rep.DR.Value, (1.5-1+1.5+1)/4, 1e-15)
	near(t, "DM", rep.DM.Value, 0.75, 1e-15)
	m := rep.Metrics("cf_")
	for _, k := range []string{"cf_ips", "cf_ips_se", "cf_snips_ess", "cf_dr", "cf_dr_clipped", "cf_dm", "cf_logged", "cf_n"} {
		if _, ok := m[k]; !ok {
			t.Errorf("metric %s missing from %v", k, m)
		}
	}
	for k, v := range m {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("%s = %v", k, v)
		}
	}
}
