package valuenet

import (
	"errors"
	"fmt"
)

// What is wrong with an input; an *InputError wraps one of these, so
// errors.Is(err, ErrWidth) and friends work.
var (
	ErrWidth     = errors.New("wrong width")
	ErrNonFinite = errors.New("not finite")
	ErrEmpty     = errors.New("empty")
	ErrLength    = errors.New("mismatched lengths")
)

// InputError names the argument that is wrong and how.
type InputError struct {
	Field  string // e.g. "x", "xs[3]", "rewards"
	Err    error  // ErrWidth, ErrNonFinite, ErrEmpty or ErrLength
	Detail string
}

func (e *InputError) Error() string {
	return "valuenet: " + e.Field + ": " + e.Err.Error() + ": " + e.Detail
}

func (e *InputError) Unwrap() error { return e.Err }

// DivergedError reports that training produced a value or TD error that is
// not finite (step size too large); the weights are left as they were
// before the trajectory.
type DivergedError struct {
	Step  int
	Value float64 // the offending V(s) or δ
}

func (e *DivergedError) Error() string {
	return fmt.Sprintf("valuenet: diverged at step %d (%v); step size too large?", e.Step, e.Value)
}

// FormatError says why bytes are not a usable checkpoint.
type FormatError struct {
	What, Reason string
}

func (e *FormatError) Error() string { return "valuenet: " + e.What + ": " + e.Reason }
