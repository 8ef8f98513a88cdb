package uplink

import (
	"fmt"
	"net/netip"
)

var (
	default4 = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	default6 = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
)

// scopeLink is RT_SCOPE_LINK: an IPv4 device route's scope.
const scopeLink = 253

// desired is the routing the snapshot asks for: per Ready uplink, a default
// route in its table for each family it has addresses of (via the gateway,
// or through the device on a point-to-point link without one) and a source
// rule per address.
func desired(ms []member) ([]route, []rule) {
	var routes []route
	var rules []rule
	for _, m := range ms {
		if m.State != Ready {
			continue
		}
		var has4, has6 bool
		for _, a := range m.Addrs {
			bits := 32
			if a.Is4() {
				has4 = true
			} else {
				has6, bits = true, 128
			}
			rules = append(rules, rule{priority: m.RulePriority, table: m.Table, src: netip.PrefixFrom(a, bits)})
		}
		if has4 {
			routes = append(routes, defaultRoute(m, default4, m.Gateway4, m.onlink4))
		}
		if has6 {
			routes = append(routes, defaultRoute(m, default6, m.Gateway6, m.onlink6))
		}
	}
	return routes, rules
}

func defaultRoute(m member, dst netip.Prefix, gw netip.Addr, onlink bool) route {
	r := route{table: m.Table, linkIndex: m.Index, dst: dst, gw: gw, onlink: onlink}
	if !gw.IsValid() && dst.Addr().Is4() {
		r.scope = scopeLink // a point-to-point device route
	}
	return r
}

// op is one change to the kernel's routing.
type op struct {
	del   bool
	route *route
	rule  *rule
}

func (o op) String() string {
	verb := "add"
	if o.del {
		verb = "del"
	}
	if o.rule != nil {
		from := "all"
		if o.rule.src.IsValid() {
			from = o.rule.src.String()
		}
		return fmt.Sprintf("%s rule pref %d from %s lookup %d", verb, o.rule.priority, from, o.rule.table)
	}
	r := o.route
	via := "dev"
	if r.gw.IsValid() {
		via = "via " + r.gw.String() + " dev"
	}
	return fmt.Sprintf("%s route %s %s %d table %d", verb, r.dst, via, r.linkIndex, r.table)
}

// owned says which routes and rules are ours: every route in our tables, and
// the rules at our priorities that look up one of our tables.
type owned struct {
	tableBase, priorityBase, n int
}

func (o owned) table(t int) bool    { return t >= o.tableBase && t < o.tableBase+o.n }
func (o owned) priority(p int) bool { return p >= o.priorityBase && p < o.priorityBase+o.n }

func ownership(cfg Config) owned {
	return owned{tableBase: cfg.TableBase, priorityBase: cfg.RulePriority, n: len(cfg.Uplinks)}
}

// plan lists the operations that turn the kernel's routing (st) into the
// wanted one, touching only what o says is ours: deletions first (rules
// before routes), then additions (routes before rules, so that a new rule
// never points at an empty table). Re-planning after the plan was applied
// yields nothing.
func plan(o owned, st state, wantRoutes []route, wantRules []rule) []op {
	want := make(map[route]bool, len(wantRoutes))
	for _, r := range wantRoutes {
		want[r.key()] = true
	}
	wantR := make(map[rule]bool, len(wantRules))
	for _, r := range wantRules {
		wantR[r] = true
	}
	have := make(map[route]bool)
	haveR := make(map[rule]bool)
	var ops []op
	for _, r := range st.rules {
		if !o.priority(r.priority) || !o.table(r.table) {
			continue
		}
		if wantR[r] && !haveR[r] {
			haveR[r] = true
			continue
		}
		ops = append(ops, op{del: true, rule: &r})
	}
	for _, r := range st.routes {
		if !o.table(r.table) {
			continue
		}
		if k := r.key(); want[k] && !have[k] {
			have[k] = true
			continue
		}
		ops = append(ops, op{del: true, route: &r})
	}
	for _, r := range wantRoutes {
		if !have[r.key()] {
			ops = append(ops, op{route: &r})
			have[r.key()] = true
		}
	}
	for _, r := range wantRules {
		if !haveR[r] {
			ops = append(ops, op{rule: &r})
			haveR[r] = true
		}
	}
	return ops
}
