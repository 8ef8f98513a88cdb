package abr

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The goals for the controller, each against the fluid model in
// netmodel_test.go (simulated time: deterministic, no sleeping).

func studioConfig(minKbps, maxKbps int) Config {
	return Config{MinKbps: minKbps, MaxKbps: maxKbps, Latency: 1500 * time.Millisecond, Interval: 100 * time.Millisecond}
}

func logRun(t *testing.T, r *simRun, from, to time.Duration) {
	t.Helper()
	for _, k := range r.changes(from, to) {
		t.Logf("%6.1fs %5d kbps  sb %4.0f ms  %s", k.t.Seconds(), k.kbps, k.sbMs, k.reason)
	}
}

// Goal 1: capacity halved mid-stream, the bitrate is below the new total
// within 2 s. Goal 2: restored, back at the maximum within 30 s.
func TestCapacityHalvedFallsBelowNewTotalWithin2sAndClimbsBackWithin30s(t *testing.T) {
	cfg := studioConfig(500, 8000)
	m := newNetModel(cfg.MaxKbps, &simLink{name: "wired", capKbps: 5000, rttMs: 30}, &simLink{name: "cell1", capKbps: 5000, rttMs: 50})
	r := newSimRun(cfg, m)
	r.run(20 * time.Second)
	if k := r.ctrl.Kbps(); k != cfg.MaxKbps {
		t.Fatalf("before the change: %d kbps, want the maximum %d", k, cfg.MaxKbps)
	}
	m.link("wired").capKbps, m.link("cell1").capKbps = 2500, 2500
	r.run(40 * time.Second)
	below := r.firstAt(20*time.Second, func(k tick) bool { return float64(k.kbps)*m.overhead < 5000 })
	logRun(t, r, 20*time.Second, 40*time.Second)
	if below < 0 || below-20*time.Second > 2*time.Second {
		t.Fatalf("stream below the halved 5000 kbps at %v after the change, want within 2s", below-20*time.Second)
	}
	if sb := r.maxSbMs(20*time.Second, 40*time.Second); sb >= 500 {
		t.Errorf("send buffer reached %.0f ms after the halving, want under latency/3", sb)
	}
	m.link("wired").capKbps, m.link("cell1").capKbps = 5000, 5000
	r.run(80 * time.Second)
	logRun(t, r, 40*time.Second, 80*time.Second)
	back := r.firstAt(40*time.Second, func(k tick) bool { return k.kbps == cfg.MaxKbps })
	if back < 0 || back-40*time.Second > 30*time.Second {
		t.Fatalf("back at the maximum %v after the capacity returned, want within 30s", back-40*time.Second)
	}
	t.Logf("below the new total after %v; back at the maximum after %v", below-20*time.Second, back-40*time.Second)
	if n := len(r.changes(back+time.Millisecond, 80*time.Second)); n != 0 {
		t.Errorf("%d changes after reaching the maximum again, want none", n)
	}
}

// Goal 2, the transients that leave belacoder stuck low: a 1 s total cut
// and a CPU hiccup that spikes the send buffer once. After each the
// bitrate is back at the maximum within 30 s and stays there.
func TestNotStuckLowAfterTransient(t *testing.T) {
	for _, tc := range []struct {
		name  string
		dur   time.Duration
		apply func(m *netModel)
		after func(m *netModel)
	}{
		{"1s total cut", time.Second, func(m *netModel) { m.setUp("wired", false); m.setUp("cell1", false) },
			func(m *netModel) { m.setUp("wired", true); m.setUp("cell1", true) }},
		// The encoder sends a fifth of its bitrate (no filler, slides): no
		// capacity is measured while draining, so this is the plain climb
		// from the minimum, whose steps once fell under apply's 100-kbps
		// minimum and never happened.
		{"1s total cut, static picture", time.Second, func(m *netModel) { m.fill = 0.2; m.setUp("wired", false); m.setUp("cell1", false) },
			func(m *netModel) { m.setUp("wired", true); m.setUp("cell1", true) }},
		{"10s total outage", 10 * time.Second, func(m *netModel) { m.setUp("wired", false); m.setUp("cell1", false) },
			func(m *netModel) { m.setUp("wired", true); m.setUp("cell1", true) }},
		{"1s CPU hiccup", time.Second, func(m *netModel) { m.hiccup(time.Second) }, func(*netModel) {}},
		{"300ms CPU hiccup", 300 * time.Millisecond, func(m *netModel) { m.hiccup(300 * time.Millisecond) }, func(*netModel) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := studioConfig(500, 8000)
			// 9000 kbps for an 8000 kbps stream: little headroom, so the
			// burst after the transient drains slowly and the buffer spikes.
			m := newNetModel(cfg.MaxKbps, &simLink{name: "wired", capKbps: 4500, rttMs: 30}, &simLink{name: "cell1", capKbps: 4500, rttMs: 60})
			r := newSimRun(cfg, m)
			r.run(20 * time.Second)
			tc.apply(m)
			end := 20*time.Second + tc.dur
			r.run(end)
			tc.after(m)
			r.run(end + 50*time.Second)
			logRun(t, r, 20*time.Second, end+50*time.Second)
			low := r.minKbps(20*time.Second, end+50*time.Second)
			ch := r.changes(20*time.Second, end+50*time.Second)
			if len(ch) == 0 {
				t.Logf("the transient needed no change")
				return
			}
			back := r.firstAt(ch[0].t, func(k tick) bool { return k.kbps == cfg.MaxKbps })
			if back < 0 || back-end > 30*time.Second {
				t.Fatalf("lowest %d kbps, back at the maximum %v after the transient, want within 30s", low, back-end)
			}
			if n := len(r.changes(back+time.Millisecond, end+50*time.Second)); n != 0 {
				t.Errorf("%d changes after reaching the maximum again, want none", n)
			}
			t.Logf("lowest %d kbps, back at the maximum %v after the transient ended, peak send buffer %.0f ms", low, back-end, r.maxSbMs(20*time.Second, end+50*time.Second))
		})
	}
}

// Goal 3: one weak modem (RTT and loss up on one link) while the other can
// carry the stream alone: the bitrate stays at (or near) the maximum.
func TestWeakModemDoesNotLowerTheWholeBond(t *testing.T) {
	cfg := studioConfig(500, 6000)
	m := newNetModel(cfg.MaxKbps, &simLink{name: "wired", capKbps: 9000, rttMs: 30}, &simLink{name: "cell1", capKbps: 3000, rttMs: 50})
	r := newSimRun(cfg, m)
	r.run(10 * time.Second)
	cell := m.link("cell1")
	cell.rttMs, cell.loss = 160, 0.15
	r.run(60 * time.Second)
	logRun(t, r, 10*time.Second, 60*time.Second)
	if low := r.minKbps(10*time.Second, 60*time.Second); float64(low) < 0.9*float64(cfg.MaxKbps) {
		t.Fatalf("bitrate fell to %d kbps with one weak modem, want at least 90%% of %d", low, cfg.MaxKbps)
	}
	if k := r.ctrl.Kbps(); k != cfg.MaxKbps {
		t.Fatalf("ended at %d kbps, want the maximum %d", k, cfg.MaxKbps)
	}
	t.Logf("peak send buffer %.0f ms (the weak path's round trip plus a retransmission)", r.maxSbMs(10*time.Second, 60*time.Second))
}

// Goal 4: when the send buffer grows toward the latency the cut is one
// immediate step, not belacoder's 100-kbps walk.
func TestEmergencyDropIsOneStep(t *testing.T) {
	for _, tc := range []struct {
		name    string
		apply   func(m *netModel)
		wantMax int // the bitrate after the first cut is at most this
	}{
		{"total cut", func(m *netModel) { m.link("wired").capKbps, m.link("cell1").capKbps = 0, 0 }, 500},
		{"capacity to a tenth", func(m *netModel) { m.link("wired").capKbps, m.link("cell1").capKbps = 500, 500 }, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := studioConfig(500, 8000)
			m := newNetModel(cfg.MaxKbps, &simLink{name: "wired", capKbps: 5000, rttMs: 30}, &simLink{name: "cell1", capKbps: 5000, rttMs: 60})
			r := newSimRun(cfg, m)
			r.run(10 * time.Second)
			tc.apply(m)
			r.run(14 * time.Second)
			logRun(t, r, 10*time.Second, 14*time.Second)
			ch := r.changes(10*time.Second, 14*time.Second)
			if len(ch) == 0 {
				t.Fatal("no change after the capacity collapsed")
			}
			if ch[0].kbps > tc.wantMax {
				t.Fatalf("first cut to %d kbps (%s), want at most %d in one step", ch[0].kbps, ch[0].reason, tc.wantMax)
			}
			if sb := r.maxSbMs(10*time.Second, ch[0].t+time.Millisecond); sb > 750 {
				t.Errorf("send buffer reached %.0f ms before the cut, want it cut before half the latency", sb)
			}
		})
	}
}

// Goal 5, the bench scenario in the model: links 5 + 2 Mbit/s with 5 %
// random loss each; it settles at a clean bitrate of at least 5 Mbit/s
// (clean: the send buffer stays well under the latency).
func TestLossyFivePlusTwoSettlesCleanAboveFiveMbit(t *testing.T) {
	cfg := studioConfig(300, 10000)
	m := newNetModel(cfg.MaxKbps, &simLink{name: "cell1", capKbps: 5000, rttMs: 40, loss: 0.05}, &simLink{name: "cell2", capKbps: 2000, rttMs: 60, loss: 0.05})
	m.jitterMs = 5
	r := newSimRun(cfg, m)
	r.run(120 * time.Second)
	logRun(t, r, 0, 30*time.Second)
	low := r.minKbps(60*time.Second, 120*time.Second)
	sb := r.maxSbMs(60*time.Second, 120*time.Second)
	var sum, n float64
	for _, k := range r.between(60*time.Second, 120*time.Second) {
		sum += float64(k.kbps)
		n++
	}
	t.Logf("settled: lowest %d kbps, mean %.0f kbps, peak send buffer %.0f ms, %d changes in 60 s", low, sum/n, sb, len(r.changes(60*time.Second, 120*time.Second)))
	if low < 5000 {
		t.Errorf("lowest settled bitrate %d kbps, want at least 5000", low)
	}
	if sb >= 500 {
		t.Errorf("send buffer reached %.0f ms, want under latency/3 (clean)", sb)
	}
	for _, k := range r.changes(60*time.Second, 120*time.Second) {
		if strings.HasPrefix(k.reason, "emergency") {
			t.Errorf("emergency in steady state at %v: %s", k.t, k.reason)
		}
	}
}

// Goal 6: with capacity above the maximum it stays at the maximum and
// never asks the encoders for a change (jittery RTT and a little loss).
func TestSteadyAtMaxMakesNoChanges(t *testing.T) {
	cfg := studioConfig(500, 8000)
	m := newNetModel(cfg.MaxKbps, &simLink{name: "wired", capKbps: 10000, rttMs: 30, loss: 0.005}, &simLink{name: "cell1", capKbps: 10000, rttMs: 70, loss: 0.01})
	m.jitterMs = 15
	r := newSimRun(cfg, m)
	r.run(120 * time.Second)
	logRun(t, r, 0, 120*time.Second)
	if ch := r.changes(time.Millisecond, 120*time.Second); len(ch) != 0 {
		t.Fatalf("%d changes in steady state (first: %d kbps, %s), want none", len(ch), ch[0].kbps, ch[0].reason)
	}
}

// A link that dies takes its share with it at once (5 + 2 Mbit/s, stream
// at 3 Mbit/s, the 5 Mbit/s link cut): the bitrate falls below what the
// 2 Mbit/s link carries, without waiting for the send buffer to fill.
func TestLinkLostDropsItsShare(t *testing.T) {
	cfg := studioConfig(300, 3000)
	m := newNetModel(cfg.MaxKbps, &simLink{name: "cell1", capKbps: 5000, rttMs: 40}, &simLink{name: "cell2", capKbps: 2000, rttMs: 60})
	r := newSimRun(cfg, m)
	r.run(10 * time.Second)
	m.setUp("cell1", false)
	r.run(20 * time.Second)
	logRun(t, r, 10*time.Second, 20*time.Second)
	below := r.firstAt(10*time.Second, func(k tick) bool { return float64(k.kbps)*m.overhead < 2000 })
	if below < 0 || below-10*time.Second > 2*time.Second {
		t.Fatalf("below the remaining 2000 kbps %v after the cut, want within 2s", below-10*time.Second)
	}
	if sb := r.maxSbMs(10*time.Second, 20*time.Second); sb >= 1500 {
		t.Errorf("send buffer reached %.0f ms, want under the latency", sb)
	}
	t.Logf("below the remaining link after %v, peak send buffer %.0f ms", below-10*time.Second, r.maxSbMs(10*time.Second, 20*time.Second))
}

// The climb's time bound holds over the whole range: from the minimum, with
// no capacity ever measured, the ceiling is reached within climbTime (plus
// the steps' rounding), never in belacoder's many minutes.
func TestClimbFromMinimumIsTimeBounded(t *testing.T) {
	for _, tc := range []struct{ minKbps, maxKbps int }{
		{300, 30000}, {500, 8000}, {1000, 1500}, {300, 400},
	} {
		t.Run(fmt.Sprintf("%d-%d", tc.minKbps, tc.maxKbps), func(t *testing.T) {
			cfg := studioConfig(tc.minKbps, tc.maxKbps)
			cfg.StartKbps = tc.minKbps
			m := newNetModel(cfg.StartKbps, &simLink{name: "wired", capKbps: 50000, rttMs: 20})
			r := newSimRun(cfg, m)
			r.run(60 * time.Second)
			at := r.firstAt(0, func(k tick) bool { return k.kbps == tc.maxKbps })
			if at < 0 || at > climbTime+time.Second {
				t.Fatalf("at the ceiling after %v, want within %v", at, climbTime+time.Second)
			}
			t.Logf("at the ceiling after %v in %d changes", at, len(r.changes(time.Millisecond, 60*time.Second)))
		})
	}
}

// The lab's abr_clean failure (5 + 2 Mbit/s, 5 % loss each): the ACK point
// pauses behind holes whose repair was lost again and then jumps, so the
// delivered rate over a few hundred ms is noise. The congestion cut then
// either did not happen (the "delivered" rate above the offered) or aimed at
// a third of the capacity, emergencies went to the minimum on a paused tick,
// and the climb after them went geometric straight past the bitrate that had
// just congested: a 10-s cycle of 1000 → 6700 kbps. Over six draws of the
// pauses it must now hold a mean of at least 5500 kbps (the goodput is
// 6650 kbps of stream) in at most 45 changes a minute and never touch the
// minimum; before, it made 57-75 changes a minute, reached the minimum in
// five draws of six and averaged 4959-5697 kbps. (A single dip to 2800-3800
// kbps still happens in some draws: an emergency on a pause that met a
// queue.)
func TestLossyFivePlusTwoWithACKPausesNotCycledToTheMinimum(t *testing.T) {
	for _, seed := range []uint64{1, 3, 5, 7, 11, 13} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			cfg := studioConfig(1000, 8000)
			m := newNetModel(cfg.MaxKbps, &simLink{name: "wired", capKbps: 5000, rttMs: 20, loss: 0.05}, &simLink{name: "cell1", capKbps: 2000, rttMs: 40, loss: 0.05})
			m.rng = rand.New(rand.NewPCG(seed, 2))
			m.jitterMs = 5
			m.ackPauseEvery, m.ackPauseFor = time.Second, 120*time.Millisecond
			r := newSimRun(cfg, m)
			r.run(120 * time.Second)
			var sum, n float64
			for _, k := range r.between(60*time.Second, 120*time.Second) {
				sum += float64(k.kbps)
				n++
			}
			ch := r.changes(60*time.Second, 120*time.Second)
			low := r.minKbps(60*time.Second, 120*time.Second)
			t.Logf("settled: lowest %d kbps, mean %.0f kbps, peak send buffer %.0f ms, %d changes in 60 s",
				low, sum/n, r.maxSbMs(60*time.Second, 120*time.Second), len(ch))
			if mean := sum / n; mean < 5500 {
				logRun(t, r, 60*time.Second, 120*time.Second)
				t.Errorf("mean settled bitrate %.0f kbps, want at least 5500", mean)
			}
			if len(ch) > 45 {
				logRun(t, r, 60*time.Second, 120*time.Second)
				t.Errorf("%d changes in 60 s, want at most 45", len(ch))
			}
			if low <= cfg.MinKbps {
				logRun(t, r, 60*time.Second, 120*time.Second)
				t.Errorf("settled at the minimum %d kbps", low)
			}
		})
	}
}
