package uplink

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// nlKernel is the kernel through vishvananda/netlink, in cfg.Netns.
type nlKernel struct {
	h     *netlink.Handle
	ns    *netns.NsHandle // nil: the current namespace
	owned owned
	log   *zap.Logger
}

func openNetlink(cfg Config, log *zap.Logger) (kernel, error) {
	k := &nlKernel{owned: ownership(cfg), log: log}
	var err error
	if cfg.Netns > 0 {
		ns := cfg.Netns
		k.ns = &ns
		k.h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	} else {
		k.h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	if err != nil {
		return nil, fmt.Errorf("uplink: netlink handle: %w", err)
	}
	return k, nil
}

func (k *nlKernel) close() { k.h.Close() }

// readAttempts bounds the re-reads when a dump was interrupted by a change
// (NLM_F_DUMP_INTR: the result may be inconsistent).
const readAttempts = 5

func (k *nlKernel) read() (state, error) {
	var err error
	for range readAttempts {
		var st state
		st, err = k.readOnce()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return st, err
		}
	}
	return state{}, err
}

func (k *nlKernel) readOnce() (state, error) {
	var st state
	links, err := k.h.LinkList()
	if err != nil {
		return st, fmt.Errorf("uplink: list links: %w", err)
	}
	for _, l := range links {
		a := l.Attrs()
		oper := a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown
		st.links = append(st.links, link{
			index:        a.Index,
			name:         a.Name,
			adminUp:      a.RawFlags&unix.IFF_UP != 0,
			carrier:      a.RawFlags&unix.IFF_LOWER_UP != 0 && oper,
			pointToPoint: a.RawFlags&unix.IFF_POINTOPOINT != 0,
		})
	}
	addrs, err := k.h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return st, fmt.Errorf("uplink: list addresses: %w", err)
	}
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		if !ok {
			continue
		}
		st.addrs = append(st.addrs, addr{
			linkIndex: a.LinkIndex,
			prefix:    p,
			global:    a.Scope == int(netlink.SCOPE_UNIVERSE),
			tentative: a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0,
		})
	}
	routes, err := k.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return st, fmt.Errorf("uplink: list routes: %w", err)
	}
	for _, r := range routes {
		dst, ok := prefixOf(r.Dst)
		if r.Dst == nil {
			dst, ok = default4, true
			if r.Family == unix.AF_INET6 {
				dst = default6
			}
		}
		if !ok || (!k.owned.table(r.Table) && (r.Table != tableMain || dst.Bits() != 0)) {
			continue
		}
		gw, _ := netip.AddrFromSlice(r.Gw)
		st.routes = append(st.routes, route{
			table:     r.Table,
			linkIndex: r.LinkIndex,
			dst:       dst,
			gw:        gw.Unmap(),
			onlink:    r.Flags&unix.RTNH_F_ONLINK != 0,
			scope:     int(r.Scope),
			priority:  r.Priority,
		})
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := k.h.RuleList(fam)
		if err != nil {
			return st, fmt.Errorf("uplink: list rules: %w", err)
		}
		for _, r := range rules {
			src, _ := prefixOf(r.Src)
			st.rules = append(st.rules, rule{priority: r.Priority, table: r.Table, src: src})
		}
	}
	return st, nil
}

// prefixOf converts a netlink address or destination (nil: not ok).
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	ip = ip.Unmap()
	if bits == 128 && ip.Is4() {
		ones -= 96
	}
	return netip.PrefixFrom(ip, ones), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func (k *nlKernel) apply(o op) error {
	if o.rule != nil {
		r := netlink.NewRule() // a zero Rule is "invalid argument": NewRule sets Goto, Flow, … to -1
		r.Priority, r.Table = o.rule.priority, o.rule.table
		r.Family = netlink.FAMILY_V4
		if o.rule.src.IsValid() {
			r.Src = ipNet(o.rule.src)
			r.Family = family(o.rule.src.Addr())
		}
		if o.del {
			if err := k.h.RuleDel(r); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("uplink: %s: %w", o, err)
			}
			return nil
		}
		if err := k.h.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("uplink: %s: %w", o, err)
		}
		return nil
	}
	r := &netlink.Route{
		Table:     o.route.table,
		LinkIndex: o.route.linkIndex,
		Dst:       ipNet(o.route.dst),
		Scope:     netlink.Scope(o.route.scope),
		Priority:  o.route.priority,
		Family:    family(o.route.dst.Addr()),
	}
	if o.route.gw.IsValid() {
		r.Gw = o.route.gw.AsSlice()
	}
	if o.route.onlink {
		r.Flags = int(netlink.FLAG_ONLINK)
	}
	if o.del {
		if err := k.h.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("uplink: %s: %w", o, err)
		}
		return nil
	}
	if err := k.h.RouteReplace(r); err != nil { // idempotent
		return fmt.Errorf("uplink: %s: %w", o, err)
	}
	return nil
}

// subscribe listens to link, address and route events (no initial dump: Run
// reads the whole state itself).
func (k *nlKernel) subscribe(wake func()) (func(), <-chan struct{}, error) {
	done := make(chan struct{})
	dead := make(chan struct{})
	var once, stopOnce sync.Once
	var wg sync.WaitGroup
	onErr := func(err error) {
		select {
		case <-done: // closing the sockets on stop fails their reads
		default:
			k.log.Debug("netlink subscription error", zap.Error(err))
		}
	}
	links := make(chan netlink.LinkUpdate, 64)
	addrs := make(chan netlink.AddrUpdate, 64)
	routes := make(chan netlink.RouteUpdate, 64)
	drain := func(run func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer once.Do(func() { close(dead) })
			run()
		}()
	}
	stop := func() {
		stopOnce.Do(func() { close(done) })
		wg.Wait()
	}
	const rcvbuf = 1 << 20 // a burst of events must not overflow (ENOBUFS breaks the subscription)
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{
		Namespace: k.ns, ErrorCallback: onErr, ReceiveBufferSize: rcvbuf,
	}); err != nil {
		stop()
		return nil, nil, fmt.Errorf("uplink: subscribe to links: %w", err)
	}
	drain(func() {
		for range links {
			wake()
		}
	})
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{
		Namespace: k.ns, ErrorCallback: onErr, ReceiveBufferSize: rcvbuf,
	}); err != nil {
		stop()
		return nil, nil, fmt.Errorf("uplink: subscribe to addresses: %w", err)
	}
	drain(func() {
		for range addrs {
			wake()
		}
	})
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{
		Namespace: k.ns, ErrorCallback: onErr, ReceiveBufferSize: rcvbuf,
	}); err != nil {
		stop()
		return nil, nil, fmt.Errorf("uplink: subscribe to routes: %w", err)
	}
	drain(func() {
		for u := range routes {
			// Only main-table defaults and our tables matter; the rest
			// (local table, IPv6 neighbours' cache, …) is noise.
			if u.Table == tableMain || k.owned.table(u.Table) {
				wake()
			}
		}
	})
	return stop, dead, nil
}
