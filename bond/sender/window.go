package sender

import "onair/bond/srtla"

// Window constants of SRTLA.md §8, in 1/1000 packet.
const (
	windowMult = 1000
	windowDef  = 20000
	windowMin  = 1000
	windowMax  = 60000
	windowDecr = 100
	windowIncr = 30 // 29 on the acked link when it is over its window, +1 group-wide
	pktLogSize = 256
)

// flight is one link's congestion accounting (SRTLA.md §8): the window, the
// packets in flight and the ring of the last data sequence numbers sent on
// the link. It is pure state: no clock, no socket.
type flight struct {
	window   int
	inFlight int
	log      [pktLogSize]int32 // -1: empty
	next     int               // where the next sn goes
	// reset is true for a link that has never received anything, or has been
	// reset after it died: it gets no group-wide window growth.
	reset bool
}

func newFlight() flight {
	f := flight{window: windowDef, reset: true}
	f.clear()
	return f
}

// clear empties the ring and the in-flight count.
func (f *flight) clear() {
	for i := range f.log {
		f.log[i] = -1
	}
	f.inFlight = 0
	f.next = 0
}

// failed is what a link that was alive gets when it dies: the floor window.
func (f *flight) failed() {
	f.clear()
	f.window = windowMin
	f.reset = true
}

// sent records a data packet sent on the link.
func (f *flight) sent(sn uint32) {
	f.log[f.next] = int32(sn & 0x7FFFFFFF)
	f.next = (f.next + 1) % pktLogSize
	f.inFlight++
}

// score is the scheduling value window/(in_flight+1); the largest wins.
func (f *flight) score() int { return f.window / (f.inFlight + 1) }

// saturated is true when the link is at or over its window.
func (f *flight) saturated() bool { return f.inFlight*windowMult >= f.window }

// take erases sn from the ring, newest first, and reports whether it was
// there.
func (f *flight) take(sn uint32) bool {
	want := int32(sn & 0x7FFFFFFF)
	for i := 1; i <= pktLogSize; i++ {
		j := (f.next - i + pktLogSize) % pktLogSize
		if f.log[j] == want {
			f.log[j] = -1
			return true
		}
	}
	return false
}

// ackBelow erases every entry before last (an SRT ACK: everything before it
// arrived, wrap-safe) and sets in_flight to what is left; the recount
// corrects drift from lost SRTLA ACKs.
func (f *flight) ackBelow(last uint32) {
	n := 0
	for i, sn := range f.log {
		if sn < 0 {
			continue
		}
		if srtla.SeqLess(uint32(sn), last) {
			f.log[i] = -1
			continue
		}
		n++
	}
	f.inFlight = n
}

// srtlaAck applies one sequence number of an SRTLA ACK to the flights of a
// group, in link order (SRTLA.md §8): the first link holding it loses it from
// flight and grows by 29 if it was over its window; every link not in the
// reset state then grows by 1, up to the ceiling.
func srtlaAck(fs []*flight, sn uint32) {
	for _, f := range fs {
		if !f.take(sn) {
			continue
		}
		if f.inFlight > 0 {
			f.inFlight--
		}
		if f.inFlight*windowMult > f.window {
			f.window += windowIncr - 1
		}
		break
	}
	for _, f := range fs {
		if !f.reset {
			f.window = min(f.window+1, windowMax)
		}
	}
}

// nakCharge charges one lost sequence number to the first link whose ring
// holds it: the entry goes and the window shrinks by WINDOW_DECR (floor
// WINDOW_MIN); in_flight is left alone. It returns the index of the charged
// flight, or -1.
func nakCharge(fs []*flight, sn uint32) int {
	for i, f := range fs {
		if f.take(sn) {
			f.window = max(f.window-windowDecr, windowMin)
			return i
		}
	}
	return -1
}

// maxNakSpan bounds how many numbers of one NAK range are looked up: older
// numbers cannot be in any ring anyway.
const maxNakSpan = 4 * pktLogSize
