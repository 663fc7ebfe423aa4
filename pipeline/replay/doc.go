// Package replay is a prioritized replay buffer (design 2.2): proportional
// Prioritized Experience Replay (Schaul et al., 2016) over a sum tree,
// generic over the stored item type.
//
// An item's priority is p = (|δ|+ε)^α; it is drawn with probability
// P(i) = p_i / Σ_k p_k. A new item gets the largest priority assigned so far
// (1 before any update), so it is replayed at least once soon. A batch of n
// is drawn stratified: the total mass is cut into n equal segments and one
// uniform draw is taken in each. Each drawn item carries the importance-
// sampling weight w_i = (N·P(i))^-β / max_j w_j (N = items held, max over
// the batch), and β grows from Config.Beta by Config.BetaStep per Sample
// call up to 1, or, with Config.BetaCalls, linearly to exactly 1 at call
// BetaCalls−1.
//
//	buf, err := replay.New[Transition](replay.DefaultConfig())
//	buf.Add(t)                                   // returns the item's ID
//	rng := rand.New(rand.NewPCG(seed, 0))        // math/rand/v2; one per sampler
//	b, err := buf.Sample(rng, 32)                // b.Items, b.IDs, b.Weights, b.Priorities, b.Beta
//	// ... train on b.Items weighted by b.Weights, get |δ| per item ...
//	_, err = buf.UpdatePriorities(b.IDs, absTD)
//
// # Stale IDs
//
// A full buffer overwrites its oldest item (a ring). Sample therefore returns
// IDs, not slots: an ID is the item's sequence number (0 for the first Add),
// so it names one item for ever and its slot is ID mod Capacity. When the
// item has been overwritten between Sample and UpdatePriorities, its update
// is skipped (UpdatePriorities returns how many it applied) instead of
// re-prioritising the unrelated item now in that slot. An ID that was never
// issued is an *IDError.
//
// # Concurrency
//
// Every method is safe for concurrent use. Add, UpdatePriorities and
// Snapshot are exclusive; any number of Sample, Len, Beta and MaxPriority
// calls run in parallel with each other. Each Sample sees the buffer between
// two writes, never in the middle of one (its items, IDs and priorities
// belong together), and each Sample call takes a distinct step of the β
// schedule. The intended use is one writer goroutine (Add, UpdatePriorities)
// and several samplers, each with its own *rand.Rand (a rand.Rand is not
// safe for concurrent use). Results are deterministic for a seed only when
// the calls happen in a fixed order, e.g. from one goroutine: with several
// samplers, which β step and which buffer contents a call sees depend on
// scheduling. Items are copied into batches as T values, so a T holding
// pointers or slices shares that memory with the buffer.
//
// # Checkpoints
//
// Snapshot returns the full state as a State with exported fields (items in
// slot order, priorities, IDs issued, max priority, Sample calls made);
// Restore rebuilds a buffer from it that continues bit-for-bit as the
// original would have. State is gob- and JSON-encodable when T is; the
// caller's sampling RNG must be checkpointed alongside (rand.PCG implements
// encoding.BinaryMarshaler).
//
// # Float accuracy
//
// Every internal node of the sum tree (8 children per node) is recomputed
// as the sum of its children on each write, never adjusted by a
// difference, so rounding does not accumulate over updates: the total is
// always the tree-ordered sum of the current leaves, within about
// 7·depth·2⁻⁵³ (≈ 5e-15 at capacity 100,000) of the exact sum, and no
// periodic rebuild is needed.
package replay
