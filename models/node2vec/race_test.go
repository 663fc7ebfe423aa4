//go:build race

package node2vec

// raceEnabled skips the Hogwild (Workers > 1) tests under -race: their
// lock-free updates are the documented benign race the detector reports.
const raceEnabled = true
