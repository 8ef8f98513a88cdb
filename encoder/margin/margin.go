// Package margin measures an encoder's real-time margin: how many times
// faster than the frame cadence it works. The encoder worker times each frame
// from the moment its picture is in the ring to the moment its access units
// are on the wire (ring read, conversion, x264, a fresh session at a GOP,
// sending), the wall time the box really gave it, with the other encoder and
// capture competing for the cores. The margin of a window is the frame
// interval divided by the mean of those times: 2 means the encoder could keep
// up with twice the frame rate; below 1 it falls behind the cadence and will
// be restarted for lag. Time spent waiting for the next picture is not
// counted, so an encoder that keeps up shows its capacity, not its idleness.
//
// Not for: carrying the figures (wire.Progress does) or judging them (the
// twin control restarts a lagging encoder by its frames, never by this).
package margin

import (
	"time"

	"onair/encoder/wire"
)

// MaxX caps a window's margin (a window of frames that took no measurable
// time would be infinite, and JSON has no infinity): wire.MaxMargin, above
// which onaird treats a margin as malformed.
const MaxX = wire.MaxMargin

// Meter accumulates the per-frame work of one encoder into windows. It is not
// safe for concurrent use: the encoder's loop owns it.
type Meter struct {
	interval time.Duration
	busy     time.Duration // this window
	frames   int
	recent   []float64 // margins of the last windows, a ring
	next     int
	full     bool
}

// New makes a meter for frames of interval that remembers the margins of the
// last keep windows for the minimum (keep < 1 is 1).
func New(interval time.Duration, keep int) *Meter {
	return &Meter{interval: interval, recent: make([]float64, max(1, keep))}
}

// Frame adds one frame that kept the encoder busy for busy.
func (m *Meter) Frame(busy time.Duration) {
	m.busy += max(0, busy)
	m.frames++
}

// Window closes the current window and returns its margin x (frames ×
// interval / the time they took, at most MaxX), the lowest margin of the last
// keep windows including this one (minX ≤ x), and the number of frames in it.
// A window without a frame returns ok false and does not count.
func (m *Meter) Window() (x, minX float64, frames int, ok bool) {
	frames = m.frames
	if frames == 0 || m.interval <= 0 {
		m.busy, m.frames = 0, 0
		return 0, 0, frames, false
	}
	x = MaxX
	if m.busy > 0 {
		x = min(MaxX, float64(frames)*m.interval.Seconds()/m.busy.Seconds())
	}
	m.busy, m.frames = 0, 0
	m.recent[m.next] = x
	m.next = (m.next + 1) % len(m.recent)
	if m.next == 0 {
		m.full = true
	}
	n := m.next
	if m.full {
		n = len(m.recent)
	}
	minX = x
	for _, v := range m.recent[:n] {
		minX = min(minX, v)
	}
	return x, minX, frames, true
}
