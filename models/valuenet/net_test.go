package valuenet

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func randVec(rng *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return x
}

// TestGradFiniteDifference checks the hand-written backward pass against
// central differences, parameter by parameter.
func TestGradFiniteDifference(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hidden []int
		noBias bool
	}{
		{"mlp", []int{12, 10, 8}, false},
		{"mlp-nobias", []int{12, 8}, true},
		{"linear", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{InputDim: 6, Hidden: tc.hidden, Gamma: 1, Lambda: 0.5, LR: 0.1, Seed: 3, NoBias: tc.noBias}
			n, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(4, 5))
			// Random biases too (init makes them 0), so their gradients
			// are exercised away from the trivial point.
			for i := range n.params {
				n.params[i] += 0.3 * rng.NormFloat64()
			}
			for trial := range 5 {
				x := randVec(rng, cfg.InputDim)
				v, g, err := n.Grad(x)
				if err != nil {
					t.Fatal(err)
				}
				if v0, _ := n.Value(x); v0 != v {
					t.Fatalf("Grad value %v != Value %v", v, v0)
				}
				const h = 1e-6
				worst, nonzero := 0.0, 0
				for i := range n.params {
					w := n.params[i]
					n.params[i] = w + h
					vp, _ := n.Value(x)
					n.params[i] = w - h
					vm, _ := n.Value(x)
					n.params[i] = w
					fd := (vp - vm) / (2 * h)
					scale := max(math.Abs(g[i]), math.Abs(fd))
					if scale < 1e-7 {
						if math.Abs(g[i]-fd) > 1e-9 {
							t.Fatalf("trial %d param %d: grad %v, finite difference %v", trial, i, g[i], fd)
						}
						continue
					}
					nonzero++
					worst = max(worst, math.Abs(g[i]-fd)/scale)
				}
				if worst > 1e-4 {
					t.Fatalf("trial %d: worst relative error %.3g > 1e-4", trial, worst)
				}
				// Dead ReLUs zero much of the gradient; every layer must
				// still get some, or the check says nothing about it.
				for li, l := range n.layers {
					if !slices.ContainsFunc(g[l.wOff:l.wOff+l.in*l.out], func(v float64) bool { return v != 0 }) {
						t.Fatalf("trial %d: layer %d has no gradient; check is vacuous", trial, li)
					}
				}
				t.Logf("trial %d: %d params, %d non-zero, worst relative error %.2g", trial, len(n.params), nonzero, worst)
			}
		})
	}
}

func TestValueBatchMatchesValue(t *testing.T) {
	n, err := New(DefaultConfig(40))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var xs [][]float64
	for range 9 {
		xs = append(xs, randVec(rng, 40))
	}
	vs, err := n.ValueBatch(xs)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range xs {
		v, _ := n.Value(x)
		if math.Abs(v-vs[i]) > 1e-12*max(1, math.Abs(v)) {
			t.Errorf("row %d: batch %v, single %v", i, vs[i], v)
		}
	}
	if vs, err := n.ValueBatch(nil); err != nil || len(vs) != 0 {
		t.Errorf("empty batch: %v, %v", vs, err)
	}
}

func TestInit(t *testing.T) {
	cfg := DefaultConfig(300)
	a, _ := New(cfg)
	b, _ := New(cfg)
	if !slices.Equal(a.params, b.params) {
		t.Fatal("same seed, different weights")
	}
	cfg.Seed = 1
	c, _ := New(cfg)
	if slices.Equal(a.params, c.params) {
		t.Fatal("different seeds, same weights")
	}
	if a.NumParams() != 300*256+256+256*128+128+128*64+64+64+1 {
		t.Fatalf("NumParams %d", a.NumParams())
	}
	// He normal on the ReLU layers: std √(2/fan_in), mean 0.
	for i, l := range a.layers[:3] {
		var s, ss float64
		for _, w := range l.w {
			s += w
			ss += w * w
		}
		mean := s / float64(len(l.w))
		std := math.Sqrt(ss/float64(len(l.w)) - mean*mean)
		want := math.Sqrt(2 / float64(l.in))
		if math.Abs(std/want-1) > 0.05 || math.Abs(mean) > 0.05*want {
			t.Errorf("layer %d: mean %.4g std %.4g, want 0 and %.4g", i, mean, std, want)
		}
		if slices.ContainsFunc(l.b, func(v float64) bool { return v != 0 }) {
			t.Errorf("layer %d: bias not zero", i)
		}
	}
	// Xavier uniform on the output layer.
	out := a.layers[3]
	lim := math.Sqrt(6.0 / 65)
	for _, w := range out.w {
		if math.Abs(w) > lim {
			t.Fatalf("output weight %v outside ±%v", w, lim)
		}
	}
	cfg.ZeroOutput = true
	z, _ := New(cfg)
	if v, _ := z.Value(randVec(rand.New(rand.NewPCG(9, 9)), 300)); v != 0 {
		t.Errorf("ZeroOutput: V = %v", v)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"input_dim", func(c *Config) { c.InputDim = 0 }},
		{"gamma", func(c *Config) { c.Gamma = 1.01 }},
		{"gamma", func(c *Config) { c.Gamma = math.NaN() }},
		{"lambda", func(c *Config) { c.Lambda = -0.1 }},
		{"lr", func(c *Config) { c.LR = 0 }},
		{"lr", func(c *Config) { c.LR = math.Inf(1) }},
		{"hidden[1]", func(c *Config) { c.Hidden = []int{4, 0} }},
		{"hidden", func(c *Config) { c.Hidden = []int{1 << 40} }},
	} {
		cfg := DefaultConfig(8)
		tc.edit(&cfg)
		_, err := New(cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%+v: error %v, want a ConfigError on %s", cfg, err, tc.field)
		}
	}
}

func TestInputErrors(t *testing.T) {
	n, err := New(Config{InputDim: 3, Hidden: []int{4}, Gamma: 0.9, Lambda: 0.5, LR: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	before := n.Params()
	ok := []float64{1, 2, 3}
	nan := []float64{1, math.NaN(), 3}
	inf := []float64{1, math.Inf(-1), 3}
	for _, tc := range []struct {
		name  string
		call  func() error
		want  error
		field string
	}{
		{"value width", func() error { _, err := n.Value([]float64{1, 2}); return err }, ErrWidth, "x"},
		{"value nan", func() error { _, err := n.Value(nan); return err }, ErrNonFinite, "x"},
		{"value nil", func() error { _, err := n.Value(nil); return err }, ErrWidth, "x"},
		{"grad inf", func() error { _, _, err := n.Grad(inf); return err }, ErrNonFinite, "x"},
		{"batch row", func() error { _, err := n.ValueBatch([][]float64{ok, {1}}); return err }, ErrWidth, "xs[1]"},
		{"episode empty", func() error { _, err := n.Episode(nil, nil); return err }, ErrEmpty, "rewards"},
		{"episode states only", func() error { _, err := n.Episode([][]float64{ok}, nil); return err }, ErrEmpty, "rewards"},
		{"episode lengths", func() error { _, err := n.Episode([][]float64{ok, ok, ok}, []float64{1}); return err }, ErrLength, "xs"},
		{"episode short", func() error { _, err := n.Episode([][]float64{ok}, []float64{0, 1}); return err }, ErrLength, "xs"},
		{"episode nan state", func() error { _, err := n.Episode([][]float64{ok, nan}, []float64{0, 1}); return err }, ErrNonFinite, "xs[1]"},
		{"episode width", func() error { _, err := n.Episode([][]float64{ok, {1}}, []float64{0, 1}); return err }, ErrWidth, "xs[1]"},
		{"episode nan reward", func() error { _, err := n.Episode([][]float64{ok, ok}, []float64{0, math.NaN()}); return err }, ErrNonFinite, "rewards"},
		{"targets empty", func() error { _, err := n.Targets(nil, nil, true); return err }, ErrEmpty, "rewards"},
		{"targets lengths", func() error { _, err := n.Targets([]float64{1, 2}, []float64{0, 1}, false); return err }, ErrLength, "values"},
		{"returns lengths", func() error { _, err := n.LambdaReturns([]float64{1, 2, 3}, []float64{0, 1}, true); return err }, ErrLength, "values"},
		{"returns nan", func() error { _, err := n.LambdaReturns([]float64{1, math.NaN()}, []float64{0, 1}, true); return err }, ErrNonFinite, "values"},
	} {
		err := tc.call()
		var ie *InputError
		if !errors.Is(err, tc.want) || !errors.As(err, &ie) || ie.Field != tc.field {
			t.Errorf("%s: error %v, want %v on %s", tc.name, err, tc.want, tc.field)
		}
	}
	if !slices.Equal(before, n.params) {
		t.Error("a rejected call changed the weights")
	}
}

func TestDivergenceRestoresWeights(t *testing.T) {
	n, err := New(Config{InputDim: 2, Hidden: []int{3}, Gamma: 1, Lambda: 1, LR: 1e300})
	if err != nil {
		t.Fatal(err)
	}
	before := n.Params()
	xs := [][]float64{{1, 1}, {2, -1}, {0.5, 3}}
	_, err = n.Episode(xs, []float64{1e300, 1e300, 1e300})
	var de *DivergedError
	if !errors.As(err, &de) {
		t.Fatalf("error %v, want a DivergedError", err)
	}
	if !slices.Equal(before, n.params) {
		t.Error("weights not restored after divergence")
	}
}
