package bond

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap/zaptest"

	"onair/bond/uplink"
	"onair/web/api"
)

func newTestBond(t *testing.T) *Bond {
	t.Helper()
	b, err := New(Config{Receiver: "127.0.0.1:5000", Uplinks: []uplink.Spec{
		{Name: "wired", Interface: "eth*", Policy: api.PolicyBond},
		{Name: "cell1", Interface: "wwan0", Policy: api.PolicyBackup, CapBytes: 5000},
	}}, zaptest.NewLogger(t), clockwork.NewFakeClock())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Before the monitor has said anything every configured uplink is listed,
// absent, in config order: the page and onairctl show what the crew wrote.
func TestStatusListsEveryConfiguredUplinkBeforeAnyInterface(t *testing.T) {
	b := newTestBond(t)
	st := b.Status()
	if len(st.Uplinks) != 2 || st.Uplinks[0].Name != "wired" || st.Uplinks[1].Name != "cell1" {
		t.Fatalf("uplinks %+v", st.Uplinks)
	}
	for _, u := range st.Uplinks {
		if u.State != api.UplinkAbsent || !u.Enabled || u.LastError == "" {
			t.Errorf("%s: %+v", u.Name, u)
		}
	}
	if st.Uplinks[1].CapBytes != 5000 || st.Uplinks[0].Interface != "eth*" {
		t.Errorf("cap or interface lost: %+v", st.Uplinks)
	}
}

// A ready uplink becomes a sender link bound to its IPv4 address; a down one
// shows the monitor's reason; the operator's disable holds while the uplink
// comes and goes, and an unknown name is ErrUnknownUplink.
func TestReadyUplinkBecomesALinkAndDisableSurvivesAFlap(t *testing.T) {
	b := newTestBond(t)
	v4, v6 := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::2")
	ready := []uplink.Uplink{
		{Spec: b.cfg.Uplinks[0], State: uplink.Ready, Interface: "eth0", Addrs: []netip.Addr{v4, v6}},
		{Spec: b.cfg.Uplinks[1], State: uplink.Down, Interface: "wwan0", Reason: uplink.ReasonNoCarrier},
	}
	b.onChange(ready)
	st := b.Status()
	w, c := st.Uplinks[0], st.Uplinks[1]
	if w.State != api.UplinkRegistering || w.Interface != "eth0" || len(w.Addresses) != 1 || w.Addresses[0] != "192.0.2.2" {
		t.Fatalf("wired %+v", w)
	}
	if c.State != api.UplinkDown || c.LastError != uplink.ReasonNoCarrier {
		t.Fatalf("cell1 %+v", c)
	}
	if _, err := b.SetEnabled("cell9", false); !errors.Is(err, ErrUnknownUplink) {
		t.Fatalf("unknown uplink: %v", err)
	}
	u, err := b.SetEnabled("wired", false)
	if err != nil || u.Enabled {
		t.Fatalf("disable: %+v %v", u, err)
	}
	b.onChange([]uplink.Uplink{{Spec: b.cfg.Uplinks[0], State: uplink.Down, Interface: "eth0", Reason: uplink.ReasonLinkDown}, ready[1]})
	b.onChange(ready)
	for _, u := range b.snd.Status().Uplinks {
		if u.Name == "wired" && u.Enabled {
			t.Fatal("the sender's new wired link is enabled again after a flap")
		}
	}
	if st := b.Status(); st.Uplinks[0].Enabled {
		t.Fatalf("disable forgotten after a flap: %+v", st.Uplinks[0])
	}
}

// pickAddr: IPv4 first (the reference receivers are IPv4-only), else IPv6.
func TestPickAddrPrefersIPv4(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::2")
	if pickAddr([]netip.Addr{v6, v4}) != v4 || pickAddr([]netip.Addr{v6}) != v6 {
		t.Fatal("wrong address picked")
	}
}

// config apply of uplinks[i].policy and cap_mb: the sender's link takes the
// new policy at once, status shows it, and it holds when the uplink flaps
// (the monitor's snapshot still carries the old spec).
func TestPolicyChangedLiveReachesTheSenderAndSurvivesAFlap(t *testing.T) {
	b := newTestBond(t)
	v4 := netip.MustParseAddr("192.0.2.2")
	up := []uplink.Uplink{{Spec: b.cfg.Uplinks[1], State: uplink.Ready, Interface: "wwan0", Addrs: []netip.Addr{v4}}}
	b.onChange(up)
	if err := b.SetPolicy("cell1", api.PolicyBond, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPolicy("cell1", "sometimes", 0); err == nil {
		t.Error("an unknown policy was accepted")
	}
	if err := b.SetPolicy("cell9", api.PolicyBond, 0); !errors.Is(err, ErrUnknownUplink) {
		t.Errorf("unknown uplink: %v", err)
	}
	b.onChange(up) // a new snapshot with the spec of the start
	found := false
	for _, l := range b.snd.Status().Uplinks {
		if l.Name == "cell1" {
			found = true
			if l.Policy != api.PolicyBond || l.CapBytes != 0 {
				t.Errorf("sender link %+v; want policy bond, no cap", l)
			}
		}
	}
	if !found {
		t.Error("the sender has no cell1 link")
	}
	if st := b.Status(); st.Uplinks[1].Policy != api.PolicyBond || st.Uplinks[1].CapBytes != 0 {
		t.Errorf("status %+v; want policy bond, no cap", st.Uplinks[1])
	}
}
