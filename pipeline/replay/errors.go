package replay

import (
	"errors"
	"fmt"
)

// ErrNilRNG is returned by Sample when it is given no random source.
var ErrNilRNG = errors.New("replay: nil *rand.Rand")

// ConfigError is a Config field out of range.
type ConfigError struct {
	Field  string
	Value  float64
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("replay: config %s = %v: %s", e.Field, e.Value, e.Reason)
}

// BatchSizeError is a Sample batch size that is not in [1, Len].
type BatchSizeError struct {
	N   int // batch size asked for
	Len int // items held
}

func (e *BatchSizeError) Error() string {
	return fmt.Sprintf("replay: batch size %d not in [1, %d] (items held)", e.N, e.Len)
}

// LengthError is an UpdatePriorities call whose slices differ in length.
type LengthError struct {
	IDs, TDErrors int
}

func (e *LengthError) Error() string {
	return fmt.Sprintf("replay: %d ids but %d TD errors", e.IDs, e.TDErrors)
}

// PriorityError is a TD error UpdatePriorities cannot turn into a priority:
// NaN, negative, infinite or above MaxTDError.
type PriorityError struct {
	Pos     int // position in the call's slices
	TDError float64
	Reason  string
}

func (e *PriorityError) Error() string {
	return fmt.Sprintf("replay: TD error %v at position %d: %s", e.TDError, e.Pos, e.Reason)
}

// IDError is an ID that was never issued by this buffer.
type IDError struct {
	Pos   int // position in the call's slices
	ID    ID
	Added uint64 // IDs issued so far: valid IDs are below it
}

func (e *IDError) Error() string {
	return fmt.Sprintf("replay: id %d at position %d was never issued (%d items added)", e.ID, e.Pos, e.Added)
}

// StateError is a State that Restore cannot resume from.
type StateError struct {
	Field  string
	Reason string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("replay: state %s: %s", e.Field, e.Reason)
}
