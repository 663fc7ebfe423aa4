//go:build !race

package node2vec

const raceEnabled = false
