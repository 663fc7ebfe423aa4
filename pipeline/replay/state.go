package replay

import (
	"fmt"
	"math"
)

// State is the full state of a Buffer, for checkpoints. It is gob- and
// JSON-encodable when T is (Go's JSON round-trips float64 exactly).
type State[T any] struct {
	Config Config
	// Items holds the items in slot order; len = min(Added, Capacity).
	Items []T
	// Priorities holds each slot's priority (|δ|+ε)^α, like Items.
	Priorities []float64
	// Added is the number of IDs issued; the next Add writes slot
	// Added mod Capacity.
	Added uint64
	// MaxPriority is the priority the next Add assigns.
	MaxPriority float64
	// SampleCalls counts successful Sample calls; β follows from it (Config).
	SampleCalls uint64
}

// Snapshot returns a copy of the buffer's state. It waits for in-flight
// Sample calls, so the state is consistent with SampleCalls.
func (b *Buffer[T]) Snapshot() State[T] {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.size()
	s := State[T]{
		Config:      b.cfg,
		Items:       make([]T, n),
		Priorities:  make([]float64, n),
		Added:       b.added,
		MaxPriority: b.maxPriority,
		SampleCalls: b.calls.Load(),
	}
	copy(s.Items, b.items[:n])
	copy(s.Priorities, b.tree.leaves())
	return s
}

// Restore returns a buffer in state s, which continues exactly as the
// snapshotted buffer would have. An inconsistent state is a *StateError or
// *ConfigError. The buffer keeps its own copies of s's slices.
func Restore[T any](s State[T]) (*Buffer[T], error) {
	b, err := New[T](s.Config)
	if err != nil {
		return nil, err
	}
	n := int(min(s.Added, uint64(s.Config.Capacity)))
	switch {
	case len(s.Items) != n:
		return nil, &StateError{Field: "Items", Reason: fmt.Sprintf("has %d items, want min(Added, Capacity) = %d", len(s.Items), n)}
	case len(s.Priorities) != n:
		return nil, &StateError{Field: "Priorities", Reason: fmt.Sprintf("has %d priorities, want %d", len(s.Priorities), n)}
	case !(s.MaxPriority >= 1) || math.IsInf(s.MaxPriority, 0):
		return nil, &StateError{Field: "MaxPriority", Reason: fmt.Sprintf("%v: must be finite and ≥ 1", s.MaxPriority)}
	}
	for i, p := range s.Priorities {
		if !(p > 0) || p > s.MaxPriority {
			return nil, &StateError{Field: "Priorities", Reason: fmt.Sprintf("slot %d: %v not in (0, MaxPriority]", i, p)}
		}
	}
	copy(b.items, s.Items)
	copy(b.tree.leaves(), s.Priorities)
	b.tree.rebuild()
	b.added = s.Added
	b.maxPriority = s.MaxPriority
	b.calls.Store(s.SampleCalls)
	return b, nil
}
