package margin

import (
	"math"
	"testing"
	"time"
)

const frame = time.Second / 30

// The margin is the frame interval over the mean work per frame of the
// window: 30 frames of 10 ms each at 30 fps is 3.33x, whatever single
// frames did (an IDR twice as slow does not make the window's figure).
func TestWindowIsIntervalOverMeanWork(t *testing.T) {
	m := New(frame, 10)
	for i := range 30 {
		d := 10 * time.Millisecond
		if i == 0 {
			d = 20 * time.Millisecond // the IDR
		}
		m.Frame(d)
	}
	x, minX, n, ok := m.Window()
	want := 30 * frame.Seconds() / 0.310
	if !ok || n != 30 || math.Abs(x-want) > 1e-9 || minX != x {
		t.Fatalf("window: x %v min %v frames %d ok %v, want x = min = %v over 30 frames", x, minX, n, ok, want)
	}
}

// The minimum looks back keep windows and forgets older ones: a slow second
// (the box starved) shows in margin_min for keep windows, then goes.
func TestMinimumCoversTheLastKeepWindows(t *testing.T) {
	m := New(frame, 3)
	window := func(per time.Duration) (float64, float64) {
		for range 30 {
			m.Frame(per)
		}
		x, minX, _, ok := m.Window()
		if !ok {
			t.Fatal("window with frames not ok")
		}
		return x, minX
	}
	window(frame / 4)            // 4x
	x, minX := window(frame * 2) // 0.5x: the slow one
	if math.Abs(x-0.5) > 1e-6 || minX != x {
		t.Fatalf("slow window: x %v min %v, want 0.5 and 0.5", x, minX)
	}
	for i := range 2 {
		if _, minX = window(frame / 2); math.Abs(minX-0.5) > 1e-6 {
			t.Fatalf("window %d after the slow one: min %v, want 0.5 still", i+1, minX)
		}
	}
	if x, minX = window(frame / 2); math.Abs(minX-2) > 1e-6 || math.Abs(x-2) > 1e-6 {
		t.Fatalf("3 windows after the slow one: x %v min %v, want 2 and 2 (the slow one forgotten)", x, minX)
	}
}

// A window in which no frame came (the encoder waited for the ring) has no
// margin and does not drag the minimum; one whose frames took no measurable
// time is capped at MaxX, never +Inf (which JSON cannot carry).
func TestEmptyAndInstantWindows(t *testing.T) {
	m := New(frame, 10)
	if _, _, n, ok := m.Window(); ok || n != 0 {
		t.Fatalf("empty window: ok %v frames %d", ok, n)
	}
	m.Frame(0)
	m.Frame(-time.Millisecond) // a clock step back counts as no time
	x, minX, n, ok := m.Window()
	if !ok || n != 2 || x != MaxX || minX != MaxX {
		t.Fatalf("instant window: x %v min %v frames %d ok %v, want %v", x, minX, n, ok, float64(MaxX))
	}
	if _, _, _, ok := New(0, 1).Window(); ok {
		t.Fatal("a meter without an interval measured a margin")
	}
}
