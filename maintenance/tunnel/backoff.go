package tunnel

import (
	"math/rand/v2"
	"time"

	"github.com/jonboulle/clockwork"
)

// healthyReset is how long a tunnel must have stayed up for the backoff to
// start over at its minimum (the supervisor's rule, STYLE §3).
const healthyReset = 60 * time.Second

// backoff is the wait between attempts: it doubles per failure from min up
// to max, each wait drawn in [d/2, d) but never under min (jitter, so that
// a fleet of boxes cut off together does not come back in lockstep), and
// starts over after a tunnel stayed up healthyReset.
type backoff struct {
	min, max time.Duration
	clock    clockwork.Clock
	jitter   func() float64 // in [0, 1); rand.Float64 outside tests

	next time.Duration // the ceiling of the next wait
	upAt time.Time     // when the current tunnel came up; zero when none is up
}

func newBackoff(lo, hi time.Duration, clock clockwork.Clock) *backoff {
	return &backoff{min: lo, max: hi, clock: clock, jitter: rand.Float64, next: lo}
}

// up records that a tunnel came up now.
func (b *backoff) up() { b.upAt = b.clock.Now() }

// failed records a failure (of an attempt or of a tunnel that was up) and
// returns how long to wait before the next attempt.
func (b *backoff) failed() time.Duration {
	if !b.upAt.IsZero() && b.clock.Since(b.upAt) >= healthyReset {
		b.next = b.min
	}
	b.upAt = time.Time{}
	d := b.next
	b.next = min(b.next*2, b.max)
	return max(b.min, d/2+time.Duration(b.jitter()*float64(d/2)))
}
