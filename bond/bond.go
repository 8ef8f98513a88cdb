// Package bond is onaird's bonded output (an srtla:// output.url): it
// watches the configured uplinks (bond/uplink: netlink, one routing table and
// source rule per uplink), keeps one SRTLA link per ready uplink in the
// sender (bond/sender), remembers the operator's enable/disable and data
// used per uplink across link flaps, and reports it all as api.BondStatus.
// The SRT caller (package output) dials Dial on loopback, so passphrase,
// streamid and latency stay end to end; the adaptive bitrate (bond/abr)
// reads LinkSamples.
//
// Not for: the wire format (bond/srtla), SRT itself (output), the bitrate
// decision (bond/abr) or the encoders, which bonding reaches only through
// abr.Bitrate.
package bond

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"onair/bond/abr"
	"onair/bond/sender"
	"onair/bond/uplink"
	"onair/web/api"
)

// ErrUnknownUplink is returned by SetEnabled for a name not in the config.
var ErrUnknownUplink = errors.New("bond: no such uplink")

// Config configures a Bond.
type Config struct {
	// Receiver is the SRTLA receiver's host:port (output.url of srtla://).
	Receiver string
	// Uplinks in config order.
	Uplinks []uplink.Spec
	// OutageHold is how long a total outage keeps the group and the SRT
	// session (output.outage_hold).
	OutageHold time.Duration
	// Listen is the loopback address the SRT caller dials; empty picks a
	// free port on 127.0.0.1 once, in New, so it stays the same across
	// restarts of the sender.
	Listen string
	// Netns and ListenPacket are for tests that run the bond in a network
	// namespace from outside it (onaird itself runs inside its namespace).
	Netns        netns.NsHandle
	ListenPacket func(network, laddr string) (net.PacketConn, error)
}

// Bond is the bonded output's uplinks and SRTLA sender.
type Bond struct {
	cfg   Config
	log   *zap.Logger
	clock clockwork.Clock
	mon   *uplink.Monitor
	snd   *sender.Sender
	dial  string

	mu       sync.Mutex
	snap     []uplink.Uplink
	disabled map[string]bool
	// spent is the bytes each uplink sent on link incarnations that are
	// gone (a flap makes a new link, whose counter starts at zero): the cap
	// counts them too.
	spent map[string]uint64
	last  map[string]uint64 // bytes of the current incarnation, last seen
}

// New builds the monitor and the sender; nothing runs until Run.
func New(cfg Config, log *zap.Logger, clock clockwork.Clock) (*Bond, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	b := &Bond{cfg: cfg, log: log, clock: clock, disabled: map[string]bool{}, spent: map[string]uint64{}, last: map[string]uint64{}}
	b.dial = cfg.Listen
	if b.dial == "" {
		p, err := freeLoopbackPort()
		if err != nil {
			return nil, err
		}
		b.dial = p
	}
	var err error
	if b.snd, err = sender.New(sender.Config{Listen: b.dial, Receiver: cfg.Receiver, OutageHold: cfg.OutageHold, ListenPacket: cfg.ListenPacket},
		log.Named("srtla"), clock); err != nil {
		return nil, fmt.Errorf("bond: %w", err)
	}
	// The monitor gets its own copy: SetPolicy changes b.cfg.Uplinks under
	// b.mu while the monitor's goroutine reads its specs.
	if b.mon, err = uplink.New(uplink.Config{Uplinks: slices.Clone(cfg.Uplinks), Netns: cfg.Netns, OnChange: b.onChange}, log.Named("uplinks"), clock); err != nil {
		return nil, fmt.Errorf("bond: %w", err)
	}
	return b, nil
}

// freeLoopbackPort picks a UDP port on 127.0.0.1 that is free now.
func freeLoopbackPort() (string, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bond: pick a loopback port: %w", err)
	}
	addr := c.LocalAddr().String()
	return addr, c.Close()
}

// Dial is the loopback host:port the SRT caller sends to (output.Config.Dial).
func (b *Bond) Dial() string { return b.dial }

// Run watches the uplinks and relays the SRT session over them until ctx is
// done; on return every route and rule it added is gone and every socket is
// closed.
func (b *Bond) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return b.snd.Run(gctx) })
	g.Go(func() error {
		select {
		case <-b.snd.Ready():
		case <-gctx.Done():
			return nil
		}
		b.mu.Lock()
		b.applyLocked() // a restarted sender gets the links back
		b.mu.Unlock()
		return b.mon.Run(gctx)
	})
	err := g.Wait()
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return nil
	}
	return err
}

// onChange is the monitor's callback with each new snapshot.
func (b *Bond) onChange(snap []uplink.Uplink) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.snap = snap
	b.applyLocked()
}

// applyLocked hands the sender one link per ready uplink (IPv4 preferred:
// the reference receivers are IPv4-only) with what is left of its cap.
func (b *Bond) applyLocked() {
	b.foldSpentLocked()
	var links []sender.Link
	for _, u := range b.snap {
		if u.State != uplink.Ready || len(u.Addrs) == 0 {
			continue
		}
		spec := b.specLocked(u.Spec)
		links = append(links, sender.Link{Name: spec.Name, Addr: pickAddr(u.Addrs), Policy: spec.Policy, CapBytes: b.capLeftLocked(spec)})
	}
	b.snd.SetLinks(links)
	for name, off := range b.disabled {
		if off {
			_ = b.snd.SetEnabled(name, false) // an absent link has nothing to disable
		}
	}
}

// specLocked is the uplink's spec as configured now: SetPolicy may have
// changed its policy and cap since the monitor's snapshot was made.
func (b *Bond) specLocked(s uplink.Spec) uplink.Spec {
	for _, c := range b.cfg.Uplinks {
		if c.Name == s.Name {
			return c
		}
	}
	return s
}

// SetPolicy changes an uplink's policy and data cap (0: none) live, for
// config apply: the sender schedules by them from its next packet; bytes
// already sent count against the new cap.
func (b *Bond) SetPolicy(name string, policy api.UplinkPolicy, capBytes uint64) error {
	switch policy {
	case api.PolicyBond, api.PolicyDuplicate, api.PolicyBackup:
	default:
		return fmt.Errorf("bond: uplink %q: unknown policy %q", name, policy)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, c := range b.cfg.Uplinks {
		if c.Name == name {
			b.cfg.Uplinks[i].Policy, b.cfg.Uplinks[i].CapBytes = policy, capBytes
			b.applyLocked()
			b.log.Info("uplink policy changed", zap.String("uplink", name), zap.String("policy", string(policy)), zap.Uint64("cap_bytes", capBytes))
			return nil
		}
	}
	return fmt.Errorf("%w: %q", ErrUnknownUplink, name)
}

// pickAddr prefers IPv4 and falls back to the first IPv6 address.
func pickAddr(addrs []netip.Addr) netip.Addr {
	for _, a := range addrs {
		if a.Is4() {
			return a
		}
	}
	return addrs[0]
}

// capLeftLocked is the cap minus what earlier incarnations sent (at least 1
// byte, so a spent cap stays a cap and not "no cap").
func (b *Bond) capLeftLocked(s uplink.Spec) uint64 {
	if s.CapBytes == 0 {
		return 0
	}
	if used := b.spent[s.Name]; used < s.CapBytes {
		return s.CapBytes - used
	}
	return 1
}

// foldSpentLocked moves the bytes of link incarnations that are about to be
// replaced into spent. A sender link whose counter went down was replaced.
func (b *Bond) foldSpentLocked() {
	cur := map[string]uint64{}
	for _, u := range b.snd.Status().Uplinks {
		cur[u.Name] = u.BytesSent
	}
	for name, n := range b.last {
		if c, ok := cur[name]; !ok || c < n {
			b.spent[name] += n
			b.last[name] = 0
		}
	}
	for name, c := range cur {
		if c >= b.last[name] {
			b.last[name] = c
		}
	}
}

// Status is every configured uplink in config order, with what the monitor
// and the sender know of it, and the SRTLA group. Bitrate is the caller's.
func (b *Bond) Status() api.BondStatus {
	st := b.snd.Status()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.foldSpentLocked()
	byName := map[string]api.UplinkStatus{}
	for _, u := range st.Uplinks {
		byName[u.Name] = u
	}
	snap := map[string]uplink.Uplink{}
	for _, u := range b.snap {
		snap[u.Spec.Name] = u
	}
	st.Uplinks = st.Uplinks[:0:0]
	for _, spec := range b.cfg.Uplinks {
		m, seen := snap[spec.Name]
		u, linked := byName[spec.Name]
		if !linked || !seen || m.State != uplink.Ready {
			u = api.UplinkStatus{Name: spec.Name, State: m.State.API(), Interface: spec.Interface, LastError: m.Reason}
			if !seen {
				u.State, u.LastError = api.UplinkAbsent, uplink.ReasonNoInterface
			}
			for _, a := range m.Addrs {
				u.Addresses = append(u.Addresses, a.String())
			}
		}
		if m.Interface != "" {
			u.Interface = m.Interface
		}
		u.Enabled = !b.disabled[spec.Name]
		u.Policy, u.CapBytes = spec.Policy, spec.CapBytes
		u.BytesSent += b.spent[spec.Name]
		if !u.Enabled && u.State == api.UplinkUp {
			u.State = api.UplinkDisabled
		}
		st.Uplinks = append(st.Uplinks, u)
	}
	return st
}

// SetEnabled switches an uplink on or off without a gap; the choice holds
// while the uplink comes and goes. The answer is its status after the change.
func (b *Bond) SetEnabled(name string, on bool) (api.UplinkStatus, error) {
	b.mu.Lock()
	known := false
	for _, s := range b.cfg.Uplinks {
		known = known || s.Name == name
	}
	if !known {
		b.mu.Unlock()
		return api.UplinkStatus{}, fmt.Errorf("%w: %q", ErrUnknownUplink, name)
	}
	b.disabled[name] = !on
	_ = b.snd.SetEnabled(name, on) // not linked now: applied when it is
	b.mu.Unlock()
	b.log.Info("uplink switched by the operator", zap.String("uplink", name), zap.Bool("enabled", on))
	for _, u := range b.Status().Uplinks {
		if u.Name == name {
			return u, nil
		}
	}
	return api.UplinkStatus{}, fmt.Errorf("%w: %q", ErrUnknownUplink, name)
}

// LinkSamples is every SRTLA link's figures for the adaptive bitrate.
func (b *Bond) LinkSamples() []abr.LinkSample {
	ss := b.snd.Samples()
	out := make([]abr.LinkSample, len(ss))
	for i, s := range ss {
		out[i] = abr.LinkSample{Name: s.Name, Alive: s.Alive, Carrying: s.Carrying, WindowPkts: float64(s.Window) / 1000,
			InFlight: s.InFlight, ThroughputKbps: s.ThroughputKbps, RTTms: s.RTTms, LossPct: s.LossPct, DeliveredPkts: s.Delivered}
	}
	return out
}
