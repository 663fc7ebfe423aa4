package counterfactual

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/capflow/capflow/featurestore"
)

// A synthetic contextual bandit in capflow's shape. A finite population of
// situations (a context and the candidate list the logger showed for it) is
// sampled uniformly, so the target policy's true value is an exact finite
// sum. The logger orders each list by a noisy view of capability quality
// and the user selects by position alone — exactly the position-based
// model, so its fitted propensities are correctly specified. Outcomes are
// success with probability p(x,a), partial with 0.3·(1−p), else failure.

var trueTheta = []float64{1, 0.6, 0.4, 0.3, 0.22, 0.17} // selection attractiveness by rank

type situation struct {
	cands      []string  // in the logger's order
	scores     []float64 // the target model's scores, same order
	pSuccess   []float64
	pPartial   []float64
	mu         []float64 // the logger's exact propensities by position
	meanReward []float64 // E[reward] under DefaultRewards
	cumMu      []float64 // for sampling a rank
}

type world struct {
	sits   []situation
	policy Policy
	truth  float64 // exact value of policy, under DefaultRewards
}

func newWorld(t *testing.T, seed uint64, policy Policy) world {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	const nCaps, nSits, dim = 30, 40, 3
	quality := make([]float64, nCaps)
	vecs := make([][]float64, nCaps)
	for a := range nCaps {
		quality[a] = rng.NormFloat64()
		vecs[a] = make([]float64, dim)
		for d := range dim {
			vecs[a][d] = 0.8 * rng.NormFloat64()
		}
	}
	w := world{policy: policy}
	for range nSits {
		u := make([]float64, dim)
		for d := range u {
			u[d] = rng.NormFloat64()
		}
		n := 3 + rng.IntN(4) // 3..6 candidates
		caps := rng.Perm(nCaps)[:n]
		logScore := make(map[int]float64, n)
		for _, a := range caps {
			logScore[a] = quality[a] + rng.NormFloat64()
		}
		slices.SortFunc(caps, func(a, b int) int { return -cmpF(logScore[a], logScore[b]) })
		s := situation{}
		var z float64
		for k, a := range caps {
			logit := quality[a] - 0.5
			for d := range dim {
				logit += u[d] * vecs[a][d]
			}
			p := 1 / (1 + math.Exp(-logit))
			s.cands = append(s.cands, fmt.Sprintf("cap-%02d", a))
			s.scores = append(s.scores, logit+0.5*rng.NormFloat64())
			s.pSuccess = append(s.pSuccess, p)
			s.pPartial = append(s.pPartial, 0.3*(1-p))
			s.meanReward = append(s.meanReward, p+0.5*0.3*(1-p))
			s.mu = append(s.mu, trueTheta[k])
			z += trueTheta[k]
		}
		var cum float64
		for k := range s.mu {
			s.mu[k] /= z
			cum += s.mu[k]
			s.cumMu = append(s.cumMu, cum)
		}
		pi, err := policy.Probabilities(s.scores, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k := range pi {
			w.truth += pi[k] * s.meanReward[k] / nSits
		}
		w.sits = append(w.sits, s)
	}
	return w
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// log draws n experiences; the situation's index is returned for each so the
// caller can attach the target model's scores and, if logged, μ.
func (w world) log(rng *rand.Rand, n int) ([]featurestore.Experience, []int) {
	exps := make([]featurestore.Experience, n)
	sit := make([]int, n)
	for i := range n {
		si := rng.IntN(len(w.sits))
		s := w.sits[si]
		k, _ := slices.BinarySearch(s.cumMu, rng.Float64())
		k = min(k, len(s.cands)-1)
		out := featurestore.OutcomeFailure
		switch u := rng.Float64(); {
		case u < s.pSuccess[k]:
			out = featurestore.OutcomeSuccess
		case u < s.pSuccess[k]+s.pPartial[k]:
			out = featurestore.OutcomePartial
		}
		exps[i] = featurestore.Experience{CandidateIDs: s.cands, SelectedCapability: s.cands[k], Rank: k + 1, Outcome: out}
		sit[i] = si
	}
	return exps, sit
}

type summary struct {
	values, ses []float64
	covered     int
	clipped     float64
}

func (s *summary) add(e Estimate, truth float64) {
	s.values = append(s.values, e.Value)
	s.ses = append(s.ses, e.StdErr)
	if e.Low <= truth && truth <= e.High {
		s.covered++
	}
	s.clipped += e.Clipped
}

func (s *summary) stats() (mean, sd, avgSE, coverage float64) {
	m, se := meanSE(s.values)
	r := float64(len(s.values))
	for _, x := range s.ses {
		avgSE += x / r
	}
	return m, se * math.Sqrt(r), avgSE, float64(s.covered) / r
}

// TestSimulatedLogs runs each estimator over many seeded logs of the
// synthetic bandit and compares it with the exact value of the target
// policy: the mean over replications must be within 4 Monte Carlo standard
// errors of the truth, the reported standard errors must match the spread,
// and DR's variance must be below IPS's. It runs once with the logger's
// exact propensities and once with the position model fitted on each log.
func TestSimulatedLogs(t *testing.T) {
	const reps, n = 200, 2000
	w := newWorld(t, 7, SoftmaxPolicy(0.5, 0.05))
	t.Logf("true value of the target policy %.5f; logging policy %.5f", w.truth, w.loggedValue())

	for _, variant := range []struct {
		name   string
		logged bool
	}{{"logged propensities", true}, {"estimated propensities", false}} {
		t.Run(variant.name, func(t *testing.T) {
			var ips, snips, dr, dm summary
			var clippedIPS summary // default clip 10, for the bias-variance trade
			var oracleDR summary   // DR with the true mean reward as q̂
			var wrongIPS summary   // IPS with uniform μ: the check must see its bias
			var maxW, ess float64
			for rep := range reps {
				rng := rand.New(rand.NewPCG(uint64(rep), 99))
				exps, sit := w.log(rng, n)
				rounds, err := FromExperiences(exps, DefaultRewards())
				if err != nil {
					t.Fatal(err)
				}
				for i := range rounds {
					s := w.sits[sit[i]]
					rounds[i].Scores = s.scores
					if variant.logged {
						rounds[i].Propensity = s.mu[rounds[i].Rank-1]
					}
				}
				rep, err := Evaluate(context.Background(), rounds, Config{Policy: w.policy, Clip: math.Inf(1)})
				if err != nil {
					t.Fatal(err)
				}
				if variant.logged != (rep.EstimatedPropensities == 0) {
					t.Fatalf("%d estimated propensities", rep.EstimatedPropensities)
				}
				ips.add(rep.IPS, w.truth)
				snips.add(rep.SNIPS, w.truth)
				dr.add(rep.DR, w.truth)
				dm.add(rep.DM, w.truth)
				maxW = math.Max(maxW, rep.IPS.MaxWeight)
				ess += rep.IPS.ESS / reps
				clipped, err := Evaluate(context.Background(), rounds, Config{Policy: w.policy, Reward: nullReward{}})
				if err != nil {
					t.Fatal(err)
				}
				clippedIPS.add(clipped.IPS, w.truth)
				oracle, err := Evaluate(context.Background(), rounds, Config{Policy: w.policy, Clip: math.Inf(1), Reward: oracleReward{w, sit}})
				if err != nil {
					t.Fatal(err)
				}
				oracleDR.add(oracle.DR, w.truth)
				if !variant.logged {
					uniform := &PositionModel{Theta: []float64{1, 1, 1, 1, 1, 1}}
					wrong, err := Evaluate(context.Background(), rounds, Config{Policy: w.policy, Clip: math.Inf(1), Position: uniform, Reward: nullReward{}})
					if err != nil {
						t.Fatal(err)
					}
					wrongIPS.add(wrong.IPS, w.truth)
				}
			}
			t.Logf("%d logs of %d rounds; IPS max weight %.2f, mean ESS %.0f", reps, n, maxW, ess)
			t.Logf("%-12s %9s %9s %9s %8s %9s %8s %8s", "estimator", "mean", "bias", "MC SE", "bias/SE", "sd", "mean SE", "cover95")
			variance := map[string]float64{}
			type row struct {
				name     string
				s        *summary
				unbiased bool
			}
			rows := []row{{"IPS", &ips, true}, {"SNIPS", &snips, true}, {"DR", &dr, true}, {"DM", &dm, false},
				{"DR oracle q̂", &oracleDR, true}, {"IPS clip 10", &clippedIPS, false}}
			if !variant.logged {
				rows = append(rows, row{"IPS unif. μ", &wrongIPS, false})
			}
			for _, e := range rows {
				mean, sd, meanSE, cover := e.s.stats()
				mc := sd / math.Sqrt(reps)
				bias := mean - w.truth
				variance[e.name] = sd * sd
				t.Logf("%-12s %9.5f %+9.5f %9.5f %+8.2f %9.5f %8.5f %8.3f", e.name, mean, bias, mc, bias/mc, sd, meanSE, cover)
				if !e.unbiased {
					if e.s == &wrongIPS && math.Abs(bias) < 4*mc {
						t.Errorf("IPS with wrong propensities: bias %+.5f not detected (MC SE %.5f); the check has no power", bias, mc)
					}
					continue
				}
				if math.Abs(bias) > 4*mc {
					t.Errorf("%s: bias %+.5f is %.1f Monte Carlo SEs from the truth", e.name, bias, math.Abs(bias)/mc)
				}
				if r := meanSE / sd; r < 0.8 || r > 1.2 {
					t.Errorf("%s: mean reported SE %.5f vs spread %.5f (ratio %.2f)", e.name, meanSE, sd, r)
				}
				if cover < 0.88 || cover > 0.99 {
					t.Errorf("%s: 95%% interval covered the truth in %.1f%% of logs", e.name, 100*cover)
				}
			}
			t.Logf("variance ratio to IPS: DR %.3f, SNIPS %.3f, DR with oracle q̂ %.3f; clip 10 clipped %.2f%% of rounds",
				variance["DR"]/variance["IPS"], variance["SNIPS"]/variance["IPS"], variance["DR oracle q̂"]/variance["IPS"],
				100*clippedIPS.clipped/reps)
			for _, d := range []string{"DR", "DR oracle q̂"} {
				if !(variance[d] < variance["IPS"]) {
					t.Errorf("%s variance %.3g is not below IPS's %.3g", d, variance[d], variance["IPS"])
				}
			}
		})
	}
}

func (w world) loggedValue() float64 {
	var v float64
	for _, s := range w.sits {
		for k := range s.mu {
			v += s.mu[k] * s.meanReward[k] / float64(len(w.sits))
		}
	}
	return v
}

// nullReward predicts 0 everywhere: DR then equals IPS, and the clipped run
// skips fitting a reward model.
type nullReward struct{}

func (nullReward) Predict(_ context.Context, _ int, r Round) ([]float64, error) {
	return make([]float64, len(r.Candidates)), nil
}

// oracleReward is the exact expected reward: the best q̂ DR can have. It
// looks up the round's situation by the round's index, as a real reward
// model would look up the round's experience.
type oracleReward struct {
	w   world
	sit []int
}

func (o oracleReward) Predict(_ context.Context, i int, r Round) ([]float64, error) {
	return o.w.sits[o.sit[i]].meanReward, nil
}
