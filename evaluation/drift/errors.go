package drift

import (
	"errors"
	"fmt"
)

// ErrInput is matched (errors.Is) by every error this package returns for
// bad input.
var ErrInput = errors.New("drift: bad input")

// InputError names the argument that is wrong and how.
type InputError struct {
	Arg     string // e.g. "reference", "config.Alpha"
	Problem string // e.g. "is empty"
}

func (e *InputError) Error() string { return fmt.Sprintf("drift: %s %s", e.Arg, e.Problem) }

func (e *InputError) Unwrap() error { return ErrInput }

func checkFinite(arg string, x []float64) error {
	for i, v := range x {
		if v-v != 0 { // NaN or ±Inf
			return &InputError{Arg: arg, Problem: fmt.Sprintf("has a non-finite value %v at %d", v, i)}
		}
	}
	return nil
}
