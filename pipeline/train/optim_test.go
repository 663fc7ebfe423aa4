package train

import (
	"math"
	"testing"
)

// TestAdamReference checks two Adam steps against values computed by hand
// from the update rule (the same as torch.optim.Adam with default betas).
func TestAdamReference(t *testing.T) {
	p := []float64{1, -2}
	a := NewAdam(2, 0.1)
	a.Update(p, []float64{0.5, -1}, 0.1)
	// Step 1: m̂ = g, v̂ = g², so each parameter moves by lr·sign(g) (up to eps).
	want := []float64{0.9, -1.9}
	for i := range p {
		if math.Abs(p[i]-want[i]) > 1e-7 {
			t.Fatalf("step 1: p[%d] = %v, want %v", i, p[i], want[i])
		}
	}
	a.Update(p, []float64{0.25, 1}, 0.1)
	// Step 2 for p[0]: m = 0.9·0.05 + 0.1·0.25 = 0.07, v = 0.999·0.00025 + 0.001·0.0625 = 0.00031225;
	// m̂ = 0.07/0.19, v̂ = 0.00031225/0.001999.
	m0, v0 := 0.07/0.19, 0.00031225/(1-0.999*0.999)
	p1 := 1 - 0.1*0.5/(0.5+1e-8) // step 1 exactly, eps included
	w0 := p1 - 0.1*m0/(math.Sqrt(v0)+1e-8)
	if math.Abs(p[0]-w0) > 1e-12 {
		t.Fatalf("step 2: p[0] = %.15g, want %.15g", p[0], w0)
	}
}

func TestCosineLR(t *testing.T) {
	if got := CosineLR(1e-3, 1e-6, 1000, 0); got != 1e-3 {
		t.Errorf("t=0: %v", got)
	}
	if got := CosineLR(1e-3, 1e-6, 1000, 500); math.Abs(got-(1e-6+(1e-3-1e-6)/2)) > 1e-15 {
		t.Errorf("t=T/2: %v", got)
	}
	if got := CosineLR(1e-3, 1e-6, 1000, 1000); got != 1e-6 {
		t.Errorf("t=T: %v", got)
	}
	if got := CosineLR(1e-3, 1e-6, 1000, 5000); got != 1e-6 {
		t.Errorf("t>T: %v", got)
	}
}

func TestClipNorm(t *testing.T) {
	g := []float64{3, 4}
	if n := ClipNorm(g, 1); n != 5 || math.Abs(g[0]-0.6) > 1e-15 || math.Abs(g[1]-0.8) > 1e-15 {
		t.Fatalf("norm %v, g %v", n, g)
	}
	g = []float64{0.3, 0.4}
	ClipNorm(g, 1)
	if g[0] != 0.3 {
		t.Fatal("clipped below the threshold")
	}
}
