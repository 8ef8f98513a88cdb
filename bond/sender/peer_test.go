package sender

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"onair/bond/srtla"
)

// peer is a scripted SRTLA receiver (SRTLA.md §5, §7): REG1 → REG2, REG2 →
// REG3 or NGP or ERR, keepalive echo, and SRT packets recorded per source
// address. Tests steer it with its fields under mu.
type peer struct {
	t     *testing.T
	conns []*net.UDPConn // 127.0.0.1:P and, if asked, [::1]:P
	port  uint16

	mu        sync.Mutex
	id        srtla.ID
	haveGroup bool
	groups    int                           // REG1s answered with REG2
	links     map[netip.AddrPort]bool       // registered links
	byIP      map[netip.Addr]netip.AddrPort // latest source of each link IP
	got       map[netip.Addr]map[srtla.Type]int
	dataSNs   map[netip.Addr][]uint32
	dataBytes map[netip.Addr]int
	// behaviour
	silent map[netip.Addr]bool // drop everything from these IPs, answer nothing
	slow   map[netip.Addr]bool // answer these IPs 300 ms late
	regErr bool                // answer every REG1 and REG2 with REG_ERR
	mute   bool                // drop everything (total outage)
}

// keyData counts SRT data in peer.got; keyControl SRT control.
const (
	keyData    srtla.Type = 1
	keyControl srtla.Type = 2
)

func newPeer(t *testing.T, v6 bool) *peer {
	t.Helper()
	p := &peer{t: t, links: map[netip.AddrPort]bool{}, byIP: map[netip.Addr]netip.AddrPort{},
		got: map[netip.Addr]map[srtla.Type]int{}, dataSNs: map[netip.Addr][]uint32{},
		dataBytes: map[netip.Addr]int{}, silent: map[netip.Addr]bool{}, slow: map[netip.Addr]bool{}}
	for attempt := 0; attempt < 20; attempt++ {
		c4, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		p.conns = []*net.UDPConn{c4}
		p.port = uint16(c4.LocalAddr().(*net.UDPAddr).Port)
		if !v6 {
			break
		}
		c6, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback, Port: int(p.port)})
		if err == nil {
			p.conns = append(p.conns, c6)
			break
		}
		_ = c4.Close()
		p.conns = nil
	}
	if len(p.conns) == 0 {
		t.Fatal("no peer port free on 127.0.0.1 and ::1")
	}
	var wg sync.WaitGroup
	for _, c := range p.conns {
		_ = c.SetReadBuffer(8 << 20)
		wg.Add(1)
		go func() { defer wg.Done(); p.serve(c) }()
	}
	t.Cleanup(func() {
		for _, c := range p.conns {
			_ = c.Close()
		}
		wg.Wait()
	})
	return p
}

func (p *peer) addr() string {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p.port).String()
}

func (p *peer) serve(c *net.UDPConn) {
	buf := make([]byte, srtla.MTU)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.t.Errorf("peer read: %v", err)
			}
			return
		}
		b := buf[:n]
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		replies := p.handle(from, b)
		p.mu.Lock()
		slow := p.slow[from.Addr()]
		p.mu.Unlock()
		send := func() {
			for _, reply := range replies {
				_, _ = c.WriteToUDPAddrPort(reply, from)
			}
		}
		if slow {
			time.AfterFunc(300*time.Millisecond, send)
			continue
		}
		send()
	}
}

func (p *peer) count(ip netip.Addr, k srtla.Type) {
	m := p.got[ip]
	if m == nil {
		m = map[srtla.Type]int{}
		p.got[ip] = m
	}
	m[k]++
}

func reply(t srtla.Type) []byte {
	b, _ := (&srtla.Reply{Kind: t}).Marshal()
	return b
}

// handle answers one datagram as SRTLA.md §7 describes.
func (p *peer) handle(from netip.AddrPort, b []byte) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	ip := from.Addr()
	if p.mute || p.silent[ip] {
		return nil
	}
	p.byIP[ip] = from
	switch srtla.Classify(b) {
	case srtla.KindSRTLA:
		t := srtla.TypeOf(b)
		p.count(ip, t)
		switch t {
		case srtla.TypeReg1:
			var r srtla.Reg1
			if r.Unmarshal(b) != nil {
				return nil
			}
			if p.regErr {
				return [][]byte{reply(srtla.TypeRegErr)}
			}
			copy(p.id[:], r.ID[:srtla.HalfIDLen])
			_, _ = rand.Read(p.id[srtla.HalfIDLen:])
			p.haveGroup = true
			p.groups++
			out, _ := (&srtla.Reg2{ID: p.id}).Marshal()
			return [][]byte{out}
		case srtla.TypeReg2:
			var r srtla.Reg2
			if r.Unmarshal(b) != nil {
				return nil
			}
			if p.regErr {
				return [][]byte{reply(srtla.TypeRegErr)}
			}
			if !p.haveGroup || r.ID != p.id {
				return [][]byte{reply(srtla.TypeRegNGP)}
			}
			p.links[from] = true
			return [][]byte{reply(srtla.TypeReg3)}
		case srtla.TypeKeepalive:
			if !p.links[from] {
				return nil
			}
			return [][]byte{append([]byte(nil), b...)}
		}
		return nil
	case srtla.KindSRTData:
		if !p.links[from] {
			return nil
		}
		p.count(ip, keyData)
		sn, _ := srtla.DataSN(b)
		p.dataSNs[ip] = append(p.dataSNs[ip], sn)
		p.dataBytes[ip] += len(b)
	case srtla.KindSRTControl:
		if !p.links[from] {
			return nil
		}
		p.count(ip, keyControl)
	}
	return nil
}

// n is how many packets of kind k came from ip.
func (p *peer) n(ip string, k srtla.Type) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got[netip.MustParseAddr(ip)][k]
}

// with runs f under the peer's lock (to steer its behaviour).
func (p *peer) with(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
}

func (p *peer) nGroups() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.groups
}

// forget makes the peer treat ip's link as unknown (as after a NAT
// rebinding: the receiver knows only the old source port).
func (p *peer) forget(ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := netip.MustParseAddr(ip)
	for ap := range p.links {
		if ap.Addr() == a {
			delete(p.links, ap)
		}
	}
}

func (p *peer) registered(ip string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ap, ok := p.byIP[netip.MustParseAddr(ip)]
	return ok && p.links[ap]
}

// sendTo sends b to ip's link from the peer's socket of that family.
func (p *peer) sendTo(ip string, b []byte) {
	p.mu.Lock()
	ap, ok := p.byIP[netip.MustParseAddr(ip)]
	p.mu.Unlock()
	if !ok {
		p.t.Fatalf("peer: no link from %s", ip)
	}
	c := p.conns[0]
	if ap.Addr().Is6() {
		c = p.conns[1]
	}
	if _, err := c.WriteToUDPAddrPort(b, ap); err != nil {
		p.t.Fatalf("peer send: %v", err)
	}
}

// srtAck is an SRT full ACK with ack number n and last acknowledged sn.
func srtAck(n, last uint32) []byte {
	b := make([]byte, 44)
	b[0], b[1] = 0x80, 0x02
	b[4], b[5], b[6], b[7] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	b[16], b[17], b[18], b[19] = byte(last>>24), byte(last>>16), byte(last>>8), byte(last)
	return b
}

// srtData is an SRT data packet with sequence number sn and size bytes.
func srtData(sn uint32, size int) []byte {
	b := make([]byte, size)
	b[0], b[1], b[2], b[3] = byte(sn>>24)&0x7F, byte(sn>>16), byte(sn>>8), byte(sn)
	return b
}

// rig is a Sender under a fake clock against a peer, with a UDP socket
// standing in for the SRT caller.
type rig struct {
	t   *testing.T
	s   *Sender
	fc  *clockwork.FakeClock
	p   *peer
	app *net.UDPConn
	// fromSender collects what the sender forwarded to the app.
	mu         sync.Mutex
	fromSender [][]byte
}

func newRig(t *testing.T, p *peer, links []Link, cfg Config) *rig {
	t.Helper()
	if cfg.Receiver == "" {
		cfg.Receiver = p.addr()
	}
	return newRigWith(t, p, links, cfg, nil)
}

func newRigWith(t *testing.T, p *peer, links []Link, cfg Config, lookup func(context.Context, string) ([]netip.Addr, error)) *rig {
	t.Helper()
	fc := clockwork.NewFakeClockAt(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	s, err := New(cfg, log, fc)
	if err != nil {
		t.Fatal(err)
	}
	if lookup != nil {
		s.lookup = lookup
	}
	s.SetLinks(links)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if rerr := <-done; !errors.Is(rerr, context.Canceled) {
			t.Errorf("Run: %v", rerr)
		}
	})
	<-s.Ready()
	app, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, s: s, fc: fc, p: p, app: app}
	appDone := make(chan struct{})
	go func() {
		defer close(appDone)
		buf := make([]byte, srtla.MTU)
		for {
			n, err := app.Read(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.fromSender = append(r.fromSender, append([]byte(nil), buf[:n]...))
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = app.Close(); <-appDone })
	r.waitTicks(1) // the first housekeeping runs at once
	return r
}

// waitTicks waits until the sender has done n housekeeping ticks.
func (r *rig) waitTicks(n int) {
	r.t.Helper()
	r.eventually("housekeeping tick", func() bool {
		r.s.mu.Lock()
		defer r.s.mu.Unlock()
		return r.s.ticks >= n
	})
}

// advance moves the fake clock one tick at a time, waiting for each.
func (r *rig) advance(ticks int) {
	r.t.Helper()
	for range ticks {
		r.s.mu.Lock()
		n := r.s.ticks
		r.s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := r.fc.BlockUntilContext(ctx, 1); err != nil {
			r.t.Fatal("ticker not waiting")
		}
		cancel()
		r.fc.Advance(tickPeriod)
		r.waitTicks(n + 1)
		r.settle()
	}
}

// settle gives loopback replies time to arrive (bounded, real time: the
// network is real even when the clock is not).
func (r *rig) settle() { time.Sleep(20 * time.Millisecond) }

// eventually polls cond for up to 5 s of real time.
func (r *rig) eventually(what string, cond func() bool) {
	r.t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("timed out waiting for %s", what)
}

// send sends b from the app socket to the sender.
func (r *rig) send(b []byte) {
	r.t.Helper()
	if _, err := r.app.WriteTo(b, r.s.LocalAddr()); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) received() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.fromSender...)
}

func (r *rig) link(name string) Sample {
	for _, sm := range r.s.Samples() {
		if sm.Name == name {
			return sm
		}
	}
	r.t.Fatalf("no link %s", name)
	return Sample{}
}

func (r *rig) waitUp(names ...string) {
	r.t.Helper()
	for _, name := range names {
		r.eventually(name+" up", func() bool { return r.link(name).Alive })
	}
}

func countEqual(pkts [][]byte, b []byte) int {
	n := 0
	for _, p := range pkts {
		if bytes.Equal(p, b) {
			n++
		}
	}
	return n
}
