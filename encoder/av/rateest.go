package av

import "math"

// rateEstimator measures a capture device's sample clock against the box
// clock (CLOCK_MONOTONIC) from the arrival times of its buffers, so an audio
// chain can stamp every buffer with the box time its samples were taken and
// let the resampler follow the box (issue 10: two sound cards drift ±100..300
// ppm against each other; after an hour, chains that only count samples are
// hundreds of ms apart and a switch between them jumps).
//
// It is fed, for each device buffer, the box time at which the buffer's last
// sample arrived and the device's cumulative sample count at that point. An
// arrival is the capture instant plus a latency that is never negative: the
// wake-up of the reader, the scheduler, a demuxer holding a packet, and now
// and then a hiccup of hundreds of ms after which the buffered samples arrive
// in a burst. The noise is one-sided, so the estimator works on the lower
// envelope of the arrivals rather than on their mean:
//
//   - Arrivals are grouped into bins of one second (binNs); each bin keeps
//     only its least-delayed buffer (the NTP minimum-delay filter). With tens
//     of buffers a second, the minimum sits within a fraction of a ms of the
//     latency floor whatever the jitter, and a hiccup, which only delays, is
//     invisible unless it swallows a whole bin.
//   - The rate is a least-squares line through the bin minima of the last
//     minute (windowBins), refitted as each bin closes, once they span
//     measureSpan (20 s: the slope's noise is then a few ppm; after a minute,
//     about one). Bins that still sit above the line by more than rejectNs
//     (a hiccup that swallowed a bin) are dropped from the fit, the highest
//     first, up to a quarter of them. A windowed fit rather than a PLL
//     because its error is bounded by the window, it has no loop gain to tune
//     against an unknown jitter, and it reaches a measurement in a fixed
//     span; the price, a step in the data biasing the slope, is handled next.
//   - A closed bin further than offNs from the line is held out. When
//     stepBins of them in a row agree with each other, the device's timeline
//     has stepped (samples lost in an overrun, a device restart): the old
//     bins are dropped and the line re-anchors on the new ones, keeping the
//     measured rate. So it does after maxHeldBins off the line in a row that
//     do not agree (a rate that changed beyond reason). Held-out bins
//     followed by one on the line were a hiccup and are forgotten.
//   - Until the rate is measured (and after a step, until it is measured
//     again), the slope is held (nominal at first, the last measured rate
//     after a step) and the line passes through the lowest bin of the last
//     few (shortBins): drift shows as a slowly moving offset, which the
//     resampler follows anyway.
//
// TimeAt gives the line's box time for any sample position: the smoothed
// timestamps the resampler is fed, free of the arrival jitter.
//
// Not for: deciding what the box clock is (CLOCK_MONOTONIC is), or anything
// but the sample clock of one device; it holds no lock (one chain owns it).
type rateEstimator struct {
	nominal     float64 // samples per second the device claims
	nsPerSample float64 // 1e9/nominal

	started bool
	t0, n0  int64 // anchor: the first observation; x and y are relative to it

	cur    estPoint // least-delayed observation of the bin being filled
	curBin int64    // that bin's number: (t−t0)/binNs
	curOK  bool

	bins []estPoint // closed bins on the line, oldest first
	held []estPoint // the last closed bins off the line (hiccups or a step)
	run  int        // closed bins off the line in a row

	// The line: y = a + b·(x − xr), where x = n − n0 (samples) and
	// y = (t − t0) − x·nsPerSample (ns): how late the samples arrive against
	// the nominal rate. b is the slope in ns per sample.
	a, b, xr float64
	free     bool // b comes from the fit; false: b is held
	measured bool // b has been fitted at least once
	steps    int
}

// estPoint is one observation in the estimator's coordinates.
type estPoint struct{ x, y float64 }

const (
	binNs       = int64(1e9) // arrivals grouped per second of box time
	windowBins  = 60         // bins in the fit: the last minute
	measureSpan = 20.0       // seconds of bins before the slope is fitted
	minFitBins  = 10         // and at least this many bins
	shortBins   = 3          // bins the held-slope offset looks back on
	rejectNs    = 1e6        // a bin this far above the fitted line is left out
	offNs       = 3e6        // a closed bin this far off the line is held out
	stepBins    = 3          // agreeing held-out bins in a row that make a step
	maxHeldBins = 10         // held-out bins in a row that make a step anyway
)

// newRateEstimator returns an estimator for a device that claims nominal
// samples per second.
func newRateEstimator(nominal int) *rateEstimator {
	return &rateEstimator{nominal: float64(nominal), nsPerSample: 1e9 / float64(nominal)}
}

// Add records that the device's sample count reached samples (cumulative,
// from the start of the stream) with a buffer that arrived at box time
// arrivalNs. Observations that do not advance the count are ignored.
func (e *rateEstimator) Add(arrivalNs, samples int64) {
	if !e.started {
		e.started, e.t0, e.n0 = true, arrivalNs, samples
	}
	x := float64(samples - e.n0)
	if e.curOK && x <= e.cur.x {
		return
	}
	p := estPoint{x: x, y: float64(arrivalNs-e.t0) - x*e.nsPerSample}
	bin := (arrivalNs - e.t0) / binNs
	if e.curOK && bin != e.curBin {
		e.closeBin(e.cur)
		e.curOK = false
	}
	// The least-delayed buffer of the bin, judged along the current slope
	// (at 300 ppm the nominal slope is 0.3 ms a second off).
	if !e.curOK || p.y-e.b*p.x < e.cur.y-e.b*e.cur.x {
		e.cur = p
	}
	e.curBin, e.curOK = bin, true
	if !e.free {
		e.holdSlopeLine()
	}
}

// closeBin takes a finished bin's least-delayed observation into the line.
func (e *rateEstimator) closeBin(p estPoint) {
	if e.free {
		if r := p.y - e.line(p.x); math.Abs(r) > offNs {
			e.run++
			e.held = append(e.held, p)
			if len(e.held) > stepBins {
				e.held = append(e.held[:0], e.held[1:]...)
			}
			if len(e.held) == stepBins && (e.heldAgree() || e.run >= maxHeldBins) {
				e.steps++
				e.bins = append(e.bins[:0], e.held...)
				e.held, e.run = e.held[:0], 0
				e.free = false
				e.holdSlopeLine()
			}
			return
		}
		e.held, e.run = e.held[:0], 0
	}
	e.bins = append(e.bins, p)
	if len(e.bins) > windowBins {
		e.bins = append(e.bins[:0], e.bins[len(e.bins)-windowBins:]...)
	}
	if len(e.bins) >= minFitBins && (e.bins[len(e.bins)-1].x-e.bins[0].x)/e.nominal >= measureSpan {
		e.fit()
		return
	}
	if !e.free {
		e.holdSlopeLine()
	}
}

// heldAgree reports whether the held-out bins sit on one side of the line
// and within offNs of each other: one new timeline.
func (e *rateEstimator) heldAgree() bool {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range e.held {
		r := p.y - e.line(p.x)
		lo, hi = min(lo, r), max(hi, r)
	}
	return (lo > 0) == (hi > 0) && hi-lo <= offNs
}

// fit sets the line to the least-squares fit of the bins, leaving out the
// bins that sit furthest above it (hiccups), up to a quarter of them.
func (e *rateEstimator) fit() {
	use := make([]bool, len(e.bins))
	for i := range use {
		use[i] = true
	}
	for dropped := 0; ; dropped++ {
		var sx, sy float64
		n := 0
		for i, p := range e.bins {
			if use[i] {
				sx, sy, n = sx+p.x, sy+p.y, n+1
			}
		}
		xr, yr := sx/float64(n), sy/float64(n)
		var sxx, sxy float64
		for i, p := range e.bins {
			if use[i] {
				dx := p.x - xr
				sxx, sxy = sxx+dx*dx, sxy+dx*(p.y-yr)
			}
		}
		if sxx == 0 {
			return
		}
		e.a, e.b, e.xr, e.free, e.measured = yr, sxy/sxx, xr, true, true
		worst, wr := -1, rejectNs
		for i, p := range e.bins {
			if r := p.y - e.line(p.x); use[i] && r > wr {
				worst, wr = i, r
			}
		}
		if worst < 0 || dropped >= len(e.bins)/4 {
			return
		}
		use[worst] = false
	}
}

// holdSlopeLine passes the held-slope line through the lowest of the last
// shortBins closed bins and the bin being filled.
func (e *rateEstimator) holdSlopeLine() {
	best := e.cur
	for _, p := range e.bins[max(0, len(e.bins)-shortBins):] {
		if p.y-e.b*p.x < best.y-e.b*best.x {
			best = p
		}
	}
	e.a, e.xr = best.y, best.x
}

func (e *rateEstimator) line(x float64) float64 { return e.a + e.b*(x-e.xr) }

// TimeAt is the box time (CLOCK_MONOTONIC ns) at which the device's sample
// position samples arrived, on the smoothed line: the lower envelope of the
// arrivals, so a sample's time plus the smallest latency seen. Before the
// first Add it is 0.
func (e *rateEstimator) TimeAt(samples int64) int64 {
	if !e.started {
		return 0
	}
	x := float64(samples - e.n0)
	return e.t0 + int64(math.Round(x*e.nsPerSample+e.line(x)))
}

// Measured reports whether the device's rate has been measured: its bins
// have spanned measureSpan at least once.
func (e *rateEstimator) Measured() bool { return e.measured }

// PPM is the device's rate against the box clock in parts per million off
// nominal (+: the device delivers more samples per box second); 0 until
// Measured.
func (e *rateEstimator) PPM() float64 {
	if !e.measured {
		return 0
	}
	return (e.nsPerSample/(e.nsPerSample+e.b) - 1) * 1e6
}

// Steps is how many times the device's timeline stepped (its samples no
// longer lined up with the measured rate: an overrun lost some, or the
// device restarted) and the line re-anchored.
func (e *rateEstimator) Steps() int { return e.steps }
