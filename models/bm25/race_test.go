//go:build race

package bm25

// The race detector makes sync.Pool drop items at random, so allocation
// counts are meaningful only without it.
const raceEnabled = true
