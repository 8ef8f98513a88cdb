package uplink

import (
	"cmp"
	"net/netip"
	"path"
	"slices"
)

// state is one full read of the kernel: what the snapshot and the routing
// plan are computed from. It is plain data so that tests can write it.
type state struct {
	links  []link
	addrs  []addr
	routes []route // main-table default routes and every route in our tables
	rules  []rule  // every IPv4 and IPv6 rule
}

// link is one network interface.
type link struct {
	index        int
	name         string
	adminUp      bool // IFF_UP
	carrier      bool // IFF_LOWER_UP and an operational state of up or unknown
	pointToPoint bool // IFF_POINTOPOINT (ppp, wwan raw-ip): no gateway needed
}

// addr is one interface address.
type addr struct {
	linkIndex int
	prefix    netip.Prefix
	global    bool // scope universe
	tentative bool // IPv6 duplicate address detection not passed (yet)
}

// route is one route: read from the kernel, or one we want there.
type route struct {
	table     int
	linkIndex int
	dst       netip.Prefix
	gw        netip.Addr // invalid: a device route
	onlink    bool       // the gateway is on the link even outside its prefixes
	scope     int        // 0 universe, 253 link
	priority  int        // metric; only read, matched loosely
}

// key identifies a route for the routing plan: the metric is left out because
// the kernel gives IPv6 routes added with none a metric of 1024.
func (r route) key() route {
	r.priority = 0
	return r
}

// rule is one "from SRC lookup TABLE" rule.
type rule struct {
	priority int
	table    int
	src      netip.Prefix // invalid: from all
}

// member is an uplink in a snapshot together with what routing needs to know
// about it and the snapshot does not say.
type member struct {
	Uplink
	pointToPoint     bool
	onlink4, onlink6 bool
}

// build computes the snapshot from one read: a pure function of the config
// and the state. Interfaces are considered in name order; an interface matched
// by several uplinks' globs belongs to the first of them in config order.
func build(cfg Config, st state) []member {
	links := slices.Clone(st.links)
	slices.SortFunc(links, func(a, b link) int { return cmp.Compare(a.name, b.name) })
	claimed := make(map[int]bool, len(links))
	out := make([]member, len(cfg.Uplinks))
	for i, spec := range cfg.Uplinks {
		base := Uplink{Spec: spec, Table: cfg.TableBase + i, RulePriority: cfg.RulePriority + i}
		var cands []member
		for _, l := range links {
			if claimed[l.index] {
				continue
			}
			if ok, _ := path.Match(spec.Interface, l.name); !ok {
				continue
			}
			claimed[l.index] = true
			cands = append(cands, evaluate(base, l, st))
		}
		out[i] = choose(base, cands)
	}
	return out
}

// choose picks an uplink's interface among the candidates (in name order):
// the first Ready, else the first with carrier, else the first.
func choose(base Uplink, cands []member) member {
	if len(cands) == 0 {
		base.State, base.Reason = Absent, ReasonNoInterface
		return member{Uplink: base}
	}
	for _, c := range cands {
		if c.State == Ready {
			return c
		}
	}
	for _, c := range cands {
		if c.Reason != ReasonLinkDown && c.Reason != ReasonNoCarrier {
			return c
		}
	}
	return cands[0]
}

// evaluate is the uplink base on link l.
func evaluate(base Uplink, l link, st state) member {
	m := member{Uplink: base, pointToPoint: l.pointToPoint}
	m.Interface, m.Index = l.name, l.index
	for _, a := range st.addrs {
		if a.linkIndex != l.index || !a.global || a.tentative {
			continue
		}
		ip := a.prefix.Addr().Unmap()
		if !slices.Contains(m.Addrs, ip) {
			m.Addrs = append(m.Addrs, ip)
		}
	}
	slices.SortFunc(m.Addrs, netip.Addr.Compare)
	m.Gateway4, m.onlink4 = gateway(st.routes, l.index, true)
	m.Gateway6, m.onlink6 = gateway(st.routes, l.index, false)

	m.State = Down
	switch {
	case !l.adminUp:
		m.Reason = ReasonLinkDown
		return m
	case !l.carrier:
		m.Reason = ReasonNoCarrier
		return m
	case len(m.Addrs) == 0:
		m.Reason = ReasonNoAddress
		return m
	}
	usable := func(a netip.Addr) bool {
		if a.Is4() {
			return m.Gateway4.IsValid() || l.pointToPoint
		}
		return m.Gateway6.IsValid() || l.pointToPoint
	}
	var addrs []netip.Addr
	for _, a := range m.Addrs {
		if usable(a) {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		m.Reason = ReasonNoGateway
		return m
	}
	m.Addrs, m.State = addrs, Ready
	return m
}

// gateway is the link's default gateway of one family in the main table: the
// default route through the link with a gateway and the lowest metric.
func gateway(routes []route, index int, v4 bool) (gw netip.Addr, onlink bool) {
	best := -1
	for _, r := range routes {
		if r.table != tableMain || r.linkIndex != index || !r.gw.IsValid() ||
			r.dst.Bits() != 0 || r.dst.Addr().Is4() != v4 {
			continue
		}
		if best < 0 || r.priority < best || (r.priority == best && r.gw.Less(gw)) {
			best, gw, onlink = r.priority, r.gw, r.onlink
		}
	}
	return gw, onlink
}

// tableMain is the kernel's main routing table (RT_TABLE_MAIN).
const tableMain = 254

// uplinks is the public part of a snapshot.
func uplinks(ms []member) []Uplink {
	out := make([]Uplink, len(ms))
	for i, m := range ms {
		out[i] = m.clone()
	}
	return out
}

// changed lists the indexes of the uplinks that differ between two snapshots
// of the same config.
func changed(prev, next []Uplink) []int {
	var out []int
	for i := range next {
		if i >= len(prev) || !prev[i].equal(next[i]) {
			out = append(out, i)
		}
	}
	return out
}
