package relay

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"onair/bond/srtla"
)

// handle processes one datagram from a sender (SRTLA.md §7). Every input is
// valid to it: whatever is not a registration, a keepalive from a link or
// SRT from a link is counted and dropped, and nothing panics on it.
func (r *Relay) handle(sock replySocket, from netip.AddrPort, b []byte) {
	if len(b) > srtla.MTU {
		r.count(func(c *counters) { c.malformed[malformedTooLong]++ })
		return
	}
	switch srtla.Classify(b) {
	case srtla.KindInvalid:
		r.count(func(c *counters) { c.malformed[malformedTooShort]++ })
		return
	case srtla.KindSRTLA:
		r.handleSRTLA(sock, from, b)
		return
	}
	r.handleSRT(from, b)
}

// handleSRTLA handles an SRTLA control packet; none is ever forwarded to SRT.
func (r *Relay) handleSRTLA(sock replySocket, from netip.AddrPort, b []byte) {
	p, err := srtla.Parse(b)
	if err != nil {
		kind := malformedKind(err)
		r.count(func(c *counters) { c.malformed[kind]++ })
		return
	}
	switch p := p.(type) {
	case *srtla.Reg1:
		if r.allowReg(from) {
			r.reg1(sock, from, p)
		}
	case *srtla.Reg2:
		if r.allowReg(from) {
			r.reg2(sock, from, p)
		}
	case *srtla.Keepalive:
		now := r.clock.Now()
		r.mu.Lock()
		l := r.links[from]
		if l == nil {
			r.counters.unknownSource++
			r.mu.Unlock()
			return
		}
		l.lastRcvd, l.g.lastActive = now, now
		l.pkts++
		l.bytes += uint64(len(b))
		r.mu.Unlock()
		r.send(sock, from, b) // the echo: byte for byte, whatever its length
	default:
		// ACK, REG3, REG_ERR, REG_NGP, REG_NAK: a receiver's packets, never
		// a sender's.
		r.count(func(c *counters) { c.malformed[malformedUnexpected]++ })
	}
}

// handleSRT forwards an SRT datagram from a link to the group's listener and
// keeps the link's SRTLA ACK batch.
func (r *Relay) handleSRT(from netip.AddrPort, b []byte) {
	now := r.clock.Now()
	r.mu.Lock()
	l := r.links[from]
	if l == nil || r.closing {
		r.counters.unknownSource++
		r.mu.Unlock()
		return
	}
	g := l.g
	l.lastRcvd, g.lastActive = now, now
	l.pkts++
	l.bytes += uint64(len(b))
	if len(b) < srtla.MinSRTLen {
		r.counters.malformed[malformedTooShort]++
		r.mu.Unlock()
		return
	}
	g.last = l
	g.noteUpstream(b, now)
	var ack []byte
	if sn, err := srtla.DataSN(b); err == nil {
		l.acks = append(l.acks, sn)
		if len(l.acks) >= r.cfg.AckBatch {
			ack = marshal(&srtla.Ack{SNs: l.acks})
			l.acks = l.acks[:0]
		}
	}
	down, err := r.downstreamLocked(g)
	r.mu.Unlock()
	if ack != nil {
		r.send(l.sock, l.addr, ack)
	}
	if err == nil {
		_, err = down.Write(b)
	}
	if err != nil {
		r.destroy(g, "send downstream", err)
	}
}

// downstreamLocked returns the group's socket to the SRT listener, making it
// (and starting its reader) on first use.
func (r *Relay) downstreamLocked(g *group) (*net.UDPConn, error) {
	if g.down != nil {
		return g.down, nil
	}
	c, err := net.DialUDP("udp", nil, r.downstream)
	if err != nil {
		return nil, err
	}
	g.down = c
	g.log.Info("downstream socket", zap.Stringer("local", c.LocalAddr()), zap.Stringer("remote", r.downstream))
	r.wg.Go(func() { r.readDownstream(g, c) })
	return c, nil
}

// readDownstream relays the listener's datagrams to the group's links: an
// SRT ACK to every link (senders read it on each to recount in-flight
// packets), anything else to one link known to be alive. A read error or a
// datagram shorter than an SRT header (for example after an ICMP port
// unreachable) destroys the group, as the reference does.
func (r *Relay) readDownstream(g *group, c *net.UDPConn) {
	buf := make([]byte, readBuf)
	var targets []*link
	for {
		n, err := c.Read(buf)
		if err != nil {
			r.destroy(g, "read downstream", err)
			return
		}
		b := buf[:n]
		if n < srtla.MinSRTLen {
			r.destroy(g, "short read downstream", errShortRead)
			return
		}
		if srtla.Classify(b) == srtla.KindSRTLA {
			// Not SRT: a sender would take it for our control packet.
			r.count(func(c *counters) { c.malformed[malformedDownstream]++ })
			continue
		}
		now := r.clock.Now()
		r.mu.Lock()
		targets = targets[:0]
		switch t := srtla.TypeOf(b); {
		case t == srtla.SRTAck:
			targets = append(targets, g.links...)
		case t == srtla.SRTKeepalive && !r.liveLinkLocked(g, now):
			// gosrt echoes the keepalives keepPeersAlive sends; a sender
			// whose links' uplinks are cut but not their downlinks would
			// take the echo for a sign of life and keep sending into them.
		default:
			if l := r.returnLinkLocked(g, now); l != nil {
				targets = append(targets, l)
			}
		}
		r.mu.Unlock()
		for _, l := range targets {
			r.send(l.sock, l.addr, b)
		}
	}
}

var errShortRead = errors.New("relay: datagram shorter than an srt header")

// destroy removes a group after its downstream socket failed, and counts it
// unless the group was already removed (its socket then fails because it was
// closed) or the relay is stopping.
func (r *Relay) destroy(g *group, what string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g.dead || r.closing {
		return
	}
	r.counters.downstreamErrors++
	g.log.Warn("group destroyed: "+what, zap.Error(err))
	r.removeGroupLocked(g)
}

// flushAcks sends every partial ACK batch.
func (r *Relay) flushAcks() {
	type pending struct {
		l   *link
		ack []byte
	}
	var out []pending
	r.mu.Lock()
	for _, g := range r.groups {
		for _, l := range g.links {
			if len(l.acks) > 0 {
				out = append(out, pending{l, marshal(&srtla.Ack{SNs: l.acks})})
				l.acks = l.acks[:0]
			}
		}
	}
	r.mu.Unlock()
	for _, p := range out {
		r.send(p.l.sock, p.l.addr, p.ack)
	}
}

// noteUpstream keeps from an SRT packet of the caller (16 bytes or more)
// what a keepalive for its session needs: the timestamp (bytes 8–11) and,
// outside handshakes, the destination socket ID (bytes 12–15), which is the
// listener's.
func (g *group) noteUpstream(b []byte, now time.Time) {
	g.srtTS, g.srtAt = binary.BigEndian.Uint32(b[8:]), now
	switch srtla.TypeOf(b) {
	case srtla.SRTHandshake:
		// The caller learns the listener's ID during the handshake.
	case srtla.SRTShutdown:
		g.peerSock = 0 // the session is over: nothing to keep alive
	default:
		if id := binary.BigEndian.Uint32(b[12:]); id != 0 {
			g.peerSock = id
		}
	}
}

// peerKeepaliveLen is an SRT keepalive: the header alone.
const peerKeepaliveLen = srtla.MinSRTLen

// keepPeersAlive sends an SRT keepalive (type 0x8001, type-specific 0, the
// caller's extrapolated timestamp, the listener's socket ID) to the SRT
// listener of every group that has no live link and sent it nothing for a
// PeerKeepalive, so that the listener keeps the session through a total
// outage (see Config.PeerKeepalive). A failed send destroys the group, as
// for data.
func (r *Relay) keepPeersAlive() {
	type keepalive struct {
		g *group
		c *net.UDPConn
		b [peerKeepaliveLen]byte
	}
	now := r.clock.Now()
	var out []keepalive
	r.mu.Lock()
	for _, g := range r.groups {
		if silent := now.Sub(g.srtAt); g.down == nil || g.peerSock == 0 || silent < r.cfg.PeerKeepalive ||
			silent > r.cfg.PeerKeepaliveFor || r.liveLinkLocked(g, now) {
			continue
		}
		k := keepalive{g: g, c: g.down}
		binary.BigEndian.PutUint16(k.b[0:], uint16(srtla.SRTKeepalive))
		binary.BigEndian.PutUint32(k.b[8:], g.srtTS+uint32(now.Sub(g.srtAt).Microseconds()))
		binary.BigEndian.PutUint32(k.b[12:], g.peerSock)
		out = append(out, k)
	}
	r.mu.Unlock()
	for _, k := range out {
		if _, err := k.c.Write(k.b[:]); err != nil {
			r.destroy(k.g, "keepalive downstream", err)
			continue
		}
		r.count(func(c *counters) { c.peerKeepalives++ })
	}
	r.mu.Lock()
	r.lastPeerCheck = now
	r.mu.Unlock()
}

// liveLinkLocked: some link of g was heard within two PeerKeepalives (a
// live sender sends on every link at least every second).
func (r *Relay) liveLinkLocked(g *group, now time.Time) bool {
	for _, l := range g.links {
		if now.Sub(l.lastRcvd) < 2*r.cfg.PeerKeepalive {
			return true
		}
	}
	return false
}

// allowReg applies the per-source registration rate limit.
func (r *Relay) allowReg(from netip.AddrPort) bool {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.limiter.allow(from.Addr(), now) {
		return true
	}
	r.counters.rateLimited++
	return false
}

// send writes one datagram to a sender; a failure is counted, not fatal (the
// link recovers or expires).
func (r *Relay) send(sock replySocket, to netip.AddrPort, b []byte) {
	if _, err := sock.WriteToUDPAddrPort(b, to); err != nil {
		r.count(func(c *counters) { c.sendErrors++ })
		r.log.Debug("send to sender", zap.Stringer("to", to), zap.Error(err))
	}
}

func (r *Relay) count(f func(*counters)) {
	r.mu.Lock()
	f(&r.counters)
	r.mu.Unlock()
}

// malformedKind names the kind of an srtla.Parse error for the counters.
func malformedKind(err error) string {
	switch {
	case errors.Is(err, srtla.ErrPacketTooShort):
		return malformedTooShort
	case errors.Is(err, srtla.ErrPacketTooLong):
		return malformedTooLong
	case errors.Is(err, srtla.ErrBadLength):
		return malformedBadLength
	case errors.Is(err, srtla.ErrUnknownType):
		return malformedUnknownType
	default:
		return malformedOther
	}
}
