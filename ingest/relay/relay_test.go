package relay

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"onair/bond/srtla"
)

// TestRegistrationBytes pins the handshake of SRTLA.md §5 byte for byte: REG1
// → 258-byte REG2 (the sender's 128 bytes, then 128 of ours), REG2 → the
// 2-byte REG3, a second link joining with REG2, a re-sent REG2 confirmed
// again, and a fresh receiver half per group. Over IPv4 and IPv6.
func TestRegistrationBytes(t *testing.T) {
	r := run(t, Config{}, nil)
	a := newPeer(t, "127.0.0.2", r.v4())
	b := newPeer(t, "::1", r.v6())

	sender := randomID(t)
	a.send(reg1(sender))
	reply := a.recv()
	if len(reply) != 258 || reply[0] != 0x92 || reply[1] != 0x01 {
		t.Fatalf("REG1 answer % x (%d bytes)", head(reply), len(reply))
	}
	if !bytes.Equal(reply[2:130], sender[:128]) {
		t.Fatal("REG2 does not start with the sender's half")
	}
	if bytes.Equal(reply[130:], sender[128:]) || bytes.Equal(reply[130:], make([]byte, 128)) {
		t.Fatal("receiver half is not fresh")
	}
	var id srtla.ID
	copy(id[:], reply[2:])

	a.send(reg2(id))
	if got := a.recv(); !bytes.Equal(got, wantReg3) {
		t.Fatalf("REG2 answer % x, want REG3", got)
	}
	b.send(reg2(id)) // a second link, over IPv6
	if got := b.recv(); !bytes.Equal(got, wantReg3) {
		t.Fatalf("second link: % x, want REG3", got)
	}
	a.send(reg2(id)) // a link re-registering is confirmed again
	if got := a.recv(); !bytes.Equal(got, wantReg3) {
		t.Fatalf("re-registration: % x, want REG3", got)
	}

	s := r.Stats()
	if len(s.Groups) != 1 || len(s.Groups[0].Links) != 2 || s.Counters.Registrations != 2 || s.Counters.GroupsCreated != 1 {
		t.Fatalf("stats %+v", s)
	}
	if want := hex.EncodeToString(sender[:8]); s.Groups[0].ID != want {
		t.Errorf("group id prefix %q, want the sender's %q", s.Groups[0].ID, want)
	}
	if got := []string{s.Groups[0].Links[0].Addr, s.Groups[0].Links[1].Addr}; got[0] != a.addr().String() || got[1] != b.addr().String() {
		t.Errorf("links %v", got)
	}

	// The same sender half from another address makes another group with
	// another receiver half.
	c := newPeer(t, "127.0.0.3", r.v4())
	c.send(reg1(sender))
	other := c.recv()
	if len(other) != 258 || bytes.Equal(other[130:], reply[130:]) {
		t.Fatal("second group got the same receiver half")
	}
}

// TestRegistrationRefusals: REG_NGP for an unknown ID; REG_ERR for an address
// that is a link of another group (REG2 and REG1), for a full group and for
// a full group table; never REG_NAK.
func TestRegistrationRefusals(t *testing.T) {
	r := run(t, Config{MaxGroups: 2, MaxLinksPerGroup: 2}, nil)
	a := newPeer(t, "127.0.0.2", r.v4())
	b := newPeer(t, "127.0.0.3", r.v4())
	c := newPeer(t, "127.0.0.4", r.v4())
	d := newPeer(t, "127.0.0.5", r.v4())

	a.send(reg2(randomID(t)))
	a.expect(wantNGP, "REG2 with an unknown ID")

	g1 := makeGroup(t, a, b) // full: two links
	g2 := makeGroup(t, c)
	a.send(reg2(g2))
	a.expect(wantErr, "REG2 from a link of another group")
	a.send(reg1(randomID(t)))
	a.expect(wantErr, "REG1 from a link")
	d.send(reg2(g1))
	d.expect(wantErr, "REG2 to a full group")
	d.send(reg1(randomID(t)))
	d.expect(wantErr, "REG1 with the group table full")
	d.send(reg2(g2)) // the third address still joins a group with room
	d.expect(wantReg3, "REG2 to a group with room")

	s := r.Stats().Counters
	want := map[string]uint64{reasonNoGroup: 1, reasonAddrInUse: 2, reasonLinksFull: 1, reasonGroupsFull: 1}
	for k, v := range want {
		if s.RegErrors[k] != v {
			t.Errorf("reg errors %v, want %v", s.RegErrors, want)
			break
		}
	}
	if s.GroupsRefused != 1 || s.Registrations != 4 || len(r.Stats().Groups) != 2 {
		t.Errorf("counters %+v", s)
	}
}

// TestGroupFlood: one source per group up to MaxGroups, then REG_ERR for
// every further REG1; the groups already open are untouched.
func TestGroupFlood(t *testing.T) {
	const limit = 5
	r := run(t, Config{MaxGroups: limit}, nil)
	for i := range limit + 3 {
		p := newPeer(t, netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)}).String(), r.v4())
		p.send(reg1(randomID(t)))
		got := p.recv()
		switch {
		case i < limit && (len(got) != srtla.RegLen || srtla.TypeOf(got) != srtla.TypeReg2):
			t.Fatalf("REG1 %d: % x", i, head(got))
		case i >= limit && !bytes.Equal(got, wantErr):
			t.Fatalf("REG1 %d beyond the limit: % x, want REG_ERR", i, head(got))
		}
	}
	s := r.Stats()
	if len(s.Groups) != limit || s.Counters.GroupsRefused != 3 || s.Counters.RegErrors[reasonGroupsFull] != 3 {
		t.Errorf("%d groups, counters %+v", len(s.Groups), s.Counters)
	}
}

// TestRegistrationFloodRateLimited: REG1/REG2 from one address beyond the
// bucket (burst 10, 5/s) are dropped and counted; the answered ones are
// retries of the same REG1 (the same REG2 again, one group); another source
// is not affected; tokens come back with time.
func TestRegistrationFloodRateLimited(t *testing.T) {
	fc := clockwork.NewFakeClock()
	r := run(t, Config{}, fc)
	flooder := newPeer(t, "127.0.0.2", r.v4())
	other := newPeer(t, "127.0.0.2", r.v4()) // same IP, other port: same bucket
	sender := randomID(t)
	for range 30 {
		flooder.send(reg1(sender))
	}
	waitFor(t, "30 registrations handled", func() bool {
		c := r.Stats().Counters
		return c.GroupsCreated+c.RegRetries+c.RateLimited == 30
	})
	first := flooder.recv()
	for i := 1; i < 10; i++ {
		if got := flooder.recv(); !bytes.Equal(got, first) {
			t.Fatalf("answer %d differs from the first REG2", i)
		}
	}
	c := r.Stats().Counters
	if c.GroupsCreated != 1 || c.RegRetries != 9 || c.RateLimited != 20 || len(r.Stats().Groups) != 1 {
		t.Fatalf("counters %+v", c)
	}
	other.send(reg2(randomID(t)))
	waitFor(t, "limited", func() bool { return r.Stats().Counters.RateLimited == 21 })
	noMore(t, flooder.c)
	noMore(t, other.c)

	elsewhere := newPeer(t, "127.0.0.3", r.v4())
	elsewhere.send(reg2(randomID(t)))
	elsewhere.expect(wantNGP, "another source")

	fc.Advance(time.Second) // 5 tokens
	for range 6 {
		other.send(reg2(randomID(t)))
	}
	for range 5 {
		other.expect(wantNGP, "after refill")
	}
	waitFor(t, "limited after refill", func() bool { return r.Stats().Counters.RateLimited == 22 })
	noMore(t, other.c)
}

// TestKeepaliveEchoedByteForByte: the BELABOX 2-byte keepalive, the
// timestamped 10-byte one, the 38-byte one with statistics and a 32-byte
// padded one all come back unchanged, from registered links only.
func TestKeepaliveEchoedByteForByte(t *testing.T) {
	r := run(t, Config{}, nil)
	a := newPeer(t, "127.0.0.2", r.v4())
	b := newPeer(t, "::1", r.v6())
	makeGroup(t, a, b)
	ts := marshal(&srtla.Keepalive{HasTimestamp: true, TimestampMs: 0x0102030405060708})
	stats := marshal(&srtla.Keepalive{HasTimestamp: true, TimestampMs: 42,
		Stats: &srtla.KeepaliveStats{ConnID: 7, Window: -3, InFlight: 9, RTTms: 80, NAKs: 2, BytesPS: 123456}})
	padded := append([]byte{0x90, 0x00}, bytes.Repeat([]byte{0xAB}, 30)...)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"2 bytes", []byte{0x90, 0x00}},
		{"10 bytes", ts},
		{"38 bytes", stats},
		{"32 bytes padded", padded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []*peer{a, b} {
				p.send(tc.b)
				if got := p.recv(); !bytes.Equal(got, tc.b) {
					t.Errorf("%s: echo % x, want % x", p.addr(), got, tc.b)
				}
			}
		})
	}
	if len(ts) != 10 || len(stats) != 38 || len(padded) != 32 {
		t.Fatalf("test keepalives of %d, %d, %d bytes", len(ts), len(stats), len(padded))
	}
	stranger := newPeer(t, "127.0.0.9", r.v4())
	stranger.send([]byte{0x90, 0x00})
	waitFor(t, "unknown source counted", func() bool { return r.Stats().Counters.UnknownSource == 1 })
	noMore(t, stranger.c)
	if l := r.Stats().Groups[0].Links[0]; l.Pkts != 4 || l.Bytes != 2+10+38+32 {
		t.Errorf("link counted %d packets, %d bytes", l.Pkts, l.Bytes)
	}
}

// TestDataForwardedFromOneSocketPerGroup: SRT data and control from every
// link of a group reach the listener unchanged from one source address (one
// SRT peer per group); another group has another source address; a datagram
// under 16 bytes and SRT from an address that is no link are dropped.
func TestDataForwardedFromOneSocketPerGroup(t *testing.T) {
	down := newFakeListener(t)
	r := run(t, Config{Downstream: down.addr()}, nil)
	a := newPeer(t, "127.0.0.2", r.v4())
	b := newPeer(t, "127.0.0.3", r.v4())
	c := newPeer(t, "::1", r.v6())
	other := newPeer(t, "127.0.0.4", r.v4())
	makeGroup(t, a, b, c)
	makeGroup(t, other)

	var src netip.AddrPort
	for i, p := range []*peer{a, b, c, a, b, c} {
		want := srtData(uint32(1000+i), "payload")
		if i == 1 {
			want = srtCtrl(srtla.SRTHandshake, 64, 0x11) // control is forwarded too
		}
		p.send(want)
		got, from := down.recv() // one at a time: IPv4 and IPv6 are two sockets
		if !bytes.Equal(got, want) {
			t.Fatalf("datagram %d: % x, want % x", i, head(got), head(want))
		}
		if i == 0 {
			src = from
		} else if from != src {
			t.Fatalf("datagram %d from %s, the group's first from %s", i, from, src)
		}
	}
	other.send(srtData(1, "other group"))
	if _, from := down.recv(); from == src {
		t.Errorf("two groups share the downstream socket %s", from)
	}

	a.send(srtData(5000, "")[:15]) // under an SRT header
	newPeer(t, "127.0.0.5", r.v4()).send(srtData(5001, "not a link"))
	waitFor(t, "drops counted", func() bool {
		c := r.Stats().Counters
		return c.Malformed[malformedTooShort] == 1 && c.UnknownSource == 1
	})
	noMore(t, down.c)
	if s := r.Stats(); s.Groups[0].Downstream != src.String() {
		t.Errorf("stats downstream %q, want %s", s.Groups[0].Downstream, src)
	}
}

// TestSRTAckReachesEveryLink: the listener's SRT ACK goes out on every link
// of the group (SRTLA.md §7.6); a NAK, a handshake reply or a shutdown goes
// to one link only, the one that last carried SRT.
func TestSRTAckReachesEveryLink(t *testing.T) {
	down := newFakeListener(t)
	r := run(t, Config{Downstream: down.addr()}, nil)
	a := newPeer(t, "127.0.0.2", r.v4())
	b := newPeer(t, "127.0.0.3", r.v4())
	c := newPeer(t, "::1", r.v6())
	makeGroup(t, a, b, c)
	a.send(srtData(1, "x"))
	_, src := down.recv()
	c.send(srtData(2, "y")) // c carried SRT last
	down.recv()

	ack := srtCtrl(srtla.SRTAck, 44, 0xA1)
	down.send(ack, src)
	for _, p := range []*peer{a, b, c} {
		p.expect(ack, "SRT ACK on "+p.addr().String())
	}
	for _, pkt := range [][]byte{srtCtrl(srtla.SRTNak, 24, 0xB2), srtCtrl(srtla.SRTHandshake, 64, 0xC3), srtCtrl(srtla.SRTShutdown, 16, 0)} {
		down.send(pkt, src)
		c.expect(pkt, "reply on the last link")
	}
	down.send(ack, src) // a and b see this ACK next: nothing else came to them
	a.expect(ack, "second ACK on a")
	b.expect(ack, "second ACK on b")
	c.expect(ack, "second ACK on c")
}

// TestReplyAvoidsStaleLastLink: the reference sends NAKs and handshake
// replies only to the last address, lost while that link is dead. Ours sends
// them to the last link while it is fresh, and to the most recently heard
// link once it has been silent for over StaleLink.
func TestReplyAvoidsStaleLastLink(t *testing.T) {
	fc := clockwork.NewFakeClock()
	down := newFakeListener(t)
	r := run(t, Config{Downstream: down.addr()}, fc)
	a := newPeer(t, "127.0.0.2", r.v4())
	b := newPeer(t, "127.0.0.3", r.v4())
	makeGroup(t, a, b)
	a.send(srtData(1, "on a"))
	_, src := down.recv()

	fc.Advance(500 * time.Millisecond)
	b.send([]byte{0x90, 0x00}) // b heard, but a is still fresh
	b.expect([]byte{0x90, 0x00}, "keepalive echo")
	nak := srtCtrl(srtla.SRTNak, 20, 1)
	down.send(nak, src)
	a.expect(nak, "NAK while a is fresh")

	fc.Advance(time.Second) // a silent 1.5 s, b 1 s
	b.send([]byte{0x90, 0x00})
	b.expect([]byte{0x90, 0x00}, "keepalive echo")
	hs := srtCtrl(srtla.SRTHandshake, 64, 2)
	down.send(hs, src)
	b.expect(hs, "handshake reply while a is stale")
	ack := srtCtrl(srtla.SRTAck, 44, 3)
	down.send(ack, src)
	a.expect(ack, "a got the ACK and nothing before it")
	b.expect(ack, "ACK on b")
}

// TestSRTLAAcksPerLink: every AckBatch data packets on a link, that link gets
// a 44-byte SRTLA ACK listing their sequence numbers in arrival order; a
// partial batch goes out on the flush timer; control packets are not listed.
func TestSRTLAAcksPerLink(t *testing.T) {
	fc := clockwork.NewFakeClock()
	down := newFakeListener(t)
	r := run(t, Config{Downstream: down.addr()}, fc)
	a := newPeer(t, "127.0.0.2", r.v4())
	b := newPeer(t, "127.0.0.3", r.v4())
	makeGroup(t, a, b)

	want := []byte{0x91, 0x00, 0x00, 0x00}
	for i := range 10 {
		sn := uint32(0x7FFFFFF8 + i) // across the wrap
		a.send(srtData(sn, "a"))
		want = binary.BigEndian.AppendUint32(want, sn&0x7FFFFFFF)
		if i == 4 {
			b.send(srtData(77, "b"))                   // another link's packet is not in a's batch
			a.send(srtCtrl(srtla.SRTHandshake, 64, 0)) // nor is control
		}
	}
	if got := a.recv(); !bytes.Equal(got, want) {
		t.Fatalf("ACK on a:\n% x\nwant\n% x", got, want)
	}
	for range 12 {
		down.recv()
	}
	a.send(srtData(500, "a"))
	a.send(srtData(501, "a"))
	waitFor(t, "two packets on a", func() bool { return r.Stats().Groups[0].Links[0].Pkts == 13 })
	fc.Advance(DefaultAckFlush)
	if got, want := a.recv(), []byte{0x91, 0, 0, 0, 0, 0, 0x01, 0xF4, 0, 0, 0x01, 0xF5}; !bytes.Equal(got, want) {
		t.Errorf("flushed ACK on a % x, want % x", got, want)
	}
	if got, want := b.recv(), []byte{0x91, 0, 0, 0, 0, 0, 0, 77}; !bytes.Equal(got, want) {
		t.Errorf("flushed ACK on b % x, want % x", got, want)
	}
}

// TestLinkAndGroupExpiry: a link silent for LinkTimeout is removed; a group
// whose links all expired is kept for GroupTimeout after its last packet
// (the reference counts from its creation), so a sender back from a total
// outage rejoins the same group (REG3, the same downstream socket) even
// when the group is older than GroupTimeout; after that it is removed and
// REG2 gets NGP. An empty group a REG1 made and nobody joined expires
// GroupTimeout after the REG1.
func TestLinkAndGroupExpiry(t *testing.T) {
	fc := clockwork.NewFakeClock()
	down := newFakeListener(t)
	r := run(t, Config{Downstream: down.addr(), CleanupInterval: time.Second}, fc)
	a := newPeer(t, "127.0.0.2", r.v4())
	b := newPeer(t, "127.0.0.3", r.v4())
	id := makeGroup(t, a, b)
	a.send(srtData(1, "x"))
	_, src := down.recv()
	open(t, newPeer(t, "127.0.0.4", r.v4())) // a second group, never joined
	keepalive := func(p *peer) {
		t.Helper()
		p.send([]byte{0x90, 0x00})
		p.expect([]byte{0x90, 0x00}, "keepalive")
	}

	advanceAndSweep(t, r, fc, 5*time.Second)
	keepalive(a)
	advanceAndSweep(t, r, fc, 6*time.Second) // 11 s: b silent 11 s, a 6 s
	if s := r.Stats(); s.Counters.LinksExpired != 1 || len(s.Groups) != 2 || len(s.Groups[0].Links) != 1 ||
		s.Groups[0].Links[0].Addr != a.addr().String() {
		t.Fatalf("after 11 s: %+v", s)
	}
	keepalive(a)
	for range 3 { // a stays alive until 35 s
		advanceAndSweep(t, r, fc, 8*time.Second)
		keepalive(a)
	}
	if s := r.Stats(); s.Counters.GroupsExpired != 1 || len(s.Groups) != 1 {
		t.Fatalf("the never-joined group is still there at 35 s: %+v", s)
	}

	// Total outage from 35 s: a expires, the 46-s-old group stays.
	advanceAndSweep(t, r, fc, 11*time.Second)
	if s := r.Stats(); s.Counters.LinksExpired != 2 || len(s.Groups) != 1 || len(s.Groups[0].Links) != 0 {
		t.Fatalf("after the outage: %+v", s)
	}
	b.send(srtData(2, "lost")) // no link any more: dropped
	waitFor(t, "unknown source", func() bool { return r.Stats().Counters.UnknownSource == 1 })
	join(t, b, id)
	b.send(srtData(3, "back"))
	if got, from := down.recv(); from != src || !bytes.Equal(got, srtData(3, "back")) {
		t.Fatalf("after rejoining: % x from %s, want the same socket %s", head(got), from, src)
	}

	advanceAndSweep(t, r, fc, 41*time.Second) // b silent 41 s
	if s := r.Stats(); s.Counters.GroupsExpired != 2 || len(s.Groups) != 0 || s.Counters.LinksExpired != 3 {
		t.Fatalf("after 41 s of silence: %+v", s)
	}
	b.send(reg2(id))
	b.expect(wantNGP, "REG2 to the expired group")
}

// TestReg1RetryAfterLostReg2: the reference answers a REG1 retried from the
// same address with REG_ERR until the empty group is collected (SRTLA.md
// §10); ours answers the same REG2 again, and a new ID from that address
// replaces the empty group.
func TestReg1RetryAfterLostReg2(t *testing.T) {
	r := run(t, Config{}, nil)
	a := newPeer(t, "127.0.0.2", r.v4())
	sender := randomID(t)
	a.send(reg1(sender))
	first := a.recv()
	a.send(reg1(sender))
	if again := a.recv(); !bytes.Equal(again, first) {
		t.Fatal("a retried REG1 got another REG2")
	}
	a.send(reg1(randomID(t)))
	if other := a.recv(); len(other) != srtla.RegLen || bytes.Equal(other, first) {
		t.Fatalf("a new ID from the same address: % x", head(other))
	}
	if s := r.Stats(); len(s.Groups) != 1 || s.Counters.GroupsCreated != 2 || s.Counters.RegRetries != 1 {
		t.Fatalf("stats %+v", s)
	}
	var old srtla.ID
	copy(old[:], first[2:])
	a.send(reg2(old))
	a.expect(wantNGP, "REG2 to the replaced group")
}

// TestDownstreamFailureDestroysGroup: the listener going away (ICMP port
// unreachable makes the connected socket fail) destroys the group, counted;
// its links must register again.
func TestDownstreamFailureDestroysGroup(t *testing.T) {
	down := newFakeListener(t)
	r := run(t, Config{Downstream: down.addr()}, nil)
	a := newPeer(t, "127.0.0.2", r.v4())
	id := makeGroup(t, a)
	a.send(srtData(1, "x"))
	down.recv()
	if err := down.c.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 { // the ICMP error surfaces on a later send or read
		if len(r.Stats().Groups) == 0 {
			break
		}
		a.send(srtData(uint32(2+i), "x"))
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, "group destroyed", func() bool { return len(r.Stats().Groups) == 0 })
	if c := r.Stats().Counters; c.DownstreamErrors != 1 {
		t.Errorf("downstream errors %d", c.DownstreamErrors)
	}
	a.send(reg2(id))
	a.expect(wantNGP, "REG2 after the group was destroyed")
}

// TestWildcardAnswersFromTheAddressSentTo: on a wildcard socket the kernel
// would answer a sender that sent to 127.0.0.5 from 127.0.0.1 (the route's
// preferred source), which a NAT or a connected socket drops; the relay
// answers from the destination of the sender's datagram, for IPv4 (on the
// dual-stack socket) and IPv6.
func TestWildcardAnswersFromTheAddressSentTo(t *testing.T) {
	r := run(t, Config{Listen: []string{":0"}}, nil)
	port := uint16(r.Addrs()[0].(*net.UDPAddr).Port)
	for _, tc := range []struct{ src, dst string }{
		{"127.0.0.2", "127.0.0.5"},
		{"127.0.0.3", "127.0.0.1"},
		{"::1", "::1"},
	} {
		t.Run(tc.dst, func(t *testing.T) {
			to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(tc.dst), port))
			p := newPeer(t, tc.src, to)
			id := open(t, p) // recv checks the source of every answer
			join(t, p, id)
			p.send([]byte{0x90, 0x00})
			p.expect([]byte{0x90, 0x00}, "keepalive echo")
		})
	}
}

// TestListenerKeptAliveThroughATotalOutage: while a group has no live link,
// the relay sends its SRT listener an SRT keepalive every PeerKeepalive, so
// the listener's peer idle timeout (5 s in libsrt and gosrt) does not end
// the session the sender holds its group for. The keepalive is the 16-byte
// SRT header: 0x8001, subtype 0, type-specific 0, the caller's timestamp
// moved on by the time since its last packet, and the listener's socket ID,
// which is the destination of the caller's packets (not of the listener's,
// which carry the caller's ID). None goes out before the session is known,
// while a link is heard, or after the caller shut the session down; the
// listener's echo of one is not passed on.
func TestListenerKeptAliveThroughATotalOutage(t *testing.T) {
	fc := clockwork.NewFakeClock()
	down := newFakeListener(t)
	r := run(t, Config{Downstream: down.addr()}, fc)
	a := newPeer(t, "127.0.0.2", r.v4())
	makeGroup(t, a)
	step := func() { // one keepalive period, and the relay has looked
		t.Helper()
		fc.Advance(time.Second)
		now := fc.Now()
		waitFor(t, "keepalive check", func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			return !r.lastPeerCheck.Before(now)
		})
	}
	keepalives := func() uint64 { return r.Stats().Counters.PeerKeepalives }
	withHeader := func(b []byte, ts, dst uint32) []byte {
		binary.BigEndian.PutUint32(b[8:], ts)
		binary.BigEndian.PutUint32(b[12:], dst)
		return b
	}

	// The caller's induction: no listener socket ID yet.
	a.send(withHeader(srtCtrl(srtla.SRTHandshake, 64, 0), 500, 0))
	_, src := down.recv()
	for range 3 {
		step()
	}
	if n := keepalives(); n != 0 {
		t.Fatalf("%d keepalives before the session is known", n)
	}
	noMore(t, down.c)

	// The session: the caller's data names the listener's socket 0x11223344;
	// the listener's ACK names the caller's socket 0xAABBCCDD.
	a.send(withHeader(srtData(7, "x"), 1000, 0x11223344))
	down.recv()
	down.send(withHeader(srtCtrl(srtla.SRTAck, 44, 0), 9, 0xAABBCCDD), src)
	a.recvNonAck()

	step() // 1 s after a's last packet: a is live
	if n := keepalives(); n != 0 {
		t.Fatalf("%d keepalives while a link is live", n)
	}
	for i, ts := range []uint32{1000 + 2_000_000, 1000 + 3_000_000} {
		step() // 2 s, 3 s: no live link
		got, from := down.recv()
		want := []byte{0x80, 0x01, 0, 0, 0, 0, 0, 0, byte(ts >> 24), byte(ts >> 16), byte(ts >> 8), byte(ts), 0x11, 0x22, 0x33, 0x44}
		if !bytes.Equal(got, want) || from != src {
			t.Fatalf("keepalive %d: % x from %s, want % x from the group's socket %s", i, got, from, want, src)
		}
	}

	// gosrt echoes a keepalive; the echo stays with the relay (a sender whose
	// uplinks are cut but not its downlinks would take it for life), the
	// listener's other packets still go to the last link.
	down.send(withHeader(srtCtrl(srtla.SRTKeepalive, 16, 0), 9, 0xAABBCCDD), src)
	nak := withHeader(srtCtrl(srtla.SRTNak, 20, 0x55), 9, 0xAABBCCDD)
	down.send(nak, src)
	if got := a.recvNonAck(); !bytes.Equal(got, nak) {
		t.Fatalf("during the outage a got % x, want only the NAK", got)
	}

	a.send([]byte{0x90, 0x00}) // a is back (an SRTLA keepalive)
	a.expect([]byte{0x90, 0x00}, "keepalive echo")
	step()
	a.send(withHeader(srtCtrl(srtla.SRTShutdown, 16, 0), 4_000_000, 0x11223344)) // the caller ends the session
	down.recv()
	for range 4 {
		step()
	}
	if n := keepalives(); n != 2 {
		t.Fatalf("%d keepalives, want the 2 of the outage", n)
	}
	noMore(t, down.c)
}

// The keepalives stop once the caller has been silent for PeerKeepaliveFor:
// a sender that gave up and came back with a new group (a new SRT session)
// must not find the listener still held by the old one until GroupTimeout.
func TestListenerKeepalivesStopAfterPeerKeepaliveFor(t *testing.T) {
	fc := clockwork.NewFakeClock()
	down := newFakeListener(t)
	r := run(t, Config{Downstream: down.addr(), PeerKeepaliveFor: 5 * time.Second}, fc)
	a := newPeer(t, "127.0.0.2", r.v4())
	makeGroup(t, a)
	data := srtData(7, "x")
	binary.BigEndian.PutUint32(data[12:], 0x11223344) // the listener's socket ID
	a.send(data)
	down.recv()
	for range 10 {
		fc.Advance(time.Second)
		now := fc.Now()
		waitFor(t, "keepalive check", func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			return !r.lastPeerCheck.Before(now)
		})
	}
	// At 2, 3, 4 and 5 s of silence; none from 6 s on.
	if n := r.Stats().Counters.PeerKeepalives; n != 4 {
		t.Fatalf("%d keepalives over 10 s of silence, want 4 (PeerKeepaliveFor 5 s)", n)
	}
}
