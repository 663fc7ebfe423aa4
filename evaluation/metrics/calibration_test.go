package metrics

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSoftmaxByHand(t *testing.T) {
	p := Softmax([]float64{0, math.Log(3)}, 1)
	assert.InDelta(t, 0.25, p[0], 1e-15)
	assert.InDelta(t, 0.75, p[1], 1e-15)
	// T = 2 halves the logits: weights 1 and √3.
	p = Softmax([]float64{0, math.Log(3)}, 2)
	assert.InDelta(t, 1/(1+math.Sqrt(3)), p[0], 1e-15)
	// Large scores do not overflow.
	p = Softmax([]float64{1000, 1000, 1000 - math.Log(2)}, 1)
	assert.InDelta(t, 0.4, p[0], 1e-12) // 1000 − ln 2 is rounded to 1e-13
	assert.InDelta(t, 0.2, p[2], 1e-12)
}

func TestECEAndBrierByHand(t *testing.T) {
	// Two bins: (0, .5] holds .1 and .2 (mean p .15, mean label .5), (.5, 1]
	// holds .9 and .95 (mean p .925, mean label 1): .5·.35 + .5·.075.
	probs := []float64{0.1, 0.2, 0.9, 0.95}
	labels := []bool{false, true, true, true}
	assert.InDelta(t, 0.2125, ECE(probs, labels, 2), 1e-15)
	assert.InDelta(t, (0.01+0.64+0.01+0.0025)/4, Brier(probs, labels), 1e-15)

	// Bins are right-closed as in sklearn: .5 falls in the first of two bins
	// (|0 − .5|·.5 + |1 − .6|·.5); left-closed bins would give |.5 − .55| = .05.
	assert.InDelta(t, 0.45, ECE([]float64{0.5, 0.6}, []bool{false, true}, 2), 1e-15)
	// 0 goes to the first bin, 1 to the last.
	assert.InDelta(t, 0, ECE([]float64{0, 1}, []bool{false, true}, 15), 1e-15)
	// One bin: |mean label − mean p|.
	assert.InDelta(t, math.Abs(0.75-(0.1+0.2+0.9+0.95)/4), ECE(probs, labels, 1), 1e-15)
	// bins < 1 means the default 15; a perfectly calibrated bin adds 0.
	assert.InDelta(t, ECE(probs, labels, DefaultBins), ECE(probs, labels, 0), 0)
	assert.Zero(t, ECE(nil, nil, 15))
	assert.Zero(t, Brier(nil, nil))
	assert.True(t, math.IsNaN(ECE(probs, labels[:2], 15)) && math.IsNaN(Brier(probs[:1], labels)), "length mismatch")
}

// threeQueries: two queries rank their relevant candidate first, one last,
// each over scores {scale, 0}: the NLL's derivative in β is σ(scale·β) − 2/3,
// zero at β = ln 2/scale.
func threeQueries(scale float64) []Ranking {
	return []Ranking{
		{QueryID: "q1", Candidates: []string{"a", "b"}, Scores: []float64{scale, 0}, Relevant: map[string]float64{"a": 1}},
		{QueryID: "q2", Candidates: []string{"a", "b"}, Scores: []float64{scale, 0}, Relevant: map[string]float64{"a": 2}},
		{QueryID: "q3", Candidates: []string{"a", "b"}, Scores: []float64{scale, 0}, Relevant: map[string]float64{"b": 1}},
	}
}

func TestFitTemperatureByHand(t *testing.T) {
	for _, scale := range []float64{1, 5, 0.001, 300} {
		fit, err := FitTemperature(threeQueries(scale))
		require.NoError(t, err)
		want := scale / math.Ln2
		assert.InEpsilon(t, want, fit.Temperature, 1e-13, "scale %v", scale)
		// p(top) = 2/3: NLL = (2·ln 1.5 + ln 3)/3.
		assert.InDelta(t, (2*math.Log(1.5)+math.Log(3))/3, fit.NLL, 1e-14, "scale %v", scale)
		assert.Equal(t, 3, fit.Queries)
		assert.Less(t, fit.Iterations, 60)
	}

	// A query whose relevant item is not a candidate is left out of the fit.
	qs := append(threeQueries(1), Ranking{QueryID: "q4", Candidates: []string{"a", "b"}, Scores: []float64{9, 0}, Relevant: map[string]float64{"z": 1}})
	fit, err := FitTemperature(qs)
	require.NoError(t, err)
	assert.InEpsilon(t, 1/math.Ln2, fit.Temperature, 1e-13)
	assert.Equal(t, 3, fit.Queries)

	// Multi-relevant: scores {1, 0, 0} with relevant {a, b} and {a}: the mean
	// relevant score is ½ and 1, so p(a) = σ-like term e^β/(e^β+2) must be ¾:
	// e^β = 6, T = 1/ln 6.
	fit, err = FitTemperature([]Ranking{
		{QueryID: "m1", Candidates: []string{"a", "b", "c"}, Scores: []float64{1, 0, 0}, Relevant: map[string]float64{"a": 1, "b": 1}},
		{QueryID: "m2", Candidates: []string{"a", "b", "c"}, Scores: []float64{1, 0, 0}, Relevant: map[string]float64{"a": 1}},
	})
	require.NoError(t, err)
	assert.InEpsilon(t, 1/math.Log(6), fit.Temperature, 1e-13)
}

func TestFitTemperatureNoOptimum(t *testing.T) {
	perfect := threeQueries(1)[:2] // relevant always first: NLL falls as T → 0
	_, err := FitTemperature(perfect)
	assert.ErrorIs(t, err, ErrNoOptimum)
	assert.ErrorContains(t, err, "perfectly")

	wrong := threeQueries(1)[2:] // relevant always last: T → ∞
	_, err = FitTemperature(wrong)
	assert.ErrorIs(t, err, ErrNoOptimum)
	assert.ErrorContains(t, err, "do not favour")

	flat := []Ranking{{QueryID: "q", Candidates: []string{"a", "b"}, Scores: []float64{1, 1}, Relevant: map[string]float64{"a": 1}}}
	_, err = FitTemperature(flat)
	assert.ErrorIs(t, err, ErrNoOptimum)

	_, err = FitTemperature(nil)
	assert.ErrorIs(t, err, ErrEmpty)

	_, err = FitTemperature([]Ranking{{QueryID: "bad", Candidates: []string{"a"}, Scores: []float64{math.NaN()}, Relevant: map[string]float64{"a": 1}}})
	var ie *InputError
	require.True(t, errors.As(err, &ie))
	assert.Equal(t, "bad", ie.QueryID)
	assert.ErrorIs(t, err, ErrNotFinite)
}
