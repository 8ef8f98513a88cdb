package abr

import (
	"fmt"
	"math"
	"time"
)

// Tuning. The names are used in the package comment.
const (
	rateWindow     = 500 * time.Millisecond  // delivered rate and send-buffer growth
	recentWindow   = 200 * time.Millisecond  // "still growing now"
	minRateSpan    = 200 * time.Millisecond  // shortest span a delivered rate is trusted over
	confirmFor     = 250 * time.Millisecond  // congestion must persist this long (a path's delay step does not)
	stallLimit     = 500 * time.Millisecond  // no ACK progress this long with packets outstanding: emergency
	pauseLimit     = stallLimit / 2          // an ACK pause up to this long is a hole being repaired, not a cut
	baseCreep      = 10 * time.Second        // time constant of the send-buffer floor creeping up
	decreaseHold   = 500 * time.Millisecond  // after a decrease, before the next congestion decrease
	increaseHold   = time.Second             // after a decrease, before the first increase
	minChangeGap   = 500 * time.Millisecond  // between two non-urgent changes
	probeStep      = time.Second             // one probing step per second (two just under the capacity)
	climbStep      = 500 * time.Millisecond  // one fast-climb step per half second
	climbTime      = 12 * time.Second        // a fast climb reaches the ceiling within this
	capacityFresh  = 5 * time.Second         // a measured capacity is trusted to jump back to this long
	capacityKnown  = 20 * time.Second        // and to probe carefully below this long
	kneeKnown      = 30 * time.Second        // the bitrate of the last congestion is held against the climb this long
	kneeFrom       = 1500 * time.Millisecond // the knee is the lowest bitrate from this long before a decrease
	kneeTo         = 500 * time.Millisecond  // to this long before it (the queue built under it, detection took the rest)
	stormShare     = 0.15                    // retransmissions over this share of the delivered rate: the rate is not the capacity
	kneeSlowFrom   = 0.92                    // of the knee: from here the climb probes once per kneeSlowStep
	kneeSlowStep   = 3 * time.Second
	historyKeep    = 2 * time.Second
	congestedShare = 0.85 // of the measured capacity, after a congestion decrease
	emergencyShare = 0.70 // of the measured capacity, after an emergency
	backShare      = 0.80 // of a fresh capacity, when jumping back after a transient
	kneeBackShare  = 0.85 // of the knee, when jumping back after a decrease
	congestedCut   = 0.90 // a congestion decrease goes at least this far under the current bitrate
	blindCut       = 0.70 // and, when ACKs paused while the queue built (the rate is noise), no further
	growthShare    = 0.02 // send-buffer growth over this share of the offered rate is "growing"
	minStepShare   = 0.05 // smallest change applied, with minStepKbps
	minStepKbps    = 100
	probeShare     = 0.05
	initialOverhd  = 1.05 // stream kbps per video kbps before it is learnt (TS, audio)
)

// Controller is the pure bitrate controller: feed it one Sample per tick
// with Update. Not safe for concurrent use (ABR serialises it).
type Controller struct {
	cfg     Config
	ceiling int
	capWhy  string // who set the ceiling ("operator cap 3000 kbps", "shed: on battery")
	cur     int
	reason  string
	started bool

	hist []point
	// session state
	lastSent     uint64
	lastAcked    float64
	lastProgress time.Time // last tick with ACK progress (or nothing outstanding)
	stallEnd     time.Time // the first tick of the current run of ACK progress
	sbBase       float64   // floor of the send-buffer span (the path's own round trip)
	haveBase     bool
	lastTick     time.Time
	condSince    time.Time // congestion condition true since (zero: false)
	prevLinks    []LinkSample

	overhead float64 // stream kbps / video kbps, learnt on clean ticks

	capKbps float64 // last measured capacity (stream kbps)
	capAt   time.Time
	// kneeKbps is the video bitrate at which the network last congested:
	// the lowest bitrate of the second before a congestion or emergency
	// decrease, or the delivered rate when ACKs flowed cleanly enough to
	// measure it. Unlike capKbps it does not depend on the ACK rate, which
	// over lossy links jumps and pauses around every repaired hole.
	kneeKbps float64
	kneeAt   time.Time

	lastChange    time.Time
	lastDecrease  time.Time
	decHoldUntil  time.Time
	incHoldUntil  time.Time
	emergencyAt   time.Time
	emergencySbMs float64
	climbFrom     int // bitrate where the current fast climb started (0: none)
}

type point struct {
	t      time.Time
	acked  float64 // cumulative packets
	sbPkts float64
	sent   float64 // cumulative unique packets handed to the network
	kbps   int     // the bitrate decided at this tick's start
	retr   float64 // cumulative retransmitted packets
	// carried is the cumulative number of packets the links delivered
	// (their SRTLA ACKs, repairs included); carriedOK is false when no link
	// counts them.
	carried   float64
	carriedOK bool
}

// NewController returns a controller at cfg.StartKbps (MaxKbps by
// default). cfg should pass Validate; out-of-range fields are clamped.
func NewController(cfg Config) *Controller {
	cfg = cfg.withDefaults()
	return &Controller{cfg: cfg, ceiling: cfg.MaxKbps, cur: cfg.StartKbps, overhead: initialOverhd}
}

// Kbps is the current bitrate.
func (c *Controller) Kbps() int { return c.cur }

// Ceiling is the current maximum (Config.MaxKbps or the operator's cap).
func (c *Controller) Ceiling() int { return c.ceiling }

// SetMax sets the operator's cap, clamped to [MinKbps, Config.MaxKbps]; 0
// removes it. A cap below the current bitrate takes effect at the next
// Update, immediately; a higher one is climbed to.
func (c *Controller) SetMax(kbps int) { c.SetCeiling(kbps, "") }

// SetCeiling is SetMax with the reason the bitrate will show when the
// ceiling pulls it down (empty: "operator cap N kbps").
func (c *Controller) SetCeiling(kbps int, why string) {
	if kbps <= 0 || kbps > c.cfg.MaxKbps {
		kbps = c.cfg.MaxKbps
	}
	c.ceiling = max(kbps, c.cfg.MinKbps)
	c.climbFrom = 0
	c.capWhy = why
	if why == "" {
		c.capWhy = fmt.Sprintf("operator cap %d kbps", c.ceiling)
	}
}

// Update takes one sample and decides the bitrate. now must not go
// backwards. The first call returns the start bitrate with Changed set.
func (c *Controller) Update(now time.Time, s Sample) Decision {
	if !c.started {
		c.started = true
		c.lastChange = now
		c.reason = "start"
		c.resetSession(now)
		return Decision{Kbps: c.cur, Reason: c.reason, Changed: true}
	}
	if c.cur > c.ceiling {
		return c.apply(now, c.ceiling, c.capWhy, true)
	}
	if !s.Connected {
		c.resetSession(now)
		return c.hold()
	}
	if s.PktSent < c.lastSent {
		c.resetSession(now)
	}
	return c.tick(now, s)
}

func (c *Controller) resetSession(now time.Time) {
	c.hist = c.hist[:0]
	c.lastSent, c.lastAcked = 0, 0
	c.lastProgress, c.stallEnd = now, now
	c.haveBase = false
	c.condSince = time.Time{}
	c.prevLinks = nil
	c.lastTick = now
}

func (c *Controller) hold() Decision { return Decision{Kbps: c.cur, Reason: c.reason} }

func (c *Controller) tick(now time.Time, s Sample) Decision {
	pktKbit := float64(DefaultPktBytes) * 8 / 1000
	if s.PktBytes > 0 {
		pktKbit = float64(s.PktBytes) * 8 / 1000
	}
	dt := now.Sub(c.lastTick)
	c.lastTick = now
	c.lastSent = s.PktSent

	// ACK progress and stalls.
	acked := float64(s.PktAcked)
	if s.PktAcked == 0 {
		acked = float64(s.PktSent) - float64(s.PktRetrans) - float64(s.SendBufPkts)
	}
	acked = max(acked, c.lastAcked)
	progress := acked > c.lastAcked
	c.lastAcked = acked
	outstanding := s.SendBufPkts > 0
	switch {
	case progress:
		if now.Sub(c.lastProgress) > c.cfg.Interval*3/2 {
			c.stallEnd = now // a run of progress starts here: rates are measured from it
		}
		c.lastProgress = now
	case !outstanding:
		c.lastProgress = now // nothing to acknowledge is not a stall
	}
	stall := now.Sub(c.lastProgress)
	if !progress && outstanding {
		c.stallEnd = now
	}

	sentUnique := float64(s.PktSent) - float64(s.PktRetrans)
	var carried uint64
	for _, l := range s.Links {
		carried += l.DeliveredPkts
	}
	c.hist = append(c.hist, point{t: now, acked: acked, sbPkts: float64(s.SendBufPkts), sent: sentUnique, kbps: c.cur, retr: float64(s.PktRetrans),
		carried: float64(carried), carriedOK: carried > 0})
	for len(c.hist) > 1 && now.Sub(c.hist[0].t) > historyKeep {
		c.hist = c.hist[1:]
	}

	offered := float64(c.cur) * c.overhead
	rate, rateOK := c.rateSince(now, maxTime(now.Add(-rateWindow), c.stallEnd), pktKbit)
	growth := c.growthKbps(now, rateWindow, pktKbit)
	recent := c.growthKbps(now, recentWindow, pktKbit)
	growing := growth > growthShare*offered && recent > growthShare*offered

	// The send-buffer floor: what the span is with no queue (the slowest
	// carrying path's round trip plus a retransmission). It follows drops
	// at once and rises slowly, and only while ACKs flow and the buffer
	// does not grow, so a path that became slower is learnt while a queue
	// building up (or an outage) is not.
	if !c.haveBase || s.SendBufMs < c.sbBase {
		c.sbBase, c.haveBase = s.SendBufMs, true
	} else if dt > 0 && progress && !growing && recent <= 0 {
		c.sbBase += (s.SendBufMs - c.sbBase) * min(1, float64(dt)/float64(baseCreep))
	}
	queue := s.SendBufMs - c.sbBase
	qThresh := math.Max(40, float64(c.cfg.Latency.Milliseconds())/20)
	latencyMs := float64(c.cfg.Latency.Milliseconds())

	// Backlogged: the delivered rate is the capacity. Not while the buffer
	// drains: one ACK then covers every packet held behind a repaired hole,
	// and the "rate" of that burst is several times the capacity (seen in
	// the lab: 8.7 Mbit/s "delivered" over 3 Mbit/s of links after an
	// emergency, and a jump back straight into the next one).
	//
	// Nor when ACKs paused in the window: over lossy links the ACK point
	// waits behind every hole whose repair was lost again and then jumps,
	// and a rate measured across that is noise (seen in the lab: 3.0 Mbit/s
	// "delivered" over links carrying 6; the jump back aimed there and the
	// climb after it went geometric, straight past the knee, every 10 s).
	steady := rateOK && !c.stallEnd.After(now.Add(-rateWindow)) && !c.storm(now, now.Add(-rateWindow), rate, pktKbit)
	if steady && queue > qThresh && recent >= 0 {
		c.capKbps, c.capAt = rate, now
	}
	clean := rateOK && !growing && queue <= qThresh && stall == 0 && s.SendBufMs < latencyMs/3
	if clean && rate > 0.8*offered && rate < 1.6*offered {
		r := rate / float64(c.cur)
		c.overhead += (min(1.5, max(1.0, r)) - c.overhead) * 0.02
	}

	lost, lostName := c.lostShare(s.Links)
	c.prevLinks = append(c.prevLinks[:0], s.Links...)
	allDead := len(s.Links) > 0
	for _, l := range s.Links {
		if l.Alive {
			allDead = false
		}
	}

	// 1. Emergency: the send buffer is a third of the way to the latency,
	// ACKs stalled, or no link is alive. One step, to what the network
	// delivers now (the minimum when it delivers nothing).
	// A repeat within a few latencies needs the buffer still growing: one
	// that drains is the last cut working.
	repeat := !c.emergencyAt.IsZero() && now.Sub(c.emergencyAt) < 3*c.cfg.Latency
	again := !repeat || (recent > 0 && (now.Sub(c.emergencyAt) >= c.cfg.Latency || s.SendBufMs > 1.25*c.emergencySbMs))
	if c.cur > c.cfg.MinKbps && (s.SendBufMs >= latencyMs/3 || stall >= stallLimit || allDead) && again {
		target := float64(c.cfg.MinKbps)
		switch {
		case steady && !allDead && stall == 0:
			target = math.Min(emergencyShare*rate/c.overhead, 0.8*float64(c.cur))
			// ACKs flow and the buffer still grew this far: what is
			// delivered now is the capacity, and what was measured before
			// is stale (the capacity fell), so a jump back aims here.
			c.capKbps, c.capAt = rate, now
			c.setKnee(now, rate, true, c.overloaded(now, now.Add(-rateWindow), pktKbit))
		case !allDead && stall <= pauseLimit:
			// The links are alive and ACKs merely paused (behind a hole
			// being repaired) or a storm of repairs holds the rate down:
			// not the minimum, but 70 % of what the network delivered over
			// the last seconds, pauses included (seen in the lab: straight
			// to 1000 kbps over links carrying 6000, then a climb that ate
			// most of the next 15 s).
			if r, ok := c.deliveredRecent(now, pktKbit); ok && r > 0 {
				target = math.Min(emergencyShare*r/c.overhead, 0.8*float64(c.cur))
				if now.Sub(c.kneeAt) > kneeFrom {
					c.setKnee(now, r, false, c.overloaded(now, now.Add(-rateWindow), pktKbit)) // else the congestion cut just before it set it
				}
			}
		}
		why := fmt.Sprintf("emergency: send buffer %.0f ms of %.0f ms latency", s.SendBufMs, latencyMs)
		switch {
		case allDead:
			why = "emergency: no uplink alive"
		case stall >= stallLimit:
			why = fmt.Sprintf("emergency: no ACK for %d ms", stall.Milliseconds())
		}
		c.emergencyAt, c.emergencySbMs = now, s.SendBufMs
		return c.decrease(now, target, why, true)
	}

	// 2. A carrying link died: its share is gone at once.
	if lost > 0 && c.cur > c.cfg.MinKbps {
		return c.decrease(now, float64(c.cur)*(1-lost), fmt.Sprintf("uplink %s lost (%.0f%% of the load)", lostName, 100*lost), true)
	}

	// 3. Congestion: the send buffer grows, and has for confirmFor, while
	// ACKs flow: the delivered rate is the bond's capacity.
	cond := progress && rateOK && queue > qThresh && growing
	if !cond {
		c.condSince = time.Time{}
	} else if c.condSince.IsZero() {
		c.condSince = now
	}
	// The links carrying less than the originals handed to them is a
	// capacity drop, not a path's delay step: no need to wait confirmFor
	// (250 ms more of the encoder over the capacity, the shaper's queue
	// filling and then dropping).
	if cond && (now.Sub(c.condSince) >= confirmFor || c.overloaded(now, now.Add(-rateWindow), pktKbit) > 0) && !now.Before(c.decHoldUntil) {
		// The rate since the queue started building is the capacity itself;
		// the wider window still holds the time before the change. It is
		// trusted only when ACKs flowed on every tick since: across a pause
		// behind a repaired hole it is noise, too low or, after the jump,
		// too high (seen in the lab: no cut at all while the buffer grew
		// from 160 to 460 ms, the "delivered" rate above the offered).
		reliable := !c.stallEnd.After(c.condSince)
		if r, ok := c.rateSince(now, maxTime(c.condSince, c.stallEnd), pktKbit); ok {
			rate = r
		} else {
			reliable = false
		}
		// Nor while retransmissions take a large share of the links: then
		// the unique rate acknowledged is what a storm of repairs leaves,
		// far under what the links carry once it is over (seen in the lab:
		// 3.4 Mbit/s "delivered" at the first overload from 8000 kbps,
		// 6 Mbit/s carried clean a few seconds later).
		if c.storm(now, c.condSince, rate, pktKbit) {
			reliable = false
		}
		cur := float64(c.cur)
		target := congestedShare * rate / c.overhead
		if reliable {
			c.capKbps, c.capAt = rate, now
		} else {
			target = math.Max(target, blindCut*cur)
		}
		// The links carried less than the originals handed to them while
		// the queue built (their SRTLA ACKs, which no hole holds back): that
		// is the capacity, whatever the ACK point says (seen in the lab:
		// links halved from 6 to 3 Mbit/s, a blind cut from 4000 to 2800
		// kbps, still over 3 Mbit/s with audio and TS, emergencies down
		// to 800 and 8 frames lost).
		// It goes to 70 % of that, not 85 %: the shaper's queue is full
		// and dropping, the encoder still sends the old bitrate for a few
		// hundred ms, and the repairs of what was dropped need room before
		// their latency runs out (at 85 % one run in two still lost a frame).
		over := c.overloaded(now, c.condSince, pktKbit)
		if over == 0 {
			over = c.overloaded(now, now.Add(-rateWindow), pktKbit) // condSince too recent to measure over
		}
		if over > 0 {
			target = math.Min(target, emergencyShare*over/c.overhead)
		}
		c.setKnee(now, rate, reliable, over)
		// The buffer grows: whatever the rate says, the bitrate goes down.
		target = math.Min(target, congestedCut*cur)
		return c.decrease(now, target, fmt.Sprintf("congestion: send buffer %.0f ms, delivered %.0f kbps", s.SendBufMs, rate), false)
	}

	// 4. Climb while the network delivers what the encoder offers. That is
	// compared with what entered SRT, not with the bitrate: x264 runs
	// without filler, so a static picture (slides) sends far less than
	// the bitrate and must not hold the climb back. An encoder that sent
	// nothing for the whole window (a CPU stall) holds it.
	input := c.inputKbps(now, rateWindow, pktKbit)
	if clean && input > 0 && rate >= 0.9*input && c.cur < c.ceiling && !now.Before(c.incHoldUntil) {
		return c.climb(now)
	}
	return c.hold()
}

func (c *Controller) climb(now time.Time) Decision {
	cur := float64(c.cur)
	level := math.Inf(1) // offered stream rate / last measured capacity
	if !c.capAt.IsZero() && now.Sub(c.capAt) <= capacityKnown && c.capKbps > 0 {
		level = cur * c.overhead / c.capKbps
	}
	fresh := !c.capAt.IsZero() && now.Sub(c.capAt) <= capacityFresh
	knee := 0.0
	if !c.kneeAt.IsZero() && now.Sub(c.kneeAt) <= kneeKnown {
		knee = c.kneeKbps
	}
	probe := func(step time.Duration) Decision {
		c.climbFrom = 0
		if now.Sub(c.lastChange) < step {
			return c.hold()
		}
		return c.apply(now, int(max(cur*(1+probeShare), cur+minStepKbps)+0.5), "probing", false)
	}
	switch {
	case fresh && level < 0.75:
		// A transient (a cut, a CPU hiccup) took the bitrate well below
		// what the bond was just measured to carry: go straight back.
		c.climbFrom = 0
		target := backShare * c.capKbps / c.overhead
		if knee > 0 {
			target = math.Min(target, kneeBackShare*knee)
		}
		return c.apply(now, int(target), "capacity back", false)
	case knee > 0 && cur*(1+probeShare) < kneeBackShare*knee:
		// Well under the bitrate that last congested the network (after a
		// cut aimed at a rate measured across ACK pauses, or an
		// emergency): straight back under it, not a climb from here.
		c.climbFrom = 0
		return c.apply(now, int(kneeBackShare*knee), "back under the knee", false)
	case knee > 0 && cur < knee:
		// Under the knee: probe, once every kneeSlowStep close to it,
		// where the next congestion is likely.
		if cur >= kneeSlowFrom*knee {
			return probe(kneeSlowStep)
		}
		return probe(probeStep)
	case knee > 0 && cur < 1.1*knee:
		return probe(2 * probeStep)
	case level <= 1.1:
		// Near the capacity measured at the last congestion: probe, and
		// more slowly just under it, where the last congestion was.
		if level >= 0.9 {
			return probe(2 * probeStep)
		}
		return probe(probeStep)
	default:
		// No known limit (or already past it): a geometric climb that
		// reaches the ceiling within climbTime from where it started.
		if c.climbFrom == 0 {
			c.climbFrom = c.cur
		}
		if now.Sub(c.lastChange) < climbStep {
			return c.hold()
		}
		steps := float64(climbTime) / float64(climbStep)
		f := math.Pow(float64(c.ceiling)/float64(c.climbFrom), 1/steps)
		// never under the smallest step apply takes, or a low bitrate
		// would ask for steps it refuses and never climb
		return c.apply(now, int(max(cur*max(f, 1+minStepShare), cur+minStepKbps)+0.5), "climbing", false)
	}
}

// setKnee notes the knee at a decrease: the lowest bitrate from kneeFrom
// to kneeTo before it (the queue started building under it), or the
// delivered rate when it was measured cleanly and is lower.
func (c *Controller) setKnee(now time.Time, rate float64, reliable bool, carried float64) {
	k := c.cur
	for _, p := range c.hist {
		if age := now.Sub(p.t); age <= kneeFrom && age >= kneeTo {
			k = min(k, p.kbps)
		}
	}
	knee := float64(k)
	if reliable && rate > 0 {
		knee = math.Min(knee, rate/c.overhead)
	}
	if carried > 0 {
		knee = math.Min(knee, carried/c.overhead)
	}
	c.kneeKbps, c.kneeAt = knee, now
}

// storm reports whether the retransmissions since from (to now) took more
// than stormShare of the delivered rate: the links then carried repairs,
// and the delivered rate is not what they can carry.
func (c *Controller) storm(now, from time.Time, rate, pktKbit float64) bool {
	last := c.hist[len(c.hist)-1]
	for _, p := range c.hist {
		if p.t.Before(from) {
			continue
		}
		span := now.Sub(p.t).Seconds()
		if span <= 0 {
			return false
		}
		retr := (last.retr - p.retr) * pktKbit / span
		return retr > stormShare*rate
	}
	return false
}

// deliveredRecent is the delivered rate over the whole history (about
// historyKeep), ACK pauses included: what the network carried lately.
func (c *Controller) deliveredRecent(now time.Time, pktKbit float64) (float64, bool) {
	if len(c.hist) == 0 {
		return 0, false
	}
	return c.rateSince(now, c.hist[0].t, pktKbit)
}

func (c *Controller) decrease(now time.Time, target float64, why string, urgent bool) Decision {
	d := c.apply(now, int(target), why, urgent)
	if d.Changed {
		c.decHoldUntil = now.Add(decreaseHold)
		c.incHoldUntil = now.Add(increaseHold)
		c.climbFrom = 0
		c.condSince = time.Time{}
	}
	return d
}

// apply rounds target to 100 kbps (down for a decrease, up for an
// increase), clamps it, and takes it when the unrounded step is big enough
// (or the result is a bound, or it is urgent) and not too soon.
func (c *Controller) apply(now time.Time, target int, why string, urgent bool) Decision {
	raw := target - c.cur
	if target < c.cur {
		target = target / 100 * 100
	} else {
		target = (target + 99) / 100 * 100
	}
	target = min(max(target, c.cfg.MinKbps), c.ceiling)
	step := target - c.cur
	if step == 0 {
		return c.hold()
	}
	if !urgent {
		minStep := max(minStepKbps, int(minStepShare*float64(c.cur)))
		atBound := target == c.ceiling || target == c.cfg.MinKbps
		if (abs(raw) < minStep && !atBound) || now.Sub(c.lastChange) < minChangeGap {
			return c.hold()
		}
	}
	c.cur, c.reason, c.lastChange = target, why, now
	if step < 0 {
		c.lastDecrease = now
	}
	return Decision{Kbps: c.cur, Reason: why, Changed: true}
}

// rateSince is the delivered rate (stream kbps) from the first history
// point at or after from to now; ok when that spans minRateSpan.
func (c *Controller) rateSince(now, from time.Time, pktKbit float64) (float64, bool) {
	if len(c.hist) == 0 {
		return 0, false
	}
	last := c.hist[len(c.hist)-1]
	for _, p := range c.hist {
		if p.t.Before(from) {
			continue
		}
		span := now.Sub(p.t)
		if span < minRateSpan {
			return 0, false
		}
		return (last.acked - p.acked) * pktKbit / span.Seconds(), true
	}
	return 0, false
}

// overloaded is the rate the links carried since from (their SRTLA ACKs,
// repairs included) when it is under the unique stream rate handed to them
// meanwhile: they cannot carry even the originals, and what they carry is
// the capacity. 0: not overloaded, or not known.
func (c *Controller) overloaded(now, from time.Time, pktKbit float64) float64 {
	last := c.hist[len(c.hist)-1]
	for _, p := range c.hist {
		if p.t.Before(from) {
			continue
		}
		span := now.Sub(p.t)
		if span < minRateSpan || !p.carriedOK || !last.carriedOK || last.carried < p.carried {
			return 0
		}
		carried := (last.carried - p.carried) * pktKbit / span.Seconds()
		if input := (last.sent - p.sent) * pktKbit / span.Seconds(); carried < 0.9*input {
			return carried
		}
		return 0
	}
	return 0
}

// inputKbps is the unique stream rate handed to the network over the last
// window.
func (c *Controller) inputKbps(now time.Time, window time.Duration, pktKbit float64) float64 {
	last := c.hist[len(c.hist)-1]
	for _, p := range c.hist {
		if span := now.Sub(p.t); span <= window && span > 0 {
			return (last.sent - p.sent) * pktKbit / span.Seconds()
		}
	}
	return 0
}

// growthKbps is how fast the send buffer grew over the last window.
func (c *Controller) growthKbps(now time.Time, window time.Duration, pktKbit float64) float64 {
	if len(c.hist) < 2 {
		return 0
	}
	last := c.hist[len(c.hist)-1]
	for _, p := range c.hist {
		if now.Sub(p.t) > window {
			continue
		}
		span := now.Sub(p.t)
		if span <= 0 {
			return 0
		}
		return (last.sbPkts - p.sbPkts) * pktKbit / span.Seconds()
	}
	return 0
}

// lostShare is the share of the load that links carrying in the previous
// sample and now dead (or gone) were carrying.
func (c *Controller) lostShare(links []LinkSample) (float64, string) {
	var total, lost float64
	var name string
	for _, p := range c.prevLinks {
		if !p.Alive || !p.Carrying || p.ThroughputKbps <= 0 {
			continue
		}
		total += p.ThroughputKbps
		alive := false
		for _, l := range links {
			if l.Name == p.Name && l.Alive {
				alive = true
			}
		}
		if !alive {
			lost += p.ThroughputKbps
			name = p.Name
		}
	}
	if total == 0 || lost == total {
		return 0, "" // all gone: the emergency rule's business
	}
	return lost / total, name
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
