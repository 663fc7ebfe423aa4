package valuenet

import (
	"fmt"
	"math"
)

// Config sizes the net and its TD(λ) learning. Every field is used as given
// (γ = 0 and λ = 0 are meaningful), so start from DefaultConfig.
type Config struct {
	InputDim int   `json:"input_dim"`
	Hidden   []int `json:"hidden"` // widths of the ReLU layers; empty: a linear function

	Gamma  float64 `json:"gamma"`  // discount γ ∈ [0,1]
	Lambda float64 `json:"lambda"` // trace decay λ ∈ [0,1]; 0 is one-step TD(0), 1 Monte Carlo-like
	LR     float64 `json:"lr"`     // step size α > 0

	Seed uint64 `json:"seed"`
	// ZeroOutput starts the output layer at zero: V ≡ 0 before training
	// (the hidden layers still get He init, so they learn once the output
	// weights move).
	ZeroOutput bool `json:"zero_output"`
	// NoBias drops every bias. With Hidden empty and one-hot inputs the
	// net is then a table, one weight per state.
	NoBias bool `json:"no_bias"`
}

// DefaultConfig is the design's net (section 2.3): hidden [256, 128, 64],
// γ 0.99, λ 0.95, α 0.001.
func DefaultConfig(inputDim int) Config {
	return Config{InputDim: inputDim, Hidden: []int{256, 128, 64}, Gamma: 0.99, Lambda: 0.95, LR: 0.001}
}

// ConfigError names the configuration field that is wrong.
type ConfigError struct {
	Field, Reason string
}

func (e *ConfigError) Error() string { return "valuenet: config " + e.Field + ": " + e.Reason }

// Check validates c.
func (c Config) Check() error {
	bad := func(f, format string, a ...any) error {
		return &ConfigError{Field: f, Reason: fmt.Sprintf(format, a...)}
	}
	switch {
	case c.InputDim <= 0:
		return bad("input_dim", "must be positive, got %d", c.InputDim)
	case !(c.Gamma >= 0 && c.Gamma <= 1):
		return bad("gamma", "must be in [0,1], got %v", c.Gamma)
	case !(c.Lambda >= 0 && c.Lambda <= 1):
		return bad("lambda", "must be in [0,1], got %v", c.Lambda)
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return bad("lr", "must be positive and finite, got %v", c.LR)
	}
	for i, h := range c.Hidden {
		if h <= 0 {
			return bad(fmt.Sprintf("hidden[%d]", i), "must be positive, got %d", h)
		}
	}
	if _, ok := c.numParams(); !ok {
		return bad("hidden", "more than %d parameters", maxParams)
	}
	return nil
}

// maxParams bounds the net (16 GiB of float64) so a corrupt or mistyped
// config fails as an error rather than an allocation panic.
const maxParams = 1 << 31

// numParams counts the weights of a net with positive sizes; false when
// there are more than maxParams.
func (c Config) numParams() (int, bool) {
	sizes := append(append([]int{c.InputDim}, c.Hidden...), 1)
	total := 0
	for i := range len(sizes) - 1 {
		in, out := sizes[i], sizes[i+1]
		if in > maxParams || out > maxParams || in*out > maxParams {
			return 0, false
		}
		total += in * out
		if !c.NoBias {
			total += out
		}
		if total > maxParams {
			return 0, false
		}
	}
	return total, true
}
