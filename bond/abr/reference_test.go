package abr

import (
	"math"
	"testing"
	"time"
)

// reference is belacoder's controller as SRTLA.md's appendix describes it
// (every 20 ms; EWMAs of the send-buffer packets and RTT; four rules), to
// check that the fluid model reproduces its known failures, so the goal
// tests pass for the design and not because the model is easy.
type reference struct {
	min, max  int
	latencyMs float64
	cur       int // exact
	set       int // rounded to 100 kbps, what the encoder runs at
	started   bool

	bsAvg, bsJit, prevBs                   float64
	rttAvg, rttJit, prevRTT, rttMin, trend float64
	thr                                    float64
	nextDec, nextInc                       time.Time
}

func newReference(cfg Config) *reference {
	return &reference{min: cfg.MinKbps, max: cfg.MaxKbps, latencyMs: float64(cfg.Latency.Milliseconds()), cur: cfg.MinKbps}
}

func (r *reference) Kbps() int { return r.cur / 100 * 100 }

func (r *reference) Update(now time.Time, s Sample) Decision {
	bs, rtt := float64(s.SendBufPkts), s.RTTms
	if !r.started {
		r.started = true
		r.rttAvg, r.prevRTT, r.rttMin = rtt, rtt, rtt
		r.set = r.Kbps()
		return Decision{Kbps: r.set, Reason: "start", Changed: true}
	}
	r.bsAvg = 0.99*r.bsAvg + 0.01*bs
	r.bsJit *= 0.99
	if d := bs - r.prevBs; d > r.bsJit {
		r.bsJit = d
	}
	r.prevBs = bs
	r.rttAvg = 0.99*r.rttAvg + 0.01*rtt
	d := rtt - r.prevRTT
	r.trend = 0.8*r.trend + 0.2*d
	r.rttJit *= 0.99
	if d > r.rttJit {
		r.rttJit = d
	}
	r.prevRTT = rtt
	r.rttMin *= 1.001
	if rtt < r.rttMin && rtt != 100 && d <= 0 {
		r.rttMin = rtt
	}
	r.thr = 0.97*r.thr + 0.03*s.SendRateKbps

	bsTh1 := math.Max(50, r.bsAvg+2.5*r.bsJit)
	bsTh2 := math.Max(50, r.bsAvg+math.Max(3*r.bsJit, r.bsAvg))
	bsTh2 = math.Min(bsTh2, r.thr*1000/8/1316*r.latencyMs/2000)
	bsTh3 := 4 * (r.bsAvg + r.bsJit)
	rttThMax := r.rttAvg + math.Max(4*r.rttJit, 0.15*r.rttAvg)
	rttThMin := r.rttMin + math.Max(1, 2*r.rttJit)

	next := r.cur
	why := ""
	switch {
	case r.cur > r.min && (rtt >= r.latencyMs/3 || bs > bsTh3):
		next, why = r.min, "emergency"
		r.nextDec = now.Add(200 * time.Millisecond)
	case !now.Before(r.nextDec) && (rtt > r.latencyMs/5 || bs > bsTh2):
		next, why = r.cur-100-r.cur/10, "heavy"
		r.nextDec = now.Add(250 * time.Millisecond)
	case !now.Before(r.nextDec) && (rtt > rttThMax || bs > bsTh1):
		next, why = r.cur-100, "light"
		r.nextDec = now.Add(200 * time.Millisecond)
	case !now.Before(r.nextInc) && rtt < rttThMin && r.trend < 0.01:
		next, why = r.cur+30+r.cur/30, "increase"
		r.nextInc = now.Add(500 * time.Millisecond)
	}
	// belacoder keeps the exact value and rounds only what it sets.
	r.cur = min(max(next, r.min), r.max)
	set := r.cur / 100 * 100
	if set == r.set {
		return Decision{Kbps: set}
	}
	r.set = set
	return Decision{Kbps: set, Reason: why, Changed: true}
}

// The same scenarios for both controllers: where the field saw the
// reference fail for reasons a fluid model has (stuck low after a cut, an
// RTT rise on one modem read as congestion) it must come out worse here, or
// the goal tests would prove nothing. Over the lossy 5 + 2 bond the model
// does not reproduce its lab failure (4 Mbit/s clean, 5 broken: late
// retransmissions and tbf drop bursts are packet-level effects), so that
// scenario only logs both.
func TestModelSeparatesReferenceFromController(t *testing.T) {
	type result struct {
		before  int // kbps just before the event
		low     int // lowest kbps from the event on
		settled int // mean kbps over the last 30 s
		peakSb  float64
	}
	scenarios := []struct {
		name      string
		cfg       Config
		links     func() []*simLink
		event     func(m *netModel) // at 30 s
		after     func(m *netModel) // at 31 s
		separates bool
	}{
		{"1s total cut at 8 of 9 Mbit/s", studioConfig(500, 8000),
			func() []*simLink {
				return []*simLink{{name: "wired", capKbps: 4500, rttMs: 30}, {name: "cell1", capKbps: 4500, rttMs: 60}}
			},
			func(m *netModel) { m.setUp("wired", false); m.setUp("cell1", false) },
			func(m *netModel) { m.setUp("wired", true); m.setUp("cell1", true) }, true},
		{"weak modem", studioConfig(500, 6000),
			func() []*simLink {
				return []*simLink{{name: "wired", capKbps: 9000, rttMs: 30}, {name: "cell1", capKbps: 3000, rttMs: 50}}
			},
			func(m *netModel) { c := m.link("cell1"); c.rttMs, c.loss = 160, 0.15 }, func(*netModel) {}, true},
		{"lossy 5 + 2", studioConfig(300, 10000),
			func() []*simLink {
				return []*simLink{{name: "cell1", capKbps: 5000, rttMs: 40, loss: 0.05}, {name: "cell2", capKbps: 2000, rttMs: 60, loss: 0.05}}
			},
			func(*netModel) {}, func(*netModel) {}, false},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			run := func(ref bool) result {
				cfg := sc.cfg
				var u updater = NewController(cfg)
				if ref {
					cfg.Interval = 20 * time.Millisecond
					u = newReference(cfg)
				}
				m := newNetModel(u.Kbps(), sc.links()...)
				m.jitterMs = 3
				r := newSimRunWith(cfg, m, u)
				r.run(30 * time.Second)
				before := u.Kbps()
				sc.event(m)
				r.run(31 * time.Second)
				sc.after(m)
				r.run(90 * time.Second)
				var sum, n float64
				for _, k := range r.between(60*time.Second, 90*time.Second) {
					sum += float64(k.kbps)
					n++
				}
				return result{before: before, low: r.minKbps(30*time.Second, 90*time.Second), settled: int(sum / n), peakSb: r.maxSbMs(60*time.Second, 90*time.Second)}
			}
			ours, ref := run(false), run(true)
			t.Logf("controller: %5d kbps before, lowest %5d after, mean %5d kbps over the last 30 s, peak send buffer %4.0f ms", ours.before, ours.low, ours.settled, ours.peakSb)
			t.Logf("reference:  %5d kbps before, lowest %5d after, mean %5d kbps over the last 30 s, peak send buffer %4.0f ms", ref.before, ref.low, ref.settled, ref.peakSb)
			worse := (ref.low < ours.low || ref.settled < ours.settled) && ref.low <= ours.low && ref.settled <= ours.settled
			if sc.separates && !worse {
				t.Errorf("the reference is not worse here (lowest %d vs %d kbps, mean %d vs %d): the model does not separate them", ref.low, ours.low, ref.settled, ours.settled)
			}
		})
	}
}
