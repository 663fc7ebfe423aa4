package drift

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// Mode is how an embedding drift check reduces vectors to numbers.
type Mode int

const (
	// PerDimension tests every coordinate: which dimensions moved.
	PerDimension Mode = iota
	// RandomProjection tests the projections on random unit directions:
	// fewer tests, and it sees shifts along directions no single axis
	// carries (a rotation of the embedding space, say).
	RandomProjection
)

func (m Mode) String() string {
	switch m {
	case PerDimension:
		return "per-dimension"
	case RandomProjection:
		return "random-projection"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Defaults of EmbeddingConfig's zero fields.
const (
	DefaultProjections = 32
	DefaultAlpha       = 0.01
)

// EmbeddingConfig configures Embeddings. The zero value is a per-dimension
// check with Benjamini–Hochberg at 0.01.
type EmbeddingConfig struct {
	Mode        Mode
	Projections int    // RandomProjection: how many directions; 0 means 32
	Seed        uint64 // RandomProjection: the directions are a function of Seed and the dimension
	Correction  Correction
	Alpha       float64 // a test is flagged when its corrected p-value < Alpha; 0 means 0.01
}

// EmbeddingReport says which dimensions (or projections) drifted.
type EmbeddingReport struct {
	Mode       Mode
	Correction Correction
	Alpha      float64
	Tests      []KSResult  // one per dimension or projection
	Corrected  []float64   // Tests' p-values after Correction, same order
	Drifted    []int       // indices into Tests with Corrected < Alpha, ascending
	Directions [][]float64 // RandomProjection: the unit directions, Directions[i] for Tests[i]
}

// Drift reports whether any test was flagged.
func (r EmbeddingReport) Drift() bool { return len(r.Drifted) > 0 }

// Embeddings compares reference and current embeddings (one vector a row,
// all of one dimension) with two-sample KS tests. ctx is checked between
// tests: an exact KS test on large, very different samples is not cheap.
func Embeddings(ctx context.Context, reference, current [][]float64, cfg EmbeddingConfig) (EmbeddingReport, error) {
	if cfg.Projections == 0 {
		cfg.Projections = DefaultProjections
	}
	if cfg.Alpha == 0 {
		cfg.Alpha = DefaultAlpha
	}
	if !(cfg.Alpha > 0 && cfg.Alpha < 1) {
		return EmbeddingReport{}, &InputError{Arg: "config.Alpha", Problem: fmt.Sprintf("is %v, want (0, 1)", cfg.Alpha)}
	}
	if cfg.Projections < 0 {
		return EmbeddingReport{}, &InputError{Arg: "config.Projections", Problem: fmt.Sprintf("is %d, want > 0", cfg.Projections)}
	}
	if cfg.Correction != BenjaminiHochberg && cfg.Correction != Bonferroni {
		return EmbeddingReport{}, &InputError{Arg: "config.Correction", Problem: fmt.Sprintf("is unknown (%d)", int(cfg.Correction))}
	}
	ref, err := matrix("reference", reference, 0)
	if err != nil {
		return EmbeddingReport{}, err
	}
	_, dim := ref.Dims()
	cur, err := matrix("current", current, dim)
	if err != nil {
		return EmbeddingReport{}, err
	}

	r := EmbeddingReport{Mode: cfg.Mode, Correction: cfg.Correction, Alpha: cfg.Alpha}
	switch cfg.Mode {
	case PerDimension:
	case RandomProjection:
		r.Directions = directions(cfg.Seed, cfg.Projections, dim)
		p := mat.NewDense(dim, cfg.Projections, nil) // directions as columns
		for k, d := range r.Directions {
			p.SetCol(k, d)
		}
		ref, cur = project(ref, p), project(cur, p)
	default:
		return EmbeddingReport{}, &InputError{Arg: "config.Mode", Problem: fmt.Sprintf("is unknown (%d)", int(cfg.Mode))}
	}

	if r.Tests, err = ksColumns(ctx, ref, cur); err != nil {
		return EmbeddingReport{}, err
	}
	p := make([]float64, len(r.Tests))
	for k, t := range r.Tests {
		p[k] = t.PValue
	}
	if r.Corrected, err = Adjust(p, cfg.Correction); err != nil {
		return EmbeddingReport{}, err
	}
	for k, q := range r.Corrected {
		if q < cfg.Alpha {
			r.Drifted = append(r.Drifted, k)
		}
	}
	return r, nil
}

// ksColumns tests column k of ref against column k of cur, for every k, on
// GOMAXPROCS goroutines: the tests are independent, and exact p-values for
// hundreds of dimensions take seconds on one core.
func ksColumns(ctx context.Context, ref, cur *mat.Dense) ([]KSResult, error) {
	_, cols := ref.Dims()
	out := make([]KSResult, cols)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), cols) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				x, y := mat.Col(nil, k, ref), mat.Col(nil, k, cur)
				slices.Sort(x)
				slices.Sort(y)
				out[k] = ksSorted(x, y)
			}
		}()
	}
	var err error
feed:
	for k := range cols {
		if ctx.Err() != nil { // select alone picks at random when both are ready
			err = fmt.Errorf("drift: embeddings: %w", ctx.Err())
			break
		}
		select {
		case next <- k:
		case <-ctx.Done():
			err = fmt.Errorf("drift: embeddings: %w", ctx.Err())
			break feed
		}
	}
	close(next)
	wg.Wait()
	return out, err
}

// matrix checks rows (all of length dim, or of the first row's when dim is
// 0, finite) and copies them into a matrix.
func matrix(arg string, rows [][]float64, dim int) (*mat.Dense, error) {
	if len(rows) == 0 {
		return nil, &InputError{Arg: arg, Problem: "has no vectors"}
	}
	if dim == 0 {
		dim = len(rows[0])
		if dim == 0 {
			return nil, &InputError{Arg: arg, Problem: "has vectors of dimension 0"}
		}
	}
	m := mat.NewDense(len(rows), dim, nil)
	for i, row := range rows {
		if len(row) != dim {
			return nil, &InputError{Arg: arg, Problem: fmt.Sprintf("vector %d has dimension %d, want %d", i, len(row), dim)}
		}
		if err := checkFinite(fmt.Sprintf("%s vector %d", arg, i), row); err != nil {
			return nil, err
		}
		m.SetRow(i, row)
	}
	return m, nil
}

func project(x, p *mat.Dense) *mat.Dense {
	var out mat.Dense
	out.Mul(x, p)
	return &out
}

// directions draws k unit vectors of dimension dim, uniform on the sphere
// (normalised Gaussian vectors), from a PCG seeded with seed.
func directions(seed uint64, k, dim int) [][]float64 {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := make([][]float64, k)
	for i := range out {
		v := make([]float64, dim)
		for {
			for j := range v {
				v[j] = rng.NormFloat64()
			}
			if n := floats.Norm(v, 2); n > 0 && !math.IsInf(n, 0) {
				floats.Scale(1/n, v)
				break
			}
		}
		out[i] = v
	}
	return out
}
