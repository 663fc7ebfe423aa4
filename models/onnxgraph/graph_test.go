package onnxgraph_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/capflow/capflow/models/onnxgraph"
)

func randFloats(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func marshal(t *testing.T, g *onnxgraph.Graph) []byte {
	t.Helper()
	b, err := (&onnxgraph.Model{Graph: g, Opset: 17, Producer: "capflow-test"}).Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	return b
}

func near(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol || math.IsNaN(d) {
			t.Fatalf("%s[%d] = %g, want %g (|diff| %g > %g)", what, i, got[i], want[i], d, tol)
		}
	}
}

// softmax(x·W + b) over a dynamic batch.
func TestMatMulAddSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const in, out = 4, 3
	w, bias := randFloats(r, in*out), randFloats(r, out)

	g := onnxgraph.New("mlp")
	x := g.Input("x", onnxgraph.Float, "batch", in)
	y := g.Op("Add", []string{g.Op("MatMul", []string{x, g.Initializer("w", []int64{in, out}, w)}), g.Initializer("b", []int64{out}, bias)})
	g.Node("Softmax", []string{y}, []string{"probs"}, onnxgraph.AttrInt("axis", -1))
	g.Output("probs", onnxgraph.Float, "batch", out)
	model := marshal(t, g)

	for _, batch := range []int{1, 5} {
		xs := randFloats(r, batch*in)
		got, shapes := runModel(t, model, []string{"x"}, []ort.Value{tensor(t, xs, int64(batch), in)}, []string{"probs"})
		if !shapes[0].Equals(ort.NewShape(int64(batch), out)) {
			t.Fatalf("shape %v", shapes[0])
		}
		want := make([]float64, 0, batch*out)
		for i := range batch {
			logits := make([]float64, out)
			sum := 0.0
			for j := range out {
				z := float64(bias[j])
				for k := range in {
					z += float64(xs[i*in+k]) * float64(w[k*out+j])
				}
				logits[j] = math.Exp(z)
				sum += logits[j]
			}
			for j := range out {
				want = append(want, logits[j]/sum)
			}
		}
		near(t, "probs", got[0], want, 1e-6)
	}
}

// Embedding lookup of int64 ids [batch, seq] → [batch, seq, dim].
func TestGather(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const vocab, dim = 7, 3
	table := randFloats(r, vocab*dim)
	g := onnxgraph.New("gather")
	ids := g.Input("ids", onnxgraph.Int64, "batch", "seq")
	g.Node("Gather", []string{g.Initializer("table", []int64{vocab, dim}, table), ids}, []string{"emb"}, onnxgraph.AttrInt("axis", 0))
	g.Output("emb", onnxgraph.Float, "batch", "seq", dim)

	idv := []int64{0, 6, 2, 2, 5, 1}
	got, shapes := runModel(t, marshal(t, g), []string{"ids"}, []ort.Value{tensor(t, idv, 2, 3)}, []string{"emb"})
	if !shapes[0].Equals(ort.NewShape(2, 3, dim)) {
		t.Fatalf("shape %v", shapes[0])
	}
	var want []float64
	for _, id := range idv {
		for j := range dim {
			want = append(want, float64(table[int(id)*dim+j]))
		}
	}
	near(t, "emb", got[0], want, 0)
}

// Reshape keeps a dynamic batch (0 copies the input dim), then Transpose and
// ReduceSum with axes as an input (opset 13+).
func TestReshapeDynamicBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	g := onnxgraph.New("reshape")
	x := g.Input("x", onnxgraph.Float, "batch", 6)
	y := g.Op("Reshape", []string{x, g.IntVector(0, 2, 3)})
	y = g.Op("Transpose", []string{y}, onnxgraph.AttrInts("perm", 0, 2, 1)) // [b,3,2]
	g.Node("ReduceSum", []string{y, g.IntVector(2)}, []string{"s"}, onnxgraph.AttrInt("keepdims", 0))
	g.Output("s", onnxgraph.Float, "batch", 3)
	model := marshal(t, g)
	for _, batch := range []int{1, 4} {
		xs := randFloats(r, batch*6)
		got, shapes := runModel(t, model, []string{"x"}, []ort.Value{tensor(t, xs, int64(batch), 6)}, []string{"s"})
		if !shapes[0].Equals(ort.NewShape(int64(batch), 3)) {
			t.Fatalf("shape %v", shapes[0])
		}
		var want []float64
		for i := range batch {
			for j := range 3 { // s[i,j] = x[i,0,j] + x[i,1,j]
				want = append(want, float64(xs[i*6+j])+float64(xs[i*6+3+j]))
			}
		}
		near(t, "s", got[0], want, 1e-6)
	}
}

// The element-wise and shape ops the SHGAT export needs, one graph, checked
// against Go.
func TestScorerOps(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const n, d = 3, 4
	w, bias := randFloats(r, d*d), randFloats(r, d)
	g := onnxgraph.New("ops")
	x := g.Input("x", onnxgraph.Float, "n", d)
	mask := g.Input("mask", onnxgraph.Int64, "n")
	// Gemm with transB: h = x·wᵀ + b (PyTorch Linear layout).
	h := g.Op("Gemm", []string{x, g.Initializer("w", []int64{d, d}, w), g.Initializer("b", []int64{d}, bias)}, onnxgraph.AttrInt("transB", 1))
	lr := g.Op("LeakyRelu", []string{h}, onnxgraph.AttrFloat("alpha", 0.2))
	el := g.Op("Elu", []string{h}, onnxgraph.AttrFloat("alpha", 1))
	sg := g.Op("Sigmoid", []string{h})
	th := g.Op("Tanh", []string{h})
	cat := g.Op("Concat", []string{lr, el, sg, th}, onnxgraph.AttrInt("axis", 1)) // [n, 4d]
	// norm = sqrt(sum(cat², axis 1) + 1), kept as [n,1]; cat / norm.
	sq := g.Op("ReduceSum", []string{g.Op("Mul", []string{cat, cat}), g.IntVector(1)}, onnxgraph.AttrInt("keepdims", 1))
	norm := g.Op("Sqrt", []string{g.Op("Add", []string{sq, g.FloatScalar(1)})})
	unit := g.Op("Div", []string{cat, norm})
	// At opset 17 ReduceSum takes axes as an input but ReduceMean still as an
	// attribute (an input from opset 18).
	mean := g.Op("ReduceMean", []string{unit}, onnxgraph.AttrInts("axes", 1), onnxgraph.AttrInt("keepdims", 0)) // [n]
	// Where(mask, mean, -1), the mask cast int64 → bool; Unsqueeze to [n,1].
	cond := g.Op("Cast", []string{mask}, onnxgraph.AttrInt("to", int64(onnxgraph.Bool)))
	sel := g.Op("Where", []string{cond, mean, g.FloatScalar(-1)})
	g.Node("Unsqueeze", []string{sel, g.IntVector(1)}, []string{"y"})
	g.Output("y", onnxgraph.Float, "n", 1)

	xs := randFloats(r, n*d)
	mv := []int64{1, 0, 1}
	got, shapes := runModel(t, marshal(t, g), []string{"x", "mask"},
		[]ort.Value{tensor(t, xs, n, d), tensor(t, mv, n)}, []string{"y"})
	if !shapes[0].Equals(ort.NewShape(n, 1)) {
		t.Fatalf("shape %v", shapes[0])
	}
	want := make([]float64, n)
	for i := range n {
		if mv[i] == 0 {
			want[i] = -1
			continue
		}
		var c []float64
		hs := make([]float64, d)
		for j := range d {
			z := float64(bias[j])
			for k := range d {
				z += float64(xs[i*d+k]) * float64(w[j*d+k])
			}
			hs[j] = z
		}
		for _, f := range []func(float64) float64{
			func(z float64) float64 { return max(z, 0.2*z) },
			func(z float64) float64 {
				if z < 0 {
					return math.Exp(z) - 1
				}
				return z
			},
			func(z float64) float64 { return 1 / (1 + math.Exp(-z)) },
			math.Tanh,
		} {
			for _, z := range hs {
				c = append(c, f(z))
			}
		}
		ss := 1.0
		for _, v := range c {
			ss += v * v
		}
		for _, v := range c {
			want[i] += v / math.Sqrt(ss) / float64(len(c))
		}
	}
	near(t, "y", got[0], want, 1e-5)
}

func TestValidationErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func(g *onnxgraph.Graph)
		opset int64
		want  error
	}{
		{"duplicate", func(g *onnxgraph.Graph) {
			x := g.Input("x", onnxgraph.Float, 2)
			g.Node("Relu", []string{x}, []string{"x"})
			g.Output("x", onnxgraph.Float, 2)
		}, 17, onnxgraph.ErrDuplicateName},
		{"undefined input", func(g *onnxgraph.Graph) {
			g.Input("x", onnxgraph.Float, 2)
			g.Node("Relu", []string{"nope"}, []string{"y"})
			g.Output("y", onnxgraph.Float, 2)
		}, 17, onnxgraph.ErrUndefinedInput},
		{"not topological", func(g *onnxgraph.Graph) {
			x := g.Input("x", onnxgraph.Float, 2)
			g.Node("Relu", []string{"a"}, []string{"y"})
			g.Node("Relu", []string{x}, []string{"a"})
			g.Output("y", onnxgraph.Float, 2)
		}, 17, onnxgraph.ErrUndefinedInput},
		{"unproduced output", func(g *onnxgraph.Graph) {
			x := g.Input("x", onnxgraph.Float, 2)
			g.Op("Relu", []string{x})
			g.Output("z", onnxgraph.Float, 2)
		}, 17, onnxgraph.ErrUnproducedOutput},
		{"bad dim", func(g *onnxgraph.Graph) {
			x := g.Input("x", onnxgraph.Float, 2.5)
			g.Output(x, onnxgraph.Float, 2)
		}, 17, onnxgraph.ErrBadShape},
		{"initializer size", func(g *onnxgraph.Graph) {
			w := g.Initializer("w", []int64{2, 2}, []float32{1, 2, 3})
			g.Output(w, onnxgraph.Float, 2, 2)
		}, 17, onnxgraph.ErrBadShape},
		{"no opset", func(g *onnxgraph.Graph) {
			x := g.Input("x", onnxgraph.Float, 2)
			g.Output(x, onnxgraph.Float, 2)
		}, 0, onnxgraph.ErrBadModel},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := onnxgraph.New(c.name)
			c.build(g)
			_, err := (&onnxgraph.Model{Graph: g, Opset: c.opset}).Marshal()
			var ge *onnxgraph.GraphError
			if !errors.Is(err, c.want) || !errors.As(err, &ge) {
				t.Fatalf("err = %v, want %v as *GraphError", err, c.want)
			}
		})
	}
}

func TestWriteFileDeterministic(t *testing.T) {
	build := func() *onnxgraph.Model {
		g := onnxgraph.New("id")
		x := g.Input("x", onnxgraph.Float, "n")
		g.Node("Identity", []string{x}, []string{"y"})
		g.Output("y", onnxgraph.Float, "n")
		return &onnxgraph.Model{Graph: g, Opset: 17, Metadata: map[string]string{"b": "2", "a": "1"}}
	}
	path := filepath.Join(t.TempDir(), "m.onnx")
	if err := build().WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := build().Marshal()
	if string(got) != string(again) {
		t.Fatal("two marshals of the same model differ")
	}
	out, _ := runModel(t, got, []string{"x"}, []ort.Value{tensor(t, []float32{1, -2}, 2)}, []string{"y"})
	near(t, "y", out[0], []float64{1, -2}, 0)
}
