package replay

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// ID names one added item for the buffer's lifetime: its sequence number,
// 0 for the first Add. Its slot is ID mod Capacity.
type ID uint64

// Batch is the result of one Sample call; entry i of every slice describes
// the i-th draw. An item can be drawn more than once.
type Batch[T any] struct {
	Items []T
	// IDs identify the drawn items for UpdatePriorities.
	IDs []ID
	// Weights are the importance-sampling weights (N·P(i))^-β normalised
	// by the largest in the batch, so the largest is 1.
	Weights []float64
	// Priorities are the drawn items' priorities (|δ|+ε)^α at draw time.
	Priorities []float64
	// Beta is the β the weights were computed with.
	Beta float64
}

// Buffer is a prioritized replay buffer of T values. Create it with New or
// Restore. See the package documentation for the concurrency guarantee.
type Buffer[T any] struct {
	cfg Config

	mu          sync.RWMutex // Add, UpdatePriorities, Snapshot: write; Sample and readers: read
	items       []T
	tree        sumTree
	added       uint64  // IDs issued; the next Add writes slot added mod Capacity
	maxPriority float64 // largest priority assigned so far, 1 at start

	// calls counts successful Sample calls; it drives β. Atomic because
	// concurrent samplers hold only the read lock.
	calls atomic.Uint64
}

// New returns an empty buffer, or a *ConfigError.
func New[T any](cfg Config) (*Buffer[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Buffer[T]{
		cfg:         cfg,
		items:       make([]T, cfg.Capacity),
		tree:        newSumTree(cfg.Capacity),
		maxPriority: 1,
	}, nil
}

// Config returns the buffer's configuration.
func (b *Buffer[T]) Config() Config { return b.cfg }

// Len returns the number of items held: min(items added, Capacity).
func (b *Buffer[T]) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.size()
}

// Beta returns the β the next Sample call will use.
func (b *Buffer[T]) Beta() float64 { return b.cfg.betaAt(b.calls.Load()) }

// MaxPriority returns the priority the next Add gives its item: the largest
// priority assigned so far (1 before any). It never decreases, even when
// the item that set it is updated or overwritten, as in the paper.
func (b *Buffer[T]) MaxPriority() float64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.maxPriority
}

func (b *Buffer[T]) size() int { return int(min(b.added, uint64(b.cfg.Capacity))) }

// Add stores item with the current max priority, overwriting the oldest
// item when the buffer is full, and returns the item's ID.
func (b *Buffer[T]) Add(item T) ID {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.added
	slot := int(id % uint64(b.cfg.Capacity))
	b.items[slot] = item
	b.tree.set(slot, b.maxPriority)
	b.added++
	return ID(id)
}

// Sample draws n items (1 ≤ n ≤ Len) in proportion to their priorities,
// stratified, using rng only, and advances β by one step. A bad n is a
// *BatchSizeError and a nil rng ErrNilRNG; neither advances β.
func (b *Buffer[T]) Sample(rng *rand.Rand, n int) (Batch[T], error) {
	if rng == nil {
		return Batch[T]{}, ErrNilRNG
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	size := b.size()
	if n <= 0 || n > size {
		return Batch[T]{}, &BatchSizeError{N: n, Len: size}
	}
	beta := b.cfg.betaAt(b.calls.Add(1) - 1)
	batch := Batch[T]{
		Items:      make([]T, n),
		IDs:        make([]ID, n),
		Weights:    make([]float64, n),
		Priorities: make([]float64, n),
		Beta:       beta,
	}
	// Weights holds the masses to find until the weights are computed.
	segment := b.tree.total() / float64(n)
	for i := range n {
		batch.Weights[i] = (float64(i) + rng.Float64()) * segment
	}
	b.tree.findAll(batch.Weights, batch.IDs)
	minP := math.Inf(1)
	for i, slot := range batch.IDs {
		p := b.tree.get(int(slot))
		batch.Items[i] = b.items[slot]
		batch.IDs[i] = b.idAt(int(slot))
		batch.Priorities[i] = p
		minP = min(minP, p)
	}
	// (N·p_i/Σ)^-β / max_j (N·p_j/Σ)^-β = (p_min/p_i)^β: N and Σ cancel and
	// the batch's largest weight is exactly 1.
	for i, p := range batch.Priorities {
		batch.Weights[i] = math.Pow(minP/p, beta)
	}
	return batch, nil
}

// idAt is the ID of the item in a held slot: the largest ID below added
// that maps to slot.
func (b *Buffer[T]) idAt(slot int) ID {
	c := uint64(b.cfg.Capacity)
	s := uint64(slot)
	return ID(s + (b.added-1-s)/c*c)
}

// UpdatePriorities sets the priority of each item ids[i] to
// (tdErrors[i]+ε)^α, where tdErrors[i] is the magnitude |δ| of its TD error.
// IDs of items overwritten since they were sampled are skipped; it returns
// the number of priorities set. A later duplicate ID wins. Bad input —
// slices of different lengths (*LengthError), a TD error that is NaN,
// negative, infinite or above MaxTDError (*PriorityError), an ID never
// issued (*IDError) — changes nothing.
func (b *Buffer[T]) UpdatePriorities(ids []ID, tdErrors []float64) (int, error) {
	if len(ids) != len(tdErrors) {
		return 0, &LengthError{IDs: len(ids), TDErrors: len(tdErrors)}
	}
	for i, d := range tdErrors {
		switch {
		case math.IsNaN(d):
			return 0, &PriorityError{Pos: i, TDError: d, Reason: "NaN"}
		case d < 0:
			return 0, &PriorityError{Pos: i, TDError: d, Reason: "negative (pass |δ|)"}
		case d > MaxTDError:
			return 0, &PriorityError{Pos: i, TDError: d, Reason: "above MaxTDError (training diverged?)"}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, id := range ids {
		if uint64(id) >= b.added {
			return 0, &IDError{Pos: i, ID: id, Added: b.added}
		}
	}
	c := uint64(b.cfg.Capacity)
	applied := 0
	for i, id := range ids {
		if b.added-uint64(id) > c {
			continue // overwritten since it was sampled
		}
		p := math.Pow(tdErrors[i]+b.cfg.Epsilon, b.cfg.Alpha)
		b.tree.set(int(uint64(id)%c), p)
		b.maxPriority = max(b.maxPriority, p)
		applied++
	}
	return applied, nil
}
