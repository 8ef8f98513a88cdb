package sender

import (
	"time"

	"onair/bond/srtla"
)

// Retransmission limiting.
//
// An SRT receiver NAKs every hole again at its NAK interval, and gosrt's
// receiver does so every (RTT + 4·RTTVar)/2 — at least twice a round trip.
// gosrt's sender (onaird's caller) retransmits every NAKed packet each time,
// at once and unpaced: on a congested bond each lost packet goes out two or
// three times more while the first retransmission is still on its way, the
// extra load causes more loss, and the bond falls into a retransmission
// storm (seen in the lab: 2600 retransmissions in 2 s after a capacity
// halving, links sending 10 Mbit/s into 1.5). libsrt's answer is
// SRTO_RETRANSMITALGO=1 (belacoder sets it): retransmit a packet only if it
// was not (re)sent within the last round trip. The sender does that here for
// any caller: a retransmission of a sequence number that went out less than
// one round trip ago is dropped (counted); a later one is sent, so a lost
// retransmission is still repaired.
//
// That alone still lets every outstanding hole be resent once a round trip:
// with hundreds of holes after a capacity drop that is several times what the
// links carry, and what a shaper drops is NAKed again. So retransmissions
// also have a budget: what the receiver acknowledged per second at best over
// the last few seconds (SRT ACK progress: what the bond delivers
// when it works), at least retransMinPPS. Past the budget a retransmission
// is dropped here, where it costs nothing, instead of by the link.
const (
	retransSlots       = 8192 // sequence numbers remembered (about 10 s at 8 Mbit/s)
	retransHoldFloor   = 20 * time.Millisecond
	retransHoldCeil    = 500 * time.Millisecond
	retransHoldDefault = 100 * time.Millisecond // no RTT measured yet

	retransShare  = 1.0 // of the best recent ACK rate, for retransmissions
	retransUrgent = 16  // the first holes after the ACK always go (see urgent)
	retransMinPPS = 50  // budget floor, packets per second
	ackRateSlots  = 3   // seconds of ACK progress remembered
)

// retransLimiter remembers when each recent sequence number was last sent.
type retransLimiter struct {
	slots      [retransSlots]retransSlot
	suppressed uint64 // dropped: repeats within a round trip, or over budget

	// The budget: tokens in packets, refilled at the rate.
	tokens   float64
	refillAt time.Time
	// ACK progress: packets acknowledged per housekeeping second.
	acked   [ackRateSlots]uint64
	ackSlot int
	lastAck uint32
	haveAck bool
}

type retransSlot struct {
	sn uint32
	at time.Time
}

// allow records a data packet being sent and reports whether a
// retransmission should go (originals always go).
func (r *retransLimiter) allow(sn uint32, retransmitted bool, now time.Time, hold time.Duration) bool {
	s := &r.slots[sn%retransSlots]
	if retransmitted {
		if s.sn == sn && !s.at.IsZero() && now.Sub(s.at) < hold {
			r.suppressed++
			return false
		}
		if !r.spend(now) && !r.urgent(sn) {
			r.suppressed++
			return false
		}
	}
	s.sn, s.at = sn, now
	return true
}

// urgent: sn is among the first holes after what the receiver acknowledged.
// Those hold every later packet back and are the nearest to their deadline;
// gosrt resends a NAK's list newest first, so a budget alone would spend
// itself on the newest holes and let the oldest miss the latency.
func (r *retransLimiter) urgent(sn uint32) bool {
	if !r.haveAck {
		return false
	}
	d := srtla.SeqDiff(r.lastAck, sn)
	return d >= 0 && d < retransUrgent
}

// budgetPPS is the retransmission rate allowed now.
func (r *retransLimiter) budgetPPS() float64 {
	best := uint64(0)
	for _, a := range r.acked {
		best = max(best, a)
	}
	return max(retransShare*float64(best), retransMinPPS)
}

// spend takes one token, refilling first; a burst of a tenth of a second's
// budget may go at once.
func (r *retransLimiter) spend(now time.Time) bool {
	rate := r.budgetPPS()
	switch {
	case r.refillAt.IsZero():
		r.tokens = rate / 10
	case now.After(r.refillAt):
		r.tokens += now.Sub(r.refillAt).Seconds() * rate
	}
	if now.After(r.refillAt) {
		r.refillAt = now
	}
	r.tokens = min(r.tokens, rate/10+1)
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

// acknowledged notes an SRT ACK's last acknowledged number.
func (r *retransLimiter) acknowledged(last uint32) {
	if r.haveAck {
		if d := srtla.SeqDiff(r.lastAck, last); d > 0 {
			r.acked[r.ackSlot] += uint64(d)
		} else if d < 0 {
			return // an older ACK, reordered
		}
	}
	r.lastAck, r.haveAck = last, true
}

// rotate starts a new second of ACK progress (the housekeeping tick).
func (r *retransLimiter) rotate() {
	r.ackSlot = (r.ackSlot + 1) % ackRateSlots
	r.acked[r.ackSlot] = 0
}

// retransHold is one round trip: the SRT receiver's own RTT (its full ACKs
// carry it; it includes the queues a congested bond builds) or the slowest
// carrying link's keepalive RTT, whichever is longer, clamped.
func (s *Sender) retransHold(now time.Time) time.Duration {
	worst, known := s.srtRTT, s.srtRTT > 0
	for _, l := range s.links {
		if l.rttKnown && l.canCarry(now) {
			worst, known = max(worst, time.Duration(l.rttMs*float64(time.Millisecond))), true
		}
	}
	if !known {
		return retransHoldDefault
	}
	return min(max(worst, retransHoldFloor), retransHoldCeil)
}
