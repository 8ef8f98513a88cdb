package av

import (
	"math"
	"slices"
)

// rateEstimator measures a capture device's sample clock against the box
// clock (CLOCK_MONOTONIC) from the arrival times of its buffers, so an audio
// chain can stamp every buffer with the box time its samples were taken and
// let the resampler follow the box (issue 10: two sound cards drift ±100..300
// ppm against each other; after an hour, chains that only count samples are
// hundreds of ms apart and a switch between them jumps).
//
// It is fed, for each device buffer, the box time at which the buffer's last
// sample arrived and the device's cumulative sample count at that point. An
// arrival is the capture instant plus a latency that is mostly one-sided:
// the wake-up of the reader, the scheduler, a sound server delivering in
// fragments (PulseAudio's null-sink monitor: 43 ms buffers read every 50 ms,
// a sawtooth of 0..45 ms), and now and then a hiccup of hundreds of ms after
// which the buffered samples arrive in a burst. So the estimator works on
// the lower envelope of the arrivals rather than on their mean:
//
//   - Arrivals are grouped into bins of one second (binNs); each bin keeps
//     only its least-delayed buffer (the NTP minimum-delay filter). With tens
//     of buffers a second, the minimum sits near the latency floor whatever
//     the jitter, and a hiccup, which only delays, is invisible unless it
//     swallows a whole bin.
//   - The rate is a least-squares line through the bin minima of the last
//     two minutes (windowBins: on the PulseAudio monitor, one minute left
//     the estimate wandering ±15 ppm, two halve that), refitted as each bin
//     closes. The fit drops the
//     bins furthest off it, either side, while they are beyond three times
//     the bins' robust spread (MAD) and rejectNs, up to a quarter of them: a
//     hiccup that swallowed a bin sits above, and a sound server sometimes
//     hands a buffer over early, 9 ms below the envelope on the monitor.
//     The rate is measured once the fit's standard error is within
//     measureSE (a clean card: about 10 s; the PulseAudio monitor, whose bin
//     minima scatter by a ms: the full window) or the bins span fullSpan.
//     A windowed fit rather than a PLL because its error is bounded by the
//     window and known (the standard error), it has no loop gain to tune
//     against an unknown jitter, and it measures in a bounded span; the
//     price, a step in the data tilting the slope, is handled next.
//   - A closed bin further than offNs (or five times the fit's scatter) from
//     the line is held out. When stepBins of them in a row agree with each
//     other, the device's timeline has stepped (samples lost in an overrun,
//     a device restart): the old bins are dropped and the line re-anchors on
//     the new ones, keeping the measured rate. So it does after maxHeldBins
//     off the line in a row that do not agree (a rate that changed beyond
//     reason). Held-out bins followed by one on the line were a hiccup and
//     are forgotten.
//   - Until the rate is measured (and after a step, until the new bins are
//     fitted as well), the slope is held (nominal at first, the last
//     measured rate after a step) and the line passes through the median of
//     the last few bins (heldBins; before the first bin closes, through the
//     least-delayed arrival so far): drift shows as a slowly moving offset,
//     which the resampler follows anyway.
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
	scatter  float64 // standard deviation of the fitted bins about the line (ns)
	free     bool    // the line is the fit; false: b is held
	measured bool    // b has been fitted well enough at least once
	steps    int
}

// estPoint is one observation in the estimator's coordinates.
type estPoint struct{ x, y float64 }

const (
	binNs       = int64(1e9) // arrivals grouped per second of box time
	windowBins  = 120        // bins in the fit: the last two minutes
	minFitSpan  = 10.0       // seconds of bins before a fit is tried
	minFitBins  = 10         // and at least this many bins
	measureSE   = 5.0        // ppm: a fit this certain measures the rate
	fullSpan    = 50.0       // seconds of bins that measure it anyway
	heldBins    = 3          // bins the held-slope line takes the median of
	rejectNs    = 1e6        // the fit keeps bins this close whatever their spread
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
	if len(e.bins) == 0 {
		e.a, e.xr = e.cur.y, e.cur.x // the first second: the least-delayed arrival
	}
}

// closeBin takes a finished bin's least-delayed observation into the line.
func (e *rateEstimator) closeBin(p estPoint) {
	if e.free {
		if r := p.y - e.line(p.x); math.Abs(r) > max(offNs, 5*e.scatter) {
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
	if span := (e.bins[len(e.bins)-1].x - e.bins[0].x) / e.nominal; len(e.bins) >= minFitBins && span >= minFitSpan {
		// Once the line is the fit, every refit replaces it; before (and
		// after a step), only one good enough to measure the rate.
		if f, ok := fitLine(e.bins); ok && (e.free || f.sePPM(e.nsPerSample) <= measureSE || span >= fullSpan) {
			e.a, e.b, e.xr, e.scatter = f.a, f.b, f.xr, f.scatter
			e.free, e.measured = true, true
			return
		}
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

// lineFit is a least-squares line through bin minima.
type lineFit struct {
	a, b, xr float64 // y = a + b·(x − xr)
	scatter  float64 // residual standard deviation of the bins kept (ns)
	seB      float64 // standard error of b (ns per sample)
}

// sePPM is the fit's standard error as a rate, in ppm.
func (f lineFit) sePPM(nsPerSample float64) float64 { return f.seB / nsPerSample * 1e6 }

// fitLine fits pts by least squares, dropping the point furthest off the
// line while it is beyond max(rejectNs, 3×robust spread), up to a quarter
// of the points. ok is false when too few points are left to say anything.
func fitLine(pts []estPoint) (f lineFit, ok bool) {
	use := make([]bool, len(pts))
	for i := range use {
		use[i] = true
	}
	res := make([]float64, 0, len(pts))
	for dropped := 0; ; dropped++ {
		var sx, sy float64
		n := 0
		for i, p := range pts {
			if use[i] {
				sx, sy, n = sx+p.x, sy+p.y, n+1
			}
		}
		if n < 3 {
			return lineFit{}, false
		}
		xr, yr := sx/float64(n), sy/float64(n)
		var sxx, sxy float64
		for i, p := range pts {
			if use[i] {
				dx := p.x - xr
				sxx, sxy = sxx+dx*dx, sxy+dx*(p.y-yr)
			}
		}
		if sxx == 0 {
			return lineFit{}, false
		}
		f = lineFit{a: yr, b: sxy / sxx, xr: xr}
		res = res[:0]
		var ss float64
		worst, wr := -1, 0.0
		for i, p := range pts {
			if !use[i] {
				continue
			}
			r := p.y - (f.a + f.b*(p.x-xr))
			res = append(res, r)
			ss += r * r
			if math.Abs(r) > wr {
				worst, wr = i, math.Abs(r)
			}
		}
		f.scatter = math.Sqrt(ss / float64(n-2))
		f.seB = f.scatter / math.Sqrt(sxx)
		if wr <= max(rejectNs, 3*robustSpread(res)) || dropped >= len(pts)/4 {
			return f, true
		}
		use[worst] = false
	}
}

// robustSpread is the standard deviation that the median absolute
// deviation of v implies for normal data (1.4826·MAD); it reorders v.
func robustSpread(v []float64) float64 {
	m := median(v)
	for i := range v {
		v[i] = math.Abs(v[i] - m)
	}
	return 1.4826 * median(v)
}

// median of v (reordered); 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// holdSlopeLine passes the held-slope line through the median of the last
// heldBins closed bins, at the latest.
func (e *rateEstimator) holdSlopeLine() {
	last := e.bins[max(0, len(e.bins)-heldBins):]
	xr := last[len(last)-1].x
	var a [heldBins]float64
	for i, p := range last {
		a[i] = p.y - e.b*(p.x-xr)
	}
	e.a, e.xr = median(a[:len(last)]), xr
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

// Measured reports whether the device's rate has been measured: a fit of
// its bins has been within measureSE, or spanned fullSpan, at least once.
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
