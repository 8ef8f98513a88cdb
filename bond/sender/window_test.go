package sender

import (
	"net"
	"testing"
	"time"

	"onair/web/api"
)

func flightWith(window int, sns ...uint32) *flight {
	f := newFlight()
	f.window = window
	f.reset = false
	for _, sn := range sns {
		f.sent(sn)
	}
	return &f
}

// SRTLA.md §8: an SRTLA ACK takes the sn off the first link holding it,
// grows that link by 29 when it is over its window, and every link not in
// the reset state by 1, up to the ceiling.
func TestSRTLAAckAccounting(t *testing.T) {
	cases := []struct {
		name         string
		a, b         *flight
		sn           uint32
		wantA, wantB [2]int // window, in flight
	}{
		{"acked link under window: +1 each", flightWith(20000, 1, 2), flightWith(20000, 3), 1, [2]int{20001, 1}, [2]int{20001, 1}},
		{"acked link over window: +29 +1", flightWith(1000, 1, 2, 3), flightWith(20000), 2, [2]int{1030, 2}, [2]int{20001, 0}},
		{"unknown sn: only the group-wide +1", flightWith(20000, 1), flightWith(20000, 2), 9, [2]int{20001, 1}, [2]int{20001, 1}},
		{"ceiling", flightWith(60000, 1), flightWith(59999), 1, [2]int{60000, 0}, [2]int{60000, 0}},
		{"second link holds it", flightWith(20000, 1), flightWith(20000, 7, 8), 8, [2]int{20001, 1}, [2]int{20001, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srtlaAck([]*flight{tc.a, tc.b}, tc.sn)
			if got := [2]int{tc.a.window, tc.a.inFlight}; got != tc.wantA {
				t.Errorf("a = %v, want %v", got, tc.wantA)
			}
			if got := [2]int{tc.b.window, tc.b.inFlight}; got != tc.wantB {
				t.Errorf("b = %v, want %v", got, tc.wantB)
			}
		})
	}
}

// A link in the reset state (never heard, or reset after it died) gets no
// group-wide growth.
func TestSRTLAAckSkipsResetLinks(t *testing.T) {
	a, b := flightWith(20000, 1), newFlight()
	srtlaAck([]*flight{a, &b}, 1)
	if b.window != windowDef {
		t.Errorf("reset link window %d, want %d", b.window, windowDef)
	}
}

// The reference compares sequence numbers as signed integers and gets the
// wrap wrong; an SRT ACK just past the wrap must clear the entries just
// before it.
func TestSRTAckRecountAcrossTheWrap(t *testing.T) {
	f := flightWith(20000, 0x7FFFFFFD, 0x7FFFFFFE, 0x7FFFFFFF, 0, 1, 2)
	f.inFlight = 40 // drift, corrected by the recount
	f.ackBelow(1)
	if f.inFlight != 2 {
		t.Errorf("in flight %d after ACK 1, want 2 (sn 1 and 2)", f.inFlight)
	}
	f.ackBelow(0x7FFFFFF0) // before everything left: nothing goes
	if f.inFlight != 2 {
		t.Errorf("in flight %d after an old ACK, want 2", f.inFlight)
	}
}

// An SRT NAK charges only the first link that sent the lost packet, and
// leaves in_flight alone.
func TestNakChargesOneLink(t *testing.T) {
	a, b := flightWith(20000, 5), flightWith(1050, 5, 6)
	fs := []*flight{a, b}
	if i := nakCharge(fs, 5); i != 0 {
		t.Fatalf("charged %d, want link 0", i)
	}
	if a.window != 19900 || b.window != 1050 || a.inFlight != 1 {
		t.Errorf("windows %d %d in flight %d, want 19900 1050 1", a.window, b.window, a.inFlight)
	}
	if i := nakCharge(fs, 5); i != 1 { // a's entry is gone: b's copy is next
		t.Fatalf("second NAK charged %d, want link 1", i)
	}
	if b.window != windowMin {
		t.Errorf("window %d, want the floor %d", b.window, windowMin)
	}
	if i := nakCharge(fs, 99); i != -1 {
		t.Errorf("unknown sn charged %d", i)
	}
}

// testLink is a registered, live link for the scheduling tests.
func testLink(name string, policy api.UplinkPolicy, window, inFlight int, now time.Time) *link {
	l := &link{cfg: Link{Name: name, Policy: policy}, enabled: true, registered: true, lastRcvd: now,
		conn: &net.UDPConn{}, fl: newFlight()}
	l.fl.window, l.fl.inFlight = window, inFlight
	return l
}

func TestPickData(t *testing.T) {
	now := time.Unix(1000, 0)
	cases := []struct {
		name    string
		links   func() []*link
		engaged bool
		want    string
	}{
		{"largest window/(in_flight+1)", func() []*link {
			return []*link{testLink("a", api.PolicyBond, 20000, 9, now), testLink("b", api.PolicyBond, 20000, 3, now)}
		}, false, "b"},
		{"integer ties go to the first", func() []*link {
			return []*link{testLink("a", api.PolicyBond, 20000, 3, now), testLink("b", api.PolicyBond, 20001, 3, now)}
		}, false, "a"},
		{"dead link skipped", func() []*link {
			a := testLink("a", api.PolicyBond, 60000, 0, now)
			a.lastRcvd = now.Add(-5 * time.Second)
			return []*link{a, testLink("b", api.PolicyBond, 1000, 50, now)}
		}, false, "b"},
		{"re-registering link skipped", func() []*link {
			a := testLink("a", api.PolicyBond, 60000, 0, now)
			a.rebinding = true
			return []*link{a, testLink("b", api.PolicyBond, 1000, 50, now)}
		}, false, "b"},
		{"disabled link skipped", func() []*link {
			a := testLink("a", api.PolicyBond, 60000, 0, now)
			a.enabled = false
			return []*link{a, testLink("b", api.PolicyBond, 1000, 50, now)}
		}, false, "b"},
		{"capped link skipped", func() []*link {
			a := testLink("a", api.PolicyBond, 60000, 0, now)
			a.cfg.CapBytes, a.bytesSent = 100, 100
			return []*link{a, testLink("b", api.PolicyBond, 1000, 50, now)}
		}, false, "b"},
		{"backup idle while not engaged", func() []*link {
			return []*link{testLink("a", api.PolicyBackup, 60000, 0, now), testLink("b", api.PolicyBond, 1000, 50, now)}
		}, false, "b"},
		{"backup shares once engaged", func() []*link {
			return []*link{testLink("a", api.PolicyBackup, 60000, 0, now), testLink("b", api.PolicyBond, 1000, 50, now)}
		}, true, "a"},
		{"duplicate is not chosen while a bond link carries", func() []*link {
			return []*link{testLink("a", api.PolicyDuplicate, 60000, 0, now), testLink("b", api.PolicyBond, 1000, 50, now)}
		}, false, "b"},
		{"duplicate chosen when nothing else carries", func() []*link {
			b := testLink("b", api.PolicyBond, 1000, 50, now)
			b.registered = false
			return []*link{testLink("a", api.PolicyDuplicate, 1000, 50, now), b}
		}, false, "a"},
		{"nothing alive: drop", func() []*link {
			a := testLink("a", api.PolicyBond, 60000, 0, now)
			a.registered = false
			return []*link{a}
		}, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := pickData(tc.links(), now, tc.engaged)
			name := ""
			if got != nil {
				name = got.cfg.Name
			}
			if name != tc.want {
				t.Errorf("picked %q, want %q", name, tc.want)
			}
		})
	}
}

// SRT control from the caller goes on the live link with the lowest
// measured RTT, not on whichever link the window rule picks.
func TestPickControlLowestRTT(t *testing.T) {
	now := time.Unix(1000, 0)
	a, b, c := testLink("a", api.PolicyBond, 60000, 0, now), testLink("b", api.PolicyBond, 1000, 9, now), testLink("c", api.PolicyBond, 1000, 9, now)
	a.rttMs, a.rttKnown = 80, true
	b.rttMs, b.rttKnown = 20, true
	if got := pickControl([]*link{c, a, b}, now, false); got != b {
		t.Errorf("picked %s, want b (lowest RTT; c has no sample)", got.cfg.Name)
	}
	b.lastRcvd = now.Add(-10 * time.Second)
	if got := pickControl([]*link{c, a, b}, now, false); got != a {
		t.Errorf("picked %s, want a (b is dead)", got.cfg.Name)
	}
}

func TestBackupGate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	steps := []struct {
		ms             int
		primaryUp, sat bool
		want           bool
	}{
		{0, true, false, false},     // room: idle
		{100, true, true, false},    // saturated, not for long
		{400, true, false, false},   // a break resets the hold
		{500, true, true, false},    // saturated again from 500
		{1000, true, true, false},   // 500 ms: a burst, not yet
		{2499, true, true, false},   // 1999 ms
		{2500, true, true, true},    // 2 s: engaged
		{2600, true, false, true},   // room, but not for long
		{7599, true, false, true},   // 4999 ms of room
		{7600, true, true, true},    // saturated again: the room clock resets
		{7700, true, false, true},   // room from 7700
		{12700, true, false, false}, // 5 s of room: released
		{12800, false, false, true}, // no primary can carry: engaged at once
		{12900, true, false, true},  // primary back: held until it has had room 500 ms
		{13399, true, false, true},
		{13400, true, false, false},
		{13500, true, true, false}, // saturated: the long release applies again
		{15500, true, true, true},
		{15600, true, false, true},
		{20599, true, false, true},
		{20600, true, false, false},
	}
	var g backupGate
	for _, st := range steps {
		if got := g.observe(at(st.ms), st.primaryUp, st.sat); got != st.want {
			t.Errorf("at %d ms (up %v, saturated %v): engaged %v, want %v", st.ms, st.primaryUp, st.sat, got, st.want)
		}
	}
}

// At its cap a link stops carrying stream bytes (and is not saturated by
// that: the rest of the group takes the load).
func TestCapStopsCarrying(t *testing.T) {
	now := time.Unix(1000, 0)
	l := testLink("a", api.PolicyBond, 20000, 0, now)
	l.cfg.CapBytes = 1000
	cases := []struct {
		sent uint64
		want bool
	}{{0, true}, {999, true}, {1000, false}, {5000, false}}
	for _, tc := range cases {
		l.bytesSent = tc.sent
		if got := l.canCarry(now); got != tc.want {
			t.Errorf("after %d of 1000 bytes: carrying %v, want %v", tc.sent, got, tc.want)
		}
		if !l.alive(now) {
			t.Errorf("a capped link stays alive")
		}
	}
}

func TestAckRingDeduplicates(t *testing.T) {
	var r ackRing
	a1, a2 := srtAck(1, 100), srtAck(2, 110)
	if r.seen(a1) || r.seen(a2) {
		t.Fatal("first copies taken for duplicates")
	}
	if !r.seen(a1) || !r.seen(a2) {
		t.Fatal("second copies not recognised")
	}
	for i := uint32(3); i < 3+ackRingSize; i++ {
		r.seen(srtAck(i, 200))
	}
	if r.seen(a1) {
		t.Error("an ACK older than the ring still counts as seen")
	}
}

// srtNak builds an SRT NAK with a loss list of raw words.
func srtNak(words ...uint32) []byte {
	b := make([]byte, 16+4*len(words))
	b[0], b[1] = 0x80, 0x03
	for i, w := range words {
		b[16+4*i], b[17+4*i], b[18+4*i], b[19+4*i] = byte(w>>24), byte(w>>16), byte(w>>8), byte(w)
	}
	return b
}

// An SRT NAK's ranges (across the wrap too) and single numbers each charge
// the link that sent the packet, once; a huge range is bounded.
func TestSRTNakChargesTheSendingLinks(t *testing.T) {
	now := time.Unix(1000, 0)
	a, b := testLink("a", api.PolicyBond, 20000, 0, now), testLink("b", api.PolicyBond, 20000, 0, now)
	for _, sn := range []uint32{0x7FFFFFFE, 0x7FFFFFFF, 0, 1} {
		a.fl.sent(sn)
	}
	b.fl.sent(10)
	b.fl.sent(11)
	s := &Sender{links: []*link{a, b}}
	s.chargeNak(srtNak(0x80000000|0x7FFFFFFE, 1, 11)) // range over the wrap, then 11
	if a.naks != 4 || a.fl.window != 20000-4*windowDecr {
		t.Errorf("a: %d NAKs window %d, want 4 and %d", a.naks, a.fl.window, 20000-4*windowDecr)
	}
	if b.naks != 1 || b.fl.window != 20000-windowDecr {
		t.Errorf("b: %d NAKs window %d, want 1 and %d", b.naks, b.fl.window, 20000-windowDecr)
	}
	s.chargeNak(srtNak(0x80000000, 1<<29)) // 2^29 numbers: bounded, and nothing left to charge
	if a.naks != 4 || b.naks != 1 {
		t.Errorf("a second NAK charged again: %d %d", a.naks, b.naks)
	}
	if s.chargeNak(srtNak(0x80000005)); a.naks != 4 { // range without its end: ignored
		t.Errorf("malformed NAK charged")
	}
}

// A retransmission storm (seen in the lab after a capacity halving): gosrt's
// receiver NAKs a hole every half round trip and gosrt's sender resends each
// time. A resend within one round trip of the last send is dropped; a later
// one goes (a lost retransmission is still repaired); originals always go.
func TestRetransmissionWithinOneRoundTripIsSuppressed(t *testing.T) {
	var r retransLimiter
	t0 := time.Unix(1000, 0)
	hold := 100 * time.Millisecond
	if !r.allow(7, false, t0, hold) {
		t.Fatal("original refused")
	}
	if r.allow(7, true, t0.Add(30*time.Millisecond), hold) {
		t.Fatal("a retransmission 30 ms after the original went out")
	}
	if !r.allow(7, true, t0.Add(120*time.Millisecond), hold) {
		t.Fatal("a retransmission a round trip later was refused")
	}
	if r.allow(7, true, t0.Add(150*time.Millisecond), hold) {
		t.Fatal("a second retransmission 30 ms after the first went out")
	}
	if !r.allow(7+retransSlots, false, t0.Add(160*time.Millisecond), hold) || !r.allow(7, true, t0.Add(170*time.Millisecond), hold) {
		t.Fatal("a slot reused by another sequence number must not suppress")
	}
	if !r.allow(9, true, t0, hold) {
		t.Fatal("a retransmission of a number never seen was refused")
	}
	if r.suppressed != 2 {
		t.Fatalf("suppressed %d, want 2", r.suppressed)
	}
}

// The budget is what the links delivered (SRTLA ACKs) over the last half
// second less the originals, with a quarter more while they deliver what is
// sent and none while they deliver much less (after a capacity halving the
// old budget, the best SRT ACK rate of 3 s, let the links send 6.3 Mbit/s
// into 3); at most a tenth of a second's worth goes at once, and the floor
// keeps repairs going while nothing is delivered.
func TestRetransmissionBudgetIsWhatTheLinksDeliverLessTheOriginals(t *testing.T) {
	var r retransLimiter
	t0 := time.Unix(1000, 0)
	if r.budgetPPS() != retransMinPPS {
		t.Fatalf("budget with nothing delivered %v, want the floor %d", r.budgetPPS(), retransMinPPS)
	}
	// Half a second: 400 originals sent, 400 delivered (1 ms apart over
	// two slots), then a new slot starts.
	sn := uint32(0)
	for i := range 500 {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		if i%5 != 0 {
			r.allow(sn, false, now, time.Millisecond)
			sn++
			r.delivered(1, now)
		}
	}
	r.advance(t0.Add(501 * time.Millisecond)) // the window started at the first packet, 1 ms in
	// 400 delivered + a quarter = 500, less 400 originals = 100 per half second.
	if got := r.budgetPPS(); got < 199 || got > 201 {
		t.Fatalf("budget while the links deliver what is sent %v, want 200 pps", got)
	}
	// The next half second the links deliver 200 of 400 sent: saturated.
	for i := range 500 {
		now := t0.Add(time.Duration(500+i) * time.Millisecond)
		if i%5 != 0 {
			r.allow(sn, false, now, time.Millisecond)
			sn++
			if i%2 == 0 {
				r.delivered(1, now)
			}
		}
	}
	r.advance(t0.Add(1001 * time.Millisecond))
	if got := r.budgetPPS(); got != retransMinPPS {
		t.Fatalf("budget while the links carry half of the originals %v, want the floor", got)
	}
	// Repairs now: only a tenth of a second's floor goes at once, the first
	// holes after the ACK point always go.
	r.acknowledged(100)
	now := t0.Add(1001 * time.Millisecond)
	sent := 0
	for i := range 100 {
		if r.allow(uint32(10000+i), true, now, time.Millisecond) {
			sent++
		}
	}
	if sent != retransMinPPS/10 {
		t.Fatalf("a burst of 100 retransmissions let %d through, want %d", sent, retransMinPPS/10)
	}
	if !r.allow(100, true, now, time.Millisecond) || !r.allow(115, true, now, time.Millisecond) {
		t.Fatal("an urgent retransmission was refused")
	}
	if r.allow(116, true, now, time.Millisecond) {
		t.Fatal("a retransmission past the urgent window went without a token")
	}
	r.advance(now.Add(2 * time.Second))
	if r.budgetPPS() != retransMinPPS {
		t.Fatalf("budget after quiet seconds %v, want the floor", r.budgetPPS())
	}
}
