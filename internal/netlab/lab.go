// Package netlab builds the bonding lab: a "box" network namespace with
// several uplinks (veth pairs) to a "studio" namespace that holds the
// ingest service address, and per-link impairments on real kernel traffic
// (tbf shaping, nft cut and random loss, carrier loss, address changes, NAT
// rebinding, a modem plugged in at runtime). The e2e tests and the bench use
// it to run onaird and onair-ingest over real links; scripts/lab.sh builds
// the same lab by hand (same names and addresses), and `make run` uses that
// with a Forwarder, which brings a TCP port inside a namespace (onaird's
// loopback-only status page) to the host's loopback.
//
// It is NOT part of the product and NOT a routing implementation: the lab
// plays the network and the DHCP client (addresses, a main-table default
// route per uplink, the first with the lowest metric) and nothing else. Per-uplink tables and source rules
// are onaird's job; AddSourceRoute exists only for tests that run without
// onaird. It needs root, ip (iproute2), tc and nft; there is no netem on the
// machines it was built on, so delay and jitter come from a userspace
// relay (Delay).
//
// Addressing (link index i, 1-based, in the order the uplinks were added):
// box 198.18.i.2/24 and fd6f:6e61:6972:i::2/64, studio gateway .1 and ::1;
// the studio service address is 203.0.113.1/32 and fd6f:6e61:6972::1/128 on
// its loopback. The box-side interface is named after the uplink, the
// studio side is the uplink name + "-stu". Neither namespace forwards (both
// are end hosts); the box uses loose reverse-path filtering (rp_filter 2, as
// Debian's systemd sets it), the studio none.
package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
)

// DefaultUplinks are the uplinks Up creates when Options.Uplinks is empty.
// The first one carries the box's main default route.
var DefaultUplinks = []string{"wired", "cell1", "cell2"}

// Service addresses of the studio (on its loopback), reachable from the box
// through every uplink.
var (
	ServiceV4 = netip.MustParseAddr("203.0.113.1")
	ServiceV6 = netip.MustParseAddr("fd6f:6e61:6972::1")
)

// studioSuffix is appended to an uplink name for the studio-side interface.
const studioSuffix = "-stu"

// maxUplinkName keeps uplink name + studioSuffix within IFNAMSIZ-1 (15).
const maxUplinkName = 15 - len(studioSuffix)

// maxLinks bounds the link index, which is the third octet of 198.18.i.0/24.
const maxLinks = 250

// Sentinel errors.
var (
	// ErrUnknownLink is returned for a link name the lab does not have.
	ErrUnknownLink = errors.New("netlab: unknown link")
	// ErrBadName is returned for an uplink name that is empty, too long for
	// an interface name, or already used.
	ErrBadName = errors.New("netlab: bad uplink name")
	// ErrClosed is returned by every operation after Close.
	ErrClosed = errors.New("netlab: lab closed")
)

// Options configures Up.
type Options struct {
	// Uplinks are the uplink names, box-side interface names at the same
	// time (at most 11 characters); empty means DefaultUplinks. The first
	// carries the box's main default route (v4 and v6).
	Uplinks []string
	// Suffix makes the namespace names unique ("box-"+Suffix,
	// "studio-"+Suffix); empty means "<pid>-<4 random hex digits>".
	Suffix string
	// Log receives one debug line per command run; nil logs nothing.
	Log *zap.Logger
}

// Link describes one uplink as it is now.
type Link struct {
	// Name is the uplink name, also the box-side interface name.
	Name string
	// Index is the link number i of 198.18.i.0/24 and fd6f:6e61:6972:i::/64.
	Index int
	// BoxIf and StudioIf are the interface names on each side.
	BoxIf, StudioIf string
	// BoxV4 and BoxV6 are the box's current addresses (they change with
	// RenewAddr); GatewayV4 and GatewayV6 the studio side's.
	BoxV4, GatewayV4, BoxV6, GatewayV6 netip.Addr
	// PrefixV4 and PrefixV6 are the link subnets.
	PrefixV4, PrefixV6 netip.Prefix
}

// link is a Link plus the impairment and address state the lab keeps.
type link struct {
	Link
	host      byte    // host part of the box address (2, then 3, 4… on RenewAddr)
	hasAddr   bool    // the box addresses are configured (DelAddr clears it)
	cut       bool    // Cut: nothing crosses
	lossPct   float64 // Loss: box→studio random drop
	rebindGen int     // Rebind generation; 0 means no NAT on this link
	srcRoute  bool    // AddSourceRoute was called
	primary   bool    // the first uplink: its default routes have the lowest metric
	relay     *relay  // Delay's relay, nil when none
}

// Lab is a running lab. Its methods are safe for concurrent use.
type Lab struct {
	// Box and Studio are the namespace names.
	Box, Studio string

	log *zap.Logger

	mu      sync.Mutex
	closed  bool
	links   []*link // in index order
	nextIdx int
	made    []string // namespaces created, deleted by Close
	ns      map[string]netns.NsHandle
	nl      map[string]*netlink.Handle
	cmds    []*exec.Cmd
}

// Up builds a lab: both namespaces, every uplink with its addresses, the
// box's main default routes (every uplink, the first with the lowest metric), the studio service
// addresses. On error everything made so far is removed.
func Up(ctx context.Context, opts Options) (*Lab, error) {
	names := opts.Uplinks
	if len(names) == 0 {
		names = DefaultUplinks
	}
	suffix := opts.Suffix
	if suffix == "" {
		var b [2]byte
		_, _ = rand.Read(b[:])
		suffix = fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(b[:]))
	}
	log := opts.Log
	if log == nil {
		log = zap.NewNop()
	}
	l := &Lab{
		Box:     "box-" + suffix,
		Studio:  "studio-" + suffix,
		log:     log,
		nextIdx: 1,
		ns:      map[string]netns.NsHandle{},
		nl:      map[string]*netlink.Handle{},
	}
	if err := l.up(ctx, names); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

func (l *Lab) up(ctx context.Context, names []string) error {
	for _, ns := range []string{l.Box, l.Studio} {
		if err := l.run(ctx, nil, "ip", "netns", "add", ns); err != nil {
			return err
		}
		l.made = append(l.made, ns)
		h, err := netns.GetFromName(ns)
		if err != nil {
			return fmt.Errorf("netlab: open netns %s: %w", ns, err)
		}
		l.ns[ns] = h
		nh, err := netlink.NewHandleAt(h)
		if err != nil {
			return fmt.Errorf("netlab: netlink handle in %s: %w", ns, err)
		}
		l.nl[ns] = nh
		if err := l.run(ctx, nil, "ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	// Loose reverse-path filtering in the box (what Debian's systemd sets);
	// none in the studio, which only answers.
	if err := l.sysctl(l.Box, map[string]string{
		"net/ipv4/conf/all/rp_filter":     "2",
		"net/ipv4/conf/default/rp_filter": "2",
	}); err != nil {
		return err
	}
	// The Delay relay sends from the box's addresses inside the studio.
	if err := l.sysctl(l.Studio, map[string]string{
		"net/ipv4/conf/all/rp_filter":     "0",
		"net/ipv4/conf/default/rp_filter": "0",
	}); err != nil {
		return err
	}
	for _, cmd := range [][]string{
		{"ip", "-n", l.Studio, "addr", "add", ServiceV4.String() + "/32", "dev", "lo"},
		{"ip", "-n", l.Studio, "-6", "addr", "add", ServiceV6.String() + "/128", "dev", "lo", "nodad"},
	} {
		if err := l.run(ctx, nil, cmd...); err != nil {
			return err
		}
	}
	for _, name := range names {
		if _, err := l.addUplink(ctx, name); err != nil {
			return err
		}
	}
	return errors.Join(l.applyStudioNft(ctx), l.applyBoxNft(ctx))
}

// AddUplink adds an uplink at runtime (a modem plugged in): a new veth pair
// with the next link index, addresses and its default route configured.
func (l *Lab) AddUplink(name string) (Link, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Link{}, ErrClosed
	}
	ctx := context.Background()
	ln, err := l.addUplink(ctx, name)
	if err != nil {
		return Link{}, err
	}
	return ln.Link, l.applyStudioNft(ctx)
}

// RemoveUplink deletes an uplink (a modem unplugged): both veth ends go.
func (l *Lab) RemoveUplink(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := l.link(name)
	if err != nil {
		return err
	}
	if ln.relay != nil {
		ln.relay.close()
		ln.relay = nil
	}
	if err := l.run(context.Background(), nil, "ip", "-n", l.Box, "link", "del", ln.BoxIf); err != nil {
		return err
	}
	l.links = slices.DeleteFunc(l.links, func(x *link) bool { return x == ln })
	return errors.Join(l.applyStudioNft(context.Background()), l.applyBoxNft(context.Background()))
}

// addUplink makes the veth pair and addresses; l.mu is held (or Up runs).
func (l *Lab) addUplink(ctx context.Context, name string) (*link, error) {
	if name == "" || len(name) > maxUplinkName || strings.ContainsAny(name, " /\"") {
		return nil, fmt.Errorf("%w: %q (1 to %d characters)", ErrBadName, name, maxUplinkName)
	}
	if _, err := l.link(name); err == nil {
		return nil, fmt.Errorf("%w: %q already exists", ErrBadName, name)
	}
	if l.nextIdx > maxLinks {
		return nil, fmt.Errorf("%w: more than %d links", ErrBadName, maxLinks)
	}
	i := l.nextIdx
	l.nextIdx++
	ln := &link{Link: Link{
		Name:     name,
		Index:    i,
		BoxIf:    name,
		StudioIf: name + studioSuffix,
		PrefixV4: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i), 0}), 24),
		PrefixV6: netip.PrefixFrom(v6(i, 0), 64),
	}, host: 2, hasAddr: true}
	ln.GatewayV4 = netip.AddrFrom4([4]byte{198, 18, byte(i), 1})
	ln.GatewayV6 = v6(i, 1)
	ln.setHost(2)
	cmds := [][]string{
		{"ip", "link", "add", ln.BoxIf, "netns", l.Box, "type", "veth", "peer", "name", ln.StudioIf, "netns", l.Studio},
		{"ip", "-n", l.Studio, "addr", "add", ln.GatewayV4.String() + "/24", "dev", ln.StudioIf},
		{"ip", "-n", l.Studio, "-6", "addr", "add", ln.GatewayV6.String() + "/64", "dev", ln.StudioIf, "nodad"},
		{"ip", "-n", l.Studio, "link", "set", ln.StudioIf, "up"},
		{"ip", "-n", l.Box, "link", "set", ln.BoxIf, "up"},
	}
	for _, c := range cmds {
		if err := l.run(ctx, nil, c...); err != nil {
			return nil, err
		}
	}
	ln.primary = len(l.links) == 0 && i == 1
	l.links = append(l.links, ln)
	if err := l.configure(ctx, ln); err != nil {
		return nil, err
	}
	if err := l.primeNeighbours(ln); err != nil {
		return nil, err
	}
	return ln, nil
}

// primeNeighbours enters each side's address and MAC in the other side's
// neighbour table (reachable; the kernel ages and re-checks them as usual),
// so the first burst on a new link is not cut short by the queue that
// waits for ARP or neighbour discovery.
func (l *Lab) primeNeighbours(ln *link) error {
	type side struct {
		ns, ifname string
		v4, v6     netip.Addr
	}
	box := side{l.Box, ln.BoxIf, ln.BoxV4, ln.BoxV6}
	studio := side{l.Studio, ln.StudioIf, ln.GatewayV4, ln.GatewayV6}
	for _, p := range [][2]side{{box, studio}, {studio, box}} {
		at, of := p[0], p[1]
		atNl, ofNl := l.nl[at.ns], l.nl[of.ns]
		atLink, err := atNl.LinkByName(at.ifname)
		if err != nil {
			return fmt.Errorf("netlab: link %s: %w", at.ifname, err)
		}
		ofLink, err := ofNl.LinkByName(of.ifname)
		if err != nil {
			return fmt.Errorf("netlab: link %s: %w", of.ifname, err)
		}
		for _, a := range []netip.Addr{of.v4, of.v6} {
			fam := netlink.FAMILY_V4
			if a.Is6() {
				fam = netlink.FAMILY_V6
			}
			n := &netlink.Neigh{LinkIndex: atLink.Attrs().Index, Family: fam, State: netlink.NUD_REACHABLE,
				IP: a.AsSlice(), HardwareAddr: ofLink.Attrs().HardwareAddr}
			if err := atNl.NeighSet(n); err != nil {
				return fmt.Errorf("netlab: neighbour %s on %s in %s: %w", a, at.ifname, at.ns, err)
			}
		}
	}
	return nil
}

// v6 is fd6f:6e61:6972:i::host.
func v6(i, host int) netip.Addr {
	return netip.AddrFrom16([16]byte{0xfd, 0x6f, 0x6e, 0x61, 0x69, 0x72, byte(i >> 8), byte(i), 14: byte(host >> 8), 15: byte(host)})
}

func (ln *link) setHost(h byte) {
	ln.host = h
	ln.BoxV4 = netip.AddrFrom4([4]byte{198, 18, byte(ln.Index), h})
	ln.BoxV6 = v6(ln.Index, int(h))
}

// configure (re)applies what a DHCP client (or a modem manager) would: the
// box addresses and a main-table default route via the link's gateway, with
// metric 100 x the link index, so the first uplink carries what is not
// bound to an address and every uplink has a gateway to find. Idempotent.
func (l *Lab) configure(ctx context.Context, ln *link) error {
	if !ln.hasAddr {
		return nil
	}
	cmds := [][]string{
		{"ip", "-n", l.Box, "addr", "replace", ln.BoxV4.String() + "/24", "dev", ln.BoxIf},
		{"ip", "-n", l.Box, "-6", "addr", "replace", ln.BoxV6.String() + "/64", "dev", ln.BoxIf, "nodad"},
	}
	metric := strconv.Itoa(100 * ln.Index)
	cmds = append(cmds,
		[]string{"ip", "-n", l.Box, "route", "replace", "default", "via", ln.GatewayV4.String(), "dev", ln.BoxIf, "metric", metric},
		[]string{"ip", "-n", l.Box, "-6", "route", "replace", "default", "via", ln.GatewayV6.String(), "dev", ln.BoxIf, "metric", metric})
	if ln.srcRoute {
		cmds = append(cmds, srcRouteCmds(l.Box, ln, "replace")[:2]...)
	}
	for _, c := range cmds {
		if err := l.run(ctx, nil, c...); err != nil {
			return err
		}
	}
	return nil
}

// Link returns the named uplink as it is now.
func (l *Lab) Link(name string) (Link, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := l.link(name)
	if err != nil {
		return Link{}, err
	}
	return ln.Link, nil
}

// Links returns every uplink in index order.
func (l *Lab) Links() []Link {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Link, 0, len(l.links))
	for _, ln := range l.links {
		out = append(out, ln.Link)
	}
	return out
}

// link finds name; l.mu is held.
func (l *Lab) link(name string) (*link, error) {
	if l.closed {
		return nil, ErrClosed
	}
	for _, ln := range l.links {
		if ln.Name == name {
			return ln, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownLink, name)
}

// LinkDown sets the box side of the link down (carrier loss as the box sees
// it: the kernel drops the link's default routes and IPv6 addresses).
func (l *Lab) LinkDown(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := l.link(name)
	if err != nil {
		return err
	}
	return l.run(context.Background(), nil, "ip", "-n", l.Box, "link", "set", ln.BoxIf, "down")
}

// LinkUp sets the box side up again and, like a DHCP client, restores its
// addresses and its main-table default routes.
func (l *Lab) LinkUp(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := l.link(name)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := l.run(ctx, nil, "ip", "-n", l.Box, "link", "set", ln.BoxIf, "up"); err != nil {
		return err
	}
	return l.configure(ctx, ln)
}

// Carrier takes the studio side of the link down (false) or up (true): the
// box keeps its interface up but loses the carrier (NO-CARRIER, its routes
// stay), as when a modem loses signal or a cable is pulled at the far end.
// As on real Ethernet the kernel flushes the box's neighbour entries for
// the link, so what the box sends meanwhile waits for ARP (a few packets,
// retried each second) and may still arrive once the carrier is back: for
// "nothing crosses", use Cut.
func (l *Lab) Carrier(name string, up bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := l.link(name)
	if err != nil {
		return err
	}
	ctx := context.Background()
	state := "down"
	if up {
		state = "up"
	}
	if err := l.run(ctx, nil, "ip", "-n", l.Studio, "link", "set", ln.StudioIf, state); err != nil {
		return err
	}
	if !up {
		return nil
	}
	// Down dropped the studio side's IPv6 address; put it back.
	return l.run(ctx, nil, "ip", "-n", l.Studio, "-6", "addr", "replace", ln.GatewayV6.String()+"/64", "dev", ln.StudioIf, "nodad")
}

// DelAddr removes the box's v4 and v6 addresses from the link (a lease lost:
// the kernel drops the v4 routes via it with them, the lab the v6 default).
func (l *Lab) DelAddr(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := l.link(name)
	if err != nil {
		return err
	}
	ctx := context.Background()
	ln.hasAddr = false
	// The kernel keeps an IPv6 route whose gateway went off-link; a client
	// that lost its lease drops it.
	_ = l.run(ctx, nil, "ip", "-n", l.Box, "-6", "route", "del", "default", "via", ln.GatewayV6.String(), "dev", ln.BoxIf, "metric", strconv.Itoa(100*ln.Index))
	return errors.Join(
		l.run(ctx, nil, "ip", "-n", l.Box, "addr", "del", ln.BoxV4.String()+"/24", "dev", ln.BoxIf),
		l.run(ctx, nil, "ip", "-n", l.Box, "-6", "addr", "del", ln.BoxV6.String()+"/64", "dev", ln.BoxIf))
}

// AddAddr puts the link's current box addresses back, with the link's
// main-table default routes.
func (l *Lab) AddAddr(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := l.link(name)
	if err != nil {
		return err
	}
	ln.hasAddr = true
	return l.configure(context.Background(), ln)
}

// RenewAddr moves the box to a new address on the link (a DHCP renew that
// hands out another lease: .2 → .3 → …, v4 and v6) and returns the link.
func (l *Lab) RenewAddr(name string) (Link, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := l.link(name)
	if err != nil {
		return Link{}, err
	}
	ctx := context.Background()
	if ln.hasAddr {
		if err := errors.Join(
			l.run(ctx, nil, "ip", "-n", l.Box, "addr", "del", ln.BoxV4.String()+"/24", "dev", ln.BoxIf),
			l.run(ctx, nil, "ip", "-n", l.Box, "-6", "addr", "del", ln.BoxV6.String()+"/64", "dev", ln.BoxIf)); err != nil {
			return Link{}, err
		}
	}
	if ln.srcRoute {
		_ = l.runAll(ctx, srcRouteCmds(l.Box, ln, "del")[2:])
	}
	next := ln.host + 1
	if next > 254 {
		next = 2
	}
	ln.setHost(next)
	ln.hasAddr = true
	if err := l.configure(ctx, ln); err != nil {
		return Link{}, err
	}
	if ln.srcRoute {
		if err := l.runAll(ctx, srcRouteCmds(l.Box, ln, "add")[2:]); err != nil {
			return Link{}, err
		}
	}
	return ln.Link, nil
}

// srcRouteCmds are the lab's own per-link table (500+index) and source
// rules (pref 500+index), v4 and v6: routes first, then rules.
func srcRouteCmds(box string, ln *link, verb string) [][]string {
	table := fmt.Sprint(500 + ln.Index)
	routeVerb := verb
	if verb == "add" {
		routeVerb = "replace"
	}
	return [][]string{
		{"ip", "-n", box, "route", routeVerb, "default", "via", ln.GatewayV4.String(), "dev", ln.BoxIf, "table", table},
		{"ip", "-n", box, "-6", "route", routeVerb, "default", "via", ln.GatewayV6.String(), "dev", ln.BoxIf, "table", table},
		{"ip", "-n", box, "rule", verb, "from", ln.BoxV4.String(), "table", table, "pref", table},
		{"ip", "-n", box, "-6", "rule", verb, "from", ln.BoxV6.String(), "table", table, "pref", table},
	}
}

// AddSourceRoute gives the link its own routing table (500+index, default
// via the link's gateway) and source rules for its box addresses, so a
// socket bound to them leaves through it. It is what onaird does for real;
// tests that run without onaird use it. Leftovers reports it until
// DelSourceRoute.
func (l *Lab) AddSourceRoute(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := l.link(name)
	if err != nil {
		return err
	}
	if err := l.runAll(context.Background(), srcRouteCmds(l.Box, ln, "add")); err != nil {
		return err
	}
	ln.srcRoute = true
	return nil
}

// DelSourceRoute removes what AddSourceRoute added.
func (l *Lab) DelSourceRoute(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := l.link(name)
	if err != nil {
		return err
	}
	ln.srcRoute = false
	table := fmt.Sprint(500 + ln.Index)
	ctx := context.Background()
	return errors.Join(
		l.runAll(ctx, srcRouteCmds(l.Box, ln, "del")[2:]),
		l.run(ctx, nil, "ip", "-n", l.Box, "route", "flush", "table", table),
		l.run(ctx, nil, "ip", "-n", l.Box, "-6", "route", "flush", "table", table))
}

// run runs one command with optional stdin; the error carries its output.
func (l *Lab) run(ctx context.Context, stdin []byte, args ...string) error {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	l.log.Debug("run", zap.Strings("cmd", args), zap.ByteString("out", out), zap.Error(err))
	if err != nil {
		return fmt.Errorf("netlab: %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (l *Lab) runAll(ctx context.Context, cmds [][]string) error {
	for _, c := range cmds {
		if err := l.run(ctx, nil, c...); err != nil {
			return err
		}
	}
	return nil
}

// sysctl writes /proc/sys keys from inside ns.
func (l *Lab) sysctl(ns string, kv map[string]string) error {
	return l.Do(ns, func() error {
		for k, v := range kv {
			if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
				return fmt.Errorf("netlab: sysctl %s in %s: %w", k, ns, err)
			}
		}
		return nil
	})
}

// Close removes everything the lab made: Delay relays, processes started from
// Command (killed by PID), any other process left in the namespaces, the
// namespaces (which take the veths, qdiscs, nft tables, rules and routes
// with them). It is idempotent.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	for _, ln := range l.links {
		if ln.relay != nil {
			ln.relay.close()
			ln.relay = nil
		}
	}
	cmds := l.cmds
	l.mu.Unlock()

	var errs []error
	for _, c := range cmds {
		killCmd(c)
	}
	ctx := context.Background()
	for _, ns := range l.made {
		killNetnsPids(ctx, ns)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for ns, h := range l.nl {
		h.Close()
		delete(l.nl, ns)
	}
	for ns, h := range l.ns {
		_ = h.Close()
		delete(l.ns, ns)
	}
	for _, ns := range l.made {
		errs = append(errs, l.run(ctx, nil, "ip", "netns", "del", ns))
	}
	l.made = nil
	return errors.Join(errs...)
}
