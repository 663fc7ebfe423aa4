package shgat_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/models/onnxgraph"
	"github.com/capflow/capflow/models/shgat"
)

// openTestORT opens an exported scorer with the test ORT library; it skips
// (fails under CI) when ORT is absent.
func openTestORT(t testing.TB, path string, opts shgat.ORTOptions) *shgat.ORTScorer {
	t.Helper()
	opts.LibraryPath = testenv.ORTLibrary(t)
	s, err := shgat.OpenORT(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("OpenORT: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// unitish is a random vector of norm about `norm`.
func unitish(rng *rand.Rand, d int, norm float64) []float64 {
	v := make([]float64, d)
	for i := range v {
		v[i] = norm * rng.NormFloat64() / math.Sqrt(float64(d))
	}
	return v
}

func append32(dst []float32, v []float64) []float32 {
	for _, x := range v {
		dst = append(dst, float32(x))
	}
	return dst
}

// TestORTParity scores 1,000 random batched requests with the exported model
// in ORT and with Scorer.Score in float64.
func TestORTParity(t *testing.T) { ortParity(t, 4, 16, false, 1000) }

// TestORTParityD1024 does the same at the design size (16 heads of 64),
// with the model's near-identity initialisation.
func TestORTParityD1024(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	ortParity(t, 16, 64, true, 300)
}

func ortParity(t *testing.T, heads, headDim int, identity bool, requests int) {
	rng := rand.New(rand.NewPCG(uint64(heads), uint64(headDim)))
	s := exportTestScorer(rng, heads, headDim, identity)
	d := s.Dim
	ortS := openTestORT(t, writeScorer(t, s), shgat.ORTOptions{Dim: d})
	if ortS.Dim() != d {
		t.Fatalf("Dim() = %d, want %d", ortS.Dim(), d)
	}

	const tol = 1e-4
	var maxAbs, maxScore float64
	var rows, scores, noContext, allMasked, partMasked int
	for i := range requests {
		b, c, n := 1+rng.IntN(4), rng.IntN(6), rng.IntN(301)
		ctxScale := []float64{1, 8, 30}[rng.IntN(3)] // 30 makes the context softmax peaky
		keys := make([]float64, 0, n*d)
		rel := make([]float64, n)
		for j := range n {
			keys = append(keys, unitish(rng, d, 0.5+1.5*rng.Float64())...)
			if rng.IntN(2) == 0 {
				rel[j] = []float64{0.5, 1, 1.2}[rng.IntN(3)]
			} else {
				rel[j] = 0.05 + 3*rng.Float64()
			}
		}
		var intent32, ctx32, mask32 []float32
		reqs := make([]shgat.Request, b)
		for r := range b {
			reqs[r].Intent = unitish(rng, d, 1)
			intent32 = append32(intent32, reqs[r].Intent)
			none := rng.IntN(7) == 0
			masked := 0
			for range c {
				if none || rng.IntN(3) == 0 {
					// Padding holds large garbage: any leak would show.
					ctx32 = append32(ctx32, unitish(rng, d, 50))
					mask32 = append(mask32, 0)
					masked++
					continue
				}
				tool := unitish(rng, d, ctxScale)
				reqs[r].Context = append(reqs[r].Context, tool)
				ctx32 = append32(ctx32, tool)
				mask32 = append(mask32, 1)
			}
			switch {
			case c == 0:
				noContext++
			case masked == c:
				allMasked++
			case masked > 0:
				partMasked++
			}
		}
		// Evidence: absent (nil) for some requests, else per row.
		var ev32 []float32
		if rng.IntN(3) > 0 {
			nf := len(s.Evidence)
			for r := range reqs {
				reqs[r].Evidence = make([]float64, n*nf)
				for k := range reqs[r].Evidence {
					reqs[r].Evidence[k] = 3 * rng.Float64()
				}
				ev32 = append32(ev32, reqs[r].Evidence)
			}
		}
		// ORT takes the projected rows (Scorer.Project); Go scores the raw ones.
		ctxKeys32, err := s.ProjectContext(ctx32)
		if err != nil {
			t.Fatal(err)
		}
		keys32, err := s.ProjectKeys(append32(nil, keys))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ortS.Score(shgat.Batch{B: b, C: c, N: n, Intent: intent32, Context: ctx32, ContextKeys: ctxKeys32, ContextMask: mask32,
			Candidates: keys32, Reliability: append32(nil, rel), Evidence: ev32})
		if err != nil {
			t.Fatalf("request %d (b=%d c=%d n=%d): ORT Score: %v", i, b, c, n, err)
		}
		if len(got) != b*n {
			t.Fatalf("request %d: %d scores, want %d", i, len(got), b*n)
		}
		for r, req := range reqs {
			want, err := s.Score(req, keys, rel)
			if err != nil {
				t.Fatalf("request %d row %d: Scorer.Score: %v", i, r, err)
			}
			top := 0.0
			for _, w := range want {
				top = max(top, math.Abs(w))
			}
			for k, w := range want {
				diff := math.Abs(float64(got[r*n+k]) - w)
				if diff > tol || math.IsNaN(diff) {
					t.Fatalf("request %d row %d (c=%d, %d real tools) candidate %d: ORT %v, Go %v, diff %.3g > %g",
						i, r, c, len(req.Context), k, got[r*n+k], w, diff, tol)
				}
				maxAbs = max(maxAbs, diff)
			}
			maxScore = max(maxScore, top)
			rows++
			scores += n
		}
	}
	t.Logf("D=%d (%d×%d): %d requests, %d rows (%d with C=0, %d all-masked, %d partly masked), %d scores with |score| up to %.3g: max abs diff %.3g",
		d, heads, headDim, requests, rows, noContext, allMasked, partMasked, scores, maxScore, maxAbs)
	if noContext == 0 || allMasked == 0 || partMasked == 0 {
		t.Errorf("the random requests missed a masking case: C=0 %d, all-masked %d, partly masked %d", noContext, allMasked, partMasked)
	}
}

// fakeInput declares one graph input of a hand-made scorer-like model.
type fakeInput struct {
	name string
	typ  onnxgraph.DataType
	dims []any
}

func contractInputs(d int) []fakeInput {
	return []fakeInput{
		{shgat.InputIntent, onnxgraph.Float, []any{"batch", d}},
		{shgat.InputContext, onnxgraph.Float, []any{"batch", "context", d}},
		{shgat.InputContextKeys, onnxgraph.Float, []any{"batch", "context", d}},
		{shgat.InputContextMask, onnxgraph.Float, []any{"batch", "context"}},
		{shgat.InputCandidates, onnxgraph.Float, []any{"candidates", d}},
		{shgat.InputReliability, onnxgraph.Float, []any{"candidates"}},
		{shgat.InputEvidence, onnxgraph.Float, []any{"batch", "candidates", 3}},
	}
}

// writeFakeScorer writes a model with the given inputs whose output (named
// out) is intent·candidatesᵀ, plus context_mask if brokenAdd (which fails
// at run time unless N = C).
func writeFakeScorer(t *testing.T, inputs []fakeInput, out string, brokenAdd bool) string {
	t.Helper()
	g := onnxgraph.New("fake_scorer")
	for _, in := range inputs {
		g.Input(in.name, in.typ, in.dims...)
	}
	raw := g.Op("Gemm", []string{shgat.InputIntent, shgat.InputCandidates}, onnxgraph.AttrInt("transB", 1))
	if brokenAdd {
		// [batch,candidates] + [batch,context]: loads, fails when N ≠ C.
		raw = g.Op("Add", []string{raw, shgat.InputContextMask})
	}
	g.Node("Identity", []string{raw}, []string{out})
	g.Output(out, onnxgraph.Float, "batch", "candidates")
	path := filepath.Join(t.TempDir(), "fake.onnx")
	if err := (&onnxgraph.Model{Graph: g, Opset: 17, Producer: "capflow-test"}).WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenORTRejectsBadModels(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	const d = 64
	rng := rand.New(rand.NewPCG(7, 8))
	good := writeScorer(t, exportTestScorer(rng, 4, 16, false))
	goodBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	writeBytes := func(b []byte) string {
		p := filepath.Join(t.TempDir(), "bad.onnx")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	edit := func(f func(in []fakeInput) []fakeInput) string {
		return writeFakeScorer(t, f(contractInputs(d)), shgat.OutputScores, false)
	}
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}

	cases := []struct {
		name, path string
		dim        int
		want       string // in the error message
	}{
		{"wrong D", writeScorer(t, exportTestScorer(rng, 2, 16, false)), d, `input "intent" has D=32, want D=64`},
		{"missing input", edit(func(in []fakeInput) []fakeInput { return in[:5] }), 0, `missing input "reliability"`},
		{"extra input", edit(func(in []fakeInput) []fakeInput {
			return append(in, fakeInput{"temperature", onnxgraph.Float, []any{1}})
		}), 0, `unexpected input "temperature"`},
		{"wrong dtype", edit(func(in []fakeInput) []fakeInput { in[3].typ = onnxgraph.Int64; return in }), 0, `input "context_mask" is`},
		{"double reliability", edit(func(in []fakeInput) []fakeInput { in[5].typ = onnxgraph.Double; return in }), 0, "want a float32 tensor"},
		{"fixed batch", edit(func(in []fakeInput) []fakeInput { in[0].dims = []any{1, d}; return in }), 0, `input "intent" axis 0 (batch) is fixed at 1`},
		{"fixed candidates", edit(func(in []fakeInput) []fakeInput { in[5].dims = []any{300}; return in }), 0, `axis 0 (candidates) is fixed at 300`},
		{"wrong rank", edit(func(in []fakeInput) []fakeInput { in[5].dims = []any{"candidates", 1}; return in }), 0, `input "reliability" has rank 2`},
		{"inconsistent D", edit(func(in []fakeInput) []fakeInput { in[1].dims = []any{"batch", "context", 32}; return in }), 0, `input "context" has D=32 but intent has D=64`},
		{"dynamic D", edit(func(in []fakeInput) []fakeInput {
			in[0].dims, in[1].dims, in[2].dims, in[4].dims = []any{"batch", "d"}, []any{"batch", "context", "d"}, []any{"batch", "context", "d"}, []any{"candidates", "d"}
			return in
		}), 0, `input "intent" axis 1 (D) is dynamic`},
		{"missing output", writeFakeScorer(t, contractInputs(d), "logits", false), 0, `missing output "scores"`},
		{"graph fails at run time", writeFakeScorer(t, contractInputs(d), shgat.OutputScores, true), 0, "a test request fails"},
		{"truncated file", writeBytes(goodBytes[:len(goodBytes)/2]), 0, "ONNX Runtime cannot load it"},
		{"garbage bytes", writeBytes(garbage), 0, "ONNX Runtime cannot load it"},
		{"empty file", writeBytes(nil), 0, "ONNX Runtime cannot load it"},
		{"missing file", filepath.Join(t.TempDir(), "nope.onnx"), 0, "file does not exist"},
		{"directory", t.TempDir(), 0, "is a directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := shgat.OpenORT(context.Background(), tc.path, shgat.ORTOptions{LibraryPath: lib, Dim: tc.dim})
			if err == nil {
				s.Close()
				t.Fatal("OpenORT succeeded, want a *ModelError")
			}
			var me *shgat.ModelError
			if !errors.As(err, &me) {
				t.Fatalf("OpenORT: %T %v, want a *ModelError", err, err)
			}
			if me.Path != tc.path || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q (path %q), want path %q and %q in the message", err, me.Path, tc.path, tc.want)
			}
			t.Log(err)
		})
	}
	if _, err := shgat.OpenORT(context.Background(), filepath.Join(t.TempDir(), "nope.onnx"), shgat.ORTOptions{LibraryPath: lib}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v does not wrap os.ErrNotExist", err)
	}
}

func TestOpenORTOptions(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	path := writeScorer(t, exportTestScorer(rand.New(rand.NewPCG(9, 9)), 2, 8, false))
	for _, opts := range []shgat.ORTOptions{{Dim: -1}, {IntraOpThreads: -2}} {
		opts.LibraryPath = lib
		_, err := shgat.OpenORT(context.Background(), path, opts)
		var ce *shgat.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("OpenORT(%+v) = %v, want a *ConfigError", opts, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := shgat.OpenORT(ctx, path, shgat.ORTOptions{LibraryPath: lib}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v, want context.Canceled", err)
	}
	s := openTestORT(t, path, shgat.ORTOptions{IntraOpThreads: 2})
	if s.Dim() != 16 {
		t.Errorf("Dim() = %d, want 16 (read from the model)", s.Dim())
	}
}

func TestORTScoreRejectsBadInputs(t *testing.T) {
	const d = 8
	s := openTestORT(t, writeScorer(t, exportTestScorer(rand.New(rand.NewPCG(10, 10)), 2, 4, false)), shgat.ORTOptions{Dim: d})
	f := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
		}
		return v
	}
	const b, c, n = 2, 3, 5
	type args = shgat.Batch
	ok := func() args {
		return args{B: b, C: c, N: n, Intent: f(b * d), Context: f(b * c * d), ContextKeys: f(b * c * d), ContextMask: f(b * c), Candidates: f(n * d),
			Reliability: f(n), Evidence: f(b * n * 3)}
	}
	if _, err := s.Score(ok()); err != nil {
		t.Fatalf("valid request: %v", err)
	}
	cases := []struct {
		name, field string
		edit        func(a *args)
	}{
		{"negative b", "b", func(a *args) { a.B = -1 }},
		{"negative c", "c", func(a *args) { a.C = -1 }},
		{"negative n", "n", func(a *args) { a.N = -1 }},
		{"short intent", shgat.InputIntent, func(a *args) { a.Intent = a.Intent[1:] }},
		{"b disagrees", shgat.InputIntent, func(a *args) { a.B = 3 }},
		{"c disagrees", shgat.InputContext, func(a *args) { a.C = 2 }},
		{"long context", shgat.InputContext, func(a *args) { a.Context = append(a.Context, 0) }},
		{"short context keys", shgat.InputContextKeys, func(a *args) { a.ContextKeys = a.ContextKeys[1:] }},
		{"short mask", shgat.InputContextMask, func(a *args) { a.ContextMask = a.ContextMask[:5] }},
		{"n disagrees", shgat.InputCandidates, func(a *args) { a.N = 4 }},
		{"short reliability", shgat.InputReliability, func(a *args) { a.Reliability = a.Reliability[:4] }},
		{"fractional mask", shgat.InputContextMask, func(a *args) { a.ContextMask[4] = 0.5 }},
		{"zero reliability", shgat.InputReliability, func(a *args) { a.Reliability[2] = 0 }},
		{"negative reliability", shgat.InputReliability, func(a *args) { a.Reliability[0] = -1 }},
		{"NaN reliability", shgat.InputReliability, func(a *args) { a.Reliability[1] = float32(math.NaN()) }},
		{"Inf reliability", shgat.InputReliability, func(a *args) { a.Reliability[1] = float32(math.Inf(1)) }},
		{"short evidence", shgat.InputEvidence, func(a *args) { a.Evidence = a.Evidence[1:] }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := ok()
			tc.edit(&a)
			got, err := s.Score(a)
			var ie *shgat.InputError
			if !errors.As(err, &ie) || ie.Field != tc.field {
				t.Fatalf("Score = %v, %v; want an *InputError on %q", got, err, tc.field)
			}
			t.Log(err)
		})
	}
	// Empty batches and empty candidate lists are valid and score nothing.
	if got, err := s.Score(shgat.Batch{C: c, N: n, Candidates: f(n * d), Reliability: f(n)}); err != nil || len(got) != 0 {
		t.Errorf("b=0: %v, %v", got, err)
	}
	if got, err := s.Score(shgat.Batch{B: b, C: c, Intent: f(b * d), Context: f(b * c * d), ContextKeys: f(b * c * d), ContextMask: f(b * c)}); err != nil || len(got) != 0 {
		t.Errorf("n=0: %v, %v", got, err)
	}
}

func TestORTScoreConcurrentAndClose(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	sc := exportTestScorer(rng, 4, 16, true)
	d := sc.Dim
	s := openTestORT(t, writeScorer(t, sc), shgat.ORTOptions{})
	const b, c, n = 2, 3, 200
	intent := append32(nil, unitish(rng, b*d, 1))
	ctx := append32(nil, unitish(rng, b*c*d, 3))
	mask := []float32{1, 1, 0, 0, 1, 0}
	cands := append32(nil, unitish(rng, n*d, 10))
	rel := make([]float32, n)
	for i := range rel {
		rel[i] = 0.5 + rng.Float32()
	}
	want, err := s.Score(shgat.Batch{B: b, C: c, N: n, Intent: intent, Context: ctx, ContextKeys: ctx, ContextMask: mask, Candidates: cands, Reliability: rel})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 25 {
				got, err := s.Score(shgat.Batch{B: b, C: c, N: n, Intent: intent, Context: ctx, ContextKeys: ctx, ContextMask: mask, Candidates: cands, Reliability: rel})
				if err != nil {
					errs <- err
					return
				}
				for i := range got {
					if got[i] != want[i] {
						errs <- errors.New("concurrent Score differs from a lone one")
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Score(shgat.Batch{B: b, C: c, N: n, Intent: intent, Context: ctx, ContextKeys: ctx, ContextMask: mask, Candidates: cands, Reliability: rel}); !errors.Is(err, shgat.ErrORTClosed) {
		t.Errorf("Score after Close: %v, want ErrORTClosed", err)
	}
}
