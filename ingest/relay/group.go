package relay

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/netip"
	"slices"
	"time"

	"go.uber.org/zap"

	"onair/bond/srtla"
)

// replySocket is what a reply to a sender goes out on: the listening socket
// its datagram came in on, so the reply has the source address the sender
// sent to.
type replySocket interface {
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// group is one sender: its links and the socket to the SRT listener.
//
// Lifecycle: created by REG1 (no links, regAddr set) → links join by REG2
// (regAddr forgotten at the first) → links expire after LinkTimeout of
// silence → the group is removed when it has had no link for GroupTimeout
// since its last packet, or at once when its downstream socket fails.
type group struct {
	id      srtla.ID
	created time.Time
	// lastActive is the time of the last packet from any of its links (or
	// the creation): GroupTimeout counts from here.
	lastActive time.Time
	links      []*link
	// last is the link that most recently carried SRT to the group (the
	// reference's "last address"), nil before the first or after it expired.
	last *link
	// regAddr is the source of the REG1 that created the group, kept until a
	// link joins, so that a REG1 retried after a lost REG2 gets the same
	// REG2 again instead of the reference's REG_ERR (SRTLA.md §10).
	regAddr netip.AddrPort
	// down is the socket connected to the SRT listener, made on first use.
	down *net.UDPConn
	// peerSock is the listener's socket ID of the group's SRT session: the
	// destination socket ID of the caller's packets once the handshake is
	// done (the listener's packets carry the caller's ID instead). 0 before,
	// and after the caller shut the session down.
	peerSock uint32
	// srtTS is the SRT timestamp of the caller's last packet, forwarded at
	// srtAt: a keepalive the relay sends carries the caller's clock
	// extrapolated from them.
	srtTS uint32
	srtAt time.Time
	// dead is set when the group is removed; its downstream reader then
	// exits without counting the error its closed socket gives.
	dead bool
	log  *zap.Logger
}

// link is one registered (IP, port) of a group.
type link struct {
	addr     netip.AddrPort
	sock     replySocket
	g        *group
	since    time.Time
	lastRcvd time.Time
	pkts     uint64
	bytes    uint64
	// acks are the data sequence numbers received since the last SRTLA ACK.
	acks []uint32
}

// maxAckBatch keeps an ACK within the MTU.
const maxAckBatch = srtla.MaxAckSNs

// prefixLen is how much of the ID Stats shows: the start of the sender's
// half only. The receiver's half is the group's only secret (whoever knows
// the full ID can add links and inject data), so it is never shown.
const prefixLen = 8

// findGroupLocked returns the group with this full ID or nil. It compares
// against every group in constant time, so the time it takes tells nothing
// about how much of an ID guess was right.
func (r *Relay) findGroupLocked(id *srtla.ID) *group {
	var found *group
	for _, g := range r.groups {
		if subtle.ConstantTimeCompare(g.id[:], id[:]) == 1 {
			found = g
		}
	}
	return found
}

// newIDLocked makes a full ID from the sender's half and fresh random bytes,
// again until it collides with no group's.
func (r *Relay) newIDLocked(sender *srtla.ID) srtla.ID {
	var id srtla.ID
	copy(id[:srtla.HalfIDLen], sender[:srtla.HalfIDLen])
	for {
		_, _ = rand.Read(id[srtla.HalfIDLen:]) // never fails (crypto/rand since Go 1.24)
		if r.findGroupLocked(&id) == nil {
			return id
		}
		r.log.Warn("[unexpected] group id collision, regenerating")
	}
}

// reg1 handles a REG1 from a source that passed the rate limit.
func (r *Relay) reg1(sock replySocket, from netip.AddrPort, p *srtla.Reg1) {
	now := r.clock.Now()
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return
	}
	if _, ok := r.links[from]; ok {
		r.regErrLocked(sock, from, reasonAddrInUse)
		return
	}
	if g := r.regAddrs[from]; g != nil {
		if subtle.ConstantTimeCompare(g.id[:srtla.HalfIDLen], p.ID[:srtla.HalfIDLen]) == 1 {
			// A retry: our REG2 was lost. Answer it again (idempotent).
			g.lastActive = now
			reply := marshal(&srtla.Reg2{ID: g.id})
			r.counters.regRetries++
			r.mu.Unlock()
			r.send(sock, from, reply)
			return
		}
		// The same address with a new ID: the sender restarted before any
		// link joined (regAddrs only holds groups without links). Nobody
		// else can use that group: replace it.
		g.log.Info("group replaced by a new REG1 from its address")
		r.removeGroupLocked(g)
	}
	if len(r.groups) >= r.cfg.MaxGroups {
		r.counters.groupsRefused++
		r.regErrLocked(sock, from, reasonGroupsFull)
		return
	}
	g := &group{id: r.newIDLocked(&p.ID), created: now, lastActive: now, regAddr: from}
	g.log = r.log.With(zap.String("group", idPrefix(&g.id)))
	r.groups = append(r.groups, g)
	r.regAddrs[from] = g
	r.counters.groupsCreated++
	reply := marshal(&srtla.Reg2{ID: g.id})
	r.mu.Unlock()
	g.log.Info("group created", zap.Stringer("from", from))
	r.send(sock, from, reply)
}

// reg2 handles a REG2 from a source that passed the rate limit.
func (r *Relay) reg2(sock replySocket, from netip.AddrPort, p *srtla.Reg2) {
	now := r.clock.Now()
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return
	}
	g := r.findGroupLocked(&p.ID)
	if g == nil {
		r.counters.regErrors[reasonNoGroup]++
		r.mu.Unlock()
		r.send(sock, from, marshal(&srtla.Reply{Kind: srtla.TypeRegNGP}))
		return
	}
	l := r.links[from]
	switch {
	case l != nil && l.g != g:
		r.regErrLocked(sock, from, reasonAddrInUse)
		return
	case l != nil:
		// Already a link of this group: just confirm again.
	case len(g.links) >= r.cfg.MaxLinksPerGroup:
		r.regErrLocked(sock, from, reasonLinksFull)
		return
	default:
		l = &link{addr: from, sock: sock, g: g, since: now}
		g.links = append(g.links, l)
		r.links[from] = l
		if g.regAddr.IsValid() {
			delete(r.regAddrs, g.regAddr)
			g.regAddr = netip.AddrPort{}
		}
		r.counters.registrations++
		g.log.Info("link registered", zap.Stringer("addr", from), zap.Int("links", len(g.links)))
	}
	l.lastRcvd, g.lastActive, g.last = now, now, l
	r.mu.Unlock()
	r.send(sock, from, marshal(&srtla.Reply{Kind: srtla.TypeReg3}))
}

// regErrLocked counts the refusal, unlocks and answers REG_ERR.
//
// Every refusal this receiver makes is temporary: a full group table or a
// full group frees up as links and groups expire, and an address taken by
// another group is free once that link is silent for LinkTimeout. So it
// answers REG_ERR (back off and retry), never REG_NAK (give up): a sender
// that gave up would stay off air although a retry would have worked.
// Registrations that are invalid as packets get no answer at all.
func (r *Relay) regErrLocked(sock replySocket, from netip.AddrPort, reason string) {
	r.counters.regErrors[reason]++
	r.mu.Unlock()
	r.log.Debug("registration refused", zap.Stringer("from", from), zap.String("reason", reason))
	r.send(sock, from, marshal(&srtla.Reply{Kind: srtla.TypeRegErr}))
}

// removeLinkLocked forgets one link.
func (r *Relay) removeLinkLocked(l *link) {
	g := l.g
	delete(r.links, l.addr)
	g.links = slices.DeleteFunc(g.links, func(o *link) bool { return o == l })
	if g.last == l {
		g.last = nil
	}
}

// removeGroupLocked forgets a group and its links and closes its
// downstream socket, which ends its reader.
func (r *Relay) removeGroupLocked(g *group) {
	if g.dead {
		return
	}
	g.dead = true
	for _, l := range g.links {
		delete(r.links, l.addr)
	}
	g.links = nil
	g.last = nil
	if g.regAddr.IsValid() && r.regAddrs[g.regAddr] == g {
		delete(r.regAddrs, g.regAddr)
	}
	r.groups = slices.DeleteFunc(r.groups, func(o *group) bool { return o == g })
	if g.down != nil {
		_ = g.down.Close()
	}
}

// sweep removes links silent for LinkTimeout and groups without links idle
// for GroupTimeout, and drops idle rate-limit buckets.
func (r *Relay) sweep() {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range slices.Clone(r.groups) {
		for _, l := range slices.Clone(g.links) {
			if l.lastRcvd.Add(r.cfg.LinkTimeout).Before(now) {
				r.removeLinkLocked(l)
				r.counters.linksExpired++
				g.log.Info("link expired", zap.Stringer("addr", l.addr), zap.Int("links", len(g.links)))
			}
		}
		if len(g.links) == 0 && g.lastActive.Add(r.cfg.GroupTimeout).Before(now) {
			r.removeGroupLocked(g)
			r.counters.groupsExpired++
			g.log.Info("group expired")
		}
	}
	r.limiter.sweep(now)
	r.lastSweep = now
}

// returnLinkLocked picks the link for downstream traffic other than ACKs:
// the one that last carried SRT, unless it has been silent for StaleLink
// while another link was heard more recently (then the most recently heard).
// The reference uses only the last address, so NAKs and handshake replies
// are lost while that link is dead (SRTLA.md §10).
func (r *Relay) returnLinkLocked(g *group, now time.Time) *link {
	best := g.last
	if best != nil && now.Sub(best.lastRcvd) <= r.cfg.StaleLink {
		return best
	}
	for _, l := range g.links {
		if best == nil || l.lastRcvd.After(best.lastRcvd) {
			best = l
		}
	}
	return best
}

func marshal(p srtla.Packet) []byte {
	b, err := p.Marshal()
	if err != nil {
		panic("relay: [unexpected] marshal " + err.Error()) // only fixed-size packets are marshalled
	}
	return b
}

func idPrefix(id *srtla.ID) string { return hex.EncodeToString(id[:prefixLen]) }
