package ingest

import (
	"fmt"
	"math/big"
	"slices"
	"testing"
)

// ptsOf is the 90 kHz PTS of frame i at num/den fps (as wire.VideoPTS), exact.
func ptsOf(i int64, num, den int64) int64 {
	n := new(big.Int).Mul(big.NewInt(i), big.NewInt(90000*den))
	return n.Quo(n, big.NewInt(num)).Int64()
}

// feed gives the tracker frames first..last (skipping drop, sending dup
// twice) with their PTS as the wire carries them: 33-bit, through the
// analyser's unwrapper.
func feed(tr *tracker, start, first, last, num, den int64, drop, dup map[int64]bool) {
	var u unwrapper
	for i := first; i <= last; i++ {
		if drop[i] {
			continue
		}
		n := 1
		if dup[i] {
			n = 2
		}
		for range n {
			p := u.unwrap((start + ptsOf(i, num, den)) & (ptsWrap - 1))
			tr.add(frameRec{pts: p, dts: p})
		}
	}
}

// The tracker counted every frame past 2^24 from the first one as a "PTS
// jump" (78 h at 59.94 fps, 155 h at 29.97): losses and duplicates after
// that went unseen. Past 2^24 frames, and across several 33-bit PTS wraps,
// a lost and a duplicated frame must still be found, by index.
func TestTrackerCorrectPast2To24Frames(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds 17 million frames")
	}
	const n = 1<<24 + 3000
	lost, dupd := int64(1<<24+1000), int64(1<<24+2000)
	tr := newTracker(0, 3000, false)
	feed(tr, ptsWrap-90000, 0, n, 60000, 1001, map[int64]bool{100: true, lost: true}, map[int64]bool{dupd: true})
	var r StreamReport
	tr.fill(&r)
	if r.FrameIndexes.First != 0 || r.FrameIndexes.Last != n || r.PTSJumps != 0 {
		t.Fatalf("indexes %+v, %d jumps: want 0..%d and no jump", r.FrameIndexes, r.PTSJumps, n)
	}
	if r.Missing != 2 || !slices.Equal(r.MissingIndexes, []int64{100, lost}) || r.Duplicates != 1 || r.OutOfOrder != 0 || r.NonMonotonic != 1 {
		t.Fatalf("missing %d %v, duplicates %d, out of order %d, non-monotonic %d: want 100 and %d missing, 1 duplicate",
			r.Missing, r.MissingIndexes, r.Duplicates, r.OutOfOrder, r.NonMonotonic, lost)
	}
	if d := r.FrameDuration90k; d < 1501.4 || d > 1501.6 {
		t.Errorf("frame duration %v, want 1501.5", d)
	}
}

// Rates whose frame is not a whole number of 90 kHz ticks (59.94: 1501.5,
// 23.976: 3753.75) have PTS steps that alternate; indexes reckoned from the
// first frame with a rounded duration drifted by a whole frame within
// minutes and reported the stream as full of gaps and duplicates. An hour
// of each rate, with a duration given rounded (as Options.FPS does) or
// inferred, must index every frame once.
func TestTrackerIndexesStayExactAtFractionalRates(t *testing.T) {
	rates := []struct{ num, den int64 }{{60000, 1001}, {24000, 1001}, {30000, 1001}, {25, 1}, {30, 1}}
	for _, rt := range rates {
		for _, dur := range []float64{0, float64(int64(90000*float64(rt.den)/float64(rt.num) + 0.5))} {
			t.Run(fmt.Sprintf("%d_%d_dur%v", rt.num, rt.den, dur), func(t *testing.T) {
				frames := 3600 * rt.num / rt.den
				tr := newTracker(dur, 3000, false)
				feed(tr, 1<<32, 0, frames-1, rt.num, rt.den, map[int64]bool{frames / 2: true}, nil)
				var r StreamReport
				tr.fill(&r)
				if r.FrameIndexes.Last != frames-1 || r.Missing != 1 || !slices.Equal(r.MissingIndexes, []int64{frames / 2}) ||
					r.Duplicates != 0 || r.OutOfOrder != 0 || r.PTSJumps != 0 {
					t.Fatalf("indexes %+v, missing %d %v, duplicates %d, out of order %d, jumps %d: want 0..%d, only %d missing",
						r.FrameIndexes, r.Missing, r.MissingIndexes, r.Duplicates, r.OutOfOrder, r.PTSJumps, frames-1, frames/2)
				}
			})
		}
	}
}

// A frame with a broken clock (far from the newest index) is a jump, and
// does not move the index of the frames after it.
func TestTrackerJumpDoesNotShiftLaterIndexes(t *testing.T) {
	tr := newTracker(3000, 3000, false)
	for i := int64(0); i < 100; i++ {
		p := i * 3000
		if i == 50 {
			p = 1 << 45 // broken clock
		}
		tr.add(frameRec{pts: p, dts: p})
	}
	var r StreamReport
	tr.fill(&r)
	if r.PTSJumps != 1 || r.Missing != 1 || r.FrameIndexes.Last != 99 || r.Duplicates != 0 {
		t.Fatalf("%+v", r)
	}
}
