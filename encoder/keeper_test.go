package encoder

import (
	"bytes"
	"context"
	"path/filepath"
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
	t.Cleanup(func() { r.Close() })
	k, err := NewKeeper(r, cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return r, k
}

// A capture outage must not leave a hole in the cadence: every index gets
// exactly one picture, first repeats of the last live one, then the slate,
// then live pictures again when capture comes back.
func TestKeeperFillsEveryIndexThroughCaptureOutage(t *testing.T) {
	g := ring.Geometry{Width: 64, Height: 48, FPSNum: 100, FPSDen: 1}                                                // 10 ms frames keep the test short
	r, k := keeperOn(t, g, 120, ring.MonotonicNs(), KeeperConfig{LateFrames: 2, SlateAfter: 150 * time.Millisecond}) // holds the whole test
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()

	// capture: live for 20 frames, gone for 40 (400 ms > slate_after), live for 20.
	first := r.IndexAt(ring.MonotonicNs()) + 2
	live := func(from, to uint64) {
		for i := from; i < to; i++ {
			for ring.MonotonicNs() < r.TimeOf(i) {
				time.Sleep(time.Millisecond)
			}
			buf, err := r.Claim(i)
			if err != nil {
				continue
			}
			for j := range buf {
				buf[j] = byte(i)
			}
			r.Publish(i, ring.MonotonicNs(), 0)
		}
	}
	live(first, first+20)
	live(first+60, first+80)
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done

	dst := make([]byte, r.FrameSize())
	var repeats, slates, lives int
	for i := first; i < first+80; i++ {
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
	if lives != 40 || repeats+slates != 40 {
		t.Fatalf("live %d repeats %d slates %d: want 40 live and 40 substitutes", lives, repeats, slates)
	}
	if repeats == 0 || slates == 0 {
		t.Errorf("repeats %d slates %d: want both (freeze, then slate)", repeats, slates)
	}
	if st := k.Status(); st.Live < 40 || st.Slates < uint64(slates) {
		t.Errorf("status disagrees with the ring: %+v", st)
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
	r, k := keeperOn(t, g, 16, ring.MonotonicNs(), KeeperConfig{LateFrames: 1, SlateAfter: time.Hour})
	i := r.IndexAt(ring.MonotonicNs()) + 1
	buf, _ := r.Claim(i)
	for j := range buf {
		buf[j] = 0xAB
	}
	r.Publish(i, 0, 0)
	k.ensure(i, ring.MonotonicNs())
	k.ensure(i+1, ring.MonotonicNs())
	dst := make([]byte, r.FrameSize())
	m, err := r.Read(i+1, dst)
	if err != nil || m.Flags != ring.FlagRepeat || !bytes.Equal(dst, bytes.Repeat([]byte{0xAB}, len(dst))) {
		t.Fatalf("repeat: %v flags %v first byte %x", err, m.Flags, dst[0])
	}
}

func TestSlateHasCaptionAndBand(t *testing.T) {
	s, err := Slate(1280, 720, "SIGNAL LOST")
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 1280*720*3/2 {
		t.Fatalf("size %d", len(s))
	}
	bright := 0
	for _, v := range s[:1280*720] {
		if v > 200 {
			bright++
		}
	}
	if bright < 2000 {
		t.Fatalf("caption not drawn: %d bright luma pixels", bright)
	}
}
