package ingest

import "math"

const (
	// inferFrames is how many timestamps are buffered before the frame
	// duration is inferred as the most common PTS step.
	inferFrames = 32
	// maxIndexSpan bounds the seen-index bitmap (2 MiB): a frame further than
	// this from the first one is a broken clock, counted as a PTS jump.
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
	seen        []uint64 // bit i: index i seen (i >= 0)
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

// inferDuration returns the most common positive PTS step (the smallest on a tie).
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
	return float64(best)
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
	idx := int64(math.Round(float64(f.pts-t.first) / t.dur))
	t.frames++
	if t.keepHashes {
		t.hashes = append(t.hashes, FrameHash{Index: idx, Hash: f.hash, Key: f.key})
	}
	if idx >= maxIndexSpan || idx <= -maxIndexSpan {
		t.jumps++
		return
	}
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
	w := int(idx >> 6)
	if w >= len(t.seen) {
		n := max(w+1, 2*len(t.seen))
		t.seen = append(t.seen, make([]uint64, n-len(t.seen))...)
	}
	bit := uint64(1) << (idx & 63)
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
	w := int(idx >> 6)
	return w < len(t.seen) && t.seen[w]&(uint64(1)<<(idx&63)) != 0
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
	for i := t.minIdx; r.Missing > 0 && i <= t.maxIdx && len(r.MissingIndexes) < maxMissingListed; i++ {
		if i >= 0 && i&63 == 0 && int(i>>6) < len(t.seen) && t.seen[i>>6] == math.MaxUint64 {
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
