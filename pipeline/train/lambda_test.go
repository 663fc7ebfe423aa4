package train

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/capflow/capflow/models/valuenet"
)

// TestLambdaTargetsHandComputed: the TD targets of a 3-step plan are its
// λ-returns, and a negative of the same session is terminal.
//
// Samples (one session): 0 → 2 → 3 is the plan (rewards 0, 0, 1: the reward
// arrives when the plan completes), 1 is a sampled negative (reward 0, no
// next). The value net's estimates are V(s0)=0.3, V(s1)=0.7, V(s2)=0.5,
// V(s3)=0.8; γ = 0.9, λ = 0.5.
//
//	G(3) = r3                                    = 1
//	G(2) = r2 + γ·((1−λ)·V(s3) + λ·G(3))
//	     = 0 + 0.9·(0.5·0.8 + 0.5·1)   = 0.9·0.9   = 0.81
//	G(0) = r0 + γ·((1−λ)·V(s2) + λ·G(2))
//	     = 0 + 0.9·(0.5·0.5 + 0.5·0.81) = 0.9·0.655 = 0.5895
//	G(1) = r1                                    = 0
//
// One-step TD targets would be 0.45 and 0.72 for samples 0 and 2, and the
// old chaining of a session's experiences would have given the negative
// 0 + 0.9·V(next candidate).
func TestLambdaTargetsHandComputed(t *testing.T) {
	samples := []Sample{
		{Reward: 0, Next: 2, Session: "q"},
		{Reward: 0, Next: -1, Session: "q"},
		{Reward: 0, Next: 3, Session: "q"},
		{Reward: 1, Next: -1, Session: "q"},
	}
	v := []float64{0.3, 0.7, 0.5, 0.8}
	var asked [][]int
	values := func(ks []int) ([]float64, error) {
		asked = append(asked, slices.Clone(ks))
		out := make([]float64, len(ks))
		for j, k := range ks {
			out[j] = v[k]
		}
		return out, nil
	}
	net := func(lambda float64) *valuenet.Net {
		n, err := valuenet.New(valuenet.Config{InputDim: 1, Gamma: 0.9, Lambda: lambda, LR: 0.1})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	check := func(name string, got, want []float64) {
		t.Helper()
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-12 {
				t.Errorf("%s: targets %v, want %v", name, got, want)
				return
			}
		}
	}

	got, err := lambdaTargets(net(0.5), samples, []int{0, 1, 2, 3}, values)
	if err != nil {
		t.Fatal(err)
	}
	check("λ=0.5", got, []float64{0.5895, 0, 0.81, 1})
	if len(asked) != 1 || !slices.Equal(asked[0], []int{2, 3}) {
		t.Errorf("values asked for %v, want one call for [2 3]: the plan's later states only, never the negative", asked)
	}

	// The ends of the family: λ = 0 is one-step TD, λ = 1 the discounted
	// return of the plan (γ²·1 from its first step).
	got, _ = lambdaTargets(net(0), samples, []int{0, 2}, values)
	check("λ=0", got, []float64{0.45, 0.72})
	got, _ = lambdaTargets(net(1), samples, []int{0, 2}, values)
	check("λ=1", got, []float64{0.81, 0.9})

	// A batch of terminal samples needs no value at all.
	asked = nil
	got, _ = lambdaTargets(net(0.5), samples, []int{3, 1}, values)
	check("terminal", got, []float64{1, 0})
	if asked != nil {
		t.Errorf("values asked for %v for terminal samples", asked)
	}

	// A Next loop is malformed data, not an endless walk.
	loop := []Sample{{Next: 1}, {Next: 0}}
	var de *DataError
	if _, err := lambdaTargets(net(0.5), loop, []int{0}, values); !errors.As(err, &de) {
		t.Errorf("looping trajectory: %v, want a *DataError", err)
	}
}
