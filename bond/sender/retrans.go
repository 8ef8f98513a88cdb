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
// also have a budget: what the links delivered (the sequence numbers the
// receiver's SRTLA ACKs name, over the last half second) minus the originals
// sent meanwhile, with a quarter more while the links deliver what is sent
// (random loss, room to probe), none while they deliver much less (a
// shaper's queue is full: every repair past the capacity only pushes out
// another packet), and at least retransMinPPS. Past the budget a
// retransmission is dropped here, where it costs nothing, instead of by the
// link. (The budget used to be the best SRT ACK progress of the last 3 s:
// after a capacity halving that is the old capacity, and the links sent
// 6.3 Mbit/s into 3, 72 % of it repairs, until the span reached the latency
// and frames were lost.)
const (
	retransSlots       = 8192 // sequence numbers remembered (about 10 s at 8 Mbit/s)
	retransHoldFloor   = 20 * time.Millisecond
	retransHoldCeil    = 500 * time.Millisecond
	retransHoldDefault = 100 * time.Millisecond // no RTT measured yet

	retransUrgent = 16 // the first holes after the ACK always go (see urgent)
	retransMinPPS = 50 // budget floor, packets per second

	// The delivery window: rateSlots slots of rateSlot; the budget is
	// reckoned over the completed ones (the last half second).
	rateSlots = 3
	rateSlot  = 250 * time.Millisecond
	// retransHeadroom is the share of the delivered rate that repairs may
	// add on top of it while the links deliver at least deliveredShare of
	// what is sent.
	retransHeadroom = 0.25
	deliveredShare  = 0.85
)

// retransLimiter remembers when each recent sequence number was last sent.
type retransLimiter struct {
	slots      [retransSlots]retransSlot
	suppressed uint64 // dropped: repeats within a round trip, or over budget

	// The budget: tokens in packets, refilled at the rate.
	tokens   float64
	refillAt time.Time
	// The delivery window: per slot, packets the links delivered (SRTLA
	// ACKs), originals sent and everything sent.
	slotAt                time.Time // start of the current slot
	slot                  int
	recv, orig, sentTotal [rateSlots]uint64
	// The SRT ACK point (for urgent).
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
	r.advance(now)
	if retransmitted {
		if s.sn == sn && !s.at.IsZero() && now.Sub(s.at) < hold {
			r.suppressed++
			return false
		}
		if !r.spend(now) && !r.urgent(sn) {
			r.suppressed++
			return false
		}
	} else {
		r.orig[r.slot]++
	}
	r.sentTotal[r.slot]++
	s.sn, s.at = sn, now
	return true
}

// delivered notes n sequence numbers named by an SRTLA ACK: the links
// delivered them.
func (r *retransLimiter) delivered(n int, now time.Time) {
	r.advance(now)
	r.recv[r.slot] += uint64(n)
}

// advance moves the delivery window to now.
func (r *retransLimiter) advance(now time.Time) {
	if r.slotAt.IsZero() || now.Sub(r.slotAt) >= rateSlots*rateSlot || now.Before(r.slotAt) {
		r.recv, r.orig, r.sentTotal = [rateSlots]uint64{}, [rateSlots]uint64{}, [rateSlots]uint64{}
		r.slotAt, r.slot = now, 0
		return
	}
	for now.Sub(r.slotAt) >= rateSlot {
		r.slotAt = r.slotAt.Add(rateSlot)
		r.slot = (r.slot + 1) % rateSlots
		r.recv[r.slot], r.orig[r.slot], r.sentTotal[r.slot] = 0, 0, 0
	}
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

// budgetPPS is the retransmission rate allowed now: over the completed
// slots of the delivery window, what the links delivered (plus the headroom
// while they deliver what is sent) minus the originals.
func (r *retransLimiter) budgetPPS() float64 {
	var recv, orig, sent uint64
	for i := range rateSlots {
		if i != r.slot {
			recv, orig, sent = recv+r.recv[i], orig+r.orig[i], sent+r.sentTotal[i]
		}
	}
	d := recv
	if float64(recv) >= deliveredShare*float64(sent) {
		d += uint64(retransHeadroom * float64(recv))
	}
	pps := 0.0
	if d > orig {
		pps = float64(d-orig) / ((rateSlots - 1) * rateSlot).Seconds()
	}
	return max(pps, retransMinPPS)
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
	if r.haveAck && srtla.SeqDiff(r.lastAck, last) < 0 {
		return // an older ACK, reordered
	}
	r.lastAck, r.haveAck = last, true
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
