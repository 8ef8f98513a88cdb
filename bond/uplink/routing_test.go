package uplink

import (
	"slices"
	"strings"
	"testing"
)

// applyOps does to st what the kernel does for ops (as the fake kernel does).
func applyOps(st state, ops []op) state {
	for _, o := range ops {
		switch {
		case o.rule != nil && o.del:
			st.rules = slices.DeleteFunc(st.rules, func(r rule) bool { return r == *o.rule })
		case o.rule != nil:
			st.rules = append(st.rules, *o.rule)
		case o.del:
			st.routes = slices.DeleteFunc(st.routes, func(r route) bool { return r.key() == o.route.key() })
		default:
			st.routes = slices.DeleteFunc(st.routes, func(r route) bool { return r.key() == o.route.key() })
			st.routes = append(st.routes, *o.route)
		}
	}
	return st
}

func opStrings(ops []op) []string {
	var s []string
	for _, o := range ops {
		s = append(s, o.String())
	}
	return s
}

func TestDesiredRouting(t *testing.T) {
	cfg := testConfig(bond("wired", "eth0"), bond("cell", "wwan0"), bond("down", "eth1"))
	st := wired()
	st.links = append(st.links,
		link{index: 5, name: "wwan0", adminUp: true, carrier: true, pointToPoint: true},
		link{index: 6, name: "eth1", adminUp: true})
	st.addrs = append(st.addrs, v4(5, "100.64.3.4/32"), addr{linkIndex: 5, prefix: pf("2001:db8:5::4/64"), global: true},
		addr{linkIndex: 2, prefix: pf("2001:db8:2::2/64"), global: true}, v4(6, "10.0.0.2/24"))
	st.routes = append(st.routes, gw(2, "fe80::1", 1024), gw(6, "10.0.0.1", 0))
	routes, rules := desired(build(cfg, st))
	got := opStrings(plan(ownership(cfg), state{}, routes, rules))
	want := []string{
		"add route 0.0.0.0/0 via 192.0.2.1 dev 2 table 1200",
		"add route ::/0 via fe80::1 dev 2 table 1200",
		"add route 0.0.0.0/0 dev 5 table 1201",
		"add route ::/0 dev 5 table 1201",
		"add rule pref 1200 from 192.0.2.2/32 lookup 1200",
		"add rule pref 1200 from 2001:db8:2::2/128 lookup 1200",
		"add rule pref 1201 from 100.64.3.4/32 lookup 1201",
		"add rule pref 1201 from 2001:db8:5::4/128 lookup 1201",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("plan on an empty kernel:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	for _, r := range routes {
		if r.linkIndex == 5 && r.dst == default4 && r.scope != scopeLink {
			t.Errorf("point-to-point IPv4 device route has scope %d, want link", r.scope)
		}
	}
}

func TestPlanTouchesOnlyOurTablesAndPriorities(t *testing.T) {
	cfg := testConfig(bond("wired", "eth0"), bond("cell", "wwan0"))
	foreign := []rule{
		{priority: 0, table: 255},
		{priority: 1201, table: 99, src: pf("10.9.9.9/32")},  // our priority, not our table
		{priority: 500, table: 1200, src: pf("10.8.8.8/32")}, // our table, not our priority
		{priority: 32766, table: tableMain},
	}
	foreignRoutes := []route{
		{table: 99, linkIndex: 2, dst: default4, gw: ip("192.0.2.1")},
		gw(2, "192.0.2.1", 100),
	}
	// What a crashed run left behind: a rule for an old address and a route
	// in the table of an uplink that is absent now.
	stale := state{
		rules:  []rule{{priority: 1200, table: 1200, src: pf("192.0.2.77/32")}},
		routes: []route{{table: 1201, linkIndex: 9, dst: default4, gw: ip("198.51.100.1")}},
	}
	st := wired()
	st.rules = append(slices.Clone(foreign), stale.rules...)
	st.routes = append(slices.Clone(foreignRoutes), stale.routes...)

	routes, rules := desired(build(cfg, st))
	ops := plan(ownership(cfg), st, routes, rules)
	want := []string{
		"del rule pref 1200 from 192.0.2.77/32 lookup 1200",
		"del route 0.0.0.0/0 via 198.51.100.1 dev 9 table 1201",
		"add route 0.0.0.0/0 via 192.0.2.1 dev 2 table 1200",
		"add rule pref 1200 from 192.0.2.2/32 lookup 1200",
	}
	if got := opStrings(ops); !slices.Equal(got, want) {
		t.Fatalf("plan:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}

	after := applyOps(st, ops)
	if again := plan(ownership(cfg), after, routes, rules); len(again) != 0 {
		t.Fatalf("re-planning after applying is not empty: %v", opStrings(again))
	}

	// The kernel drops the route silently (link down): the next plan adds it back.
	dropped := after
	dropped.routes = slices.DeleteFunc(slices.Clone(after.routes), func(r route) bool { return r.table == 1200 })
	if got := opStrings(plan(ownership(cfg), dropped, routes, rules)); !slices.Equal(got, want[2:3]) {
		t.Fatalf("after a silent drop: %v, want %v", got, want[2:3])
	}

	// Clean-up removes ours and nothing else.
	clean := applyOps(after, plan(ownership(cfg), after, nil, nil))
	if !slices.Equal(clean.rules, foreign) {
		t.Errorf("rules after clean-up: %+v, want the foreign ones %+v", clean.rules, foreign)
	}
	if !slices.Equal(clean.routes, foreignRoutes) {
		t.Errorf("routes after clean-up: %+v, want the foreign ones %+v", clean.routes, foreignRoutes)
	}
}

// The kernel reports an IPv6 route added without a metric with metric 1024:
// it is still the route we want, not one to delete and add again.
func TestPlanIgnoresTheMetricTheKernelGaveOurRoute(t *testing.T) {
	cfg := testConfig(bond("wired", "eth0"))
	st := wired()
	st.addrs = []addr{{linkIndex: 2, prefix: pf("2001:db8::2/64"), global: true}}
	st.routes = []route{gw(2, "fe80::1", 1024)}
	routes, rules := desired(build(cfg, st))
	st.routes = append(st.routes, route{table: 1200, linkIndex: 2, dst: default6, gw: ip("fe80::1"), priority: 1024})
	st.rules = rules
	if ops := plan(ownership(cfg), st, routes, rules); len(ops) != 0 {
		t.Fatalf("plan: %v, want nothing", opStrings(ops))
	}
}
