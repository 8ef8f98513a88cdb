package relay

import (
	"net/netip"
	"time"
)

// maxBuckets bounds the limiter's memory under a flood from many (spoofed)
// sources: when it is full, a source without a bucket is refused until the
// next sweep drops the idle ones. Real senders are a handful of addresses.
const maxBuckets = 16384

// limiter is a token bucket per source: an IPv4 address, or the /64 of an
// IPv6 address (one host usually owns a whole /64 and could otherwise pick a
// new address per registration). Not safe for concurrent use: the Relay's
// mutex guards it.
type limiter struct {
	rate    float64
	burst   float64
	buckets map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) limiter {
	return limiter{rate: rate, burst: float64(burst), buckets: map[netip.Addr]*bucket{}}
}

func limitKey(a netip.Addr) netip.Addr {
	if a.Is4() {
		return a
	}
	p, err := a.Prefix(64)
	if err != nil {
		return a
	}
	return p.Addr()
}

// allow takes a token from a's bucket if there is one.
func (l *limiter) allow(a netip.Addr, now time.Time) bool {
	k := limitKey(a)
	b := l.buckets[k]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			return false
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[k] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt*l.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep drops the buckets that have refilled: they behave as new ones.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}
