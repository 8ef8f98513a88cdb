package uplink

import (
	"net/netip"
	"slices"
	"testing"

	"onair/web/api"
)

var (
	ip = netip.MustParseAddr
	pf = netip.MustParsePrefix
)

func testConfig(specs ...Spec) Config {
	return Config{Uplinks: specs, TableBase: DefaultTableBase, RulePriority: DefaultRulePriority}
}

func bond(name, iface string) Spec {
	return Spec{Name: name, Interface: iface, Policy: api.PolicyBond}
}

// up is a link with carrier.
func up(index int, name string) link {
	return link{index: index, name: name, adminUp: true, carrier: true}
}

func v4(index int, p string) addr { return addr{linkIndex: index, prefix: pf(p), global: true} }

func gw(index int, via string, metric int) route {
	dst := default4
	if ip(via).Is6() {
		dst = default6
	}
	return route{table: tableMain, linkIndex: index, dst: dst, gw: ip(via), priority: metric}
}

// wired is a ready eth0 (index 2) with 192.0.2.2/24 via 192.0.2.1.
func wired() state {
	return state{
		links:  []link{up(1, "lo"), up(2, "eth0")},
		addrs:  []addr{{linkIndex: 1, prefix: pf("127.0.0.1/8")}, v4(2, "192.0.2.2/24")},
		routes: []route{gw(2, "192.0.2.1", 100)},
	}
}

func TestBuildSnapshot(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		st   state
		want []Uplink // compared on State, Interface, Addrs, gateways, Reason
	}{
		{
			name: "ready wired link with its gateway",
			cfg:  testConfig(bond("wired", "eth*")),
			st:   wired(),
			want: []Uplink{{State: Ready, Interface: "eth0", Index: 2, Addrs: []netip.Addr{ip("192.0.2.2")}, Gateway4: ip("192.0.2.1")}},
		},
		{
			name: "no interface matches the glob",
			cfg:  testConfig(bond("cell", "wwan*")),
			st:   wired(),
			want: []Uplink{{State: Absent, Reason: ReasonNoInterface}},
		},
		{
			name: "administratively down",
			cfg:  testConfig(bond("wired", "eth0")),
			st: func() state {
				s := wired()
				s.links[1].adminUp, s.links[1].carrier = false, false
				return s
			}(),
			want: []Uplink{{State: Down, Interface: "eth0", Index: 2, Addrs: []netip.Addr{ip("192.0.2.2")}, Gateway4: ip("192.0.2.1"), Reason: ReasonLinkDown}},
		},
		{
			name: "carrier lost at the peer keeps address and gateway but is down",
			cfg:  testConfig(bond("wired", "eth0")),
			st: func() state {
				s := wired()
				s.links[1].carrier = false
				return s
			}(),
			want: []Uplink{{State: Down, Interface: "eth0", Index: 2, Addrs: []netip.Addr{ip("192.0.2.2")}, Gateway4: ip("192.0.2.1"), Reason: ReasonNoCarrier}},
		},
		{
			name: "no address",
			cfg:  testConfig(bond("wired", "eth0")),
			st:   state{links: []link{up(2, "eth0")}, routes: []route{gw(2, "192.0.2.1", 0)}},
			want: []Uplink{{State: Down, Interface: "eth0", Index: 2, Gateway4: ip("192.0.2.1"), Reason: ReasonNoAddress}},
		},
		{
			name: "address but the kernel dropped the default route",
			cfg:  testConfig(bond("wired", "eth0")),
			st:   state{links: []link{up(2, "eth0")}, addrs: []addr{v4(2, "192.0.2.2/24")}},
			want: []Uplink{{State: Down, Interface: "eth0", Index: 2, Addrs: []netip.Addr{ip("192.0.2.2")}, Reason: ReasonNoGateway}},
		},
		{
			name: "point-to-point modem needs no gateway",
			cfg:  testConfig(bond("cell", "wwan0")),
			st: state{
				links: []link{{index: 5, name: "wwan0", adminUp: true, carrier: true, pointToPoint: true}},
				addrs: []addr{v4(5, "100.64.3.4/32")},
			},
			want: []Uplink{{State: Ready, Interface: "wwan0", Index: 5, Addrs: []netip.Addr{ip("100.64.3.4")}}},
		},
		{
			name: "link-local, host-scope and tentative IPv6 addresses are not uplink addresses",
			cfg:  testConfig(bond("wired", "eth0")),
			st: state{
				links: []link{up(2, "eth0")},
				addrs: []addr{
					v4(2, "192.0.2.2/24"),
					{linkIndex: 2, prefix: pf("fe80::2/64")},
					{linkIndex: 2, prefix: pf("2001:db8::9/64"), global: true, tentative: true},
					{linkIndex: 2, prefix: pf("2001:db8::2/64"), global: true},
				},
				routes: []route{gw(2, "192.0.2.1", 0), gw(2, "fe80::1", 1024)},
			},
			want: []Uplink{{State: Ready, Interface: "eth0", Index: 2,
				Addrs: []netip.Addr{ip("192.0.2.2"), ip("2001:db8::2")}, Gateway4: ip("192.0.2.1"), Gateway6: ip("fe80::1")}},
		},
		{
			name: "an IPv6 address without an IPv6 gateway is left out when ready",
			cfg:  testConfig(bond("wired", "eth0")),
			st: state{
				links:  []link{up(2, "eth0")},
				addrs:  []addr{{linkIndex: 2, prefix: pf("2001:db8::2/64"), global: true}, v4(2, "192.0.2.2/24")},
				routes: []route{gw(2, "192.0.2.1", 0)},
			},
			want: []Uplink{{State: Ready, Interface: "eth0", Index: 2, Addrs: []netip.Addr{ip("192.0.2.2")}, Gateway4: ip("192.0.2.1")}},
		},
		{
			name: "the gateway is the default route with the lowest metric; other tables and links do not count",
			cfg:  testConfig(bond("wired", "eth0")),
			st: state{
				links: []link{up(2, "eth0")},
				addrs: []addr{v4(2, "192.0.2.2/24")},
				routes: []route{
					gw(2, "192.0.2.9", 600), gw(2, "192.0.2.1", 100), gw(3, "198.51.100.1", 0),
					{table: 1200, linkIndex: 2, dst: default4, gw: ip("192.0.2.77")},
					{table: tableMain, linkIndex: 2, dst: pf("192.0.2.0/24"), scope: scopeLink},
				},
			},
			want: []Uplink{{State: Ready, Interface: "eth0", Index: 2, Addrs: []netip.Addr{ip("192.0.2.2")}, Gateway4: ip("192.0.2.1")}},
		},
		{
			name: "an interface matched by two globs belongs to the first uplink",
			cfg:  testConfig(bond("wired", "eth*"), bond("spare", "eth0")),
			st:   wired(),
			want: []Uplink{
				{State: Ready, Interface: "eth0", Index: 2, Addrs: []netip.Addr{ip("192.0.2.2")}, Gateway4: ip("192.0.2.1")},
				{State: Absent, Reason: ReasonNoInterface},
			},
		},
		{
			name: "one glob, several interfaces: the first ready one by name",
			cfg:  testConfig(bond("wired", "eth*")),
			st: state{
				links:  []link{up(4, "eth2"), {index: 2, name: "eth0", adminUp: true}, up(3, "eth1")},
				addrs:  []addr{v4(2, "192.0.2.2/24"), v4(4, "203.0.113.2/24")},
				routes: []route{gw(2, "192.0.2.1", 0), gw(4, "203.0.113.1", 0)},
			},
			want: []Uplink{{State: Ready, Interface: "eth2", Index: 4, Addrs: []netip.Addr{ip("203.0.113.2")}, Gateway4: ip("203.0.113.1")}},
		},
		{
			name: "one glob, none ready: the first with carrier says what is missing",
			cfg:  testConfig(bond("wired", "eth*")),
			st:   state{links: []link{{index: 2, name: "eth0", adminUp: true}, up(3, "eth1")}},
			want: []Uplink{{State: Down, Interface: "eth1", Index: 3, Reason: ReasonNoAddress}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := uplinks(build(tt.cfg, tt.st))
			if len(got) != len(tt.want) {
				t.Fatalf("got %d uplinks, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				w.Spec = tt.cfg.Uplinks[i]
				w.Table, w.RulePriority = tt.cfg.TableBase+i, tt.cfg.RulePriority+i
				if !got[i].equal(w) {
					t.Errorf("uplink %d:\n got %+v\nwant %+v", i, got[i], w)
				}
			}
		})
	}
}

func TestChangedReportsOnlyTheUplinksThatDiffer(t *testing.T) {
	cfg := testConfig(bond("wired", "eth0"), bond("cell", "wwan0"))
	before := uplinks(build(cfg, wired()))
	if d := changed(before, uplinks(build(cfg, wired()))); len(d) != 0 {
		t.Fatalf("same state read twice: changed %v", d)
	}
	renewed := wired()
	renewed.addrs[1] = v4(2, "192.0.2.3/24") // DHCP renew gave another address
	if d := changed(before, uplinks(build(cfg, renewed))); !slices.Equal(d, []int{0}) {
		t.Fatalf("address change: changed %v, want [0]", d)
	}
	if d := changed(nil, before); !slices.Equal(d, []int{0, 1}) {
		t.Fatalf("first snapshot: changed %v, want [0 1]", d)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"duplicate name", Config{Uplinks: []Spec{bond("a", "eth0"), bond("a", "eth1")}}},
		{"empty name", Config{Uplinks: []Spec{bond("", "eth0")}}},
		{"empty interface", Config{Uplinks: []Spec{bond("a", "")}}},
		{"bad glob", Config{Uplinks: []Spec{bond("a", "eth[")}}},
		{"unknown policy", Config{Uplinks: []Spec{{Name: "a", Interface: "eth0", Policy: "fastest"}}}},
		{"priorities reach the main rule", Config{Uplinks: []Spec{bond("a", "eth0"), bond("b", "eth1")}, RulePriority: 32765}},
		{"tables include main", Config{Uplinks: []Spec{bond("a", "eth0"), bond("b", "eth1")}, TableBase: 253}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, nil, nil); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
	m, err := New(Config{Uplinks: []Spec{bond("a", "eth*"), {Name: "b", Interface: "wwan0", Policy: api.PolicyBackup}}}, nil, nil)
	if err != nil {
		t.Fatalf("valid config: %v", err)
	}
	s := m.Snapshot()
	if len(s) != 2 || s[1].State != Absent || s[1].Table != DefaultTableBase+1 || s[1].RulePriority != DefaultRulePriority+1 {
		t.Fatalf("snapshot before Run: %+v", s)
	}
}
