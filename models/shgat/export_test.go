package shgat_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/models/shgat"
)

// exportTestScorer is a scorer with random weights: near-identity (as the
// model's default init) or Glorot-scaled Gaussian, and a random gate.
func exportTestScorer(rng *rand.Rand, heads, headDim int, identity bool) *shgat.Scorer {
	d := heads * headDim
	w := func() []float64 {
		m := make([]float64, d*d)
		for i := range m {
			if identity {
				m[i] = 0.05 * rng.NormFloat64() / math.Sqrt(float64(d))
				if i%(d+1) == 0 {
					m[i]++
				}
			} else {
				m[i] = rng.NormFloat64() / math.Sqrt(float64(d))
			}
		}
		return m
	}
	return &shgat.Scorer{
		Dim: d, Heads: heads, HeadDim: headDim,
		Wq: w(), CtxQ: w(), CtxGate: rng.NormFloat64(),
		Scale:    1 / (float64(heads) * math.Sqrt(float64(headDim))),
		CtxScale: 1 / math.Sqrt(float64(d)),
		// Not √D as models use, so scores stay in a range where an
		// absolute tolerance is meaningful at both test sizes.
		InputScale: math.Sqrt(float64(d)) / 4,
		Evidence:   []float64{0.7, -0.3, 1.2},
	}
}

// writeScorer exports s to a file in a fresh temporary directory.
func writeScorer(t testing.TB, s *shgat.Scorer) string {
	t.Helper()
	m, err := shgat.ExportScorer(s)
	if err != nil {
		t.Fatalf("ExportScorer: %v", err)
	}
	path := filepath.Join(t.TempDir(), "scorer.onnx")
	if err := m.WriteFile(path); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	return path
}

func TestExportScorerRejectsInvalidScorer(t *testing.T) {
	good := func() *shgat.Scorer { return exportTestScorer(rand.New(rand.NewPCG(1, 2)), 2, 4, false) }
	cases := []struct {
		name, field string
		edit        func(s *shgat.Scorer) *shgat.Scorer
	}{
		{"nil", "", func(*shgat.Scorer) *shgat.Scorer { return nil }},
		{"zero dim", "Dim", func(s *shgat.Scorer) *shgat.Scorer { s.Dim = 0; return s }},
		{"zero heads", "Heads", func(s *shgat.Scorer) *shgat.Scorer { s.Heads = 0; return s }},
		{"negative head dim", "HeadDim", func(s *shgat.Scorer) *shgat.Scorer { s.HeadDim = -4; return s }},
		{"heads·headDim ≠ dim", "Heads·HeadDim", func(s *shgat.Scorer) *shgat.Scorer { s.HeadDim = 3; return s }},
		{"short Wq", "Wq", func(s *shgat.Scorer) *shgat.Scorer { s.Wq = s.Wq[:len(s.Wq)-1]; return s }},
		{"nil CtxQ", "CtxQ", func(s *shgat.Scorer) *shgat.Scorer { s.CtxQ = nil; return s }},
		{"NaN in Wq", "Wq[5]", func(s *shgat.Scorer) *shgat.Scorer { s.Wq[5] = math.NaN(); return s }},
		{"Inf in CtxQ", "CtxQ[0]", func(s *shgat.Scorer) *shgat.Scorer { s.CtxQ[0] = math.Inf(-1); return s }},
		{"beyond float32", "CtxQ[3]", func(s *shgat.Scorer) *shgat.Scorer { s.CtxQ[3] = 1e300; return s }},
		{"NaN gate", "CtxGate", func(s *shgat.Scorer) *shgat.Scorer { s.CtxGate = math.NaN(); return s }},
		{"Inf scale", "Scale", func(s *shgat.Scorer) *shgat.Scorer { s.Scale = math.Inf(1); return s }},
		{"NaN ctx scale", "CtxScale", func(s *shgat.Scorer) *shgat.Scorer { s.CtxScale = math.NaN(); return s }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := shgat.ExportScorer(tc.edit(good()))
			var se *shgat.ScorerError
			if !errors.As(err, &se) {
				t.Fatalf("ExportScorer = %v, %v; want a *ScorerError", m, err)
			}
			if se.Field != tc.field {
				t.Errorf("Field = %q, want %q (error: %v)", se.Field, tc.field, err)
			}
			t.Log(err)
		})
	}
}

func TestExportScorerMarshals(t *testing.T) {
	s := exportTestScorer(rand.New(rand.NewPCG(3, 4)), 4, 16, true)
	m, err := shgat.ExportScorer(s)
	if err != nil {
		t.Fatal(err)
	}
	if m.Opset != 17 || m.Producer != "capflow" {
		t.Errorf("opset %d producer %q, want 17 capflow", m.Opset, m.Producer)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// The D×D weights are folded into the catalog (Scorer.Project): the
	// graph and F evidence weights stay far below one 64×64 float32 matrix.
	if limit := 4 * 64 * 64; len(b) > limit {
		t.Errorf("model is %d bytes, want under %d (no D×D initializer)", len(b), limit)
	}
}

// TestExportScorerONNXChecker runs onnx.checker (full_check, with shape
// inference) on an export and checks the model-level fields it can read.
func TestExportScorerONNXChecker(t *testing.T) {
	py := testenv.Python(t)
	if out, err := exec.Command(py, "-c", "import onnx").CombinedOutput(); err != nil {
		t.Skipf("the venv has no onnx package (pip install onnx): %v %s", err, out)
	}
	path := writeScorer(t, exportTestScorer(rand.New(rand.NewPCG(5, 6)), 4, 16, false))
	script := `
import sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
assert m.producer_name == "capflow", m.producer_name
assert [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")] == [17], m.opset_import
assert "SHGAT" in m.graph.doc_string, m.graph.doc_string
assert [i.name for i in m.graph.input] == ["intent", "context", "context_keys", "context_mask", "candidates", "reliability", "evidence"]
assert [o.name for o in m.graph.output] == ["scores"]
assert not any(len(t.dims) == 2 for t in m.graph.initializer), [list(t.dims) for t in m.graph.initializer]
dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
assert dims(m.graph.input[1]) == ["batch", "context", 64], dims(m.graph.input[1])
assert dims(m.graph.output[0]) == ["batch", "candidates"], dims(m.graph.output[0])
print(len(m.graph.node), "nodes")
`
	out, err := exec.Command(py, "-c", script, path).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx.checker: %v\n%s", err, out)
	}
	t.Logf("onnx.checker: ok, %s", strings.TrimSpace(string(out)))
	if fi, err := os.Stat(path); err == nil {
		t.Logf("model: %d bytes", fi.Size())
	}
}
