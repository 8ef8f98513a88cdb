// Package sender is onair's SRTLA sender (../shared/SRTLA.md §5, §6, §8,
// §9): a loopback UDP socket the SRT caller dials, and one UDP socket per
// uplink source address towards the SRTLA receiver. It registers the links
// as one group, keeps them alive, measures each link's round trip with
// timestamped keepalives, schedules every datagram from the SRT caller on a
// link by the SRTLA window rule and the uplink's policy (bond: shares the
// load; duplicate: also gets a copy of every packet but handshakes; backup:
// see backup.go; a data cap stops a link carrying), and returns what the receiver sends to the caller,
// minus SRTLA's own control packets and minus the copies of the SRT ACKs the
// receiver broadcasts on every link.
//
// It improves on the reference sender (SRTLA.md §10): REG_ERR backs off per
// link; SRTLA control never reaches SRT; the SRT caller's control packets go
// on the live link with the lowest RTT; a total outage keeps the group and
// the caller's session for Config.OutageHold; a link silenced by NAT
// rebinding re-registers within about two seconds; the registration link is
// the one that answers first, so a dead first link does not delay the start.
//
// Not for: the wire format (package bond/srtla); finding uplinks or routing
// through them (bond/uplink: a socket bound to an uplink's address leaves by
// it only because of the source rules installed there); SRT itself (the
// caller, in package output, speaks SRT end to end through this relay); the
// bitrate (bond/abr reads Samples).
package sender

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/bond/srtla"
	"onair/web/api"
)

// Timers of SRTLA.md §9, and those of the improvements.
const (
	tickPeriod  = time.Second
	connTimeout = 4 * time.Second // nothing received: the link is dead
	reg2Timeout = 4 * time.Second // a pending REG1 expires
	reg3Timeout = 4 * time.Second // NGPs ignored after the REG2 broadcast
	// reg1Retry: a pending REG1 is sent again at a tick at least this long
	// after the last one.
	reg1Retry = tickPeriod / 2
	// rebindAfter: a registered link that has heard nothing for this long
	// while the others hear, or while it carried data, is taken as rebound
	// by a NAT and re-registers (SRTLA.md §10).
	rebindAfter = 1500 * time.Millisecond
	// Backoff after REG_ERR, per link: doubling from the first to the cap.
	regErrBackoffFirst = time.Second
	regErrBackoffMax   = 8 * time.Second
	// lossSlots is how many housekeeping ticks the loss share covers.
	lossSlots = 5
	// DefaultOutageHold is Config.OutageHold's default.
	DefaultOutageHold = 15 * time.Second
	// sockBuf is every socket's buffer size (SRTLA.md §8: SO_SNDBUF 8 MiB).
	sockBuf = 8 << 20
	// DefaultListen is Config.Listen's default.
	DefaultListen = "127.0.0.1:0"
)

// Errors of the sender.
var (
	// ErrUnknownLink is SetEnabled's answer for a name SetLinks never gave.
	ErrUnknownLink = errors.New("sender: unknown link")
	// ErrNoReceiver is a Config without a receiver address.
	ErrNoReceiver = errors.New("sender: no receiver address")
)

// Link is one uplink as the sender sees it: a name, the source address its
// socket binds to (the uplink monitor finds it; the integrator picks one
// address per uplink, IPv4 preferred), how it carries the stream, and an
// optional data cap in bytes (0: none).
type Link struct {
	Name     string
	Addr     netip.Addr
	Policy   api.UplinkPolicy
	CapBytes uint64
}

// Config configures a Sender.
type Config struct {
	// Listen is the loopback UDP address the SRT caller dials
	// (DefaultListen if empty).
	Listen string
	// Receiver is the SRTLA receiver's host:port. The host's A and AAAA
	// records are resolved: an IPv4 link sends to an IPv4 address, an IPv6
	// link to an IPv6 one.
	Receiver string
	// OutageHold is how long a total outage (no link alive) keeps the group,
	// so the SRT session can continue when links return
	// (DefaultOutageHold if 0). After it the next registration opens a new
	// group.
	OutageHold time.Duration
	// ListenPacket opens the sockets (net.ListenPacket if nil); tests use
	// it to create sockets inside a network namespace.
	ListenPacket func(network, laddr string) (net.PacketConn, error)
}

// Sample is one link's figures for the adaptive bitrate.
type Sample struct {
	Name           string
	Policy         api.UplinkPolicy
	Alive          bool // registered and heard from within the link timeout
	Carrying       bool // may carry stream bytes now
	Window         int  // SRTLA window, packets x 1000
	InFlight       int
	ThroughputKbps float64 // bytes sent in the last housekeeping second
	RTTms          float64 // smoothed, from timestamped keepalives; 0 if unknown
	LossPct        float64 // share of packets sent that SRT reported lost, last 5 s
	// Delivered counts the data packets the receiver's SRTLA ACKs named on
	// this link (cumulative): what the link carried, repairs included,
	// whatever SRT's ACK point waits for.
	Delivered uint64
}

// Sender is the SRTLA sender. Its methods are safe for concurrent use.
type Sender struct {
	cfg    Config
	host   string
	port   uint16
	log    *zap.Logger
	clock  clockwork.Clock
	listen func(network, laddr string) (net.PacketConn, error)
	// lookup resolves the receiver's host; tests replace it.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	ready  chan struct{}

	mu       sync.Mutex
	running  bool
	stopped  bool
	wg       sync.WaitGroup
	app      net.PacketConn
	appUDP   *net.UDPConn
	appAddr  netip.AddrPort // where the SRT caller is: the last source seen
	resolved bool
	recv4    netip.AddrPort
	recv6    netip.AddrPort
	links    []*link
	enabled  map[string]bool // SetEnabled's word, kept across SetLinks

	id          srtla.ID // our half random; the whole receiver-issued ID once haveGroup
	haveGroup   bool
	everUp      bool // some link of the current group reached REG3
	reg1        *link
	reg1Since   time.Time
	reg1Sent    time.Time // the last REG1 sent, first or retry
	reg3Guard   time.Time
	registers   int
	outageSince time.Time
	reg1Pkt     []byte
	reg2Pkt     []byte
	gate        backupGate
	acks        ackRing
	ack         srtla.Ack // reused by every SRTLA ACK
	fls         []*flight // reused: the flights of s.links in order
	dropped     uint64    // app datagrams with no link to go on
	retrans     retransLimiter
	srtRTT      time.Duration // the SRT receiver's RTT, from its last full ACK
	heldHS      []byte        // a handshake from the caller while no link was up
	heldHSAt    time.Time
	appSRTLA    uint64 // SRTLA packets from the app, dropped
	lastTick    time.Time
	lastData    time.Time // last data packet from the app
	ticks       int       // housekeeping ticks done (tests wait on it)
}

// link is one uplink's socket and state; guarded by Sender.mu.
type link struct {
	cfg     Link
	enabled bool
	conn    net.PacketConn // nil while closed
	udp     *net.UDPConn   // conn as a UDPConn, for allocation-free writes
	dst     netip.AddrPort // the receiver, in the link's family
	fl      flight

	registered bool // REG3 received and not dead since
	rebinding  bool // registered, but silenced: re-registering
	everUp     bool
	lastRcvd   time.Time
	lastSent   time.Time // last data packet
	nextReg    time.Time // REG_ERR backoff: no registration before
	backoff    time.Duration
	regErrs    int
	lastErr    string

	rttMs    float64
	rttKnown bool

	bytesSent   uint64
	bytesAtTick uint64
	kbps        float64
	pkts        uint64 // data packets sent
	naks        uint64 // lost packets charged to this link
	delivered   uint64 // data packets the receiver's SRTLA ACKs named on this link
	slots       [lossSlots]struct{ pkts, naks uint64 }
	slot        int
	pktsAtTick  uint64
	naksAtTick  uint64
}

// New checks cfg and makes a Sender; Run opens the sockets.
func New(cfg Config, log *zap.Logger, clock clockwork.Clock) (*Sender, error) {
	if cfg.Receiver == "" {
		return nil, ErrNoReceiver
	}
	host, portStr, err := net.SplitHostPort(cfg.Receiver)
	if err != nil {
		return nil, fmt.Errorf("sender: receiver %q: %w", cfg.Receiver, err)
	}
	port, err := net.LookupPort("udp", portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("sender: receiver %q: bad port", cfg.Receiver)
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.OutageHold <= 0 {
		cfg.OutageHold = DefaultOutageHold
	}
	s := &Sender{
		cfg:     cfg,
		host:    host,
		port:    uint16(port),
		log:     log,
		clock:   clock,
		listen:  cfg.ListenPacket,
		lookup:  lookupIP,
		ready:   make(chan struct{}),
		enabled: map[string]bool{},
	}
	if s.listen == nil {
		s.listen = net.ListenPacket
	}
	if err := s.newID(); err != nil {
		return nil, err
	}
	return s, nil
}

// lookupIP resolves a host's A and AAAA records.
func lookupIP(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// newID draws a fresh random ID: a new group at the next registration.
func (s *Sender) newID() error {
	if _, err := rand.Read(s.id[:]); err != nil {
		return fmt.Errorf("sender: group id: %w", err)
	}
	s.haveGroup = false
	s.everUp = false
	s.buildRegPackets()
	return nil
}

func (s *Sender) buildRegPackets() {
	r1 := srtla.Reg1{ID: s.id}
	r2 := srtla.Reg2{ID: s.id}
	s.reg1Pkt, _ = r1.Marshal() // cannot fail
	s.reg2Pkt, _ = r2.Marshal()
}

// Ready is closed once the loopback socket listens (LocalAddr is valid).
func (s *Sender) Ready() <-chan struct{} { return s.ready }

// LocalAddr is the loopback address the SRT caller dials (output.Config.Dial),
// nil before Ready.
func (s *Sender) LocalAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.app == nil {
		return nil
	}
	return s.app.LocalAddr()
}

// heldHSFresh is how old a held handshake may be when the first link comes
// up: the caller's connect timeout (srturl's default, 3 s); an older one it
// has given up on.
const heldHSFresh = 3 * time.Second

// Run opens the loopback socket and the link sockets and relays until ctx
// ends; it closes every socket before it returns ctx.Err(). A total outage
// is not an error: Run never gives up on the receiver.
func (s *Sender) Run(ctx context.Context) error {
	app, err := s.listen("udp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("sender: listen %s: %w", s.cfg.Listen, err)
	}
	s.mu.Lock()
	if s.running || s.stopped {
		s.mu.Unlock()
		_ = app.Close()
		return errors.New("sender: Run called twice")
	}
	s.running = true
	s.app = app
	s.appUDP, _ = app.(*net.UDPConn)
	if s.appUDP != nil {
		_ = s.appUDP.SetReadBuffer(sockBuf) // best effort: the caller sends in bursts
		_ = s.appUDP.SetWriteBuffer(sockBuf)
	}
	s.mu.Unlock()
	s.log.Info("srtla sender listening", zap.Stringer("listen", app.LocalAddr()), zap.String("receiver", s.cfg.Receiver))
	close(s.ready)

	s.wg.Add(1)
	go s.readApp(app)

	ticker := s.clock.NewTicker(tickPeriod)
	defer ticker.Stop()
	s.tick(ctx)
	for {
		select {
		case <-ctx.Done():
			s.shutdown()
			return ctx.Err()
		case <-ticker.Chan():
			s.tick(ctx)
		}
	}
}

// shutdown closes every socket and waits for the readers.
func (s *Sender) shutdown() {
	s.mu.Lock()
	s.stopped = true
	_ = s.app.Close()
	for _, l := range s.links {
		s.closeLink(l)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// SetLinks replaces the set of links: new ones start with WINDOW_DEF and
// register; links no longer named close; unchanged ones keep their state; a
// link whose address changed gets a new socket and registers again (its byte
// counter, which the cap is checked against, is kept).
func (s *Sender) SetLinks(links []Link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	old := map[string]*link{}
	for _, l := range s.links {
		old[l.cfg.Name] = l
	}
	next := make([]*link, 0, len(links))
	seen := map[string]bool{}
	for _, c := range links {
		if seen[c.Name] {
			s.log.Warn("[unexpected] link named twice, keeping the first", zap.String("link", c.Name))
			continue
		}
		seen[c.Name] = true
		l, ok := old[c.Name]
		switch {
		case !ok:
			l = &link{cfg: c, fl: newFlight(), enabled: true}
			if on, set := s.enabled[c.Name]; set {
				l.enabled = on
			}
			s.log.Info("link added", zap.String("link", c.Name), zap.Stringer("addr", c.Addr), zap.String("policy", string(c.Policy)))
		case l.cfg.Addr != c.Addr:
			s.log.Info("link address changed", zap.String("link", c.Name), zap.Stringer("old", l.cfg.Addr), zap.Stringer("new", c.Addr))
			s.closeLink(l)
			l.restart()
		}
		l.cfg = c
		delete(old, c.Name)
		next = append(next, l)
	}
	for _, l := range old {
		s.log.Info("link removed", zap.String("link", l.cfg.Name))
		s.closeLink(l)
	}
	s.links = next
	if s.running && !s.stopped {
		for _, l := range s.links {
			if l.conn == nil {
				s.openLink(l, now)
			}
		}
	}
}

// restart forgets a link's registration and windows (new socket).
func (l *link) restart() {
	l.fl = newFlight()
	l.registered, l.rebinding, l.everUp = false, false, false
	l.lastRcvd, l.lastSent, l.nextReg = time.Time{}, time.Time{}, time.Time{}
	l.backoff = 0
	l.rttKnown, l.rttMs = false, 0
}

// SetEnabled switches a link on or off without a gap: a disabled link
// carries no stream bytes but stays registered and keeps alive, so enabling
// it again is immediate.
func (s *Sender) SetEnabled(name string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.links {
		if l.cfg.Name == name {
			if l.enabled != on {
				s.log.Info("link enabled", zap.String("link", name), zap.Bool("enabled", on))
			}
			l.enabled = on
			s.enabled[name] = on
			return nil
		}
	}
	return fmt.Errorf("%w: %q", ErrUnknownLink, name)
}

// openLink binds a link's socket and starts its reader; it needs the
// receiver's address in the link's family.
func (s *Sender) openLink(l *link, now time.Time) {
	if !s.resolved {
		return
	}
	if !l.cfg.Addr.IsValid() {
		l.lastErr = "no source address"
		return
	}
	network, dst := "udp4", s.recv4
	if l.cfg.Addr.Is6() && !l.cfg.Addr.Is4In6() {
		network, dst = "udp6", s.recv6
	}
	if !dst.IsValid() {
		l.lastErr = "receiver has no " + network[3:] + " address"
		return
	}
	conn, err := s.listen(network, netip.AddrPortFrom(l.cfg.Addr.Unmap(), 0).String())
	if err != nil {
		l.lastErr = err.Error()
		s.log.Warn("link socket", zap.String("link", l.cfg.Name), zap.Error(err))
		return
	}
	l.conn, l.dst, l.lastErr = conn, dst, ""
	l.udp, _ = conn.(*net.UDPConn)
	if l.udp != nil {
		_ = l.udp.SetWriteBuffer(sockBuf) // SRTLA.md §8: 8 MiB; best effort
		_ = l.udp.SetReadBuffer(sockBuf)
	}
	s.wg.Add(1)
	go s.readLink(l, conn)
	s.register(l, now)
}

// closeLink closes a link's socket; its reader ends.
func (s *Sender) closeLink(l *link) {
	if l.conn == nil {
		return
	}
	_ = l.conn.Close()
	l.conn, l.udp = nil, nil
	if s.reg1 == l {
		s.reg1 = nil
	}
	if l.registered {
		l.registered = false
		l.fl.failed()
	}
}

// readApp reads the SRT caller's datagrams: the only goroutine on the app
// socket.
func (s *Sender) readApp(conn net.PacketConn) {
	defer s.wg.Done()
	buf := make([]byte, srtla.MTU)
	for {
		n, from, err := readFrom(conn, buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("[unexpected] app socket read", zap.Error(err))
			continue
		}
		s.fromApp(buf[:n], from)
	}
}

// readFrom reads one datagram; a *net.UDPConn reads without allocating the
// source address.
func readFrom(conn net.PacketConn, buf []byte) (int, netip.AddrPort, error) {
	if udp, ok := conn.(*net.UDPConn); ok {
		return udp.ReadFromUDPAddrPort(buf)
	}
	n, a, err := conn.ReadFrom(buf)
	var from netip.AddrPort
	if ua, ok := a.(*net.UDPAddr); ok {
		from = ua.AddrPort()
	}
	return n, from, err
}

// readLink reads one link socket: the only goroutine on it.
func (s *Sender) readLink(l *link, conn net.PacketConn) {
	defer s.wg.Done()
	buf := make([]byte, srtla.MTU)
	for {
		n, from, err := readFrom(conn, buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("link socket read", zap.String("link", l.cfg.Name), zap.Error(err))
				s.mu.Lock()
				if l.conn == conn {
					s.closeLink(l) // the next tick opens it again
				}
				s.mu.Unlock()
			}
			return
		}
		s.fromLink(l, conn, buf[:n], from)
	}
}

// write sends b on l and counts it; a failed send makes the link dead
// (SRTLA.md §6).
func (s *Sender) write(l *link, b []byte) bool {
	if l.conn == nil {
		return false
	}
	var err error
	if l.udp != nil {
		_, err = l.udp.WriteToUDPAddrPort(b, l.dst)
	} else {
		_, err = l.conn.WriteTo(b, net.UDPAddrFromAddrPort(l.dst))
	}
	if err != nil {
		l.lastErr = err.Error()
		if l.registered {
			s.log.Info("link send failed", zap.String("link", l.cfg.Name), zap.Error(err))
			s.linkDied(l)
		}
		return false
	}
	l.bytesSent += uint64(len(b))
	return true
}

// linkDied resets a link that was registered (SRTLA.md §6): floor window,
// nothing in flight, registration again.
func (s *Sender) linkDied(l *link) {
	l.registered, l.rebinding = false, false
	l.fl.failed()
}

// alive: registered, not re-registering, heard from within the timeout.
func (l *link) alive(now time.Time) bool {
	return l.conn != nil && l.registered && !l.rebinding && now.Sub(l.lastRcvd) <= connTimeout
}

func (l *link) capped() bool { return l.cfg.CapBytes > 0 && l.bytesSent >= l.cfg.CapBytes }

// canCarry: may carry stream bytes, policy aside.
func (l *link) canCarry(now time.Time) bool { return l.enabled && !l.capped() && l.alive(now) }

// heard records a packet from the receiver that proves the link works.
func (l *link) heard(now time.Time) {
	l.lastRcvd = now
	l.fl.reset = false
	l.rebinding = false
}

// fromApp schedules one datagram from the SRT caller.
func (s *Sender) fromApp(b []byte, from netip.AddrPort) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appAddr = from
	switch srtla.Classify(b) {
	case srtla.KindSRTData:
		sn, err := srtla.DataSN(b)
		if err != nil {
			s.dropped++
			return
		}
		if !s.retrans.allow(sn, srtla.DataRetransmitted(b), now, s.retransHold(now)) {
			return // a repeat within one round trip: the first is on its way
		}
		s.sendData(b, sn, now)
	case srtla.KindSRTControl:
		s.sendControl(b, now)
	default:
		s.appSRTLA++
	}
}

// engaged feeds the backup gate with the primaries' state now.
func (s *Sender) engaged(now time.Time) bool {
	up, allSat := false, true
	for _, l := range s.links {
		if l.cfg.Policy == api.PolicyBackup || !l.canCarry(now) {
			continue
		}
		up = true
		if !l.fl.saturated() {
			allSat = false
		}
	}
	return s.gate.observe(now, up, allSat)
}

// carries: may carry stream bytes now, policy included.
func (l *link) carries(now time.Time, engaged bool) bool {
	return l.canCarry(now) && (l.cfg.Policy != api.PolicyBackup || engaged)
}

// pickData chooses the link for a data packet: the largest
// window/(in_flight+1) among the bond links and, while engaged, the backup
// links; ties go to the first in list order. Only when none can carry does
// a duplicate link become the chosen one. nil: drop.
func pickData(links []*link, now time.Time, engaged bool) *link {
	var best *link
	for pass := 0; pass < 2 && best == nil; pass++ {
		for _, l := range links {
			isDup := l.cfg.Policy == api.PolicyDuplicate
			if (pass == 0) == isDup || !l.carries(now, engaged) {
				continue
			}
			if best == nil || l.fl.score() > best.fl.score() {
				best = l
			}
		}
	}
	return best
}

// pickControl chooses the link for an SRT control packet from the caller:
// the lowest measured RTT among the links that may carry the stream, else
// among all live ones.
func pickControl(links []*link, now time.Time, engaged bool) *link {
	var best *link
	better := func(l *link) bool {
		switch {
		case best == nil:
			return true
		case l.rttKnown != best.rttKnown:
			return l.rttKnown
		default:
			return l.rttMs < best.rttMs
		}
	}
	for pass := 0; pass < 2 && best == nil; pass++ {
		for _, l := range links {
			ok := l.carries(now, engaged)
			if pass == 1 {
				ok = l.alive(now)
			}
			if ok && better(l) {
				best = l
			}
		}
	}
	return best
}

func (s *Sender) sendData(b []byte, sn uint32, now time.Time) {
	s.lastData = now
	for _, l := range s.links {
		// While streaming, the receiver's SRT ACKs reach every link every
		// few ms: a link that carried data and has heard nothing for
		// rebindAfter is taken off the schedule at once, not at the next
		// tick, and re-registers.
		if l.registered && !l.rebinding && l.lastSent.After(l.lastRcvd) && now.Sub(l.lastRcvd) > rebindAfter {
			s.log.Info("link silent while carrying: re-registering", zap.String("link", l.cfg.Name), zap.Duration("silent", now.Sub(l.lastRcvd)))
			l.rebinding = true
			s.register(l, now)
		}
	}
	engaged := s.engaged(now)
	best := pickData(s.links, now, engaged)
	if best == nil {
		s.dropped++ // SRT retransmits
		return
	}
	s.sendDataOn(best, b, sn, now)
	for _, l := range s.links {
		if l != best && l.cfg.Policy == api.PolicyDuplicate && l.carries(now, engaged) {
			s.sendDataOn(l, b, sn, now)
		}
	}
}

func (s *Sender) sendDataOn(l *link, b []byte, sn uint32, now time.Time) {
	if s.write(l, b) {
		l.fl.sent(sn)
		l.lastSent = now
		l.pkts++
	}
}

func (s *Sender) sendControl(b []byte, now time.Time) {
	engaged := s.engaged(now)
	best := pickControl(s.links, now, engaged)
	if best == nil {
		s.dropped++
		if srtla.TypeOf(b) == srtla.SRTHandshake {
			// The caller dialled before any link registered: gosrt does
			// not resend its induction, so a dropped one costs a whole
			// connect timeout (seen in make run: every bonded start lost
			// 3 s). Keep the latest and send it on the first link up.
			s.heldHS = append(s.heldHS[:0], b...)
			s.heldHSAt = now
		}
		return
	}
	s.write(best, b)
	if srtla.TypeOf(b) == srtla.SRTHandshake {
		// Handshakes are not duplicated: the caller retries them itself,
		// and a second induction reply makes a gosrt caller (v0.11.0) draw
		// a second session key after the listener took the first, so every
		// payload decrypts to garbage (seen in TestEndToEndThroughTheSender).
		return
	}
	for _, l := range s.links {
		if l != best && l.cfg.Policy == api.PolicyDuplicate && l.carries(now, engaged) {
			s.write(l, b)
		}
	}
}

// flights is the flights of the open links in list order (reused slice).
func (s *Sender) flights() []*flight {
	s.fls = s.fls[:0]
	for _, l := range s.links {
		if l.conn != nil {
			s.fls = append(s.fls, &l.fl)
		}
	}
	return s.fls
}

// fromLink handles one datagram from the receiver on link l.
func (s *Sender) fromLink(l *link, conn net.PacketConn, b []byte, from netip.AddrPort) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.conn != conn || from.Port() != l.dst.Port() || from.Addr().Unmap() != l.dst.Addr().Unmap() {
		return // stale socket, or not the receiver
	}
	switch srtla.Classify(b) {
	case srtla.KindInvalid:
		return
	case srtla.KindSRTLA:
		s.control(l, b, now)
		return
	}
	l.heard(now)
	switch srtla.TypeOf(b) {
	case srtla.SRTAck:
		if s.acks.seen(b) {
			return // the receiver's broadcast copy on another link
		}
		if last, err := srtla.AckLastSN(b); err == nil {
			for _, f := range s.flights() {
				f.ackBelow(last)
			}
			s.retrans.acknowledged(last)
		}
		if rtt, ok := srtla.AckRTT(b); ok {
			s.srtRTT = rtt
		}
	case srtla.SRTNak:
		s.chargeNak(b)
	}
	if !s.appAddr.IsValid() {
		return
	}
	if s.appUDP != nil {
		_, _ = s.appUDP.WriteToUDPAddrPort(b, s.appAddr)
	} else {
		_, _ = s.app.WriteTo(b, net.UDPAddrFromAddrPort(s.appAddr))
	}
}

// chargeNak charges each number of an SRT NAK's loss list to the first link
// that sent it.
func (s *Sender) chargeNak(b []byte) {
	ranges, err := srtla.NakLoss(b)
	if err != nil {
		return
	}
	fs := s.flights()
	for _, r := range ranges {
		from := r.From
		if srtla.SeqDiff(from, r.To) >= maxNakSpan {
			from = (r.To - maxNakSpan + 1) & 0x7FFFFFFF
		}
		for sn := from; ; sn = (sn + 1) & 0x7FFFFFFF {
			if i := nakCharge(fs, sn); i >= 0 {
				s.linkOfFlight(fs[i]).naks++
			}
			if sn == r.To {
				break
			}
		}
	}
}

func (s *Sender) linkOfFlight(f *flight) *link {
	for _, l := range s.links {
		if &l.fl == f {
			return l
		}
	}
	return nil // unreachable: fs is built from s.links
}

// control handles an SRTLA control packet from the receiver; none is
// forwarded to the SRT caller.
func (s *Sender) control(l *link, b []byte, now time.Time) {
	switch srtla.TypeOf(b) {
	case srtla.TypeKeepalive:
		l.heard(now)
		var k srtla.Keepalive
		if k.Unmarshal(b) == nil && k.HasTimestamp {
			rtt := now.UnixMilli() - int64(k.TimestampMs)
			if rtt >= 0 && rtt < 60_000 {
				l.addRTT(float64(rtt))
			}
		}
	case srtla.TypeAck:
		l.heard(now)
		if s.ack.Unmarshal(b) == nil {
			fs := s.flights()
			for _, sn := range s.ack.SNs {
				srtlaAck(fs, sn)
			}
			s.retrans.delivered(len(s.ack.SNs), now)
			l.delivered += uint64(len(s.ack.SNs))
		}
	case srtla.TypeReg2:
		s.onReg2(l, b, now)
	case srtla.TypeReg3:
		if !s.haveGroup {
			return // a stale answer: the group it confirms was given up
		}
		l.heard(now)
		if !l.registered {
			s.log.Info("link registered", zap.String("link", l.cfg.Name), zap.Stringer("addr", l.cfg.Addr))
		}
		l.registered, l.everUp = true, true
		l.backoff, l.nextReg = 0, time.Time{}
		s.everUp = true
		if len(s.heldHS) > 0 {
			if now.Sub(s.heldHSAt) < heldHSFresh {
				s.write(l, s.heldHS)
			}
			s.heldHS = s.heldHS[:0]
		}
	case srtla.TypeRegErr:
		l.regErrs++
		l.backoff = min(max(2*l.backoff, regErrBackoffFirst), regErrBackoffMax)
		l.nextReg = now.Add(l.backoff)
		l.lastErr = "receiver answered REG_ERR"
		if s.reg1 == l {
			s.reg1 = nil // another link may open the group
		}
		s.log.Debug("reg_err: backing off", zap.String("link", l.cfg.Name), zap.Duration("backoff", l.backoff))
	case srtla.TypeRegNGP:
		s.onNGP(l, now)
	case srtla.TypeRegNAK:
		var r srtla.RegNAK
		_ = r.Unmarshal(b)
		l.backoff = regErrBackoffMax
		l.nextReg = now.Add(l.backoff)
		l.lastErr = "receiver refused the link: " + r.Reason
		if s.reg1 == l {
			s.reg1 = nil
		}
		s.log.Warn("receiver refused registration", zap.String("link", l.cfg.Name), zap.String("reason", r.Reason))
	}
}

// addRTT smooths RTT samples (1/8 weight, as TCP's SRTT).
func (l *link) addRTT(ms float64) {
	if !l.rttKnown {
		l.rttMs, l.rttKnown = ms, true
		return
	}
	l.rttMs += (ms - l.rttMs) / 8
}

// onReg2 takes the receiver's REG2 answer to our REG1: only on the link that
// sent it and only with our half of the ID; then every link registers.
func (s *Sender) onReg2(l *link, b []byte, now time.Time) {
	if s.reg1 != l {
		return
	}
	var r srtla.Reg2
	if r.Unmarshal(b) != nil || !bytes.Equal(r.ID[:srtla.HalfIDLen], s.id[:srtla.HalfIDLen]) {
		return
	}
	s.id = r.ID
	s.haveGroup = true
	s.registers++
	s.reg1 = nil
	s.reg3Guard = now.Add(reg3Timeout)
	s.buildRegPackets()
	s.log.Info("srtla group opened", zap.String("link", l.cfg.Name), zap.Int("registers", s.registers))
	for _, m := range s.links {
		s.write(m, s.reg2Pkt)
	}
}

// onNGP: a probe (our random ID) or a forgotten group. With no link active,
// no REG1 pending and the REG3 guard over, the link that answered first
// sends REG1.
func (s *Sender) onNGP(l *link, now time.Time) {
	if now.Before(s.reg3Guard) || s.reg1 != nil || now.Before(l.nextReg) {
		return
	}
	for _, m := range s.links {
		if m.alive(now) {
			return
		}
	}
	if s.haveGroup {
		s.log.Info("receiver forgot the group: registering again", zap.String("link", l.cfg.Name))
	}
	s.reg1, s.reg1Since, s.reg1Sent = l, now, now
	s.write(l, s.reg1Pkt)
}

// register sends what a link that is not (or no longer) registered sends on
// a tick: REG1 if it holds the pending REG1, nothing if another link does,
// else REG2 with the current ID (a probe while the ID is still ours alone).
func (s *Sender) register(l *link, now time.Time) {
	if l.conn == nil || now.Before(l.nextReg) {
		return
	}
	switch s.reg1 {
	case nil:
		s.write(l, s.reg2Pkt)
	case l:
		// Not again within half a tick of the last: a reference receiver
		// answers a REG1 retried from the same address with REG_ERR, as it
		// keeps that address as the new group's (SRTLA.md §10), so a retry
		// before the REG2 could arrive only costs a REG_ERR.
		if now.Sub(s.reg1Sent) >= reg1Retry {
			s.reg1Sent = now
			s.write(l, s.reg1Pkt)
		}
	}
}

// resolve looks up the receiver; the lock is not held.
func (s *Sender) resolve(ctx context.Context) (v4, v6 netip.AddrPort, err error) {
	var addrs []netip.Addr
	if a, perr := netip.ParseAddr(s.host); perr == nil {
		addrs = []netip.Addr{a}
	} else {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		addrs, err = s.lookup(lctx, s.host)
		cancel()
		if err != nil {
			return v4, v6, fmt.Errorf("sender: resolve %s: %w", s.host, err)
		}
	}
	for _, a := range addrs {
		switch {
		case (a.Is4() || a.Is4In6()) && !v4.IsValid():
			v4 = netip.AddrPortFrom(a.Unmap(), s.port)
		case a.Is6() && !a.Is4In6() && !v6.IsValid():
			v6 = netip.AddrPortFrom(a, s.port)
		}
	}
	if !v4.IsValid() && !v6.IsValid() {
		return v4, v6, fmt.Errorf("sender: resolve %s: no address", s.host)
	}
	return v4, v6, nil
}

// tick is the 1-s housekeeping (SRTLA.md §5, §6, §9).
func (s *Sender) tick(ctx context.Context) {
	s.mu.Lock()
	resolved := s.resolved
	s.mu.Unlock()
	if !resolved {
		v4, v6, err := s.resolve(ctx)
		if err != nil {
			s.log.Warn("receiver not resolved", zap.Error(err))
			return
		}
		s.mu.Lock()
		s.recv4, s.recv6, s.resolved = v4, v6, true
		s.mu.Unlock()
		s.log.Info("receiver resolved", zap.Stringer("v4", v4), zap.Stringer("v6", v6))
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	if s.reg1 != nil && now.Sub(s.reg1Since) >= reg2Timeout {
		s.log.Info("reg1 unanswered", zap.String("link", s.reg1.cfg.Name))
		s.reg1 = nil
	}
	for _, l := range s.links {
		if l.conn == nil {
			s.openLink(l, now) // registers at once
			continue
		}
		s.housekeep(l, now)
	}
	s.checkOutage(now)
	if now.Sub(s.lastData) <= tickPeriod {
		s.engaged(now) // the gate moves on in quiet moments of the stream
	}
	s.rotateStats(now)
	s.ticks++
}

// housekeep is one link's share of the tick.
func (s *Sender) housekeep(l *link, now time.Time) {
	silent := now.Sub(l.lastRcvd)
	if l.registered && silent > connTimeout {
		s.log.Info("link dead", zap.String("link", l.cfg.Name), zap.Duration("silent", silent))
		s.linkDied(l)
	}
	if l.registered && !l.rebinding && silent > rebindAfter {
		othersHear := false
		for _, m := range s.links {
			if m != l && m.registered && now.Sub(m.lastRcvd) < rebindAfter {
				othersHear = true
			}
		}
		if othersHear || l.lastSent.After(l.lastRcvd) {
			s.log.Info("link silent: re-registering (NAT rebinding?)", zap.String("link", l.cfg.Name), zap.Duration("silent", silent))
			l.rebinding = true
		}
	}
	if !l.registered || l.rebinding {
		s.register(l, now)
	}
	if l.registered {
		k := srtla.Keepalive{HasTimestamp: true, TimestampMs: uint64(now.UnixMilli())}
		b, _ := k.Marshal() // cannot fail
		s.write(l, b)
	}
}

// checkOutage tracks a total outage; past OutageHold the group is given up
// and the next registration opens a new one.
func (s *Sender) checkOutage(now time.Time) {
	for _, l := range s.links {
		if l.alive(now) {
			if !s.outageSince.IsZero() {
				s.log.Info("outage over", zap.Duration("lasted", now.Sub(s.outageSince)))
			}
			s.outageSince = time.Time{}
			return
		}
	}
	switch {
	case !s.everUp:
	case s.outageSince.IsZero():
		s.outageSince = now
		s.log.Warn("total outage: no link alive, holding the group", zap.Duration("hold", s.cfg.OutageHold))
	case now.Sub(s.outageSince) >= s.cfg.OutageHold:
		s.log.Error("outage longer than the hold: opening a new group", zap.Duration("hold", s.cfg.OutageHold))
		s.reg1 = nil
		for _, l := range s.links {
			if l.registered {
				s.linkDied(l)
			}
		}
		if err := s.newID(); err != nil {
			s.log.Error("[unexpected] new group id", zap.Error(err))
		}
	}
}

// rotateStats closes one housekeeping second of per-link figures.
func (s *Sender) rotateStats(now time.Time) {
	dt := now.Sub(s.lastTick).Seconds()
	first := s.lastTick.IsZero()
	s.lastTick = now
	for _, l := range s.links {
		if !first && dt > 0 {
			l.kbps = float64(l.bytesSent-l.bytesAtTick) * 8 / 1000 / dt
		}
		l.bytesAtTick = l.bytesSent
		l.slot = (l.slot + 1) % lossSlots
		l.slots[l.slot].pkts = l.pkts - l.pktsAtTick
		l.slots[l.slot].naks = l.naks - l.naksAtTick
		l.pktsAtTick, l.naksAtTick = l.pkts, l.naks
	}
}

// lossPct is the share of the link's packets of the last lossSlots seconds
// that the receiver reported lost, at most 100: SRT repeats a NAK for a
// packet still missing, and a NAK can name a packet sent in an earlier
// second, so the raw count can exceed what was sent (status showed over
// 100 % on a cut link).
func (l *link) lossPct() float64 {
	var p, n uint64
	for _, sl := range l.slots {
		p += sl.pkts
		n += sl.naks
	}
	if p == 0 {
		return 0
	}
	return min(100, 100*float64(n)/float64(p))
}

func (l *link) state(now time.Time) api.UplinkState {
	switch {
	case !l.enabled:
		return api.UplinkDisabled
	case l.alive(now) && l.capped():
		return api.UplinkCapped
	case l.alive(now):
		return api.UplinkUp
	case l.everUp && !l.rebinding:
		return api.UplinkDead
	default:
		return api.UplinkRegistering
	}
}

// Status is the group and every link, for the web page and onairctl. The
// bitrate and each uplink's interface are the integrator's to fill in.
func (s *Sender) Status() api.BondStatus {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := api.BondStatus{
		Receiver:          s.cfg.Receiver,
		Registers:         s.registers,
		OutageSince:       s.outageSince,
		RetransSuppressed: s.retrans.suppressed,
		Uplinks:           make([]api.UplinkStatus, 0, len(s.links)),
	}
	alive := false
	for _, l := range s.links {
		alive = alive || l.alive(now)
	}
	switch {
	case alive:
		st.Group = api.GroupRegistered
	case !s.outageSince.IsZero():
		st.Group = api.GroupOutage
	case s.reg1 != nil || s.haveGroup:
		st.Group = api.GroupRegistering
	default:
		st.Group = api.GroupUnregistered
	}
	engaged := s.gate.engaged
	for _, l := range s.links {
		u := api.UplinkStatus{
			Name:           l.cfg.Name,
			Policy:         l.cfg.Policy,
			State:          l.state(now),
			Enabled:        l.enabled,
			Carrying:       l.carries(now, engaged),
			RTTms:          l.rttMs,
			LossPct:        l.lossPct(),
			ThroughputKbps: l.kbps,
			BytesSent:      l.bytesSent,
			CapBytes:       l.cfg.CapBytes,
			Window:         l.fl.window,
			InFlight:       l.fl.inFlight,
			LastError:      l.lastErr,
		}
		if l.cfg.Addr.IsValid() {
			u.Addresses = []string{l.cfg.Addr.String()}
		}
		st.Uplinks = append(st.Uplinks, u)
	}
	return st
}

// Samples is every link's figures for the adaptive bitrate, in link order.
func (s *Sender) Samples() []Sample {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Sample, 0, len(s.links))
	for _, l := range s.links {
		out = append(out, Sample{
			Name:           l.cfg.Name,
			Policy:         l.cfg.Policy,
			Alive:          l.alive(now),
			Carrying:       l.carries(now, s.gate.engaged),
			Window:         l.fl.window,
			InFlight:       l.fl.inFlight,
			ThroughputKbps: l.kbps,
			RTTms:          l.rttMs,
			LossPct:        l.lossPct(),
			Delivered:      l.delivered,
		})
	}
	return out
}
