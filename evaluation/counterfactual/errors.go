package counterfactual

import "errors"

// What is wrong with an input; an *InputError wraps one of these, so
// errors.Is(err, ErrRange) and friends work.
var (
	ErrEmpty     = errors.New("empty")
	ErrLength    = errors.New("mismatched lengths")
	ErrRange     = errors.New("out of range")
	ErrNonFinite = errors.New("not finite")
	// ErrNoSupport: the target policy gives zero probability to every
	// logged action, so a self-normalised estimate has nothing to average.
	ErrNoSupport = errors.New("no logged action has target probability")
)

// InputError names the argument that is wrong and how.
type InputError struct {
	Field  string // e.g. "rounds[3].rank", "mu[7]"
	Err    error  // one of the Err* values above
	Detail string
}

func (e *InputError) Error() string {
	s := "counterfactual: " + e.Field + ": " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *InputError) Unwrap() error { return e.Err }

// ConfigError names the configuration field that is wrong.
type ConfigError struct {
	Field, Reason string
}

func (e *ConfigError) Error() string { return "counterfactual: config " + e.Field + ": " + e.Reason }
