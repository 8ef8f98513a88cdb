package auth

import (
	"net/netip"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// LimitConfig is the brute-force brake on secrets typed into the page (the
// password at login or change, the setup token). Zero fields take the
// defaults in brackets.
type LimitConfig struct {
	// FreeFailures is how many failures a client may make before each
	// further one locks it out [5].
	FreeFailures int
	// BaseDelay is the first lockout; each failure after it doubles it [1 s].
	BaseDelay time.Duration
	// MaxDelay caps the lockout [15 min]: a locked client gets about 100
	// guesses a day.
	MaxDelay time.Duration
	// Forget drops a client's failures that long after its last one, once
	// its lockout ended [1 h].
	Forget time.Duration
	// MaxClients caps the table of clients [1024]; see limiter.
	MaxClients int
}

func (c *LimitConfig) setDefaults() {
	if c.FreeFailures <= 0 {
		c.FreeFailures = 5
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = time.Second
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 15 * time.Minute
	}
	if c.Forget <= 0 {
		c.Forget = time.Hour
	}
	if c.MaxClients <= 0 {
		c.MaxClients = 1024
	}
}

// overflowKey is the one entry that every client not in a full table
// shares.
var overflowKey = netip.PrefixFrom(netip.IPv6Unspecified(), 0)

// limiter counts failures per client (an IPv4 address or an IPv6 /64: one
// host's share of a network). A success forgets the client. When the table
// is full of clients that are not forgotten yet, a new client shares one
// overflow entry with every other newcomer: spraying from many addresses
// (a /48 holds 65536 /64s) neither grows memory nor flushes the table to
// reset the attacker's lockouts; the cost is that, during such an attack,
// newcomers wait too (onairctl passwd over SSH still works).
type limiter struct {
	cfg   LimitConfig
	clock clockwork.Clock

	mu sync.Mutex
	m  map[netip.Prefix]*client
}

type client struct {
	failures    int
	lastFailure time.Time
	lockedUntil time.Time
}

func newLimiter(cfg LimitConfig, clock clockwork.Clock) *limiter {
	cfg.setDefaults()
	return &limiter{cfg: cfg, clock: clock, m: map[netip.Prefix]*client{}}
}

// clientKey is the limiter's key of a remote address ("ip:port", as in
// http.Request.RemoteAddr). An address that does not parse (a unix socket)
// gets the overflow entry.
func clientKey(remoteAddr string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return overflowKey
	}
	a := ap.Addr().Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64) // cannot fail for an IPv6 address without zone
	return p
}

// allow tells whether key may try now; if not, for how long it must wait.
func (l *limiter) allow(key netip.Prefix) (bool, time.Duration) {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.m[l.resolve(key, now)]
	if c == nil || !now.Before(c.lockedUntil) {
		return true, 0
	}
	return false, c.lockedUntil.Sub(now)
}

// fail counts a failure of key and returns how long it is locked out now
// (0: not locked).
func (l *limiter) fail(key netip.Prefix) time.Duration {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	key = l.resolve(key, now)
	c := l.m[key]
	if c == nil || l.forgotten(c, now) {
		c = &client{}
		l.m[key] = c
	}
	c.failures++
	c.lastFailure = now
	over := c.failures - l.cfg.FreeFailures
	if over < 0 {
		return 0
	}
	d := l.cfg.BaseDelay
	for ; over > 0 && d < l.cfg.MaxDelay; over-- {
		d *= 2
	}
	d = min(d, l.cfg.MaxDelay)
	c.lockedUntil = now.Add(d)
	return d
}

// succeed forgets key's failures.
func (l *limiter) succeed(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
}

// resolve returns key, or overflowKey when key is not in the table and the
// table is full after dropping forgotten clients; l.mu is held.
func (l *limiter) resolve(key netip.Prefix, now time.Time) netip.Prefix {
	if _, ok := l.m[key]; ok || len(l.m) < l.cfg.MaxClients {
		return key
	}
	for k, c := range l.m {
		if l.forgotten(c, now) {
			delete(l.m, k)
		}
	}
	if len(l.m) < l.cfg.MaxClients {
		return key
	}
	return overflowKey
}

func (l *limiter) forgotten(c *client, now time.Time) bool {
	return !now.Before(c.lockedUntil) && now.Sub(c.lastFailure) >= l.cfg.Forget
}

// size is the number of entries in the table, for tests.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
