//go:build race

package engineio

// raceEnabled: the race detector is on (its instrumented frames are larger).
const raceEnabled = true
