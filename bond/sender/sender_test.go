package sender

import (
	"bytes"
	"context"
	"net/netip"
	"strconv"
	"testing"

	"onair/bond/srtla"
	"onair/web/api"
)

var (
	ipA = "127.0.0.2"
	ipB = "127.0.0.3"
	ipC = "127.0.0.4"
)

func bondLink(name, ip string, policy api.UplinkPolicy) Link {
	return Link{Name: name, Addr: netip.MustParseAddr(ip), Policy: policy}
}

// The first link's receiver path is dead or slow: the REG2 probes go out on
// every link at once and the link that answers first opens the group, at the
// first housekeeping, without waiting for the other.
func TestRegistrationUsesTheLinkThatAnswersFirst(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(p *peer)
	}{
		{"first link silent", func(p *peer) { p.silent[netip.MustParseAddr(ipA)] = true }},
		{"first link slow", func(p *peer) { p.slow[netip.MustParseAddr(ipA)] = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, false)
			p.with(func() { tc.set(p) })
			r := newRig(t, p, []Link{bondLink("first", ipA, api.PolicyBond), bondLink("fast", ipB, api.PolicyBond)}, Config{})
			r.waitUp("fast")
			if got := p.n(ipA, srtla.TypeReg1); got != 0 {
				t.Errorf("REG1 sent %d times on the first link", got)
			}
			if got := p.n(ipB, srtla.TypeReg1); got != 1 {
				t.Errorf("REG1 sent %d times on the fast link, want 1", got)
			}
			st := r.s.Status()
			if st.Group != api.GroupRegistered || st.Registers != 1 {
				t.Errorf("group %s registers %d, want registered 1", st.Group, st.Registers)
			}
			r.s.mu.Lock()
			ticks := r.s.ticks
			r.s.mu.Unlock()
			if ticks != 1 {
				t.Errorf("up after %d ticks, want the first", ticks)
			}
			if st.Uplinks[1].State != api.UplinkUp {
				t.Errorf("fast link %s, want up", st.Uplinks[1].State)
			}
		})
	}
}

// The reference ignores REG_ERR and retries every second; ours doubles the
// wait per link up to regErrBackoffMax.
func TestRegErrBacksOff(t *testing.T) {
	p := newPeer(t, false)
	p.with(func() { p.regErr = true })
	r := newRig(t, p, []Link{bondLink("a", ipA, api.PolicyBond)}, Config{})
	answered := func() bool { // every attempt's REG_ERR has been taken in
		r.s.mu.Lock()
		defer r.s.mu.Unlock()
		return r.s.links[0].regErrs == p.n(ipA, srtla.TypeReg2)
	}
	for range 60 {
		r.eventually("REG_ERR taken in", answered)
		r.advance(1)
	}
	r.eventually("REG_ERR taken in", answered)
	// Attempts at 0, 1, 3, 7, 15, 23, 31, 39, 47, 55 s.
	if got := p.n(ipA, srtla.TypeReg2); got != 10 {
		t.Errorf("%d registration attempts in 60 s of REG_ERR, want 10 (backoff 1, 2, 4, 8, 8 … s)", got)
	}
	if st := r.s.Status(); st.Uplinks[0].State != api.UplinkRegistering || st.Uplinks[0].LastError == "" {
		t.Errorf("state %s error %q, want registering with the reason", st.Uplinks[0].State, st.Uplinks[0].LastError)
	}
	// The receiver recovers: the link registers at its next attempt.
	p.mu.Lock()
	p.regErr = false
	p.mu.Unlock()
	for i := 0; i < 10 && !r.link("a").Alive; i++ {
		r.advance(1)
	}
	if !r.link("a").Alive {
		t.Error("link not up after the receiver stopped refusing")
	}
}

// The reference forwards REG_ERR and friends to SRT as 2-byte datagrams.
// Only SRT reaches the app.
func TestSRTLAControlNeverReachesTheApp(t *testing.T) {
	p := newPeer(t, false)
	r := newRig(t, p, []Link{bondLink("a", ipA, api.PolicyBond)}, Config{})
	r.waitUp("a")
	r.send(srtData(1, 100)) // the app's address is now known
	r.eventually("data at the peer", func() bool { return p.n(ipA, keyData) == 1 })
	ka, _ := (&srtla.Keepalive{HasTimestamp: true, TimestampMs: 5}).Marshal()
	ack, _ := (&srtla.Ack{SNs: []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}).Marshal()
	reg2, _ := (&srtla.Reg2{}).Marshal()
	reg1, _ := (&srtla.Reg1{}).Marshal()
	nak, _ := (&srtla.RegNAK{Reason: "no"}).Marshal()
	for _, b := range [][]byte{reply(srtla.TypeRegErr), reply(srtla.TypeRegNGP), reply(srtla.TypeReg3), ka, ack, reg2, reg1, nak,
		{0x90, 0x00}, {0x92, 0xFF, 1, 2}, {0x91, 0x00, 0, 0, 1}} {
		p.sendTo(ipA, b)
	}
	last := srtAck(7, 2)
	p.sendTo(ipA, last)
	r.eventually("the SRT ACK at the app", func() bool { return len(r.received()) > 0 })
	got := r.received()
	if len(got) != 1 || !bytes.Equal(got[0], last) {
		t.Errorf("app got %d datagrams (first % x), want only the SRT ACK", len(got), got[0][:min(4, len(got[0]))])
	}
}

// The receiver broadcasts every SRT ACK on every link; the app gets each
// once, and other SRT control once per copy.
func TestBroadcastAcksReachTheAppOnce(t *testing.T) {
	p := newPeer(t, false)
	r := newRig(t, p, []Link{bondLink("a", ipA, api.PolicyBond), bondLink("b", ipB, api.PolicyBond)}, Config{})
	r.waitUp("a", "b")
	r.send(srtData(1, 100))
	r.eventually("data at the peer", func() bool { return p.n(ipA, keyData)+p.n(ipB, keyData) == 1 })
	for i := uint32(1); i <= 20; i++ {
		p.sendTo(ipA, srtAck(i, 2))
		p.sendTo(ipB, srtAck(i, 2))
	}
	marker := srtAck(999, 2)
	p.sendTo(ipB, marker)
	p.sendTo(ipA, marker)
	r.eventually("marker", func() bool { return countEqual(r.received(), marker) == 1 })
	got := r.received()
	if len(got) != 21 {
		t.Errorf("app got %d ACKs, want 21 distinct ones", len(got))
	}
	for i := uint32(1); i <= 20; i++ {
		if n := countEqual(got, srtAck(i, 2)); n != 1 {
			t.Errorf("ACK %d reached the app %d times", i, n)
		}
	}
}

// A duplicate link carries a copy of every packet, data and control, except
// handshakes (a gosrt caller draws a second key on a second induction reply).
func TestDuplicateLinkCarriesEveryPacket(t *testing.T) {
	p := newPeer(t, false)
	r := newRig(t, p, []Link{bondLink("a", ipA, api.PolicyBond), bondLink("dup", ipB, api.PolicyDuplicate)}, Config{})
	r.waitUp("a", "dup")
	for sn := uint32(1); sn <= 50; sn++ {
		r.send(srtData(sn, 1316))
	}
	ctl := make([]byte, 16)
	ctl[0], ctl[1] = 0x80, 0x01 // SRT keepalive
	r.send(ctl)
	hs := make([]byte, 64)
	hs[0] = 0x80 // SRT handshake
	r.send(hs)
	r.eventually("50 data + 1 control on both, the handshake on one", func() bool {
		return p.n(ipA, keyData) == 50 && p.n(ipB, keyData) == 50 && p.n(ipA, keyControl)+p.n(ipB, keyControl) == 3
	})
	if a, b := p.n(ipA, keyControl), p.n(ipB, keyControl); min(a, b) != 1 {
		t.Errorf("control packets %d on a, %d on the duplicate: want the keepalive on both", a, b)
	}
}

// A backup link carries nothing while the bond link has room, and takes
// over when the bond link dies.
func TestBackupTakesOverWhenTheBondLinkDies(t *testing.T) {
	p := newPeer(t, false)
	r := newRig(t, p, []Link{bondLink("bond", ipA, api.PolicyBond), bondLink("backup", ipB, api.PolicyBackup)}, Config{})
	r.waitUp("bond", "backup")
	for sn := uint32(1); sn <= 10; sn++ {
		r.send(srtData(sn, 1316))
	}
	r.eventually("10 on the bond link", func() bool { return p.n(ipA, keyData) == 10 })
	if got := p.n(ipB, keyData); got != 0 {
		t.Fatalf("backup carried %d packets while the bond link had room", got)
	}
	if st := r.s.Status(); st.Uplinks[1].Carrying || !st.Uplinks[0].Carrying {
		t.Errorf("carrying bond %v backup %v, want true false", st.Uplinks[0].Carrying, st.Uplinks[1].Carrying)
	}
	p.mu.Lock()
	p.silent[netip.MustParseAddr(ipA)] = true
	p.mu.Unlock()
	r.advance(5)
	if r.link("bond").Alive {
		t.Fatal("bond link still alive after 5 s of silence")
	}
	for sn := uint32(11); sn <= 20; sn++ {
		r.send(srtData(sn, 1316))
	}
	r.eventually("10 on the backup link", func() bool { return p.n(ipB, keyData) == 10 })
	if st := r.s.Status(); !st.Uplinks[1].Carrying || st.Uplinks[0].State != api.UplinkDead {
		t.Errorf("backup carrying %v, bond state %s; want true, dead", st.Uplinks[1].Carrying, st.Uplinks[0].State)
	}
}

// At its cap a link carries no more stream bytes but stays registered and
// keeps alive.
func TestCapStopsALink(t *testing.T) {
	p := newPeer(t, false)
	capped := bondLink("metered", ipA, api.PolicyBond)
	capped.CapBytes = 6000
	r := newRig(t, p, []Link{capped, bondLink("b", ipB, api.PolicyBond)}, Config{})
	r.waitUp("metered", "b")
	for sn := uint32(1); sn <= 40; sn++ {
		r.send(srtData(sn, 1000))
	}
	r.eventually("40 packets", func() bool { return p.n(ipA, keyData)+p.n(ipB, keyData) == 40 })
	p.mu.Lock()
	onA := p.dataBytes[netip.MustParseAddr(ipA)]
	p.mu.Unlock()
	if onA > 6000 || onA == 0 {
		t.Errorf("capped link carried %d data bytes, want some and at most its 6000 cap", onA)
	}
	st := r.s.Status()
	if st.Uplinks[0].State != api.UplinkCapped || st.Uplinks[0].Carrying || st.Uplinks[0].BytesSent < 6000 {
		t.Errorf("state %s carrying %v sent %d, want capped, not carrying, ≥ 6000", st.Uplinks[0].State, st.Uplinks[0].Carrying, st.Uplinks[0].BytesSent)
	}
	kas := p.n(ipA, srtla.TypeKeepalive)
	r.advance(2)
	if got := p.n(ipA, srtla.TypeKeepalive); got < kas+2 {
		t.Errorf("capped link sent %d keepalives in 2 s, want 2", got-kas)
	}
	if !r.link("metered").Alive {
		t.Error("capped link not alive")
	}
}

// Links added, re-addressed and removed at runtime: an added link joins the
// existing group with REG2; a removed one carries nothing; a new address is
// a new socket that registers again.
func TestSetLinksAtRuntime(t *testing.T) {
	p := newPeer(t, false)
	a, b := bondLink("a", ipA, api.PolicyBond), bondLink("b", ipB, api.PolicyBond)
	r := newRig(t, p, []Link{a}, Config{})
	r.waitUp("a")
	r.s.SetLinks([]Link{a, b})
	r.waitUp("b")
	if p.nGroups() != 1 || p.n(ipB, srtla.TypeReg1) != 0 {
		t.Errorf("groups %d, REG1 on b %d: the new link should join with REG2", p.nGroups(), p.n(ipB, srtla.TypeReg1))
	}
	r.s.SetLinks([]Link{b})
	for sn := uint32(1); sn <= 10; sn++ {
		r.send(srtData(sn, 500))
	}
	r.eventually("10 on b", func() bool { return p.n(ipB, keyData) == 10 })
	if got := p.n(ipA, keyData); got != 0 {
		t.Errorf("removed link carried %d packets", got)
	}
	if n := len(r.s.Status().Uplinks); n != 1 {
		t.Errorf("%d links in the status, want 1", n)
	}
	b.Addr = netip.MustParseAddr(ipC) // DHCP renew with a new address
	r.s.SetLinks([]Link{b})
	r.eventually("b registered from its new address", func() bool { return p.registered(ipC) && r.link("b").Alive })
	r.send(srtData(11, 500))
	r.eventually("data from the new address", func() bool { return p.n(ipC, keyData) == 1 })
	if err := r.s.SetEnabled("a", true); err == nil {
		t.Error("SetEnabled of a removed link: no error")
	}
}

// A NAT rebinding: the receiver no longer knows the link's source (it drops
// the link's keepalives); the link re-registers within two ticks, while the
// other link keeps hearing.
func TestNATRebindingReregisters(t *testing.T) {
	p := newPeer(t, false)
	r := newRig(t, p, []Link{bondLink("a", ipA, api.PolicyBond), bondLink("b", ipB, api.PolicyBond)}, Config{})
	r.waitUp("a", "b")
	r.advance(1)
	reg2 := p.n(ipA, srtla.TypeReg2)
	p.forget(ipA)
	if p.registered(ipA) {
		t.Fatal("peer still knows a")
	}
	r.advance(3)
	if got := p.n(ipA, srtla.TypeReg2); got <= reg2 {
		t.Fatal("the silenced link sent no REG2")
	}
	if !p.registered(ipA) || !r.link("a").Alive {
		t.Errorf("a registered at the peer %v, alive %v; want both", p.registered(ipA), r.link("a").Alive)
	}
	if p.nGroups() != 1 {
		t.Errorf("%d groups, want 1", p.nGroups())
	}
}

// The silent link is not scheduled for data while it re-registers.
func TestRebindingLinkCarriesNoData(t *testing.T) {
	p := newPeer(t, false)
	r := newRig(t, p, []Link{bondLink("a", ipA, api.PolicyBond), bondLink("b", ipB, api.PolicyBond)}, Config{})
	r.waitUp("a", "b")
	p.mu.Lock()
	p.silent[netip.MustParseAddr(ipA)] = true // no REG3 either: stays re-registering
	p.mu.Unlock()
	r.advance(2)
	r.s.mu.Lock()
	rebinding := r.s.links[0].rebinding
	r.s.mu.Unlock()
	if !rebinding {
		t.Fatal("a silent link while b hears is not re-registering")
	}
	p.mu.Lock()
	p.silent[netip.MustParseAddr(ipA)] = false
	p.mu.Unlock()
	for sn := uint32(1); sn <= 10; sn++ {
		r.send(srtData(sn, 500))
	}
	r.eventually("10 on b", func() bool { return p.n(ipB, keyData) == 10 })
	if got := p.n(ipA, keyData); got != 0 {
		t.Errorf("re-registering link carried %d packets", got)
	}
}

// A total outage of 10 s (shorter than the hold): the sender keeps the group
// and re-registers the same ID; the app's datagrams are dropped meanwhile
// and flow again after.
func TestTotalOutageKeepsTheGroup(t *testing.T) {
	p := newPeer(t, false)
	r := newRig(t, p, []Link{bondLink("a", ipA, api.PolicyBond), bondLink("b", ipB, api.PolicyBond)}, Config{})
	r.waitUp("a", "b")
	p.mu.Lock()
	id := p.id
	p.mute = true
	p.mu.Unlock()
	r.advance(10)
	st := r.s.Status()
	if st.Group != api.GroupOutage || st.OutageSince.IsZero() {
		t.Errorf("group %s since %v, want outage", st.Group, st.OutageSince)
	}
	r.send(srtData(1, 500)) // dropped: no link
	p.mu.Lock()
	p.mute = false
	p.mu.Unlock()
	r.advance(2)
	r.waitUp("a", "b")
	r.send(srtData(2, 500))
	r.eventually("data after the outage", func() bool { return p.n(ipA, keyData)+p.n(ipB, keyData) == 1 })
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.groups != 1 || p.id != id {
		t.Errorf("%d groups (id kept %v), want the one group", p.groups, p.id == id)
	}
	if st := r.s.Status(); st.Group != api.GroupRegistered || st.Registers != 1 {
		t.Errorf("group %s registers %d", st.Group, st.Registers)
	}
}

// Past OutageHold the group is given up: the next registration opens a new
// one (REG1 again).
func TestOutageLongerThanTheHoldOpensANewGroup(t *testing.T) {
	p := newPeer(t, false)
	r := newRig(t, p, []Link{bondLink("a", ipA, api.PolicyBond)}, Config{OutageHold: 5e9})
	r.waitUp("a")
	p.mu.Lock()
	p.mute = true
	p.mu.Unlock()
	r.advance(12)
	p.mu.Lock()
	p.mute = false
	p.mu.Unlock()
	r.advance(2)
	r.waitUp("a")
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.groups != 2 {
		t.Errorf("%d groups, want 2", p.groups)
	}
}

// An IPv4 and an IPv6 uplink bond into one group: each sends to the
// receiver's address of its own family.
func TestBondsAV4AndAV6Link(t *testing.T) {
	p := newPeer(t, true)
	lookup := func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.1")}, nil
	}
	cfg := Config{Receiver: "receiver.test:" + strconv.Itoa(int(p.port))}
	r := newRigWith(t, p, []Link{bondLink("v4", ipA, api.PolicyBond), bondLink("v6", "::1", api.PolicyBond)}, cfg, lookup)
	r.waitUp("v4", "v6")
	for sn := uint32(1); sn <= 10; sn++ {
		r.send(srtData(sn, 500))
	}
	r.eventually("10 packets", func() bool { return p.n(ipA, keyData)+p.n("::1", keyData) == 10 })
	if p.n(ipA, keyData) == 0 || p.n("::1", keyData) == 0 {
		t.Errorf("v4 carried %d, v6 %d: want both", p.n(ipA, keyData), p.n("::1", keyData))
	}
	if p.nGroups() != 1 {
		t.Errorf("%d groups, want 1", p.nGroups())
	}
}

// A disabled link carries no stream bytes but keeps alive; enabled again it
// carries at once.
func TestDisabledLinkKeepsAlive(t *testing.T) {
	p := newPeer(t, false)
	r := newRig(t, p, []Link{bondLink("a", ipA, api.PolicyBond), bondLink("b", ipB, api.PolicyBond)}, Config{})
	r.waitUp("a", "b")
	if err := r.s.SetEnabled("a", false); err != nil {
		t.Fatal(err)
	}
	for sn := uint32(1); sn <= 10; sn++ {
		r.send(srtData(sn, 500))
	}
	r.eventually("10 on b", func() bool { return p.n(ipB, keyData) == 10 })
	r.advance(5)
	if got := p.n(ipA, keyData); got != 0 {
		t.Errorf("disabled link carried %d", got)
	}
	if st := r.s.Status(); st.Uplinks[0].State != api.UplinkDisabled {
		t.Errorf("state %s, want disabled", st.Uplinks[0].State)
	}
	if err := r.s.SetEnabled("a", true); err != nil {
		t.Fatal(err)
	}
	if !r.link("a").Carrying {
		t.Error("re-enabled link does not carry at once")
	}
}

// The per-packet path allocates nothing: a data packet from the app, and an
// SRT ACK, an SRTLA ACK and a keepalive echo from the receiver.
func TestPerPacketPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	p := newPeer(t, false)
	r := newRig(t, p, []Link{bondLink("a", ipA, api.PolicyBond), bondLink("dup", ipB, api.PolicyDuplicate)}, Config{})
	r.waitUp("a", "dup")
	appAddr := netip.MustParseAddrPort(r.app.LocalAddr().String())
	data := srtData(1, 1316)
	if n := quietAllocs(func() { r.s.fromApp(data, appAddr) }); n != 0 {
		t.Errorf("data packet from the app: %.1f allocations", n)
	}
	r.s.mu.Lock()
	l := r.s.links[0]
	conn, dst := l.conn, l.dst
	r.s.mu.Unlock()
	ack, _ := (&srtla.Ack{SNs: []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}).Marshal()
	ka, _ := (&srtla.Keepalive{HasTimestamp: true, TimestampMs: 1}).Marshal()
	i := uint32(0)
	for _, tc := range []struct {
		name string
		b    func() []byte
	}{
		{"srt ack", func() []byte { i++; return srtAck(i, i) }},
		{"srtla ack", func() []byte { return ack }},
		{"keepalive", func() []byte { return ka }},
	} {
		pkts := make([][]byte, 300)
		for j := range pkts {
			pkts[j] = tc.b()
		}
		j := 0
		if n := quietAllocs(func() { r.s.fromLink(l, conn, pkts[j%len(pkts)], dst); j++ }); n != 0 {
			t.Errorf("%s from the receiver: %.1f allocations", tc.name, n)
		}
	}
}

// quietAllocs is testing.AllocsPerRun at its quietest of five tries:
// AllocsPerRun counts every goroutine's allocations, and the scripted peer
// allocates while it answers what f sent (a flake seen once in a full run).
// A path that really allocates does so on every try.
func quietAllocs(f func()) float64 {
	best := testing.AllocsPerRun(50, f)
	for i := 0; i < 4 && best > 0; i++ {
		best = min(best, testing.AllocsPerRun(50, f))
	}
	return best
}

// The backup link engages once the bond link has been over its window for
// backupSaturatedHold, and shares the load by the window rule.
func TestBackupEngagesWhenTheBondLinkIsSaturated(t *testing.T) {
	p := newPeer(t, false)
	r := newRig(t, p, []Link{bondLink("bond", ipA, api.PolicyBond), bondLink("backup", ipB, api.PolicyBackup)}, Config{})
	r.waitUp("bond", "backup")
	for sn := uint32(1); sn <= 25; sn++ { // no ACKs: 25 in flight, over the 20-packet window
		r.send(srtData(sn, 1316))
	}
	r.eventually("25 on the bond link", func() bool { return p.n(ipA, keyData) == 25 })
	if got := p.n(ipB, keyData); got != 0 {
		t.Fatalf("backup carried %d packets before the hold", got)
	}
	r.advance(1)
	for sn := uint32(100); sn <= 105; sn++ { // still saturated after 1 s: not yet
		r.send(srtData(sn, 1316))
	}
	r.eventually("6 more on the bond link", func() bool { return p.n(ipA, keyData) == 31 })
	if got := p.n(ipB, keyData); got != 0 {
		t.Fatalf("backup carried %d packets 1 s into the saturation", got)
	}
	r.advance(1)
	for sn := uint32(26); sn <= 35; sn++ {
		r.send(srtData(sn, 1316))
	}
	r.eventually("41 packets", func() bool { return p.n(ipA, keyData)+p.n(ipB, keyData) == 41 })
	if got := p.n(ipB, keyData); got == 0 {
		t.Error("backup carried nothing while the bond link was saturated")
	}
	if !r.link("backup").Carrying {
		t.Error("backup not carrying in the status")
	}
}

// The receiver restarted and forgot the group (it answers NGP): with no link
// active the sender opens the group again with REG1, keeping its half of the
// ID.
func TestForgottenGroupRegistersAgain(t *testing.T) {
	p := newPeer(t, false)
	r := newRig(t, p, []Link{bondLink("a", ipA, api.PolicyBond), bondLink("b", ipB, api.PolicyBond)}, Config{})
	r.waitUp("a", "b")
	var half [srtla.HalfIDLen]byte
	p.with(func() {
		copy(half[:], p.id[:srtla.HalfIDLen])
		p.haveGroup = false
		p.links = map[netip.AddrPort]bool{}
	})
	for i := 0; i < 8 && p.nGroups() < 2; i++ {
		r.advance(1)
	}
	r.waitUp("a", "b")
	p.with(func() {
		if p.groups != 2 || !bytes.Equal(p.id[:srtla.HalfIDLen], half[:]) {
			t.Errorf("%d groups, sender half kept %v; want 2, true", p.groups, bytes.Equal(p.id[:srtla.HalfIDLen], half[:]))
		}
	})
	if got := r.s.Status().Registers; got != 2 {
		t.Errorf("registers %d, want 2", got)
	}
}

// gosrt dials once and does not resend its induction: a handshake that came
// before any link registered used to be dropped and cost the caller a whole
// connect timeout (every bonded make run started 3 s late). It is held and
// sent on the first link that comes up.
func TestHandshakeBeforeAnyLinkIsUpIsSentOnTheFirstOne(t *testing.T) {
	p := newPeer(t, false)
	p.mu.Lock()
	p.mute = true
	p.mu.Unlock()
	r := newRig(t, p, []Link{bondLink("a", ipA, api.PolicyBond)}, Config{})
	hs := make([]byte, 64)
	hs[0], hs[1] = 0x80, 0x00 // SRT handshake
	r.send(hs)
	r.eventually("the handshake dropped for want of a link", func() bool {
		r.s.mu.Lock()
		defer r.s.mu.Unlock()
		return len(r.s.heldHS) > 0
	})
	p.mu.Lock()
	p.mute = false
	p.mu.Unlock()
	r.advance(2) // within the caller's connect timeout
	r.waitUp("a")
	r.eventually("the held handshake at the peer", func() bool { return p.n(ipA, keyControl) == 1 })
}

// A REG1 sent just before a housekeeping tick (its NGP came late) is not
// sent again at that tick: a reference receiver answers a REG1 retried from
// the same address with REG_ERR (SRTLA.md §10), so the early retry would
// only cost a REG_ERR, or, here, open a second group.
func TestReg1NotRetriedBeforeItsAnswerCouldArrive(t *testing.T) {
	p := newPeer(t, false)
	p.with(func() { p.slow[netip.MustParseAddr(ipA)] = true }) // every answer 300 ms late
	r := newRig(t, p, []Link{bondLink("a", ipA, api.PolicyBond)}, Config{})
	r.fc.Advance(tickPeriod * 9 / 10) // the probe's NGP arrives 0.9 s into the tick
	r.eventually("REG1", func() bool { return p.n(ipA, srtla.TypeReg1) == 1 })
	r.fc.Advance(tickPeriod / 10) // the tick, before the REG2 answer
	r.waitTicks(2)
	r.waitUp("a")
	if n, g := p.n(ipA, srtla.TypeReg1), p.nGroups(); n != 1 || g != 1 {
		t.Errorf("%d REG1 sent, %d groups opened; want 1 and 1", n, g)
	}
	r.advance(3)
	if n := p.n(ipA, srtla.TypeReg1); n != 1 {
		t.Errorf("%d REG1 sent once registered, want 1", n)
	}
}
