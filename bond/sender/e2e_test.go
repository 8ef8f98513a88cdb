package sender

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	srt "github.com/datarhei/gosrt"
	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"onair/bond/srtla"
	"onair/web/api"
)

// shim is a minimal SRTLA receiver for the end-to-end test (SRTLA.md §7):
// one group, registration, keepalive echo, SRTLA ACKs every 10 data packets
// per link, forwarding to one connected UDP socket, SRT ACKs back on every
// link and everything else on the last active link. cut drops a link's
// packets both ways.
type shim struct {
	t    *testing.T
	conn *net.UDPConn
	down *net.UDPConn

	mu    sync.Mutex
	id    srtla.ID
	group bool
	links map[netip.AddrPort]*shimLink
	last  netip.AddrPort
	cut   map[netip.Addr]bool
	data  map[netip.Addr]int
}

type shimLink struct{ sns []uint32 }

func newShim(t *testing.T, downstream string) *shim {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	raddr, err := net.ResolveUDPAddr("udp", downstream)
	if err != nil {
		t.Fatal(err)
	}
	d, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(8 << 20)
	_ = d.SetReadBuffer(8 << 20)
	sh := &shim{t: t, conn: c, down: d, links: map[netip.AddrPort]*shimLink{}, cut: map[netip.Addr]bool{}, data: map[netip.Addr]int{}}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); sh.up() }()
	go func() { defer wg.Done(); sh.back() }()
	t.Cleanup(func() { _ = c.Close(); _ = d.Close(); wg.Wait() })
	return sh
}

func (sh *shim) addr() string { return sh.conn.LocalAddr().String() }

// up is sender → shim → listener.
func (sh *shim) up() {
	buf := make([]byte, srtla.MTU)
	for {
		n, from, err := sh.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		for _, out := range sh.fromLink(from, b) {
			_, _ = sh.conn.WriteToUDPAddrPort(out, from)
		}
	}
}

func (sh *shim) fromLink(from netip.AddrPort, b []byte) [][]byte {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.cut[from.Addr()] {
		return nil
	}
	switch srtla.TypeOf(b) {
	case srtla.TypeReg1:
		var r srtla.Reg1
		if r.Unmarshal(b) != nil {
			return nil
		}
		copy(sh.id[:], r.ID[:srtla.HalfIDLen])
		_, _ = rand.Read(sh.id[srtla.HalfIDLen:])
		sh.group = true
		out, _ := (&srtla.Reg2{ID: sh.id}).Marshal()
		return [][]byte{out}
	case srtla.TypeReg2:
		var r srtla.Reg2
		if r.Unmarshal(b) != nil {
			return nil
		}
		if !sh.group || r.ID != sh.id {
			return [][]byte{reply(srtla.TypeRegNGP)}
		}
		if sh.links[from] == nil {
			sh.links[from] = &shimLink{}
		}
		sh.last = from
		return [][]byte{reply(srtla.TypeReg3)}
	}
	l := sh.links[from]
	if l == nil {
		return nil
	}
	if srtla.TypeOf(b) == srtla.TypeKeepalive {
		return [][]byte{append([]byte(nil), b...)}
	}
	if len(b) < srtla.MinSRTLen || srtla.Classify(b) == srtla.KindSRTLA {
		return nil
	}
	sh.last = from
	var out [][]byte
	if sn, err := srtla.DataSN(b); err == nil {
		sh.data[from.Addr()]++
		l.sns = append(l.sns, sn)
		if len(l.sns) == srtla.AckBatch {
			ack, _ := (&srtla.Ack{SNs: l.sns}).Marshal()
			out = append(out, ack)
			l.sns = l.sns[:0]
		}
	}
	_, _ = sh.down.Write(b)
	return out
}

// back is listener → shim → sender.
func (sh *shim) back() {
	buf := make([]byte, srtla.MTU)
	for {
		n, err := sh.down.Read(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		sh.mu.Lock()
		var to []netip.AddrPort
		if srtla.TypeOf(b) == srtla.SRTAck {
			for ap := range sh.links {
				to = append(to, ap)
			}
		} else if sh.last.IsValid() {
			to = append(to, sh.last)
		}
		cut := sh.cut
		for _, ap := range to {
			if !cut[ap.Addr()] {
				_, _ = sh.conn.WriteToUDPAddrPort(b, ap)
			}
		}
		sh.mu.Unlock()
	}
}

func (sh *shim) dataFrom(ip string) int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.data[netip.MustParseAddr(ip)]
}

// e2eCase is one end-to-end run: the second link's policy, and what
// happens to the links at chunk cutAt.
type e2eCase struct {
	name    string
	policyB api.UplinkPolicy
	// outage, if set, cuts both links for that long instead of cutting b
	// for good; bytes sent during it may be dropped by SRT (too late), so
	// only the session is checked, not every byte.
	outage time.Duration
}

// A gosrt caller streams through the sender and the shim to a gosrt
// listener with passphrase and streamid over two links; one link is cut
// mid-stream (bond and duplicate): every byte arrives, in order, over one SRT
// session. A total outage of 10 s: the same session continues after it.
func TestEndToEndThroughTheSender(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time: streams for several seconds (run under flock /tmp/onair-live.lock)")
	}
	for _, tc := range []e2eCase{
		{name: "bond link cut", policyB: api.PolicyBond},
		{name: "duplicate link cut", policyB: api.PolicyDuplicate},
		{name: "total outage 10s", policyB: api.PolicyBond, outage: 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) { runE2E(t, tc) })
	}
}

func runE2E(t *testing.T, tc e2eCase) {
	const (
		passphrase = "correct horse battery staple"
		streamID   = "#!::r=live/e2e,m=publish"
		chunk      = 1316
		chunks     = 3000 // about 4 MB
		cutAt      = 1000
	)
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	idle := 5 * time.Second
	if tc.outage > 0 {
		idle = tc.outage + 10*time.Second
	}

	lcfg := srt.DefaultConfig()
	lcfg.Latency = 1500 * time.Millisecond
	lcfg.PeerIdleTimeout = idle
	ln, err := srt.Listen("srt", "127.0.0.1:0", lcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ln.Close)

	var (
		accepts  int
		received bytes.Buffer
		recvMu   sync.Mutex
	)
	recvDone := make(chan error, 1)
	go func() {
		for {
			req, aerr := ln.Accept2()
			if aerr != nil {
				return
			}
			if req.StreamId() != streamID {
				req.Reject(srt.REJX_FORBIDDEN)
				continue
			}
			if req.SetPassphrase(passphrase) != nil {
				req.Reject(srt.REJ_BADSECRET)
				continue
			}
			conn, cerr := req.Accept()
			if cerr != nil {
				continue
			}
			recvMu.Lock()
			accepts++
			recvMu.Unlock()
			go func() {
				buf := make([]byte, 2048)
				for {
					n, rerr := conn.Read(buf)
					if rerr != nil {
						recvDone <- rerr
						return
					}
					recvMu.Lock()
					received.Write(buf[:n])
					recvMu.Unlock()
				}
			}()
		}
	}()

	sh := newShim(t, ln.Addr().String())
	s, err := New(Config{Receiver: sh.addr()}, log.Named("sender"), clockwork.NewRealClock())
	if err != nil {
		t.Fatal(err)
	}
	s.SetLinks([]Link{bondLink("a", ipA, api.PolicyBond), bondLink("b", ipB, tc.policyB)})
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if rerr := <-runDone; !errors.Is(rerr, context.Canceled) {
			t.Errorf("Run: %v", rerr)
		}
	})
	<-s.Ready()
	bothUp := func() bool {
		n := 0
		for _, sm := range s.Samples() {
			if sm.Alive {
				n++
			}
		}
		return n == 2
	}
	waitReal(t, "both links up", 10*time.Second, bothUp)

	ccfg := srt.DefaultConfig()
	ccfg.Latency = 1500 * time.Millisecond
	ccfg.PeerIdleTimeout = idle
	ccfg.StreamId = streamID
	ccfg.Passphrase = passphrase
	caller, err := srt.Dial("srt", s.LocalAddr().String(), ccfg)
	if err != nil {
		t.Fatalf("dial through the sender: %v", err)
	}
	t.Cleanup(func() { _ = caller.Close() })

	payload := make([]byte, chunk*chunks)
	_, _ = rand.Read(payload)
	tick := time.NewTicker(2 * time.Millisecond) // ≈ 5 Mbit/s
	defer tick.Stop()
	var bBeforeCut, atRestore int
	setCut := func(on bool, ips ...string) {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		for _, ip := range ips {
			sh.cut[netip.MustParseAddr(ip)] = on
		}
	}
	for i := range chunks {
		<-tick.C
		if i == cutAt {
			bBeforeCut = sh.dataFrom(ipB)
			if tc.outage == 0 {
				setCut(true, ipB)
				t.Logf("link b cut after %d packets on it", bBeforeCut)
			} else {
				setCut(true, ipA, ipB)
				outageEnd := time.Now().Add(tc.outage)
				for time.Now().Before(outageEnd) { // the encoder keeps writing
					<-tick.C
					if _, err := caller.Write(payload[:chunk]); err != nil {
						t.Fatalf("caller write during the outage: %v (the session broke)", err)
					}
				}
				if st := s.Status(); st.Group != api.GroupOutage {
					t.Errorf("group %s during the outage, want outage", st.Group)
				}
				setCut(false, ipA, ipB)
				recvMu.Lock()
				atRestore = received.Len()
				recvMu.Unlock()
				waitReal(t, "links back after the outage", 10*time.Second, bothUp)
			}
		}
		if _, err := caller.Write(payload[i*chunk : (i+1)*chunk]); err != nil {
			t.Fatalf("caller write %d: %v (the session broke)", i, err)
		}
	}
	if tc.outage == 0 {
		waitReal(t, "every byte at the listener", 20*time.Second, func() bool {
			recvMu.Lock()
			defer recvMu.Unlock()
			return received.Len() >= len(payload)
		})
	} else {
		tail := payload[len(payload)-100*chunk:]
		waitReal(t, "the end of the stream after the outage", 20*time.Second, func() bool {
			recvMu.Lock()
			defer recvMu.Unlock()
			return received.Len() > atRestore && bytes.HasSuffix(received.Bytes(), tail)
		})
	}
	recvMu.Lock()
	got := append([]byte(nil), received.Bytes()...)
	n := accepts
	recvMu.Unlock()
	if tc.outage == 0 && sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Errorf("stream corrupted: %d bytes received, %d sent", len(got), len(payload))
	}
	if n != 1 {
		t.Errorf("%d SRT sessions at the listener, want 1 (never restarted)", n)
	}
	if bBeforeCut == 0 {
		t.Error("link b carried nothing before the cut: the test proves nothing")
	}
	var st srt.Statistics
	caller.Stats(&st)
	sa := s.Status()
	t.Logf("caller: sent %d, retransmitted %d, NAKs %d; links a %s (%d B), b %s (%d B); registers %d", st.Accumulated.PktSent,
		st.Accumulated.PktRetrans, st.Accumulated.PktRecvNAK, sa.Uplinks[0].State, sa.Uplinks[0].BytesSent, sa.Uplinks[1].State,
		sa.Uplinks[1].BytesSent, sa.Registers)
	if sa.Registers != 1 {
		t.Errorf("%d groups opened, want 1", sa.Registers)
	}
	select {
	case err := <-recvDone:
		t.Errorf("listener connection ended while the caller was still connected: %v", err)
	default:
	}
}

// waitReal polls cond in real time, for the real-time test.
func waitReal(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
