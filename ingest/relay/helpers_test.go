package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"onair/bond/srtla"
	"onair/internal/testutil"
)

// ioTimeout bounds every read a test waits for; it is never a measurement.
const ioTimeout = 3 * time.Second

// fakeListener is the downstream SRT listener of the unit tests: a plain UDP
// socket that records who sends what and can answer.
type fakeListener struct {
	t *testing.T
	c *net.UDPConn
}

func newFakeListener(t *testing.T) *fakeListener {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &fakeListener{t: t, c: c}
}

func (f *fakeListener) addr() string { return f.c.LocalAddr().String() }

// recv returns the next datagram and its source.
func (f *fakeListener) recv() ([]byte, netip.AddrPort) {
	f.t.Helper()
	buf := make([]byte, readBuf)
	if err := f.c.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		f.t.Fatal(err)
	}
	n, from, err := f.c.ReadFromUDPAddrPort(buf)
	if err != nil {
		f.t.Fatalf("downstream: %v", err)
	}
	return buf[:n], from
}

func (f *fakeListener) send(b []byte, to netip.AddrPort) {
	f.t.Helper()
	if _, err := f.c.WriteToUDPAddrPort(b, to); err != nil {
		f.t.Fatal(err)
	}
}

// peer is one sender link: a UDP socket bound to its own loopback address.
type peer struct {
	t  *testing.T
	c  *net.UDPConn
	to netip.AddrPort
}

// newPeer binds ip:0 (any 127/8 address works on Linux; IPv6 has only ::1)
// and talks to the relay address to.
func newPeer(t *testing.T, ip string, to net.Addr) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &peer{t: t, c: c, to: to.(*net.UDPAddr).AddrPort()}
}

func (p *peer) addr() netip.AddrPort { return p.c.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *peer) send(b []byte) {
	p.t.Helper()
	if _, err := p.c.WriteToUDPAddrPort(b, p.to); err != nil {
		p.t.Fatal(err)
	}
}

// recv returns the next datagram from the relay.
func (p *peer) recv() []byte {
	p.t.Helper()
	buf := make([]byte, readBuf)
	if err := p.c.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		p.t.Fatal(err)
	}
	n, from, err := p.c.ReadFromUDPAddrPort(buf)
	if err != nil {
		p.t.Fatalf("peer %s: %v", p.addr(), err)
	}
	if unmap(from) != unmap(p.to) {
		p.t.Fatalf("reply from %s, want %s", from, p.to)
	}
	return buf[:n]
}

// recvNonAck is recv skipping SRTLA ACKs (a test about something else).
func (p *peer) recvNonAck() []byte {
	p.t.Helper()
	for range 100 {
		if b := p.recv(); srtla.TypeOf(b) != srtla.TypeAck {
			return b
		}
	}
	p.t.Fatal("only SRTLA ACKs")
	return nil
}

// expect receives and compares one datagram.
func (p *peer) expect(want []byte, what string) {
	p.t.Helper()
	if got := p.recvNonAck(); !bytes.Equal(got, want) {
		p.t.Fatalf("%s: got % x, want % x", what, head(got), head(want))
	}
}

func head(b []byte) []byte {
	if len(b) > 24 {
		return b[:24]
	}
	return b
}

// Bytes of the replies, from SRTLA.md §3.
var (
	wantReg3 = []byte{0x92, 0x02}
	wantErr  = []byte{0x92, 0x10}
	wantNGP  = []byte{0x92, 0x11}
)

func randomID(_ *testing.T) srtla.ID {
	var id srtla.ID
	_, _ = rand.Read(id[:])
	return id
}

func reg1(id srtla.ID) []byte { return marshal(&srtla.Reg1{ID: id}) }
func reg2(id srtla.ID) []byte { return marshal(&srtla.Reg2{ID: id}) }

// open sends REG1 from p and returns the full ID of the REG2 answer.
func open(t *testing.T, p *peer) srtla.ID {
	t.Helper()
	sender := randomID(t)
	p.send(reg1(sender))
	b := p.recvNonAck()
	if len(b) != srtla.RegLen || b[0] != 0x92 || b[1] != 0x01 || !bytes.Equal(b[2:2+srtla.HalfIDLen], sender[:srtla.HalfIDLen]) {
		t.Fatalf("REG1 answer % x…(%d bytes), want REG2 with our half", head(b), len(b))
	}
	var id srtla.ID
	copy(id[:], b[2:])
	return id
}

// join registers p as a link of group id.
func join(t *testing.T, p *peer, id srtla.ID) {
	t.Helper()
	p.send(reg2(id))
	p.expect(wantReg3, "REG2 answer")
}

// makeGroup opens a group on links[0] and joins every link to it.
func makeGroup(t *testing.T, links ...*peer) srtla.ID {
	t.Helper()
	id := open(t, links[0])
	for _, l := range links {
		join(t, l, id)
	}
	return id
}

// srtData is an SRT data packet with sequence number sn and payload.
func srtData(sn uint32, payload string) []byte {
	b := make([]byte, 16+len(payload))
	binary.BigEndian.PutUint32(b, sn&0x7FFFFFFF)
	binary.BigEndian.PutUint32(b[4:], 0xC0000000) // solo packet, in order
	copy(b[16:], payload)
	return b
}

// srtCtrl is an SRT control packet of type t, n bytes long, with a marker
// in the CIF so copies can be told apart.
func srtCtrl(t srtla.Type, n int, marker byte) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint16(b, uint16(t))
	for i := 16; i < n; i++ {
		b[i] = marker
	}
	return b
}

// run starts a relay with the fake clock (nil: a new fake clock), listening
// on IPv4 and IPv6 loopback unless cfg.Listen says otherwise.
func run(t *testing.T, cfg Config, clock clockwork.Clock) *Relay {
	t.Helper()
	if cfg.Listen == nil {
		cfg.Listen = []string{"127.0.0.1:0", "[::1]:0"}
	}
	if clock == nil {
		clock = clockwork.NewFakeClock()
	}
	if cfg.Downstream == "" {
		cfg.Downstream = newFakeListener(t).addr()
	}
	r, err := New(cfg, testutil.NilLogger(t), clock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(ioTimeout):
		t.Fatal("relay not ready")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(ioTimeout):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

// v4 is the relay's IPv4 loopback address, v6 its IPv6 one.
func (r *Relay) v4() net.Addr { return r.Addrs()[0] }
func (r *Relay) v6() net.Addr { return r.Addrs()[1] }

// waitFor polls cond (bounded): for state that a relay goroutine changes
// after a datagram or a clock tick.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// advanceAndSweep moves the fake clock and waits for a cleanup at the new
// time (the test's CleanupInterval must be at most d).
func advanceAndSweep(t *testing.T, r *Relay, fc *clockwork.FakeClock, d time.Duration) {
	t.Helper()
	fc.Advance(d)
	now := fc.Now()
	waitFor(t, "cleanup", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return !r.lastSweep.Before(now)
	})
}

// noMore asserts nothing else reached c: it sends itself a marker through
// loopback, which arrives after anything already queued.
func noMore(t *testing.T, c *net.UDPConn) {
	t.Helper()
	marker := []byte("marker")
	if _, err := c.WriteTo(marker, c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, readBuf)
	if err := c.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		t.Fatal(err)
	}
	n, _, err := c.ReadFrom(buf)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:n], marker) {
		t.Fatalf("unexpected datagram % x", head(buf[:n]))
	}
}
