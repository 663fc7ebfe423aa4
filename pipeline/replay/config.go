package replay

// MaxCapacity bounds Config.Capacity (the sum tree takes 16 bytes per slot).
const MaxCapacity = 1 << 26

// MaxTDError bounds the |δ| UpdatePriorities accepts. A larger error means
// training has diverged; it would also let the total priority overflow.
const MaxTDError = 1e100

// Config parameterises a Buffer. Start from DefaultConfig: the zero value is
// not valid (Capacity and Epsilon must be positive).
type Config struct {
	// Capacity is the number of items kept; when full, Add overwrites the oldest.
	Capacity int
	// Alpha is the prioritisation exponent α in [0, 1]; 0 samples uniformly.
	Alpha float64
	// Epsilon is ε in (0, 1], added to |δ| so that no item becomes unsampleable.
	Epsilon float64
	// Beta is β in [0, 1] for the first Sample call.
	Beta float64
	// BetaStep in [0, 1] is added to β after each Sample call; β stops at 1.
	// Unused when BetaCalls is set.
	BetaStep float64
	// BetaCalls, when positive, anneals β linearly from Beta to 1 over this
	// many Sample calls instead: call k uses Beta + (1−Beta)·k/(BetaCalls−1)
	// and every call from BetaCalls−1 on uses exactly 1. A caller that knows
	// its horizon (a trainer: the steps of its run) sets it so that the last
	// call is fully bias-corrected, which no fixed BetaStep guarantees.
	BetaCalls int
}

// DefaultConfig returns the design's settings: capacity 100,000, α 0.6,
// ε 0.01, β 0.4 annealed to 1 by 0.001 per Sample call.
func DefaultConfig() Config {
	return Config{Capacity: 100_000, Alpha: 0.6, Epsilon: 0.01, Beta: 0.4, BetaStep: 0.001}
}

// Validate reports the first field out of range as a *ConfigError.
func (c Config) Validate() error {
	switch {
	case c.Capacity <= 0 || c.Capacity > MaxCapacity:
		return &ConfigError{Field: "Capacity", Value: float64(c.Capacity), Reason: "must be in [1, 2^26]"}
	case !inUnit(c.Alpha):
		return &ConfigError{Field: "Alpha", Value: c.Alpha, Reason: "must be in [0, 1]"}
	case !(c.Epsilon > 0 && c.Epsilon <= 1):
		return &ConfigError{Field: "Epsilon", Value: c.Epsilon, Reason: "must be in (0, 1]"}
	case !inUnit(c.Beta):
		return &ConfigError{Field: "Beta", Value: c.Beta, Reason: "must be in [0, 1]"}
	case !inUnit(c.BetaStep):
		return &ConfigError{Field: "BetaStep", Value: c.BetaStep, Reason: "must be in [0, 1]"}
	case c.BetaCalls < 0:
		return &ConfigError{Field: "BetaCalls", Value: float64(c.BetaCalls), Reason: "must be ≥ 0 (0: anneal by BetaStep)"}
	}
	return nil
}

// inUnit is false for NaN too.
func inUnit(x float64) bool { return x >= 0 && x <= 1 }

// betaAt is β of the Sample call with 0-based number k. Computing it from k
// rather than accumulating keeps it exact across checkpoints.
func (c Config) betaAt(k uint64) float64 {
	if c.BetaCalls > 0 {
		last := uint64(c.BetaCalls - 1)
		if k >= last {
			return 1 // exactly, not Beta + (1−Beta)·1 rounded
		}
		return c.Beta + (1-c.Beta)*float64(k)/float64(last)
	}
	return min(1, c.Beta+float64(k)*c.BetaStep)
}
