package stats

import (
	"errors"
	"fmt"
)

// ErrInput is matched (errors.Is) by every error this package returns for
// bad input, so callers can tell "your numbers are unusable" from anything
// else with one check.
var ErrInput = errors.New("stats: bad input")

// InvalidArgError says an argument is outside its domain.
type InvalidArgError struct {
	Arg   string  // the argument's name, e.g. "alpha"
	Value float64 // what was passed
	Want  string  // its domain, e.g. "in (0, 1)"
}

func (e *InvalidArgError) Error() string {
	return fmt.Sprintf("stats: %s = %v, want %s", e.Arg, e.Value, e.Want)
}

func (e *InvalidArgError) Unwrap() error { return ErrInput }

// TooFewSamplesError says a sample is too small for the statistic.
type TooFewSamplesError struct {
	Arg       string // which sample
	Got, Want int
}

func (e *TooFewSamplesError) Error() string {
	return fmt.Sprintf("stats: %s has %d observations, need at least %d", e.Arg, e.Got, e.Want)
}

func (e *TooFewSamplesError) Unwrap() error { return ErrInput }

// ZeroVarianceError says the test statistic is undefined because its
// standard error is zero (e.g. every observation in both arms is equal).
type ZeroVarianceError struct {
	What string
}

func (e *ZeroVarianceError) Error() string {
	return fmt.Sprintf("stats: zero variance: %s", e.What)
}

func (e *ZeroVarianceError) Unwrap() error { return ErrInput }

func checkAlpha(alpha float64) error {
	if !(alpha > 0 && alpha < 1) { // also rejects NaN
		return &InvalidArgError{Arg: "alpha", Value: alpha, Want: "in (0, 1)"}
	}
	return nil
}

func checkPower(power float64) error {
	if !(power > 0 && power < 1) {
		return &InvalidArgError{Arg: "power", Value: power, Want: "in (0, 1)"}
	}
	return nil
}

func checkRate(arg string, p float64) error {
	if !(p >= 0 && p <= 1) {
		return &InvalidArgError{Arg: arg, Value: p, Want: "in [0, 1]"}
	}
	return nil
}
