package sender

import "bytes"

// The receiver sends every SRT ACK on every link of the group (SRTLA.md §7),
// so each arrives once per link. ackRing remembers the last few ACKs byte for
// byte: the caller gets each distinct ACK once, and the in-flight recount
// runs once per ACK. Distinct ACKs differ in their ACK number or timestamp,
// so an exact match is a copy.
const (
	ackRingSize = 64
	ackMaxLen   = 64 // longer ACKs are not remembered (not de-duplicated)
)

type ackRing struct {
	n    [ackRingSize]int
	b    [ackRingSize][ackMaxLen]byte
	next int
}

// seen reports whether b is a copy of a recent ACK, and remembers it if not.
func (r *ackRing) seen(b []byte) bool {
	if len(b) > ackMaxLen {
		return false
	}
	for i := range r.n {
		if r.n[i] == len(b) && bytes.Equal(r.b[i][:len(b)], b) {
			return true
		}
	}
	r.n[r.next] = len(b)
	copy(r.b[r.next][:], b)
	r.next = (r.next + 1) % ackRingSize
	return false
}
