package valuenet

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/floats"
)

// TestEpisodeMatchesDefinition runs Episode on an MLP against the algorithm
// written out with Grad (Sutton & Barto §12.2), trajectory after
// trajectory, so a trace that is not decayed or not reset shows.
func TestEpisodeMatchesDefinition(t *testing.T) {
	cfg := Config{InputDim: 5, Hidden: []int{8, 6}, Gamma: 0.9, Lambda: 0.7, LR: 0.05, Seed: 11}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := New(cfg)
	rng := rand.New(rand.NewPCG(7, 7))
	for ep := range 4 {
		steps := 3 + rng.IntN(5)
		var xs [][]float64
		var rewards []float64
		for range steps {
			xs = append(xs, randVec(rng, 5))
			rewards = append(rewards, rng.NormFloat64())
		}
		truncated := ep%2 == 1
		if truncated {
			xs = append(xs, randVec(rng, 5))
		}
		got, err := n.Episode(xs, rewards)
		if err != nil {
			t.Fatal(err)
		}

		z := make([]float64, ref.NumParams())
		for s := range steps {
			v, g, _ := ref.Grad(xs[s])
			floats.Scale(cfg.Gamma*cfg.Lambda, z)
			floats.Add(z, g)
			vNext := 0.0
			if s+1 < len(xs) {
				vNext, _ = ref.Value(xs[s+1])
			}
			delta := ref.TDError(rewards[s], v, vNext, s+1 == len(xs))
			floats.AddScaled(ref.params, cfg.LR*delta, z)
			if math.Abs(got[s]-delta) > 1e-12 {
				t.Fatalf("episode %d step %d: δ %v, want %v", ep, s, got[s], delta)
			}
		}
		for i := range n.params {
			if math.Abs(n.params[i]-ref.params[i]) > 1e-12 {
				t.Fatalf("episode %d: weight %d is %v, want %v", ep, i, n.params[i], ref.params[i])
			}
		}
	}
}

func TestTDError(t *testing.T) {
	n, _ := New(Config{InputDim: 1, Gamma: 0.5, Lambda: 0, LR: 1})
	if d := n.TDError(1, 2, 4, false); d != 1 {
		t.Errorf("δ = %v, want 1 + 0.5·4 − 2 = 1", d)
	}
	if d := n.TDError(1, 2, 4, true); d != -1 {
		t.Errorf("terminal δ = %v, want 1 − 2 = −1", d)
	}
}

// TestLambdaReturns checks the backward recursion against the definition:
// G^λ_t = (1−λ) Σ_{n≥1} λ^{n−1} G_{t:t+n}, the tail weight going to the
// full return (Sutton & Barto eq. 12.3).
func TestLambdaReturns(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 1))
	for _, terminal := range []bool{true, false} {
		for _, lambda := range []float64{0, 0.3, 0.9, 1} {
			n, _ := New(Config{InputDim: 1, Gamma: 0.8, Lambda: lambda, LR: 1})
			steps := 6
			rewards := randVec(rng, steps)
			values := randVec(rng, steps)
			boot := 0.0
			if !terminal {
				boot = rng.NormFloat64()
				values = append(values, boot)
			}
			v := func(k int) float64 { // V(s_k), 0 or the bootstrap at the end
				if k == steps {
					return boot
				}
				return values[k]
			}
			// nstep is G_{t:t+k}: k rewards then γ^k V(s_{t+k}).
			nstep := func(t0, k int) float64 {
				g, disc := 0.0, 1.0
				for i := t0; i < t0+k; i++ {
					g += disc * rewards[i]
					disc *= n.cfg.Gamma
				}
				return g + disc*v(t0+k)
			}
			got, err := n.LambdaReturns(values, rewards, terminal)
			if err != nil {
				t.Fatal(err)
			}
			td, _ := n.Targets(values, rewards, terminal)
			for t0 := range steps {
				horizon := steps - t0
				want := math.Pow(lambda, float64(horizon-1)) * nstep(t0, horizon)
				for k := 1; k < horizon; k++ {
					want += (1 - lambda) * math.Pow(lambda, float64(k-1)) * nstep(t0, k)
				}
				if math.Abs(got[t0]-want) > 1e-12 {
					t.Errorf("terminal %v λ %v t %d: G^λ %v, want %v", terminal, lambda, t0, got[t0], want)
				}
				if one := nstep(t0, 1); math.Abs(td[t0]-one) > 1e-15 {
					t.Errorf("terminal %v t %d: TD target %v, want %v", terminal, t0, td[t0], one)
				}
			}
		}
	}
}

// The 19-state random walk (Sutton & Barto, example 7.1, figures 12.3 and
// 12.6): states 1..19, start at 10, left exit −1, right exit +1, γ = 1,
// true values (s−10)/10.
const walkStates = 19

type walk struct {
	states  []int // nonterminal states visited, starting at 10
	rewards []float64
}

func randomWalk(rng *rand.Rand) walk {
	var w walk
	for s := 10; s >= 1 && s <= walkStates; {
		w.states = append(w.states, s)
		if rng.IntN(2) == 0 {
			s--
		} else {
			s++
		}
		r := 0.0
		switch s {
		case 0:
			r = -1
		case walkStates + 1:
			r = 1
		}
		w.rewards = append(w.rewards, r)
	}
	return w
}

func oneHot(s int) []float64 {
	x := make([]float64, walkStates)
	x[s-1] = 1
	return x
}

// tabularNet is a linear net without bias on one-hot states: a table, all
// zeros to start.
func tabularNet(t testing.TB, lambda, alpha float64) *Net {
	n, err := New(Config{InputDim: walkStates, Gamma: 1, Lambda: lambda, LR: alpha, ZeroOutput: true, NoBias: true})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *Net) train(w walk) error {
	xs := make([][]float64, len(w.states))
	for i, s := range w.states {
		xs[i] = oneHot(s)
	}
	_, err := n.Episode(xs, w.rewards)
	return err
}

func (n *Net) table(t testing.TB) []float64 {
	v := make([]float64, walkStates)
	for s := 1; s <= walkStates; s++ {
		var err error
		if v[s-1], err = n.Value(oneHot(s)); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// tabularTD is TD(λ) with accumulating traces written directly on a table
// (V[0] and V[20] are the terminal states, always 0).
func tabularTD(episodes []walk, lambda, alpha float64) [][]float64 {
	var v, z [walkStates + 2]float64
	var out [][]float64
	for _, w := range episodes {
		z = [walkStates + 2]float64{}
		for i, s := range w.states {
			next := 0
			if i+1 < len(w.states) {
				next = w.states[i+1]
			}
			for j := range z {
				z[j] *= lambda
			}
			z[s]++
			delta := w.rewards[i] + v[next] - v[s]
			for j := range v {
				v[j] += alpha * delta * z[j]
			}
		}
		out = append(out, slices.Clone(v[1:walkStates+1]))
	}
	return out
}

// TestRandomWalkTD0Exact: with λ = 0 the net is one-step TD(0), value for
// value, bit for bit, on the same episodes.
func TestRandomWalkTD0Exact(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 0))
	var eps []walk
	for range 10 {
		eps = append(eps, randomWalk(rng))
	}
	for _, alpha := range []float64{0.05, 0.3, 0.9} {
		n := tabularNet(t, 0, alpha)
		var v [walkStates + 2]float64 // plain TD(0): V(s) += α(r + V(s') − V(s))
		for e, w := range eps {
			for i, s := range w.states {
				next := 0
				if i+1 < len(w.states) {
					next = w.states[i+1]
				}
				// float64() keeps the compiler from fusing a multiply-add
				// (arm64 does), which would round differently from w += α·δ·z.
				v[s] += float64(alpha * (w.rewards[i] + v[next] - v[s]))
			}
			if err := n.train(w); err != nil {
				t.Fatal(err)
			}
			if got := n.table(t); !slices.Equal(got, v[1:walkStates+1]) {
				t.Fatalf("α %v episode %d:\nnet   %v\nTD(0) %v", alpha, e, got, v[1:walkStates+1])
			}
		}
	}
}

// TestTraceResetsBetweenEpisodes: with λ = γ = 1 a trace left over from
// the previous episode would carry the second episode's error back to the
// first episode's state.
func TestTraceResetsBetweenEpisodes(t *testing.T) {
	n := tabularNet(t, 1, 0.5)
	if err := n.train(walk{states: []int{1}, rewards: []float64{-1}}); err != nil {
		t.Fatal(err)
	}
	if err := n.train(walk{states: []int{19}, rewards: []float64{1}}); err != nil {
		t.Fatal(err)
	}
	v := n.table(t)
	if v[0] != -0.5 || v[18] != 0.5 {
		t.Fatalf("V(1) = %v, V(19) = %v, want −0.5 and 0.5", v[0], v[18])
	}
}

// TestRandomWalkTracesMatchTabular: for λ > 0 the net's traces are the
// tabular accumulating traces, decayed each step and reset each episode
// (bit for bit on amd64; the tolerance allows for fused multiply-adds).
func TestRandomWalkTracesMatchTabular(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 1))
	var eps []walk
	for range 10 {
		eps = append(eps, randomWalk(rng))
	}
	for _, lambda := range []float64{0.5, 0.8, 0.95, 1} {
		alpha := 0.1
		want := tabularTD(eps, lambda, alpha)
		td0 := tabularTD(eps, 0, alpha)
		n := tabularNet(t, lambda, alpha)
		for e, w := range eps {
			if err := n.train(w); err != nil {
				t.Fatal(err)
			}
			got := n.table(t)
			for s := range got {
				if math.Abs(got[s]-want[e][s]) > 1e-12 {
					t.Fatalf("λ %v episode %d state %d: net %v, tabular TD(λ) %v", lambda, e, s+1, got[s], want[e][s])
				}
			}
		}
		// Traces must matter: the values differ from TD(0)'s.
		if floats.Distance(want[len(eps)-1], td0[len(eps)-1], 2) < 1e-3 {
			t.Fatalf("λ %v: TD(λ) and TD(0) agree; the episodes do not exercise the traces", lambda)
		}
	}
}

// TestRandomWalkLambdaSweep reproduces the book's experiment with online
// TD(λ): RMS error over the 19 states, averaged over the first 10 episodes
// and 100 runs, initial values 0, for each λ at its best step size. An
// intermediate λ must beat both λ = 0 and λ = 1.
func TestRandomWalkLambdaSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("sweep of 8 λ × 30 α × 100 runs")
	}
	const runs, episodes = 100, 10
	lambdas := []float64{0, 0.4, 0.8, 0.9, 0.95, 0.975, 0.99, 1}
	// The book's linear grid, plus small steps where λ near 1 needs them.
	alphas := []float64{0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.03, 0.04}
	for a := 0.05; a < 1.0001; a += 0.05 {
		alphas = append(alphas, math.Round(a*100)/100)
	}
	truth := make([]float64, walkStates)
	for s := 1; s <= walkStates; s++ {
		truth[s-1] = float64(s-10) / 10
	}
	// The same episodes for every (λ, α) in a run, as in the book's
	// figures: differences come from the algorithm, not the sampling.
	data := make([][]walk, runs)
	for r := range data {
		rng := rand.New(rand.NewPCG(uint64(r), 1912))
		for range episodes {
			data[r] = append(data[r], randomWalk(rng))
		}
	}
	best := map[float64]float64{}
	bestAlpha := map[float64]float64{}
	var table strings.Builder
	table.WriteString("\n      λ   best α   RMS (mean over 10 episodes × 100 runs)\n")
	for _, lambda := range lambdas {
		best[lambda] = math.Inf(1)
		for _, alpha := range alphas {
			sum := 0.0
			for _, eps := range data {
				n := tabularNet(t, lambda, alpha)
				for _, w := range eps {
					if err := n.train(w); err != nil {
						var de *DivergedError
						if !errors.As(err, &de) {
							t.Fatal(err)
						}
						sum = math.Inf(1)
						break
					}
					sum += floats.Distance(n.table(t), truth, 2) / math.Sqrt(walkStates)
				}
			}
			if rms := sum / (runs * episodes); rms < best[lambda] {
				best[lambda], bestAlpha[lambda] = rms, alpha
			}
		}
		fmt.Fprintf(&table, "  %5.3f   %6g   %.4f\n", lambda, bestAlpha[lambda], best[lambda])
	}
	t.Log(table.String())
	mid := min(best[0.8], best[0.9])
	if !(mid < best[0]-0.02 && mid < best[1]-0.02) {
		t.Errorf("intermediate λ (0.8: %.4f, 0.9: %.4f) does not beat λ=0 (%.4f) and λ=1 (%.4f) by 0.02", best[0.8], best[0.9], best[0], best[1])
	}
	if !(best[0.8] < best[0] && best[0.8] < best[1]) {
		t.Errorf("λ=0.8 (%.4f) does not beat λ=0 (%.4f) and λ=1 (%.4f)", best[0.8], best[0], best[1])
	}
}
