// Package relay is onair-ingest's SRTLA receiver (../shared/SRTLA.md §5–§7):
// it accepts the links of SRTLA senders on UDP, forms them into groups by the
// registration handshake (REG1 → REG2 → REG3), and relays each group to one
// SRT listener through a UDP socket of its own, connected to that listener.
// The listener therefore sees one ordinary SRT peer per group however many
// links the sender bonds, which matters because a plain SRT listener ignores
// datagrams from a new source address (FACTS.md §10). Written from SRTLA.md
// only (the reference receivers are GPL/AGPL); it listens on IPv4 and IPv6.
//
// Not for: SRT itself (the listener downstream does that: package ingest's
// gosrt listener, or any SRT listener with onair-ingest -forward); the wire
// format (package bond/srtla); the sending side (package bond).
package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
)

// Defaults of Config (SRTLA.md §9 where the reference has a value).
const (
	// DefaultMaxGroups is the reference's MAX_GROUPS.
	DefaultMaxGroups = 200
	// DefaultMaxLinksPerGroup is the reference's MAX_CONNS_PER_GROUP.
	DefaultMaxLinksPerGroup = 8
	// DefaultRegPerSecond and DefaultRegBurst bound REG1/REG2 per source.
	// A sender sends at most one registration per link per second (its
	// housekeeping tick), so 5/s with a burst of 10 never slows a real
	// sender with up to 5 links behind one address, but caps a flood.
	DefaultRegPerSecond = 5
	DefaultRegBurst     = 10
	// DefaultLinkTimeout is the reference's CONN_TIMEOUT: a link silent this
	// long is removed (senders keepalive every second).
	DefaultLinkTimeout = 10 * time.Second
	// DefaultGroupTimeout is how long a group without links is kept after
	// its last packet. The reference removes an empty group 10 s after it
	// was created, so a sender's total outage longer than the link timeout
	// loses the group, and with it the downstream socket and hence the SRT
	// session. onair's sender holds its group through a total outage of up to
	// output.outage_hold (15 s): 30 s keeps the group (and the SRT peer the
	// listener knows) well past that, while a group whose sender is gone for
	// good still frees its slot within half a minute.
	DefaultGroupTimeout = 30 * time.Second
	// DefaultAckBatch is the reference's RECV_ACK_INT: an SRTLA ACK lists
	// this many data sequence numbers.
	DefaultAckBatch = 10
	// DefaultAckFlush is how often a partial ACK batch is sent. The reference
	// only ever sends full batches, so a low-rate link is rarely acked
	// (SRTLA.md §10); senders accept any count, so a link that got fewer than
	// AckBatch packets is acked at least this often.
	DefaultAckFlush = 100 * time.Millisecond
	// DefaultCleanupInterval is the reference's cleanup period.
	DefaultCleanupInterval = 3 * time.Second
	// DefaultStaleLink is how long the link that last carried data may be
	// silent before replies to the sender go to a link heard more recently.
	DefaultStaleLink = time.Second
	// DefaultPeerKeepalive is how often a group in a total outage keeps its
	// SRT listener's peer alive: SRT's own keepalive period.
	DefaultPeerKeepalive = time.Second
	// DefaultPeerKeepaliveFor is Config.PeerKeepaliveFor's default.
	DefaultPeerKeepaliveFor = 20 * time.Second
)

// Config configures a Relay. Zero values take the defaults above.
type Config struct {
	// Listen are the UDP addresses SRTLA senders reach. With Go's "udp"
	// network a wildcard address (":5000", "0.0.0.0:5000" or "[::]:5000")
	// is one dual-stack socket on Linux, so IPv4 and IPv6 senders are both
	// served; specific addresses (a test's "127.0.0.1:0" and "[::1]:0") get
	// a socket each. At least one is required.
	Listen []string
	// Downstream is the SRT listener (host:port) every group is relayed to,
	// through its own UDP socket connected to it. Resolved once by New.
	Downstream string
	// MaxGroups limits the number of groups: REG1 beyond it gets REG_ERR.
	MaxGroups int
	// MaxLinksPerGroup limits the links of a group: REG2 beyond it gets REG_ERR.
	MaxLinksPerGroup int
	// RegPerSecond and RegBurst are a token bucket for REG1 and REG2 per
	// source (an IPv4 address, or an IPv6 /64, which is what one host
	// usually has): a registration over the limit is dropped and counted.
	RegPerSecond float64
	RegBurst     int
	// LinkTimeout removes a link that sent nothing for this long.
	LinkTimeout time.Duration
	// GroupTimeout removes a group without links this long after its last
	// packet (see DefaultGroupTimeout for why it exceeds the reference's).
	GroupTimeout time.Duration
	// AckBatch is how many data sequence numbers one SRTLA ACK lists.
	AckBatch int
	// AckFlush is how often partial ACK batches are sent.
	AckFlush time.Duration
	// CleanupInterval is how often expired links and groups are removed.
	CleanupInterval time.Duration
	// StaleLink: see DefaultStaleLink.
	StaleLink time.Duration
	// PeerKeepalive: while a group has no live link (none heard for twice
	// this) and nothing went to its SRT listener for this long, the relay
	// sends the listener an SRT keepalive for the group's session at this
	// interval. Otherwise the listener's peer idle timeout (5 s by default
	// in libsrt and gosrt) ends the session during a total outage that the
	// sender holds its group through (onair's output.outage_hold, 15 s); the
	// group's removal (GroupTimeout) ends the keepalives.
	PeerKeepalive time.Duration
	// PeerKeepaliveFor bounds those keepalives: once the group's caller has
	// been silent this long they stop, and the listener's own idle timeout
	// ends the session. It covers a sender's outage hold (onair's default
	// 15 s) with margin, but not the whole GroupTimeout: a listener that
	// takes one caller at a time must not keep a dead session so long that
	// a sender which restarted (a new group, a new session) waits for it.
	PeerKeepaliveFor time.Duration
}

// ErrConfig is returned by New for an invalid Config.
var ErrConfig = errors.New("relay: invalid config")

// Relay is the SRTLA receiver. Create it with New and start it with Run.
type Relay struct {
	cfg        Config
	log        *zap.Logger
	clock      clockwork.Clock
	downstream *net.UDPAddr

	ready chan struct{}
	conns []*net.UDPConn // the listening sockets; set before ready is closed
	wg    sync.WaitGroup // the downstream readers

	mu       sync.Mutex
	closing  bool
	groups   []*group
	links    map[netip.AddrPort]*link
	regAddrs map[netip.AddrPort]*group // REG1 source of a group not yet joined by it
	limiter  limiter
	counters counters
	// lastSweep is the clock time of the last cleanup (tests wait for it).
	lastSweep time.Time
	// lastPeerCheck is the clock time of the last keepPeersAlive (tests
	// wait for it).
	lastPeerCheck time.Time
}

// New validates cfg, fills in defaults and resolves the downstream address.
// Nothing is opened until Run. A nil log is a no-op logger; a nil clock is
// the real one.
func New(cfg Config, log *zap.Logger, clock clockwork.Clock) (*Relay, error) {
	if len(cfg.Listen) == 0 {
		return nil, fmt.Errorf("%w: no listen address", ErrConfig)
	}
	for _, a := range cfg.Listen {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("%w: listen address %q: %w", ErrConfig, a, err)
		}
	}
	if cfg.Downstream == "" {
		return nil, fmt.Errorf("%w: no downstream address", ErrConfig)
	}
	down, err := net.ResolveUDPAddr("udp", cfg.Downstream)
	if err != nil {
		return nil, fmt.Errorf("%w: downstream %q: %w", ErrConfig, cfg.Downstream, err)
	}
	if down.Port == 0 {
		return nil, fmt.Errorf("%w: downstream %q has no port", ErrConfig, cfg.Downstream)
	}
	for _, v := range []struct {
		name string
		bad  bool
	}{
		{"max groups", cfg.MaxGroups < 0},
		{"max links per group", cfg.MaxLinksPerGroup < 0},
		{"registrations per second", cfg.RegPerSecond < 0},
		{"registration burst", cfg.RegBurst < 0},
		{"ack batch", cfg.AckBatch < 0 || cfg.AckBatch > maxAckBatch},
		{"timeouts", cfg.LinkTimeout < 0 || cfg.GroupTimeout < 0 || cfg.AckFlush < 0 ||
			cfg.CleanupInterval < 0 || cfg.StaleLink < 0 || cfg.PeerKeepalive < 0 || cfg.PeerKeepaliveFor < 0},
	} {
		if v.bad {
			return nil, fmt.Errorf("%w: %s out of range", ErrConfig, v.name)
		}
	}
	setDefault(&cfg.MaxGroups, DefaultMaxGroups)
	setDefault(&cfg.MaxLinksPerGroup, DefaultMaxLinksPerGroup)
	setDefault(&cfg.RegPerSecond, DefaultRegPerSecond)
	setDefault(&cfg.RegBurst, DefaultRegBurst)
	setDefault(&cfg.LinkTimeout, DefaultLinkTimeout)
	setDefault(&cfg.GroupTimeout, DefaultGroupTimeout)
	setDefault(&cfg.AckBatch, DefaultAckBatch)
	setDefault(&cfg.AckFlush, DefaultAckFlush)
	setDefault(&cfg.CleanupInterval, DefaultCleanupInterval)
	setDefault(&cfg.StaleLink, DefaultStaleLink)
	setDefault(&cfg.PeerKeepalive, DefaultPeerKeepalive)
	setDefault(&cfg.PeerKeepaliveFor, DefaultPeerKeepaliveFor)
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	return &Relay{
		cfg:        cfg,
		log:        log,
		clock:      clock,
		downstream: down,
		ready:      make(chan struct{}),
		links:      map[netip.AddrPort]*link{},
		regAddrs:   map[netip.AddrPort]*group{},
		limiter:    newLimiter(cfg.RegPerSecond, cfg.RegBurst),
		counters:   newCounters(),
	}, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Ready is closed once Run listens; Addrs is valid from then on.
func (r *Relay) Ready() <-chan struct{} { return r.ready }

// Addrs returns the addresses the listening sockets are bound to, in the
// order of Config.Listen (nil before Ready).
func (r *Relay) Addrs() []net.Addr {
	select {
	case <-r.ready:
	default:
		return nil
	}
	out := make([]net.Addr, len(r.conns))
	for i, c := range r.conns {
		out[i] = c.LocalAddr()
	}
	return out
}

// Run listens and relays until ctx is cancelled, then closes every socket,
// waits for its goroutines and returns nil. It returns an error if a listen
// address cannot be bound or a listening socket fails. Call Run once.
func (r *Relay) Run(ctx context.Context) error {
	for _, a := range r.cfg.Listen {
		c, err := listen(a)
		if err != nil {
			for _, o := range r.conns {
				_ = o.Close()
			}
			r.conns = nil
			return fmt.Errorf("relay: listen %s: %w", a, err)
		}
		r.conns = append(r.conns, c)
	}
	// The tickers exist before Ready, so a test's fake clock drives them.
	cleanup := r.clock.NewTicker(r.cfg.CleanupInterval)
	flush := r.clock.NewTicker(r.cfg.AckFlush)
	keep := r.clock.NewTicker(r.cfg.PeerKeepalive)
	close(r.ready)
	for _, c := range r.conns {
		r.log.Info("listening", zap.Stringer("addr", c.LocalAddr()), zap.Stringer("downstream", r.downstream))
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(r.conns))
	for _, c := range r.conns {
		wg.Go(func() {
			if err := r.serve(c); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("relay: read %s: %w", c.LocalAddr(), err)
				cancel()
			}
		})
	}
	wg.Go(func() {
		defer cleanup.Stop()
		defer flush.Stop()
		defer keep.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-cleanup.Chan():
				r.sweep()
			case <-flush.Chan():
				r.flushAcks()
			case <-keep.Chan():
				r.keepPeersAlive()
			}
		}
	})

	<-ctx.Done()
	for _, c := range r.conns {
		_ = c.Close() // unblocks serve
	}
	r.mu.Lock()
	r.closing = true
	for len(r.groups) > 0 {
		r.removeGroupLocked(r.groups[0])
	}
	r.mu.Unlock()
	wg.Wait()
	r.wg.Wait()
	select {
	case err := <-errs:
		r.log.Error("listener failed", zap.Error(err))
		return err
	default:
	}
	r.log.Info("stopped")
	return nil
}

func listen(addr string) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	return net.ListenUDP("udp", ua)
}

// readBuf is larger than any valid datagram, so an oversize one is seen
// whole and counted instead of arriving truncated.
const readBuf = 64 << 10

// serve reads one listening socket until it is closed. On a wildcard
// socket each datagram's destination is read too, so the answers go out
// from the address the sender sent to (see pktinfo_linux.go).
func (r *Relay) serve(c *net.UDPConn) error {
	dstInfo, v6 := enableDstInfo(c)
	buf, oob := make([]byte, readBuf), make([]byte, oobLen)
	vias := map[netip.Addr]*replyVia{} // one per local address: bounded by the host's
	for {
		if !dstInfo {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return err
			}
			r.handle(c, unmap(from), buf[:n])
			continue
		}
		n, oobn, _, from, err := c.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			return err
		}
		var sock replySocket = c
		if dst, ok := parseDst(oob[:oobn]); ok {
			v := vias[dst]
			if v == nil {
				v = &replyVia{c: c, oob: srcControl(dst, v6)}
				vias[dst] = v
			}
			sock = v
		}
		r.handle(sock, unmap(from), buf[:n])
	}
}

// replyVia sends from one local address of a wildcard socket.
type replyVia struct {
	c   *net.UDPConn
	oob []byte
}

// WriteToUDPAddrPort implements replySocket.
func (v *replyVia) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	n, _, err := v.c.WriteMsgUDPAddrPort(b, v.oob, to)
	return n, err
}

// unmap turns an IPv4-mapped IPv6 source (a dual-stack socket's view of an
// IPv4 sender) into the plain IPv4 address, so one sender has one key.
func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
