package encoder

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"onair/encoder/ring"
)

// keeperOn makes a ring of geometry g (epoch in CLOCK_MONOTONIC ns) and a keeper on it.
func keeperOn(t *testing.T, g ring.Geometry, slots int, epoch int64, cfg KeeperConfig) (*ring.Ring, *Keeper) {
	t.Helper()
	r, err := ring.Create(filepath.Join(t.TempDir(), "v.ring"), g, slots, epoch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cerr := r.Close(); cerr != nil {
			t.Error(cerr)
		}
	})
	k, err := NewKeeper(r, cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return r, k
}

// synthClock is the keeper's clock in tests: CLOCK_MONOTONIC ns that move
// only when the keeper sleeps, so Run is driven synchronously on the test's
// goroutine with no timer involved.
type synthClock struct {
	now int64
	// wake, if set, says when a sleep until ns really ends (later: onaird
	// starved); nil wakes exactly on time.
	wake func(until int64) int64
	// world runs each time the clock moved (capture publishing what is due).
	world func(now int64)
	// stop ends the test: Run returns when the keeper asks to sleep until it.
	stop func(until int64) bool
}

func (c *synthClock) nowNs() int64 { return c.now }

func (c *synthClock) sleep(_ context.Context, until int64) error {
	if c.stop(until) {
		return context.Canceled
	}
	if c.wake != nil {
		until = c.wake(until)
	}
	c.now = max(c.now, until)
	if c.world != nil {
		c.world(c.now)
	}
	return nil
}

// runSynth runs k on c until c.stop says so.
func runSynth(t *testing.T, k *Keeper, c *synthClock) {
	t.Helper()
	k.nowNs, k.sleep = c.nowNs, c.sleep
	if err := k.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// capture publishes index i as a live picture whose bytes are all byte(i).
func capture(r *ring.Ring, i uint64) {
	buf, err := r.Claim(i)
	if err != nil {
		return
	}
	for j := range buf {
		buf[j] = byte(i)
	}
	r.Publish(i, r.TimeOf(i), 0)
}

// A capture outage must not leave a hole in the cadence: every index gets
// exactly one picture, first repeats of the last live one, then the slate,
// then live pictures again when capture comes back. Run itself keeps the
// cadence here, on synthetic time.
func TestKeeperFillsEveryIndexThroughCaptureOutage(t *testing.T) {
	g := ring.Geometry{Width: 64, Height: 48, FPSNum: 100, FPSDen: 1}                               // 10 ms frames
	r, k := keeperOn(t, g, 120, 0, KeeperConfig{LateFrames: 2, SlateAfter: 150 * time.Millisecond}) // holds the whole test
	const first = 10
	// capture: live for 20 frames, gone for 40 (400 ms > slate_after), live for 20.
	isLive := func(i uint64) bool { return i >= first && (i < first+20 || i >= first+60) && i < first+80 }
	next := uint64(first)
	c := &synthClock{
		now: r.TimeOf(first),
		world: func(now int64) {
			for ; r.TimeOf(next) <= now; next++ {
				if isLive(next) {
					capture(r, next)
				}
			}
		},
		stop: func(until int64) bool { return until > r.TimeOf(first+79+2) }, // after index first+79
	}
	runSynth(t, k, c)

	dst := make([]byte, r.FrameSize())
	var repeats, slates, lives int
	for i := uint64(first); i < first+80; i++ {
		m, err := r.Read(i, dst)
		if err != nil {
			t.Fatalf("index %d has no picture: %v", i, err)
		}
		switch {
		case m.Flags == 0 && dst[0] == byte(i):
			lives++
		case m.Flags == ring.FlagRepeat && dst[0] == byte(first+19):
			repeats++
		case m.Flags == ring.FlagSlate:
			slates++
		default:
			t.Fatalf("index %d: flags %v first byte %d", i, m.Flags, dst[0])
		}
	}
	// Last live picture seen at index first+19's deadline; index i is
	// checked (i-first-19)×10 ms later, so the slate starts at first+34.
	if lives != 40 || repeats != 14 || slates != 26 {
		t.Fatalf("live %d repeats %d slates %d: want 40 live, 14 repeats, 26 slates", lives, repeats, slates)
	}
	if st := k.Status(); st.Live != 40 || st.Repeats != 14 || st.Slates != 26 || st.Signal != "live" || st.BehindFrames != 0 {
		t.Errorf("status disagrees with the ring: %+v", st)
	}
}

// Found in review: when onaird itself was starved (the keeper's loop woke
// many deadlines late), the catch-up jumped to "now" and abandoned indexes
// the ring still held, holes the encoders then wait on. Every index whose
// slot still holds it is filled.
func TestKeeperCatchUpAfterStarvationFillsEveryIndexStillInTheRing(t *testing.T) {
	g := ring.Geometry{Width: 32, Height: 32, FPSNum: 100, FPSDen: 1}
	const slots, late, starveAt = 32, 2, 20
	for _, tc := range []struct {
		name           string
		starved        uint64 // frames the wake-up at starveAt's deadline is late by
		filled, behind uint64 // first index filled after the starvation; indexes skipped
	}{
		// woke 24 frames late (more than half the ring, less than all of it)
		{"within the ring", 24, starveAt, 0},
		// woke 40 frames late: at index 62, only 32.. are still held
		{"past the ring", 40, 62 + 2 - slots, 62 + 2 - slots - starveAt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, k := keeperOn(t, g, slots, 0, KeeperConfig{LateFrames: late, SlateAfter: time.Hour})
			for i := uint64(0); i < 5; i++ {
				capture(r, i) // a live picture to repeat
			}
			deadline := func(i uint64) int64 { return r.TimeOf(i + late) } // 10 ms frames: due + late
			woke := deadline(starveAt) + int64(tc.starved)*int64(10*time.Millisecond)
			starved := false
			c := &synthClock{
				now: r.TimeOf(5),
				wake: func(until int64) int64 {
					if !starved && until >= deadline(starveAt) {
						starved = true
						return woke
					}
					return until
				},
				// over once the keeper has caught up and waits for the future
				stop: func(until int64) bool { return starved && until > woke },
			}
			runSynth(t, k, c)
			cur := r.IndexAt(woke)
			for i := tc.filled; i+late <= cur; i++ {
				m, err := r.Meta(i)
				// a repeat, or black right after skipped indexes (nothing to repeat)
				if err != nil || m.Flags&(ring.FlagRepeat|ring.FlagBlack) == 0 {
					t.Fatalf("index %d (ring head %d, %d slots): flags %v, %v: abandoned by the catch-up", i, cur, slots, m.Flags, err)
				}
			}
			if st := k.Status(); st.BehindFrames != tc.behind || st.KeeperIndex != cur-late {
				t.Fatalf("status %+v: want %d skipped, last index %d", st, tc.behind, cur-late)
			}
		})
	}
}

// Found in review: late_frames ≥ ring_slots/2 made the keeper skip every
// deadline (no repeat, no slate, holes at the receiver). The config refuses
// it; the keeper refuses it too, and just below the limit fills every index.
func TestKeeperRefusesLateFramesFromHalfTheRing(t *testing.T) {
	g := ring.Geometry{Width: 32, Height: 32, FPSNum: 100, FPSDen: 1}
	r, err := ring.Create(filepath.Join(t.TempDir(), "v.ring"), g, 12, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	for _, lf := range []int{6, 7, 12, 100} {
		if _, err := NewKeeper(r, KeeperConfig{LateFrames: lf}, zaptest.NewLogger(t)); err == nil || !strings.Contains(err.Error(), "half the ring") {
			t.Errorf("late frames %d of 12 slots: err %v, want a refusal naming half the ring", lf, err)
		}
	}

	r, k := keeperOn(t, g, 12, 0, KeeperConfig{LateFrames: 5, SlateAfter: 50 * time.Millisecond})
	c := &synthClock{now: r.TimeOf(3), stop: func(until int64) bool { return until > r.TimeOf(40+5) }}
	runSynth(t, k, c)
	for i := uint64(29); i <= 40; i++ { // what 12 slots still hold
		if m, err := r.Meta(i); err != nil || m.Flags == 0 {
			t.Fatalf("index %d: flags %v, %v: want a substitute", i, m.Flags, err)
		}
	}
	if st := k.Status(); st.BehindFrames != 0 || st.KeeperIndex != 40 || st.Slates+st.Blacks+st.Repeats != 38 {
		t.Fatalf("status %+v: want indexes 3..40 substituted, none skipped", st)
	}
}

// When the slate replaces the frozen picture depends only on how long capture
// has been gone: pinned with synthetic times, so no timer jitter is involved.
func TestKeeperSlatesExactlyAfterSlateAfter(t *testing.T) {
	g := ring.Geometry{Width: 32, Height: 32, FPSNum: 100, FPSDen: 1}
	r, k := keeperOn(t, g, 128, 0, KeeperConfig{LateFrames: 2, SlateAfter: 150 * time.Millisecond}) // epoch 0: index i is due at i×10 ms
	const late = 20 * int64(time.Millisecond)
	for i := uint64(0); i < 80; i++ {
		if i < 20 || i >= 60 { // capture delivers on time, except 20..59
			buf, _ := r.Claim(i)
			clear(buf)
			r.Publish(i, r.TimeOf(i), 0)
		}
		k.ensure(i, r.TimeOf(i)+late) // the keeper looks at its deadline
	}
	// Last live picture seen at 19×10+20 = 210 ms; index i is checked at
	// i×10+20 ms, so gone = (i-19)×10 ms ≥ 150 ms from index 34 on.
	var repeats, slates []uint64
	for i := uint64(20); i < 60; i++ {
		m, err := r.Meta(i)
		if err != nil {
			t.Fatalf("index %d: %v", i, err)
		}
		switch m.Flags {
		case ring.FlagRepeat:
			repeats = append(repeats, i)
		case ring.FlagSlate:
			slates = append(slates, i)
		}
	}
	if len(repeats) != 14 || repeats[0] != 20 || repeats[13] != 33 || len(slates) != 26 || slates[0] != 34 {
		t.Fatalf("repeats %v slates %v: want repeats 20..33, slates 34..59", repeats, slates)
	}
	if st := k.Status(); st.Signal != "live" || st.Repeats != 14 || st.Slates != 26 {
		t.Fatalf("status %+v", st)
	}
}

// A repeated picture is a copy of the last live one, not black.
func TestKeeperRepeatCopiesPreviousPicture(t *testing.T) {
	g := ring.Geometry{Width: 32, Height: 32, FPSNum: 100, FPSDen: 1}
	r, k := keeperOn(t, g, 16, 0, KeeperConfig{LateFrames: 1, SlateAfter: time.Hour})
	const i = 5
	buf, _ := r.Claim(i)
	for j := range buf {
		buf[j] = 0xAB
	}
	r.Publish(i, 0, 0)
	k.ensure(i, r.TimeOf(i+1))
	k.ensure(i+1, r.TimeOf(i+2))
	dst := make([]byte, r.FrameSize())
	m, err := r.Read(i+1, dst)
	if err != nil || m.Flags != ring.FlagRepeat || !bytes.Equal(dst, bytes.Repeat([]byte{0xAB}, len(dst))) {
		t.Fatalf("repeat: %v flags %v first byte %x", err, m.Flags, dst[0])
	}
}
