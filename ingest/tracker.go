package ingest

import "math"

const (
	// inferFrames is how many timestamps are buffered before the frame
	// duration is inferred as the most common PTS step.
	inferFrames = 32
	// maxIndexSpan bounds the seen-index bitmap (2 MiB), a window that slides
	// with the newest index: a frame further than half of it from the newest
	// one is a broken clock, counted as a PTS jump. (It used to be an absolute
	// range from the first frame: after 2^24 frames, 78 h at 59.94 fps, every
	// frame was a "jump" and no loss or duplicate was seen any more.)
	maxIndexSpan = 1 << 24
	// maxNegative bounds the frames tracked before index 0.
	maxNegative = 4096
	// maxMissingListed bounds Report.MissingIndexes.
	maxMissingListed = 100
	ptsWrap          = int64(1) << 33
)

// unwrapper extends 33-bit PTS/DTS values into a monotonic 64-bit timeline.
type unwrapper struct {
	ok   bool
	last int64
	off  int64
}

func (u *unwrapper) unwrap(v int64) int64 {
	if u.ok {
		d := v - u.last
		if d < -ptsWrap/2 {
			u.off += ptsWrap
		} else if d > ptsWrap/2 {
			u.off -= ptsWrap
		}
	}
	u.ok = true
	u.last = v
	return v + u.off
}

type frameRec struct {
	pts, dts int64 // unwrapped; dts == pts when absent
	hash     uint64
	key      bool
}

// tracker turns a sequence of frame timestamps into index, gap and
// duplicate counts. Memory: one bit per frame index, plus the hashes when asked.
type tracker struct {
	dur         float64 // 0 until fixed
	defaultDur  float64 // used when a report must be made from one frame
	keepHashes  bool
	pending     []frameRec
	frames      int64
	first, last int64
	prevDTS     int64
	minIdx      int64
	maxIdx      int64
	distinct    int64
	seen        []uint64 // bit i: index base+i seen (base+i >= 0)
	base        int64    // index of seen's bit 0, a multiple of 64
	refPTS      int64    // PTS and index of the last indexed frame: the next
	refIdx      int64    // index is reckoned from it, not from the first frame
	oldMissing  []int64  // missing indexes that slid out of the window (at most maxMissingListed)
	seenNeg     map[int64]struct{}
	duplicates  int64
	outOfOrder  int64
	gaps        int64
	maxGap      int64
	nonMono     int64
	jumps       int64
	hashes      []FrameHash
}

func newTracker(dur, defaultDur float64, keepHashes bool) *tracker {
	return &tracker{dur: dur, defaultDur: defaultDur, keepHashes: keepHashes}
}

// add records one frame. Until the duration is known frames are buffered.
func (t *tracker) add(f frameRec) {
	if t.dur == 0 {
		t.pending = append(t.pending, f)
		if len(t.pending) >= inferFrames {
			t.fix()
		}
		return
	}
	t.process(f)
}

// fix infers the frame duration from the buffered frames and replays them.
func (t *tracker) fix() {
	t.dur = inferDuration(t.pending, t.defaultDur)
	p := t.pending
	t.pending = nil
	for _, f := range p {
		t.process(f)
	}
}

// inferDuration returns the mean of the PTS steps within one tick of the
// most common positive step (the smallest on a tie). Steps of a rate whose
// duration is not a whole number of ticks alternate (1501 and 1502 at
// 59.94 fps): their mean is the duration, the mode alone is a tick off.
func inferDuration(fs []frameRec, def float64) float64 {
	counts := map[int64]int{}
	for i := 1; i < len(fs); i++ {
		if d := fs[i].pts - fs[i-1].pts; d > 0 {
			counts[d]++
		}
	}
	best, bestN := int64(0), 0
	for d, n := range counts {
		if n > bestN || (n == bestN && d < best) {
			best, bestN = d, n
		}
	}
	if best == 0 {
		return def
	}
	var sum, n int64
	for d := best - 1; d <= best+1; d++ {
		sum += d * int64(counts[d])
		n += int64(counts[d])
	}
	return float64(sum) / float64(n)
}

// snapshot returns a tracker whose counters are final for the frames seen so
// far, without fixing the duration of t itself (a live report must not freeze
// an inference made from two frames).
func (t *tracker) snapshot() *tracker {
	if t.dur != 0 || len(t.pending) == 0 {
		return t
	}
	c := newTracker(0, t.defaultDur, t.keepHashes)
	c.pending = append([]frameRec(nil), t.pending...)
	c.fix()
	return c
}

func (t *tracker) process(f frameRec) {
	if t.frames == 0 {
		t.first = f.pts
	} else {
		step := f.pts - t.last
		if math.Abs(float64(step)-t.dur) > 1 {
			t.gaps++
		}
		if step > 0 {
			if g := int64(math.Round(float64(step) / t.dur)); g > t.maxGap {
				t.maxGap = g
			}
		}
		if f.dts <= t.prevDTS {
			t.nonMono++
		}
	}
	t.last = f.pts
	t.prevDTS = f.dts
	// The index is reckoned from the last indexed frame, so the rounding of
	// the duration (an integer 1502 for 1501.5 ticks) never accumulates: from
	// the first frame, round(Δpts/dur) drifted by a whole frame within minutes
	// at 59.94 or 23.976 fps, and the float quotient lost precision with days.
	idx := int64(0)
	if t.distinct > 0 {
		idx = t.refIdx + int64(math.Round(float64(f.pts-t.refPTS)/t.dur))
	}
	t.frames++
	if t.keepHashes {
		t.hashes = append(t.hashes, FrameHash{Index: idx, Hash: f.hash, Key: f.key})
	}
	if t.distinct > 0 && (idx > t.maxIdx+maxIndexSpan/2 || idx < t.maxIdx-maxIndexSpan/2) {
		t.jumps++
		return
	}
	t.refPTS, t.refIdx = f.pts, idx
	if t.mark(idx) {
		t.duplicates++
		return
	}
	if t.distinct == 0 {
		t.minIdx, t.maxIdx = idx, idx
	} else if idx < t.maxIdx {
		t.outOfOrder++
	}
	t.distinct++
	t.minIdx = min(t.minIdx, idx)
	t.maxIdx = max(t.maxIdx, idx)
}

// slide moves the window so that idx fits, keeping the newest half, and
// lists the indexes still missing in the part that falls out (final now: a
// frame that old counts as a jump).
func (t *tracker) slide(idx int64) {
	newBase := (idx - maxIndexSpan/2) &^ 63
	drop := int((newBase - t.base) >> 6)
	for w := 0; w < drop && w < len(t.seen) && len(t.oldMissing) < maxMissingListed; w++ {
		if t.seen[w] == math.MaxUint64 {
			continue
		}
		for b := int64(0); b < 64 && len(t.oldMissing) < maxMissingListed; b++ {
			i := t.base + int64(w)<<6 + b
			if i >= t.minIdx && i <= t.maxIdx && t.seen[w]&(1<<b) == 0 {
				t.oldMissing = append(t.oldMissing, i)
			}
		}
	}
	if drop >= len(t.seen) {
		t.seen = t.seen[:0]
	} else {
		n := copy(t.seen, t.seen[drop:])
		t.seen = t.seen[:n]
	}
	t.base = newBase
}

// mark records idx as seen and reports whether it had been seen before.
func (t *tracker) mark(idx int64) bool {
	if idx < 0 {
		if _, ok := t.seenNeg[idx]; ok {
			return true
		}
		if t.seenNeg == nil {
			t.seenNeg = map[int64]struct{}{}
		}
		if len(t.seenNeg) < maxNegative {
			t.seenNeg[idx] = struct{}{}
		}
		return false
	}
	if idx >= t.base+maxIndexSpan {
		t.slide(idx)
	}
	if idx < t.base {
		return false // [unexpected]: process counts frames this old as jumps
	}
	w := int((idx - t.base) >> 6)
	if w >= len(t.seen) {
		n := min(max(w+1, 2*len(t.seen)), maxIndexSpan>>6)
		t.seen = append(t.seen, make([]uint64, n-len(t.seen))...)
	}
	bit := uint64(1) << ((idx - t.base) & 63)
	if t.seen[w]&bit != 0 {
		return true
	}
	t.seen[w] |= bit
	return false
}

func (t *tracker) isSeen(idx int64) bool {
	if idx < 0 {
		_, ok := t.seenNeg[idx]
		return ok
	}
	if idx < t.base {
		return false
	}
	w := int((idx - t.base) >> 6)
	return w < len(t.seen) && t.seen[w]&(uint64(1)<<((idx-t.base)&63)) != 0
}

// fill copies the tracker's figures into r.
func (t *tracker) fill(r *StreamReport) {
	r.FrameDuration90k = t.dur
	if t.frames == 0 {
		return
	}
	r.FirstPTS, r.LastPTS = t.first, t.last
	r.FrameIndexes = IndexRange{First: t.minIdx, Last: t.maxIdx}
	if t.distinct > 0 {
		r.Missing = t.maxIdx - t.minIdx + 1 - t.distinct
	}
	r.MissingIndexes = append(r.MissingIndexes, t.oldMissing...)
	start := t.minIdx // negative indexes are only kept before the window first slides
	if t.base > 0 {
		start = max(start, t.base)
	}
	for i := start; r.Missing > 0 && i <= t.maxIdx && len(r.MissingIndexes) < maxMissingListed; i++ {
		if o := i - t.base; i >= 0 && o&63 == 0 && int(o>>6) < len(t.seen) && t.seen[o>>6] == math.MaxUint64 {
			i += 63 // whole word seen
			continue
		}
		if !t.isSeen(i) {
			r.MissingIndexes = append(r.MissingIndexes, i)
		}
	}
	r.Duplicates = t.duplicates
	r.OutOfOrder = t.outOfOrder
	r.PTSGaps = t.gaps
	r.MaxGapFrames = t.maxGap
	r.NonMonotonic = t.nonMono
	r.PTSJumps = t.jumps
}
