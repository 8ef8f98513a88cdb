package uplink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"onair/internal/testutil"
	"onair/web/api"
)

// The lab: namespace "box" (where the Monitor runs) with two uplinks to
// namespace "gw" (their gateways, and a far address on its loopback):
//
//	box wa0 192.0.2.2/24    2001:db8:a::2/64  ── wa0gw 192.0.2.1    2001:db8:a::1   (wired)
//	box cb0 198.51.100.2/24 2001:db8:c::2/64  ── cb0gw 198.51.100.1 2001:db8:c::1   (cell)
//	gw lo 203.0.113.1/32 2001:db8:ff::1/128                                         (far end)
//
// The box's main table prefers wired for both families (metric 100 against
// 200), so a packet that leaves by cell does so only because of our rules.
type lab struct {
	t       *testing.T
	box, gw string
	ns      netns.NsHandle
	h       *netlink.Handle
}

var (
	far4 = netip.MustParseAddr("203.0.113.1")
	far6 = netip.MustParseAddr("2001:db8:ff::1")
)

func newLab(t *testing.T) *lab {
	t.Helper()
	testutil.NeedRoot(t, "network namespaces, veth and policy routing")
	testutil.Need(t, "ip")
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	suffix := fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(b))
	l := &lab{t: t, box: "onair-upl-box-" + suffix, gw: "onair-upl-gw-" + suffix}
	for _, ns := range []string{l.box, l.gw} {
		l.ip("netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v %s", ns, err, out)
			}
		})
	}
	l.pair("wa0", "192.0.2.2/24", "2001:db8:a::2/64", "192.0.2.1/24", "2001:db8:a::1/64")
	l.pair("cb0", "198.51.100.2/24", "2001:db8:c::2/64", "198.51.100.1/24", "2001:db8:c::1/64")
	l.ip("-n", l.gw, "addr", "add", far4.String()+"/32", "dev", "lo")
	l.ip("-n", l.gw, "addr", "add", far6.String()+"/128", "dev", "lo")
	l.ip("-n", l.box, "link", "set", "lo", "up")
	l.ip("-n", l.gw, "link", "set", "lo", "up")
	l.defaults("wa0")
	l.defaults("cb0")

	ns, err := netns.GetFromName(l.box)
	if err != nil {
		t.Fatal(err)
	}
	l.ns = ns
	t.Cleanup(func() { _ = ns.Close() })
	if l.h, err = netlink.NewHandleAt(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.h.Close)
	return l
}

func (l *lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (l *lab) out(args ...string) string {
	l.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// pair makes the veth NAME in box and NAMEgw in gw, with addresses
// (nodad: usable at once) and both ends up. There are no link-local
// addresses (addrgenmode none): one finishing DAD during a test would change
// the local table under the before/after comparison.
func (l *lab) pair(name, box4, box6, gw4, gw6 string) {
	l.ip("link", "add", name, "netns", l.box, "type", "veth", "peer", "name", name+"gw", "netns", l.gw)
	l.ip("-n", l.box, "link", "set", name, "addrgenmode", "none")
	l.ip("-n", l.gw, "link", "set", name+"gw", "addrgenmode", "none")
	l.ip("-n", l.box, "addr", "add", box4, "dev", name)
	l.ip("-n", l.box, "addr", "add", box6, "dev", name, "nodad")
	l.ip("-n", l.gw, "addr", "add", gw4, "dev", name+"gw")
	l.ip("-n", l.gw, "addr", "add", gw6, "dev", name+"gw", "nodad")
	l.ip("-n", l.box, "link", "set", name, "up")
	l.ip("-n", l.gw, "link", "set", name+"gw", "up")
}

// defaults puts the main-table default routes through the link back, as a
// DHCP client or router advertisements would.
func (l *lab) defaults(name string) {
	metric := map[string]string{"wa0": "100", "cb0": "200", "wwan0": "300"}[name]
	gw4 := map[string]string{"wa0": "192.0.2.1", "cb0": "198.51.100.1", "wwan0": "100.64.0.1"}[name]
	gw6 := map[string]string{"wa0": "2001:db8:a::1", "cb0": "2001:db8:c::1"}[name]
	l.ip("-n", l.box, "route", "replace", "default", "via", gw4, "dev", name, "metric", metric)
	if gw6 != "" {
		l.ip("-n", l.box, "-6", "route", "replace", "default", "via", gw6, "dev", name, "metric", metric)
	}
}

// routing is the namespace's rules and every table, as ip prints them.
func (l *lab) routing() string {
	return l.out("-n", l.box, "rule") + l.out("-n", l.box, "-6", "rule") +
		l.out("-n", l.box, "route", "show", "table", "all") + l.out("-n", l.box, "-6", "route", "show", "table", "all")
}

// table lists the routes of one table through netlink, as "DST via GW dev IF".
func (l *lab) table(n int) []string {
	l.t.Helper()
	routes, err := l.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: n}, netlink.RT_FILTER_TABLE)
	if err != nil {
		l.t.Fatal(err)
	}
	var out []string
	for _, r := range routes {
		dev := fmt.Sprint(r.LinkIndex)
		if lk, err := l.h.LinkByIndex(r.LinkIndex); err == nil {
			dev = lk.Attrs().Name
		}
		dst := "default"
		if r.Dst != nil && r.Dst.String() != "0.0.0.0/0" && r.Dst.String() != "::/0" {
			dst = r.Dst.String()
		}
		s := dst + " dev " + dev
		if r.Gw != nil {
			s = dst + " via " + r.Gw.String() + " dev " + dev
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// rules lists the rules at priority p through netlink, as "from SRC lookup T".
func (l *lab) rules(p int) []string {
	l.t.Helper()
	var out []string
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := l.h.RuleList(fam)
		if err != nil {
			l.t.Fatal(err)
		}
		for _, r := range rs {
			if r.Priority == p {
				out = append(out, fmt.Sprintf("from %v lookup %d", r.Src, r.Table))
			}
		}
	}
	slices.Sort(out)
	return out
}

func (l *lab) txPackets(name string) uint64 {
	l.t.Helper()
	lk, err := l.h.LinkByName(name)
	if err != nil {
		l.t.Fatal(err)
	}
	return lk.Attrs().Statistics.TxPackets
}

// udpFrom opens a UDP socket bound to src inside the box namespace.
func (l *lab) udpFrom(src netip.Addr) *net.UDPConn {
	l.t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		l.t.Fatal(err)
	}
	defer func() { _ = orig.Close() }()
	if err := netns.Set(l.ns); err != nil {
		runtime.UnlockOSThread()
		l.t.Fatal(err)
	}
	conn, lerr := net.ListenUDP("udp", &net.UDPAddr{IP: src.AsSlice()})
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it dies with this goroutine instead of
		// running other goroutines in the wrong namespace.
		l.t.Fatalf("restore the namespace: %v", err)
	}
	runtime.UnlockOSThread()
	if lerr != nil {
		l.t.Fatalf("bind %s in the box: %v", src, lerr)
	}
	l.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// leavesThrough sends 100 datagrams from src to the far end and checks that
// they left through dev, and (but for a few neighbour discovery packets) not
// through the other uplink.
func (l *lab) leavesThrough(src netip.Addr, dev string) {
	l.t.Helper()
	const n = 100
	other := map[string]string{"wa0": "cb0", "cb0": "wa0", "wwan0": "wa0"}[dev]
	dst := far4
	if src.Is6() {
		dst = far6
	}
	conn := l.udpFrom(src)
	before, otherBefore := l.txPackets(dev), l.txPackets(other)
	for range n {
		if _, err := conn.WriteToUDPAddrPort([]byte("onair uplink test"), netip.AddrPortFrom(dst, 9)); err != nil {
			l.t.Fatalf("send from %s: %v", src, err)
		}
	}
	// The first datagrams wait in the neighbour queue until ARP/ND resolves
	// the gateway: wait (bounded) for the counter to catch up.
	deadline := time.Now().Add(5 * time.Second)
	for l.txPackets(dev)-before < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	sent, stray := l.txPackets(dev)-before, l.txPackets(other)-otherBefore
	l.t.Logf("from %s: %d packets left through %s, %d through %s", src, sent, dev, stray, other)
	if sent < n || stray > n/10 {
		l.t.Fatalf("from %s: %d of %d left through %s and %d through %s", src, sent, n, dev, stray, other)
	}
}

type monitorRun struct {
	m       *Monitor
	changes chan []Uplink
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

func (l *lab) start(specs ...Spec) *monitorRun {
	l.t.Helper()
	r := &monitorRun{changes: make(chan []Uplink, 256), done: make(chan error, 1)}
	stop := make(chan struct{})
	m, err := New(Config{
		Uplinks:  specs,
		Debounce: 50 * time.Millisecond,
		Resync:   time.Second,
		Netns:    l.ns,
		OnChange: func(u []Uplink) {
			select {
			case r.changes <- u:
			case <-stop:
			}
		},
	}, testutil.NilLogger(l.t), clockwork.NewRealClock())
	if err != nil {
		l.t.Fatal(err)
	}
	r.m = m
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = func() { cancel(); close(stop) }
	go func() { r.done <- m.Run(ctx) }()
	l.t.Cleanup(func() { r.stop(l.t) })
	return r
}

// stop cancels Run and waits for it (it removes our routing before returning).
func (r *monitorRun) stop(t *testing.T) {
	t.Helper()
	if r.stopped {
		return
	}
	r.stopped = true
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of the cancel")
	}
}

// wait returns the uplink named name once it satisfies ok: in the latest
// snapshot, or in one published after it.
func (r *monitorRun) wait(t *testing.T, name, what string, ok func(Uplink) bool) Uplink {
	t.Helper()
	timeout := time.After(10 * time.Second)
	var last Uplink
	snap := r.m.Snapshot()
	for {
		for _, u := range snap {
			if u.Spec.Name == name {
				last = u
				if ok(u) {
					return u
				}
			}
		}
		select {
		case snap = <-r.changes:
		case <-timeout:
			t.Fatalf("%s: not %s within 10 s; last %+v", name, what, last)
		}
	}
}

func ready(u Uplink) bool { return u.State == Ready }

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

var (
	wiredSpec = Spec{Name: "wired", Interface: "wa*", Policy: api.PolicyBond}
	cellSpec  = Spec{Name: "cell1", Interface: "cb0", Policy: api.PolicyBond}
	modemSpec = Spec{Name: "cell2", Interface: "wwan*", Policy: api.PolicyBackup, CapBytes: 5e9}
)

func expect(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestNetnsSourceBoundSocketLeavesThroughItsUplinkAndRunLeavesNoTrace(t *testing.T) {
	l := newLab(t)
	// Somebody else's routing, at one of our priorities and in another table:
	// it must survive.
	l.ip("-n", l.box, "route", "add", "default", "via", "192.0.2.1", "dev", "wa0", "table", "99")
	l.ip("-n", l.box, "rule", "add", "from", "10.9.9.9", "lookup", "99", "pref", "1201")
	before := l.routing()
	// What a crashed run left in our table and at our priority.
	l.ip("-n", l.box, "rule", "add", "from", "192.0.2.77", "lookup", "1200", "pref", "1200")
	l.ip("-n", l.box, "route", "add", "10.1.0.0/16", "via", "192.0.2.1", "dev", "wa0", "table", "1200")

	r := l.start(wiredSpec, cellSpec, modemSpec)
	w := r.wait(t, "wired", "ready", ready)
	c := r.wait(t, "cell1", "ready", ready)
	if !slices.Equal(w.Addrs, addrs("192.0.2.2", "2001:db8:a::2")) || w.Interface != "wa0" ||
		w.Gateway4 != netip.MustParseAddr("192.0.2.1") || w.Gateway6 != netip.MustParseAddr("2001:db8:a::1") {
		t.Fatalf("wired: %+v", w)
	}
	if !slices.Equal(c.Addrs, addrs("198.51.100.2", "2001:db8:c::2")) {
		t.Fatalf("cell1: %+v", c)
	}
	if s := r.m.Snapshot(); s[2].State != Absent || s[2].Reason != ReasonNoInterface {
		t.Fatalf("cell2 without a modem: %+v", s[2])
	}

	expect(t, "table 1200", l.table(1200), []string{"default via 192.0.2.1 dev wa0", "default via 2001:db8:a::1 dev wa0"})
	expect(t, "table 1201", l.table(1201), []string{"default via 198.51.100.1 dev cb0", "default via 2001:db8:c::1 dev cb0"})
	expect(t, "rules 1200", l.rules(1200), []string{"from 192.0.2.2/32 lookup 1200", "from 2001:db8:a::2/128 lookup 1200"})
	expect(t, "rules 1201", l.rules(1201), []string{"from 10.9.9.9/32 lookup 99", "from 198.51.100.2/32 lookup 1201", "from 2001:db8:c::2/128 lookup 1201"})

	l.leavesThrough(netip.MustParseAddr("198.51.100.2"), "cb0")
	l.leavesThrough(netip.MustParseAddr("2001:db8:c::2"), "cb0")
	l.leavesThrough(netip.MustParseAddr("192.0.2.2"), "wa0")

	r.stop(t)
	// The control: without our rule the cell address leaves by the main
	// table's default, wired.
	l.leavesThrough(netip.MustParseAddr("198.51.100.2"), "wa0")
	if after := l.routing(); after != before {
		b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
		t.Fatalf("routing after Run returned differs from before it started:\nonly before: %q\nonly after: %q",
			minus(b, a), minus(a, b))
	}
}

func TestNetnsCarrierLossAndLinkDownUp(t *testing.T) {
	l := newLab(t)
	r := l.start(wiredSpec, cellSpec)
	r.wait(t, "cell1", "ready", ready)

	// The far end of the cable goes down: carrier lost, routes stay in main.
	l.ip("-n", l.gw, "link", "set", "cb0gw", "down")
	c := r.wait(t, "cell1", "down for no carrier", func(u Uplink) bool { return u.Reason == ReasonNoCarrier })
	if c.State != Down {
		t.Fatalf("cell1: %+v", c)
	}
	expect(t, "table 1201 without carrier", l.table(1201), nil)
	expect(t, "rules 1201 without carrier", l.rules(1201), nil)
	l.ip("-n", l.gw, "link", "set", "cb0gw", "up")
	r.wait(t, "cell1", "ready after the carrier came back", ready)
	expect(t, "table 1201 with carrier", l.table(1201), []string{"default via 198.51.100.1 dev cb0", "default via 2001:db8:c::1 dev cb0"})

	// Our own end goes down: the kernel drops the defaults (main and ours)
	// silently, and IPv6 addresses with them.
	l.ip("-n", l.box, "link", "set", "cb0", "down")
	r.wait(t, "cell1", "down for link down", func(u Uplink) bool { return u.Reason == ReasonLinkDown })
	expect(t, "table 1201 with the link down", l.table(1201), nil)
	l.ip("-n", l.box, "link", "set", "cb0", "up")
	r.wait(t, "cell1", "down for no gateway", func(u Uplink) bool { return u.Reason == ReasonNoGateway })
	// The DHCP client and the router put address and defaults back.
	l.ip("-n", l.box, "addr", "replace", "2001:db8:c::2/64", "dev", "cb0", "nodad")
	l.defaults("cb0")
	c = r.wait(t, "cell1", "ready with both families again", func(u Uplink) bool { return ready(u) && len(u.Addrs) == 2 })
	expect(t, "table 1201 after the link came back", l.table(1201), []string{"default via 198.51.100.1 dev cb0", "default via 2001:db8:c::1 dev cb0"})
	expect(t, "rules 1201 after the link came back", l.rules(1201), []string{"from 198.51.100.2/32 lookup 1201", "from 2001:db8:c::2/128 lookup 1201"})
	l.leavesThrough(c.Addrs[0], "cb0")
	if w := r.m.Snapshot()[0]; w.State != Ready {
		t.Fatalf("wired was disturbed by cell's flaps: %+v", w)
	}
	r.stop(t)
	expectNothingOurs(t, l, 2)
}

func TestNetnsAddressChangeMovesTheSourceRule(t *testing.T) {
	l := newLab(t)
	r := l.start(wiredSpec, cellSpec)
	r.wait(t, "cell1", "ready", ready)

	// DHCP renew with another lease: the old address goes (and the kernel
	// drops the IPv4 default with it), the new one comes.
	l.ip("-n", l.box, "addr", "del", "198.51.100.2/24", "dev", "cb0")
	r.wait(t, "cell1", "on IPv6 only", func(u Uplink) bool { return slices.Equal(u.Addrs, addrs("2001:db8:c::2")) })
	expect(t, "rules 1201 between leases", l.rules(1201), []string{"from 2001:db8:c::2/128 lookup 1201"})
	l.ip("-n", l.box, "addr", "add", "198.51.100.3/24", "dev", "cb0")
	l.defaults("cb0")
	r.wait(t, "cell1", "on the new address", func(u Uplink) bool {
		return slices.Equal(u.Addrs, addrs("198.51.100.3", "2001:db8:c::2"))
	})
	expect(t, "rules 1201 after the renew", l.rules(1201), []string{"from 198.51.100.3/32 lookup 1201", "from 2001:db8:c::2/128 lookup 1201"})
	expect(t, "table 1201 after the renew", l.table(1201), []string{"default via 198.51.100.1 dev cb0", "default via 2001:db8:c::1 dev cb0"})
	l.leavesThrough(netip.MustParseAddr("198.51.100.3"), "cb0")
	r.stop(t)
	expectNothingOurs(t, l, 2)
}

func TestNetnsModemPluggedInAtRuntimeThenRemoved(t *testing.T) {
	l := newLab(t)
	r := l.start(wiredSpec, cellSpec, modemSpec)
	r.wait(t, "cell2", "absent", func(u Uplink) bool { return u.State == Absent })

	l.ip("link", "add", "wwan0", "netns", l.box, "type", "veth", "peer", "name", "wwan0gw", "netns", l.gw)
	l.ip("-n", l.box, "addr", "add", "100.64.0.2/24", "dev", "wwan0")
	l.ip("-n", l.gw, "addr", "add", "100.64.0.1/24", "dev", "wwan0gw")
	l.ip("-n", l.gw, "link", "set", "wwan0gw", "up")
	l.ip("-n", l.box, "link", "set", "wwan0", "up")
	l.defaults("wwan0")
	m := r.wait(t, "cell2", "ready", ready)
	if m.Interface != "wwan0" || !slices.Equal(m.Addrs, addrs("100.64.0.2")) || m.Spec.CapBytes != 5e9 {
		t.Fatalf("cell2: %+v", m)
	}
	expect(t, "table 1202", l.table(1202), []string{"default via 100.64.0.1 dev wwan0"})
	expect(t, "rules 1202", l.rules(1202), []string{"from 100.64.0.2/32 lookup 1202"})
	l.leavesThrough(netip.MustParseAddr("100.64.0.2"), "wwan0")

	l.ip("-n", l.box, "link", "del", "wwan0")
	r.wait(t, "cell2", "absent again", func(u Uplink) bool { return u.State == Absent })
	expect(t, "table 1202 after the modem left", l.table(1202), nil)
	expect(t, "rules 1202 after the modem left", l.rules(1202), nil)
	r.stop(t)
	expectNothingOurs(t, l, 3)
}

// minus is the lines of a that are not in b.
func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

func expectNothingOurs(t *testing.T, l *lab, n int) {
	t.Helper()
	for i := range n {
		expect(t, fmt.Sprintf("table %d after Run", 1200+i), l.table(1200+i), nil)
		expect(t, fmt.Sprintf("rules %d after Run", 1200+i), l.rules(1200+i), nil)
	}
}
