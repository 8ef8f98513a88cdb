package abr

import (
	"math"
	"math/rand/v2"
	"time"
)

// netModel is a small deterministic fluid model of the SRT sender over an
// SRTLA bond, good enough to drive the controller the way FACTS.md §10 saw
// gosrt behave:
//
//   - SRT hands every packet to SRTLA at once (gosrt's live sender does not
//     pace behind the links); the data that the links cannot carry yet
//     queues in front of them (socket buffers, tbf), as one FIFO backlog
//     drained at the bond's goodput Σ cap·(1−loss) of the links that are up;
//   - a packet is acknowledged ackDelay after it left the backlog: the
//     slowest carrying link's round trip, doubled when any link loses
//     packets (the cumulative ACK waits for a retransmission);
//   - SendBufPkts is everything sent and not acknowledged, SendBufMs the age
//     of the oldest of it; the RTT rises with the backlog's queueing delay
//     and stays frozen while no ACK arrives (a cut);
//   - a dead link is reported !Alive detectDelay after it died;
//   - a CPU hiccup holds the encoder's output and releases it as one burst;
//   - a bitrate change takes effect applyDelay later (the frame index lead);
//   - with ackPauseEvery set, the cumulative ACK point holds now and then
//     behind a hole whose repair was lost again (5 % loss: about one such
//     hole a second at 600 packets/s), for ackPauseFor plus the queueing
//     delay the retransmission waits behind, then jumps: what gosrt's ACKs
//     do over lossy links, and what made the lab's delivered rate noise.
type netModel struct {
	links      []*simLink
	overhead   float64 // stream kbps per video kbps
	fill       float64 // share of the bitrate the encoder produces (1; less: a static picture)
	applyDelay time.Duration
	rng        *rand.Rand
	jitterMs   float64 // ± per step on each link's RTT

	ackPauseEvery time.Duration // mean time between ACK pauses (0: none)
	ackPauseFor   time.Duration // their length on an empty queue
	pauseUntil    time.Duration

	t        time.Duration
	bitrate  float64 // in effect
	pending  []pendingRate
	heldKbit float64
	cpuUntil time.Duration

	inCum, outCum []float64 // per step, kbit: handed to SRT, left the backlog
	backlog       float64
	acked         float64 // kbit
	retrans       float64 // kbit
	lost          float64 // kbit
	rtt           float64
	rateWin       []float64
	sendRate      float64
	lastRateAt    time.Duration
}

type simLink struct {
	name    string
	capKbps float64
	rttMs   float64
	loss    float64 // 0..1
	up      bool
	downAt  time.Duration

	lastThroughput float64
}

type pendingRate struct {
	at   time.Duration
	kbps float64
}

const (
	simStep     = 10 * time.Millisecond
	detectDelay = 500 * time.Millisecond
	simPktKbit  = DefaultPktBytes * 8 / 1000.0
)

func newNetModel(startKbps int, links ...*simLink) *netModel {
	for _, l := range links {
		l.up = true
	}
	return &netModel{
		links: links, overhead: 1.04, fill: 1, applyDelay: 80 * time.Millisecond,
		rng: rand.New(rand.NewPCG(1, 2)), bitrate: float64(startKbps),
		inCum: []float64{0}, outCum: []float64{0}, rtt: 40,
	}
}

func (m *netModel) setBitrate(kbps int) {
	m.pending = append(m.pending, pendingRate{at: m.t + m.applyDelay, kbps: float64(kbps)})
}

// cut takes a link down (capacity 0) or back up.
func (m *netModel) setUp(name string, up bool) {
	for _, l := range m.links {
		if l.name == name && l.up != up {
			l.up = up
			l.downAt = m.t
		}
	}
}

func (m *netModel) link(name string) *simLink {
	for _, l := range m.links {
		if l.name == name {
			return l
		}
	}
	panic("no link " + name)
}

// hiccup stalls the encoder for d, then releases what it held at once.
func (m *netModel) hiccup(d time.Duration) { m.cpuUntil = m.t + d }

func (m *netModel) goodput() float64 {
	var c float64
	for _, l := range m.links {
		if l.up {
			c += l.capKbps * (1 - l.loss)
		}
	}
	return c
}

func (m *netModel) step() {
	dt := simStep.Seconds()
	m.t += simStep
	for len(m.pending) > 0 && m.pending[0].at <= m.t {
		m.bitrate = m.pending[0].kbps
		m.pending = m.pending[1:]
	}
	in := m.fill * m.overhead * m.bitrate * dt
	if m.t < m.cpuUntil {
		m.heldKbit += in
		in = 0
	} else {
		in += m.heldKbit
		m.heldKbit = 0
	}
	m.backlog += in
	c := m.goodput()
	out := math.Min(m.backlog, c*dt)
	m.backlog -= out
	n := len(m.inCum)
	m.inCum = append(m.inCum, m.inCum[n-1]+in)
	m.outCum = append(m.outCum, m.outCum[n-1]+out)

	var rttMax, lossW, carried float64
	anyLoss := false
	for _, l := range m.links {
		if !l.up {
			continue
		}
		r := l.rttMs
		if m.jitterMs > 0 {
			r += (m.rng.Float64()*2 - 1) * m.jitterMs
		}
		rttMax = math.Max(rttMax, r)
		if l.loss > 0 {
			anyLoss = true
		}
		share := l.capKbps * (1 - l.loss)
		lossW += share * l.loss / (1 - l.loss)
		carried += share
	}
	ackDelay := rttMax
	if anyLoss {
		ackDelay *= 2
	}
	k := n - int(ackDelay/float64(simStep.Milliseconds())+0.5)
	if m.ackPauseEvery > 0 && m.t >= m.pauseUntil && m.rng.Float64() < float64(simStep)/float64(m.ackPauseEvery) {
		qd := time.Duration(0)
		if c > 0 {
			qd = time.Duration(m.backlog / c * float64(time.Second))
		}
		m.pauseUntil = m.t + m.ackPauseFor + qd
	}
	if k >= 0 && m.outCum[k] > m.acked && m.t >= m.pauseUntil {
		m.acked = m.outCum[k]
		qms := 0.0
		if c > 0 {
			qms = m.backlog / c * 1000
		}
		m.rtt = rttMax + qms
	}
	if carried > 0 {
		extra := out * lossW / carried
		m.retrans += extra
		m.lost += extra
	}
	m.rateWin = append(m.rateWin, in+out*lossW/math.Max(carried, 1))
	if m.t-m.lastRateAt >= time.Second {
		var sum float64
		for _, v := range m.rateWin {
			sum += v
		}
		m.sendRate = sum / (m.t - m.lastRateAt).Seconds()
		m.rateWin, m.lastRateAt = m.rateWin[:0], m.t
	}
}

// sample is what the SRT stats and the SRTLA link table would show now.
func (m *netModel) sample() Sample {
	n := len(m.inCum) - 1
	unacked := m.inCum[n] - m.acked
	// age of the oldest unacknowledged kbit: when the input passed m.acked
	age := 0.0
	if unacked > 1e-6 {
		i := n
		for i > 0 && m.inCum[i-1] > m.acked {
			i--
		}
		age = float64(n-i+1) * float64(simStep.Milliseconds())
	}
	sent := m.inCum[n] + m.retrans
	s := Sample{
		Connected:    true,
		RTTms:        m.rtt,
		SendBufMs:    age,
		SendBufPkts:  uint64(unacked / simPktKbit),
		PktSent:      uint64(sent / simPktKbit),
		PktRetrans:   uint64(m.retrans / simPktKbit),
		PktLoss:      uint64(m.lost / simPktKbit),
		SendRateKbps: m.sendRate,
	}
	c := m.goodput()
	outRate := 0.0
	if k := len(m.outCum) - 1; k >= 10 {
		outRate = (m.outCum[k] - m.outCum[k-10]) / 0.1
	}
	for _, l := range m.links {
		alive := l.up || m.t-l.downAt < detectDelay
		ls := LinkSample{Name: l.name, Alive: alive, Carrying: alive, WindowPkts: 60, RTTms: l.rttMs, LossPct: 100 * l.loss}
		switch {
		case l.up && c > 0:
			ls.ThroughputKbps = outRate * l.capKbps * (1 - l.loss) / c / (1 - l.loss)
			ls.RTTms += m.backlog / c * 1000
			ls.InFlight = int(ls.ThroughputKbps * ls.RTTms / 1000 / simPktKbit)
			l.lastThroughput = ls.ThroughputKbps
		case alive:
			// dead but not yet detected: the scheduler still sends to it
			ls.ThroughputKbps = l.lastThroughput
		}
		s.Links = append(s.Links, ls)
	}
	return s
}

// tick is one controller period's record.
type tick struct {
	t       time.Duration
	kbps    int
	sbMs    float64
	changed bool
	reason  string
}

// simRun drives the controller over the model for d of simulated time,
// calling event (if not nil) before every model step.
type simRun struct {
	m     *netModel
	ctrl  updater
	cfg   Config
	start time.Time
	ticks []tick
}

// updater is a bitrate controller: Controller, or the reference one in
// reference_test.go.
type updater interface {
	Update(now time.Time, s Sample) Decision
	Kbps() int
}

func newSimRun(cfg Config, m *netModel) *simRun {
	return newSimRunWith(cfg, m, NewController(cfg))
}

func newSimRunWith(cfg Config, m *netModel, u updater) *simRun {
	r := &simRun{m: m, ctrl: u, cfg: cfg.withDefaults(), start: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}
	r.controllerTick()
	return r
}

func (r *simRun) controllerTick() {
	s := r.m.sample()
	d := r.ctrl.Update(r.start.Add(r.m.t), s)
	if d.Changed {
		r.m.setBitrate(d.Kbps)
	}
	r.ticks = append(r.ticks, tick{t: r.m.t, kbps: d.Kbps, sbMs: s.SendBufMs, changed: d.Changed, reason: d.Reason})
}

// run advances the simulation to time until.
func (r *simRun) run(until time.Duration) {
	every := int(r.cfg.Interval / simStep)
	for i := 0; r.m.t < until && i < 10_000_000; i++ {
		r.m.step()
		if int(r.m.t/simStep)%every == 0 {
			r.controllerTick()
		}
	}
}

// between returns the ticks with from <= t < to.
func (r *simRun) between(from, to time.Duration) []tick {
	var out []tick
	for _, k := range r.ticks {
		if k.t >= from && k.t < to {
			out = append(out, k)
		}
	}
	return out
}

// firstAt returns the time of the first tick at or after from that
// satisfies ok, or -1.
func (r *simRun) firstAt(from time.Duration, ok func(tick) bool) time.Duration {
	for _, k := range r.ticks {
		if k.t >= from && ok(k) {
			return k.t
		}
	}
	return -1
}

func (r *simRun) changes(from, to time.Duration) []tick {
	var out []tick
	for _, k := range r.between(from, to) {
		if k.changed {
			out = append(out, k)
		}
	}
	return out
}

func (r *simRun) maxSbMs(from, to time.Duration) float64 {
	var v float64
	for _, k := range r.between(from, to) {
		v = math.Max(v, k.sbMs)
	}
	return v
}

func (r *simRun) minKbps(from, to time.Duration) int {
	v := math.MaxInt
	for _, k := range r.between(from, to) {
		v = min(v, k.kbps)
	}
	return v
}
