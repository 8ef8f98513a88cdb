// Package uplink watches the box's network interfaces through netlink and
// gives every configured uplink (wired, each modem) its own policy routing:
// a routing table with a default route through that link and a source rule
// per address, so that a socket bound to the uplink's address leaves through
// it whatever the main table says.
//
// Netlink events are wake-ups, not truth (tailscale netmon's shape): after an
// event the Monitor waits Config.Debounce, re-reads every link, address, route
// and rule, builds a snapshot with a pure function, applies the routing the
// snapshot asks for and publishes the snapshot when it changed. It also
// re-reads every Config.Resync, because the kernel removes default routes
// silently (no RTM_DELROUTE) when a link goes down or loses an address.
//
// Ownership: the Monitor owns the tables TableBase … TableBase+n-1 (every route
// in them is its own) and the rules at priorities RulePriority …
// RulePriority+n-1 that look up one of those tables. It never touches any other
// route or rule, removes stale ones of its own left by a crashed run when it
// starts, and removes everything it added when Run returns.
//
// Not for: SRTLA, link health (RTT, loss), the policies' scheduling or data
// caps (Spec.Policy and Spec.CapBytes are carried through for the sender), DHCP
// or modem management (something else puts addresses and main-table default
// routes on the links; this package only reads them).
package uplink

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"

	"onair/web/api"
)

// Spec is one configured uplink (config uplinks[]).
type Spec struct {
	// Name is the uplink's name in config, status and the API.
	Name string
	// Interface is an interface name or a glob (path.Match syntax, "eth*").
	Interface string
	// Policy is how the uplink carries the stream; this package only checks
	// that it is known.
	Policy api.UplinkPolicy
	// CapBytes is the data cap (0: none); carried through for the sender.
	CapBytes uint64
}

// Config configures a Monitor. Zero durations and bases take the defaults.
type Config struct {
	// Uplinks in config order: uplink i uses table TableBase+i and rule
	// priority RulePriority+i, and an interface matched by several globs
	// belongs to the first uplink that matches it.
	Uplinks []Spec
	// TableBase is the first routing table (default 1200).
	TableBase int
	// RulePriority is the first rule priority (default 1200); the last one
	// must stay below the main table's rule (32766).
	RulePriority int
	// Debounce is how long after a netlink event the state is re-read, so a
	// burst of events costs one read (default 250 ms).
	Debounce time.Duration
	// Resync is the period of the full re-read that also re-applies routes the
	// kernel dropped silently, and the polling period when subscribing fails
	// (default 5 s).
	Resync time.Duration
	// Netns is the network namespace to operate in; zero (or netns.None())
	// is the current one. The Monitor does not close it.
	Netns netns.NsHandle
	// OnChange, if set, is called from Run's goroutine with each snapshot
	// that differs from the previous one (and with the first one). The slice
	// is the callee's to keep. It must not block for long: routing waits.
	OnChange func([]Uplink)
}

// Defaults for Config's zero fields.
const (
	DefaultTableBase    = 1200
	DefaultRulePriority = 1200
	DefaultDebounce     = 250 * time.Millisecond
	DefaultResync       = 5 * time.Second
)

// mainRulePriority is the priority of the kernel's "lookup main" rule: ours
// must come before it.
const mainRulePriority = 32766

// State is where an uplink is, as far as interfaces and routing go. The
// SRTLA sender takes a Ready uplink on from there (api.UplinkRegistering,
// up, dead, …); State.API maps it to the status API.
//
//	absent  no interface matches the uplink's name or glob
//	down    an interface matches but cannot carry traffic (Uplink.Reason)
//	ready   carrier, an address and a default route: its table and rules are in place
//
// Any state can follow any other; each snapshot is computed afresh.
type State string

// Uplink states.
const (
	Absent State = "absent"
	Down   State = "down"
	Ready  State = "ready"
)

// API is the status API's state for s: a Ready uplink is registering until
// the SRTLA sender says better.
func (s State) API() api.UplinkState {
	switch s {
	case Ready:
		return api.UplinkRegistering
	case Down:
		return api.UplinkDown
	default:
		return api.UplinkAbsent
	}
}

// Reasons an uplink is not Ready (Uplink.Reason).
const (
	ReasonNoInterface = "no matching interface"
	ReasonLinkDown    = "link down"
	ReasonNoCarrier   = "no carrier"
	ReasonNoAddress   = "no address"
	ReasonNoGateway   = "no default gateway"
)

// Uplink is one configured uplink in a snapshot.
//
// When one uplink's glob matches several interfaces, the uplink is the first
// of them by name that is ready; if none is, the first by name that has
// carrier; otherwise the first by name (so Reason says what is missing).
type Uplink struct {
	// Spec is the uplink's configuration.
	Spec Spec
	// State is absent, down or ready.
	State State
	// Interface and Index name the interface the uplink is on ("" and 0 while
	// absent).
	Interface string
	Index     int
	// Addrs are the addresses a socket binds to for this uplink, sorted (IPv4
	// first): IPv4 addresses of global scope and IPv6 addresses of global
	// scope that passed duplicate address detection. When Ready, only those of
	// a family the uplink has a default route for (each has a source rule);
	// when down, all of them, for status.
	Addrs []netip.Addr
	// Gateway4 and Gateway6 are the link's default gateways from the main
	// table (the lowest metric), invalid when it has none. A point-to-point
	// link is Ready without one (its table gets a device route).
	Gateway4, Gateway6 netip.Addr
	// Table and RulePriority are the routing table and rule priority this
	// uplink uses while Ready.
	Table, RulePriority int
	// Reason says why the uplink is not Ready ("" when it is).
	Reason string
}

func (u Uplink) clone() Uplink {
	u.Addrs = slices.Clone(u.Addrs)
	return u
}

func (u Uplink) equal(v Uplink) bool {
	return u.Spec == v.Spec && u.State == v.State && u.Interface == v.Interface &&
		u.Index == v.Index && slices.Equal(u.Addrs, v.Addrs) && u.Gateway4 == v.Gateway4 &&
		u.Gateway6 == v.Gateway6 && u.Table == v.Table && u.RulePriority == v.RulePriority &&
		u.Reason == v.Reason
}

// ErrConfig is returned by New for an invalid Config.
var ErrConfig = errors.New("uplink: invalid config")

// ErrUnsupported is returned by Run where there is no netlink (not Linux).
var ErrUnsupported = errors.New("uplink: netlink is only available on Linux")

// Monitor watches the uplinks and keeps their routing in place. Create it with
// New and run it with Run; Snapshot may be called from any goroutine.
type Monitor struct {
	cfg   Config
	log   *zap.Logger
	clock clockwork.Clock
	// open reaches the kernel; tests replace it with a fake.
	open func(Config, *zap.Logger) (kernel, error)

	mu   sync.Mutex
	snap []Uplink
}

// New validates cfg, fills in its defaults and returns a Monitor. A nil log
// discards, a nil clock is the real one.
func New(cfg Config, log *zap.Logger, clock clockwork.Clock) (*Monitor, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	if cfg.TableBase == 0 {
		cfg.TableBase = DefaultTableBase
	}
	if cfg.RulePriority == 0 {
		cfg.RulePriority = DefaultRulePriority
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}
	if err := validate(cfg); err != nil {
		return nil, err
	}
	m := &Monitor{cfg: cfg, log: log, clock: clock, open: openNetlink}
	m.snap = make([]Uplink, len(cfg.Uplinks))
	for i, s := range cfg.Uplinks {
		m.snap[i] = Uplink{Spec: s, State: Absent, Reason: ReasonNoInterface,
			Table: cfg.TableBase + i, RulePriority: cfg.RulePriority + i}
	}
	return m, nil
}

func validate(cfg Config) error {
	n := len(cfg.Uplinks)
	seen := make(map[string]bool, n)
	for i, s := range cfg.Uplinks {
		switch {
		case s.Name == "":
			return fmt.Errorf("%w: uplinks[%d].name is empty", ErrConfig, i)
		case seen[s.Name]:
			return fmt.Errorf("%w: uplinks[%d].name %q is used twice", ErrConfig, i, s.Name)
		case s.Interface == "":
			return fmt.Errorf("%w: uplinks[%d].interface is empty", ErrConfig, i)
		}
		seen[s.Name] = true
		if _, err := path.Match(s.Interface, ""); err != nil {
			return fmt.Errorf("%w: uplinks[%d].interface %q: %w", ErrConfig, i, s.Interface, err)
		}
		switch s.Policy {
		case api.PolicyBond, api.PolicyDuplicate, api.PolicyBackup:
		default:
			return fmt.Errorf("%w: uplinks[%d].policy %q is not bond, duplicate or backup", ErrConfig, i, s.Policy)
		}
	}
	if cfg.RulePriority < 1 || cfg.RulePriority+n-1 >= mainRulePriority {
		return fmt.Errorf("%w: rule priorities %d…%d must be within 1…%d", ErrConfig,
			cfg.RulePriority, cfg.RulePriority+n-1, mainRulePriority-1)
	}
	if cfg.TableBase < 1 || int64(cfg.TableBase)+int64(n)-1 > 1<<32-1 {
		return fmt.Errorf("%w: table base %d out of range", ErrConfig, cfg.TableBase)
	}
	for t := cfg.TableBase; t < cfg.TableBase+n; t++ {
		if t >= 253 && t <= 255 { // default, main, local
			return fmt.Errorf("%w: tables %d…%d include the kernel's table %d", ErrConfig,
				cfg.TableBase, cfg.TableBase+n-1, t)
		}
	}
	return nil
}

// Snapshot returns a copy of the latest snapshot, one Uplink per configured
// uplink in config order (all absent before Run's first read).
func (m *Monitor) Snapshot() []Uplink {
	m.mu.Lock()
	defer m.mu.Unlock()
	return cloneAll(m.snap)
}

func cloneAll(us []Uplink) []Uplink {
	out := make([]Uplink, len(us))
	for i, u := range us {
		out[i] = u.clone()
	}
	return out
}
