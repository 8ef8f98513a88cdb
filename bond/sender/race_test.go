//go:build race

package sender

// raceEnabled: the race detector's instrumentation allocates on its own.
const raceEnabled = true
