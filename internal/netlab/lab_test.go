package netlab

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// testPort is the studio service port the tests use.
const testPort = 5000

// peer is a UDP socket in one of the lab's namespaces that records what it
// receives: a sequence number per packet (the first 4 bytes) and the
// source address of each.
type peer struct {
	conn *net.UDPConn

	mu      sync.Mutex
	seqs    map[uint32]int
	sources map[netip.AddrPort]int
	last    netip.AddrPort
	changed chan struct{}
	echo    bool     // send every packet back to its source
	order   []uint32 // sequence numbers in arrival order
}

// listen opens a UDP socket on addr inside ns; it is closed in t.Cleanup.
func listen(t *testing.T, l *Lab, ns string, addr netip.AddrPort) *peer {
	t.Helper()
	return listenPeer(t, l, ns, addr, false)
}

// listenEcho is listen for a socket that answers every packet.
func listenEcho(t *testing.T, l *Lab, ns string, addr netip.AddrPort) *peer {
	t.Helper()
	return listenPeer(t, l, ns, addr, true)
}

func listenPeer(t *testing.T, l *Lab, ns string, addr netip.AddrPort, echo bool) *peer {
	t.Helper()
	var conn *net.UDPConn
	err := l.Do(ns, func() error {
		var err error
		conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		if err != nil {
			return err
		}
		// 4 MB, past rmem_max (we are root): a reader the race detector
		// or a busy machine holds up must not lose packets here, where a
		// loss would be blamed on the lab.
		raw, err := conn.SyscallConn()
		if err != nil {
			return err
		}
		return control(raw, func(fd int) error {
			return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
		})
	})
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	p := &peer{conn: conn, seqs: map[uint32]int{}, sources: map[netip.AddrPort]int{}, changed: make(chan struct{}, 1), echo: echo}
	done := make(chan struct{})
	go p.read(done)
	t.Cleanup(func() { _ = conn.Close(); <-done })
	return p
}

func (p *peer) read(done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, 65536)
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if n < 4 {
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if p.echo {
			_, _ = p.conn.WriteToUDPAddrPort(buf[:n], from)
		}
		p.mu.Lock()
		p.seqs[binary.BigEndian.Uint32(buf)]++
		p.order = append(p.order, binary.BigEndian.Uint32(buf))
		p.sources[from]++
		p.last = from
		p.mu.Unlock()
		select {
		case p.changed <- struct{}{}:
		default:
		}
	}
}

// send sends packets seq from..to-1 of size bytes to dst, spaced by gap
// (0: as fast as the socket takes them).
func (p *peer) send(t *testing.T, dst netip.AddrPort, from, to uint32, size int, gap time.Duration) {
	t.Helper()
	buf := make([]byte, size)
	start := time.Now()
	for s := from; s < to; s++ {
		if gap > 0 {
			if d := time.Until(start.Add(time.Duration(s-from) * gap)); d > 0 {
				time.Sleep(d)
			}
		}
		binary.BigEndian.PutUint32(buf, s)
		if _, err := p.conn.WriteToUDPAddrPort(buf, dst); err != nil {
			t.Fatalf("send seq %d to %s: %v", s, dst, err)
		}
	}
}

// got counts the distinct sequence numbers received in [from, to).
func (p *peer) got(from, to uint32) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for s := range p.seqs {
		if s >= from && s < to {
			n++
		}
	}
	return n
}

// lastSource is the source of the latest packet received.
func (p *peer) lastSource() netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// waitFor waits until cond holds, for at most 5 s.
func (p *peer) waitFor(cond func() bool) bool {
	deadline := time.After(5 * time.Second)
	for !cond() {
		select {
		case <-p.changed:
		case <-deadline:
			return cond()
		}
	}
	return true
}

// marker sends seq to dst every 20 ms (at most 100 times) until it
// arrives: whatever the lab dropped before it is gone for good, so the
// counts are final without sleeping.
func (p *peer) marker(t *testing.T, to *peer, dst netip.AddrPort, seq uint32) {
	t.Helper()
	for range 100 {
		p.send(t, dst, seq, seq+1, 64, 0)
		deadline := time.After(20 * time.Millisecond)
	wait:
		for {
			if to.got(seq, seq+1) > 0 {
				return
			}
			select {
			case <-to.changed:
			case <-deadline:
				break wait
			}
		}
	}
	t.Fatalf("marker %d never reached %s", seq, dst)
}

func service(fam string) netip.AddrPort {
	if fam == "v6" {
		return netip.AddrPortFrom(ServiceV6, testPort)
	}
	return netip.AddrPortFrom(ServiceV4, testPort)
}

func boxAddr(ln Link, fam string) netip.Addr {
	if fam == "v6" {
		return ln.BoxV6
	}
	return ln.BoxV4
}

func mustLink(t *testing.T, l *Lab, name string) Link {
	t.Helper()
	ln, err := l.Link(name)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func txPackets(t *testing.T, l *Lab) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, ln := range l.Links() {
		n, err := l.TxPackets(ln.Name)
		must(t, err)
		out[ln.Name] = n
	}
	return out
}

// A socket bound to an uplink's address must reach the studio service
// through that uplink and no other (tx counters), v4 and v6, and the
// studio's answers must come back: the premise of every bonding test.
func TestEachUplinkCarriesOnlyTrafficBoundToIt(t *testing.T) {
	l := ForTest(t, Options{})
	for _, ln := range l.Links() {
		must(t, l.AddSourceRoute(ln.Name))
	}
	const n = 200
	for _, fam := range []string{"v4", "v6"} {
		studio := listen(t, l, l.Studio, service(fam))
		for _, ln := range l.Links() {
			t.Run(fam+"/"+ln.Name, func(t *testing.T) {
				box := listen(t, l, l.Box, netip.AddrPortFrom(boxAddr(ln, fam), 0))
				before := txPackets(t, l)
				base := uint32(ln.Index * 10000)
				box.send(t, service(fam), base, base+n, 400, 100*time.Microsecond)
				if !studio.waitFor(func() bool { return studio.got(base, base+n) == n }) {
					t.Fatalf("studio received %d of %d", studio.got(base, base+n), n)
				}
				if src := studio.lastSource(); src.Addr() != boxAddr(ln, fam) {
					t.Errorf("studio saw source %s, want %s", src, boxAddr(ln, fam))
				}
				after := txPackets(t, l)
				for name := range after {
					d := after[name] - before[name]
					switch {
					case name == ln.Name && d < n:
						t.Errorf("%s sent %d packets, want >= %d", name, d, n)
					case name != ln.Name && d > 5: // ARP / neighbour discovery at most
						t.Errorf("%s sent %d packets, want none of the flow's", name, d)
					}
				}
				// The answer takes the link back.
				studio.send(t, box.conn.LocalAddr().(*net.UDPAddr).AddrPort(), 1, 2, 100, 0)
				if !box.waitFor(func() bool { return box.got(1, 2) == 1 }) {
					t.Errorf("the studio's answer did not reach %s", box.conn.LocalAddr())
				}
				t.Logf("%s %s: %d of %d arrived, tx %s +%d", fam, ln.Name, studio.got(base, base+n), n, ln.Name, after[ln.Name]-before[ln.Name])
			})
		}
	}
}

// A cut link carries nothing in either direction, and carries again the
// moment the cut ends.
func TestCutStopsBothDirectionsAndUncutRestores(t *testing.T) {
	l := ForTest(t, Options{})
	must(t, l.AddSourceRoute("cell1"))
	ln := mustLink(t, l, "cell1")
	for _, fam := range []string{"v4", "v6"} {
		t.Run(fam, func(t *testing.T) {
			studio := listen(t, l, l.Studio, service(fam))
			box := listen(t, l, l.Box, netip.AddrPortFrom(boxAddr(ln, fam), 0))
			boxAt := box.conn.LocalAddr().(*net.UDPAddr).AddrPort()
			must(t, l.Cut("cell1", true))
			box.send(t, service(fam), 0, 100, 200, 0)
			studio.send(t, boxAt, 0, 100, 200, 0)
			must(t, l.Cut("cell1", false))
			box.marker(t, studio, service(fam), 1000)
			studio.marker(t, box, boxAt, 1000)
			if n := studio.got(0, 100); n != 0 {
				t.Errorf("box→studio: %d of 100 crossed the cut", n)
			}
			if n := box.got(0, 100); n != 0 {
				t.Errorf("studio→box: %d of 100 crossed the cut", n)
			}
			box.send(t, service(fam), 100, 200, 200, 50*time.Microsecond)
			studio.send(t, boxAt, 100, 200, 200, 50*time.Microsecond)
			if !studio.waitFor(func() bool { return studio.got(100, 200) == 100 }) ||
				!box.waitFor(func() bool { return box.got(100, 200) == 100 }) {
				t.Errorf("after the cut: box→studio %d, studio→box %d of 100", studio.got(100, 200), box.got(100, 200))
			}
		})
	}
}

// tbf on the box side passes the shaped rate and no more: offered about
// 4 Mbit/s, a link shaped to 1 and then (changed mid-run) 2 Mbit/s
// delivers at most the rate over the sending time plus its bucket and
// queue (+10 %), and at least 60 % of the rate over the sending time; unshaped, it delivers everything. The
// bounds come from the measured sending time, so a slow machine widens
// them instead of failing.
func TestShapeLimitsWhatTheLinkCarries(t *testing.T) {
	l := ForTest(t, Options{})
	must(t, l.AddSourceRoute("cell1"))
	ln := mustLink(t, l, "cell1")
	studio := listen(t, l, l.Studio, service("v4"))
	box := listen(t, l, l.Box, netip.AddrPortFrom(ln.BoxV4, 0))
	const (
		n    = 500
		size = 1000
		wire = size + 8 + 20 + 14 // what tbf counts: UDP, IP and Ethernet headers
		gap  = 2 * time.Millisecond
	)
	for i, kbit := range []int{1000, 2000, 0} {
		must(t, l.Shape("cell1", kbit))
		base := uint32(i * 10000)
		start := time.Now()
		box.send(t, service("v4"), base, base+n, size, gap)
		elapsed := time.Since(start)
		box.marker(t, studio, service("v4"), base+n)
		got := studio.got(base, base+n)
		offered := float64(n*wire*8) / elapsed.Seconds() / 1000
		t.Logf("shaped %d kbit/s, offered %.0f kbit/s for %v: %d of %d delivered (%.0f kbit/s)",
			kbit, offered, elapsed.Round(time.Millisecond), got, n, float64(got*wire*8)/elapsed.Seconds()/1000)
		if kbit == 0 {
			if got < n*98/100 {
				t.Errorf("unshaped: %d of %d delivered", got, n)
			}
			continue
		}
		rate := float64(kbit) * 1000 / 8 // bytes/s
		// The bucket starts full, and the queue holds the latency's worth
		// plus another bucket (tbf's limit).
		hi := int((rate*(elapsed+shapeLatency).Seconds()+2*float64(shapeBurst(kbit)))/wire*1.1) + 2
		lo := int(min(n, rate*elapsed.Seconds()/wire) * 0.6)
		if got > hi || got < lo {
			t.Errorf("shaped %d kbit/s over %v: %d packets delivered, want %d..%d", kbit, elapsed, got, lo, hi)
		}
	}
}

// Loss drops about the asked share: 10 % of 2000 is 200 ± 13 (one sigma);
// the bounds are 7 sigma wide.
func TestLossDropsAboutThePercentage(t *testing.T) {
	l := ForTest(t, Options{})
	must(t, l.AddSourceRoute("cell2"))
	ln := mustLink(t, l, "cell2")
	studio := listen(t, l, l.Studio, service("v4"))
	box := listen(t, l, l.Box, netip.AddrPortFrom(ln.BoxV4, 0))
	const n = 2000
	must(t, l.Loss("cell2", 10))
	box.send(t, service("v4"), 0, n, 100, 100*time.Microsecond)
	must(t, l.Loss("cell2", 0))
	box.marker(t, studio, service("v4"), n)
	lost := n - studio.got(0, n)
	t.Logf("loss 10%%: %d of %d dropped (%.1f%%)", lost, n, float64(lost)*100/n)
	if lost < 100 || lost > 300 {
		t.Errorf("loss 10%%: %d of %d dropped, want 100..300", lost, n)
	}
}

// Rebind moves the box's source port as the studio sees it, for a flow
// that keeps its socket, and the studio's answers to the new port still
// reach that socket.
func TestRebindChangesTheObservedSourcePort(t *testing.T) {
	l := ForTest(t, Options{})
	must(t, l.AddSourceRoute("cell2"))
	ln := mustLink(t, l, "cell2")
	for _, fam := range []string{"v4", "v6"} {
		t.Run(fam, func(t *testing.T) {
			studio := listen(t, l, l.Studio, service(fam))
			box := listen(t, l, l.Box, netip.AddrPortFrom(boxAddr(ln, fam), 0))
			seen := []uint16{}
			for i := range uint32(3) {
				if i > 0 {
					must(t, l.Rebind("cell2"))
				}
				box.marker(t, studio, service(fam), i)
				src := studio.lastSource()
				if src.Addr() != boxAddr(ln, fam) {
					t.Fatalf("studio saw %s, want address %s", src, boxAddr(ln, fam))
				}
				if slices.Contains(seen, src.Port()) {
					t.Errorf("rebind %d: studio still sees port %d (seen %v)", i, src.Port(), seen)
				}
				seen = append(seen, src.Port())
				studio.send(t, src, 100+i, 101+i, 64, 0)
				if !box.waitFor(func() bool { return box.got(100+i, 101+i) == 1 }) {
					t.Errorf("rebind %d: the answer to %s did not reach the box socket", i, src)
				}
			}
			t.Logf("%s: socket port %d, studio saw ports %v", fam, box.conn.LocalAddr().(*net.UDPAddr).Port, seen)
		})
	}
}

// A modem plugged in at runtime is a new link that carries traffic bound
// to it, and unplugging it removes both ends.
func TestAddUplinkAtRuntime(t *testing.T) {
	l := ForTest(t, Options{Uplinks: []string{"wired"}})
	ln, err := l.AddUplink("modem9")
	must(t, err)
	if ln.Index != 2 || ln.BoxV4 != netip.MustParseAddr("198.18.2.2") {
		t.Errorf("new link %+v, want index 2 at 198.18.2.2", ln)
	}
	if _, err := l.AddUplink("modem9"); !errors.Is(err, ErrBadName) {
		t.Errorf("second modem9: %v, want ErrBadName", err)
	}
	must(t, l.AddSourceRoute("modem9"))
	studio := listen(t, l, l.Studio, service("v6"))
	box := listen(t, l, l.Box, netip.AddrPortFrom(ln.BoxV6, 0))
	before := txPackets(t, l)
	box.send(t, service("v6"), 0, 100, 300, 50*time.Microsecond)
	if !studio.waitFor(func() bool { return studio.got(0, 100) == 100 }) {
		t.Fatalf("studio received %d of 100 over modem9", studio.got(0, 100))
	}
	after := txPackets(t, l)
	if d := after["modem9"] - before["modem9"]; d < 100 {
		t.Errorf("modem9 sent %d packets, want >= 100", d)
	}
	if d := after["wired"] - before["wired"]; d > 5 {
		t.Errorf("wired sent %d packets of modem9's flow", d)
	}
	must(t, l.DelSourceRoute("modem9"))
	must(t, l.RemoveUplink("modem9"))
	if out, err := exec.Command("ip", "-n", l.Studio, "link", "show", "modem9-stu").CombinedOutput(); err == nil {
		t.Errorf("modem9-stu still there after RemoveUplink:\n%s", out)
	}
}

// The lab plays the DHCP client: carrier down drops the routes (the
// kernel does), carrier up restores addresses and the main default route,
// and a renew moves the box to a new address that carries traffic.
func TestCarrierAndAddressChangesBehaveLikeDHCP(t *testing.T) {
	l := ForTest(t, Options{})
	nl := l.nl[l.Box]
	// hasDefault: a main-table default route via wired (every uplink has
	// one, like a modem manager's, each with its own metric).
	hasDefault := func() bool {
		li, err := nl.LinkByName("wired")
		must(t, err)
		rs, err := nl.RouteList(li, 0)
		must(t, err)
		for _, r := range rs {
			if r.Dst == nil || r.Dst.IP.IsUnspecified() {
				return true
			}
		}
		return false
	}
	hasAddr := func(name string, a netip.Addr) bool {
		li, err := nl.LinkByName(name)
		must(t, err)
		as, err := nl.AddrList(li, 0)
		must(t, err)
		for _, x := range as {
			if y, _ := netip.AddrFromSlice(x.IP); y.Unmap() == a {
				return true
			}
		}
		return false
	}
	wired := mustLink(t, l, "wired")
	must(t, l.LinkDown("wired"))
	if hasDefault() {
		t.Errorf("default route still there with wired down")
	}
	must(t, l.LinkUp("wired"))
	if !hasDefault() || !hasAddr("wired", wired.BoxV6) {
		t.Errorf("after link up: default route %v, v6 address %v", hasDefault(), hasAddr("wired", wired.BoxV6))
	}
	must(t, l.DelAddr("wired"))
	if hasAddr("wired", wired.BoxV4) || hasAddr("wired", wired.BoxV6) || hasDefault() {
		t.Errorf("after DelAddr: addresses or default route left")
	}
	must(t, l.AddAddr("wired"))
	if !hasAddr("wired", wired.BoxV4) || !hasAddr("wired", wired.BoxV6) || !hasDefault() {
		t.Errorf("after AddAddr: addresses or default route missing")
	}

	must(t, l.AddSourceRoute("cell1"))
	old := mustLink(t, l, "cell1")
	ln, err := l.RenewAddr("cell1")
	must(t, err)
	if ln.BoxV4 != netip.MustParseAddr("198.18.2.3") || hasAddr("cell1", old.BoxV4) || !hasAddr("cell1", ln.BoxV4) {
		t.Fatalf("renew: %s → %s, old still there %v", old.BoxV4, ln.BoxV4, hasAddr("cell1", old.BoxV4))
	}
	studio := listen(t, l, l.Studio, service("v4"))
	box := listen(t, l, l.Box, netip.AddrPortFrom(ln.BoxV4, 0))
	before := txPackets(t, l)
	box.send(t, service("v4"), 0, 50, 100, 0)
	if !studio.waitFor(func() bool { return studio.got(0, 50) == 50 }) || studio.lastSource().Addr() != ln.BoxV4 {
		t.Fatalf("from the renewed address: %d of 50, source %s", studio.got(0, 50), studio.lastSource())
	}
	if d := txPackets(t, l)["cell1"] - before["cell1"]; d < 50 {
		t.Errorf("renewed address left by another link: cell1 sent %d", d)
	}
}

// Leftovers sees a daemon's tables and rules, and nothing once they are
// removed; the lab's own setup leaves nothing for it to see.
func TestLeftoversSeesAddedTablesAndRules(t *testing.T) {
	l := ForTest(t, Options{})
	for _, ns := range []string{l.Box, l.Studio} {
		left, err := l.Leftovers(ns)
		must(t, err)
		if len(left) != 0 {
			t.Errorf("fresh lab %s: %q", ns, left)
		}
	}
	must(t, l.AddSourceRoute("cell2"))
	left, err := l.Leftovers(l.Box)
	must(t, err)
	if len(left) != 4 { // v4 and v6: one rule and one default route each
		t.Errorf("after AddSourceRoute: %d leftovers, want 4: %q", len(left), left)
	}
	must(t, l.DelSourceRoute("cell2"))
	left, err = l.Leftovers(l.Box)
	must(t, err)
	if len(left) != 0 {
		t.Errorf("after DelSourceRoute: %q", left)
	}
}

// Close removes the namespaces and kills what runs inside them, whatever
// state the lab is in, and a second Close is harmless.
func TestCloseLeavesNothing(t *testing.T) {
	l := ForTest(t, Options{})
	must(t, l.Cut("wired", true))
	must(t, l.Shape("cell1", 1000))
	must(t, l.Rebind("cell2"))
	must(t, l.AddSourceRoute("cell2"))
	must(t, l.Delay("cell2", 50*time.Millisecond, 0))
	_, err := l.AddUplink("late")
	must(t, err)
	cmd := l.Command(l.Box, "sleep", "60")
	must(t, cmd.Start())
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	orphan := exec.Command("ip", "netns", "exec", l.Studio, "sleep", "60") // not from Command
	must(t, orphan.Start())
	orphanWaited := make(chan error, 1)
	go func() { orphanWaited <- orphan.Wait() }()

	must(t, l.Close())
	must(t, l.Close())
	for name, ch := range map[string]chan error{"Command's": waited, "other": orphanWaited} {
		select {
		case werr := <-ch:
			if werr == nil {
				t.Errorf("%s sleep exited cleanly, want killed", name)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s sleep still runs after Close", name)
		}
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	must(t, err)
	for _, ns := range []string{l.Box, l.Studio} {
		if strings.Contains(string(out), ns) {
			t.Errorf("namespace %s still listed after Close:\n%s", ns, out)
		}
	}
	if err := l.Cut("wired", false); !errors.Is(err, ErrClosed) {
		t.Errorf("Cut after Close: %v, want ErrClosed", err)
	}
}

// Delay adds at least d - jitter to every round trip over the link, keeps
// the order, loses nothing, and the studio still sees the box's own
// address; removing it takes the round trip back down. Only lower bounds
// are asserted (a slow machine adds time, it cannot remove it).
func TestDelayAddsToTheRoundTripWithoutReordering(t *testing.T) {
	l := ForTest(t, Options{})
	must(t, l.AddSourceRoute("cell1"))
	ln := mustLink(t, l, "cell1")
	const (
		d      = 80 * time.Millisecond
		jitter = 20 * time.Millisecond
		n      = 25
	)
	for _, fam := range []string{"v4", "v6"} {
		t.Run(fam, func(t *testing.T) {
			studio := listenEcho(t, l, l.Studio, service(fam))
			box := listen(t, l, l.Box, netip.AddrPortFrom(boxAddr(ln, fam), 0))
			rtts := func(base uint32) []time.Duration {
				var out []time.Duration
				for s := base; s < base+n; s++ {
					start := time.Now()
					box.send(t, service(fam), s, s+1, 200, 0)
					if !box.waitFor(func() bool { return box.got(s, s+1) == 1 }) {
						t.Fatalf("echo %d never came back", s)
					}
					out = append(out, time.Since(start))
				}
				return out
			}
			must(t, l.Delay("cell1", d, jitter))
			delayed := rtts(0)
			if src := studio.lastSource(); src.Addr() != boxAddr(ln, fam) || src.Port() != box.conn.LocalAddr().(*net.UDPAddr).AddrPort().Port() {
				t.Errorf("through the relay the studio saw %s, want the box socket %s", src, box.conn.LocalAddr())
			}
			// A burst keeps its order through the relay.
			box.send(t, service(fam), 1000, 1000+n, 200, 50*time.Microsecond)
			if !studio.waitFor(func() bool { return studio.got(1000, 1000+n) == n }) {
				t.Errorf("burst: %d of %d through the relay", studio.got(1000, 1000+n), n)
			}
			studio.mu.Lock()
			burst := slices.DeleteFunc(slices.Clone(studio.order), func(s uint32) bool { return s < 1000 || s >= 1000+n })
			studio.mu.Unlock()
			if !slices.IsSorted(burst) {
				t.Errorf("burst reordered by the relay: %v", burst)
			}
			must(t, l.Delay("cell1", 0, 0))
			plain := rtts(2000)
			if m := slices.Min(delayed); m < d-jitter {
				t.Errorf("delayed round trip min %v, want >= %v", m, d-jitter)
			}
			slices.Sort(delayed)
			slices.Sort(plain)
			if plain[n/2] >= delayed[n/2] {
				t.Errorf("median round trip %v without delay, %v with it", plain[n/2], delayed[n/2])
			}
			t.Logf("%s: delay %v ± %v: rtt min %v median %v max %v; without: median %v", fam, d, jitter,
				delayed[0], delayed[n/2], delayed[n-1], plain[n/2])
		})
	}
}

// Two labs at once (a test and the bench, say) do not collide: their
// namespaces differ and their same-named interfaces live apart.
func TestTwoLabsSideBySide(t *testing.T) {
	a := ForTest(t, Options{Uplinks: []string{"wired"}})
	b := ForTest(t, Options{Uplinks: []string{"wired"}})
	if a.Box == b.Box || a.Studio == b.Studio {
		t.Fatalf("same namespace names: %s %s", a.Box, a.Studio)
	}
	for _, l := range []*Lab{a, b} {
		ln := mustLink(t, l, "wired")
		studio := listen(t, l, l.Studio, service("v4"))
		box := listen(t, l, l.Box, netip.AddrPortFrom(ln.BoxV4, 0))
		box.send(t, service("v4"), 0, 10, 100, 0)
		if !studio.waitFor(func() bool { return studio.got(0, 10) == 10 }) {
			t.Errorf("%s: %d of 10 arrived", l.Box, studio.got(0, 10))
		}
	}
}

// Command runs inside the namespace it names.
func TestCommandRunsInsideTheNamespace(t *testing.T) {
	l := ForTest(t, Options{})
	for ns, want := range map[string]string{l.Box: "198.18.3.2/24", l.Studio: "203.0.113.1/32"} {
		out, err := l.Command(ns, "ip", "-br", "addr").CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("ip addr in %s: %v, want %s in:\n%s", ns, err, want, out)
		}
	}
}

// Losing the carrier at the far end leaves the box's interface up (not
// operationally) with its routes; the carrier back, it carries again.
func TestCarrierLossKeepsTheBoxSideUp(t *testing.T) {
	l := ForTest(t, Options{})
	must(t, l.AddSourceRoute("cell1"))
	ln := mustLink(t, l, "cell1")
	for _, fam := range []string{"v4", "v6"} {
		t.Run(fam, func(t *testing.T) {
			studio := listen(t, l, l.Studio, service(fam))
			box := listen(t, l, l.Box, netip.AddrPortFrom(boxAddr(ln, fam), 0))
			must(t, l.Carrier("cell1", false))
			nl := l.nl[l.Box]
			li, err := nl.LinkByName("cell1")
			must(t, err)
			if a := li.Attrs(); a.Flags&net.FlagUp == 0 || a.OperState == netlink.OperUp {
				t.Errorf("box side without carrier: flags %v, oper %v; want up, not oper up", a.Flags, a.OperState)
			}
			if left, _ := l.Leftovers(l.Box); len(left) != 4 {
				t.Errorf("the box's routes went with the carrier: %q", left)
			}
			must(t, l.Carrier("cell1", true))
			box.send(t, service(fam), 0, 20, 100, 0)
			if !studio.waitFor(func() bool { return studio.got(0, 20) == 20 }) {
				t.Errorf("carrier back: %d of 20 arrived", studio.got(0, 20))
			}
		})
	}
}
