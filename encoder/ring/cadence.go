package ring

import (
	"math"
	"math/bits"
)

// Cadence is a constant-rate timeline on CLOCK_MONOTONIC: index i starts at
// EpochNs + i×Den/Num seconds (Num/Den indexes per second: 30000/1001 video
// frames, or 48000/1024 AAC frames). Its maths is exact for any uptime: the
// products are taken in 128 bits (math/bits), where i×1e9×Den in int64
// overflowed after 43 h at 60000/1001 and 53 h for 48 kHz audio.
type Cadence struct {
	EpochNs  int64
	Num, Den uint64
}

const nsPerSecond = 1_000_000_000

// IndexAt is the index whose interval contains time ns (0 before the epoch):
// floor((ns-EpochNs)×Num / (1e9×Den)). It saturates at MaxUint64 for rates
// no real box has, and is 0 for a zero Num or Den.
func (c Cadence) IndexAt(ns int64) uint64 {
	if ns <= c.EpochNs || c.Num == 0 || c.Den == 0 {
		return 0
	}
	d := uint64(ns - c.EpochNs) // no overflow: ns > EpochNs, the difference fits in uint64
	q, ok := mulDiv(d, c.Num, nsPerSecond*c.Den, false)
	if !ok {
		return math.MaxUint64
	}
	return q
}

// TimeOf is the time at which index i is due: the first nanosecond of its
// interval, ceil(i×1e9×Den/Num) after the epoch, so IndexAt(TimeOf(i)) == i.
// It saturates at MaxInt64.
func (c Cadence) TimeOf(i uint64) int64 {
	if c.Num == 0 || c.Den == 0 {
		return c.EpochNs
	}
	q, ok := mulDiv(i, nsPerSecond*c.Den, c.Num, true)
	if !ok || q > math.MaxInt64 || int64(q) > math.MaxInt64-c.EpochNs {
		return math.MaxInt64
	}
	return c.EpochNs + int64(q)
}

// mulDiv is a×b/c in 128-bit precision, rounded down or up; ok is false when
// the quotient does not fit in 64 bits. c must not be 0.
func mulDiv(a, b, c uint64, up bool) (q uint64, ok bool) {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return 0, false
	}
	q, r := bits.Div64(hi, lo, c)
	if up && r != 0 {
		if q == math.MaxUint64 {
			return 0, false
		}
		q++
	}
	return q, true
}
