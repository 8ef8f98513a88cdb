package relay

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/jonboulle/clockwork"

	"onair/bond/srtla"
)

// recorder is a replySocket that keeps what the relay sends.
type recorder struct {
	mu   sync.Mutex
	sent [][]byte
}

func (w *recorder) WriteToUDPAddrPort(b []byte, _ netip.AddrPort) (int, error) {
	w.mu.Lock()
	w.sent = append(w.sent, bytes.Clone(b))
	w.mu.Unlock()
	return len(b), nil
}

// FuzzRelay: whatever a registered link or a stranger sends, the relay does
// not panic, answers only with well-formed SRTLA packets (or the keepalive
// echo, which is the input itself) and keeps its group table consistent.
// The input's first byte picks the sender; a 258-byte REG2 whose ID starts
// with 0xFF gets the real group's ID, so the fuzzer reaches the join path.
func FuzzRelay(f *testing.F) {
	f.Add([]byte{0, 0x90, 0x00})
	f.Add(append([]byte{1}, reg1(srtla.ID{})...))
	f.Add(append([]byte{0}, reg2(srtla.ID{0xFF})...))
	f.Add(append([]byte{2}, reg2(srtla.ID{0xFF})...))
	f.Add(append([]byte{0}, srtData(7, "data")...))
	f.Add(append([]byte{0}, typed(srtla.TypeAck, 44)...))
	f.Add([]byte{0, 0x92})
	// The listener nobody reads: forwarded datagrams just queue (or drop).
	down, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = down.Close() })
	link := netip.MustParseAddrPort("127.0.0.2:4000")
	sources := []netip.AddrPort{link, netip.MustParseAddrPort("127.0.0.3:4000"), netip.MustParseAddrPort("[::1]:4000")}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		r, err := New(Config{Listen: []string{"127.0.0.1:0"}, Downstream: down.LocalAddr().String(), MaxGroups: 2, MaxLinksPerGroup: 2},
			nil, clockwork.NewFakeClock())
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			r.mu.Lock()
			r.closing = true
			for len(r.groups) > 0 {
				r.removeGroupLocked(r.groups[0])
			}
			r.mu.Unlock()
			r.wg.Wait()
		}()
		sock := &recorder{}
		r.handle(sock, link, reg1(srtla.ID{1}))
		var id srtla.ID
		copy(id[:], sock.sent[0][2:])
		r.handle(sock, link, reg2(id))
		sock.sent = nil

		from, b := sources[int(in[0])%len(sources)], bytes.Clone(in[1:])
		if len(b) == srtla.RegLen && srtla.TypeOf(b) == srtla.TypeReg2 && b[2] == 0xFF {
			copy(b[2:], id[:])
		}
		r.handle(sock, from, b)
		r.handle(sock, from, b) // twice: a retry or a re-registration

		for _, w := range sock.sent {
			if bytes.Equal(w, b) && srtla.TypeOf(b) == srtla.TypeKeepalive {
				continue
			}
			p, err := srtla.Parse(w)
			if err != nil {
				t.Fatalf("sent % x: %v", head(w), err)
			}
			switch p.Type() {
			case srtla.TypeReg2, srtla.TypeReg3, srtla.TypeRegErr, srtla.TypeRegNGP, srtla.TypeAck:
			default:
				t.Fatalf("sent type %#x", p.Type())
			}
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.groups) > 2 {
			t.Fatalf("%d groups", len(r.groups))
		}
		n := 0
		for _, g := range r.groups {
			if len(g.links) > 2 {
				t.Fatalf("%d links", len(g.links))
			}
			for _, l := range g.links {
				if r.links[l.addr] != l {
					t.Fatalf("link %s not indexed", l.addr)
				}
				n++
			}
		}
		if n != len(r.links) {
			t.Fatalf("%d links indexed, %d in groups", len(r.links), n)
		}
	})
}
