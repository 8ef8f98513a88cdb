package supervisor

import (
	"fmt"
	"time"
)

// Default backoff values (STYLE.md point 3).
const (
	DefaultBackoffInitial    = 1 * time.Second
	DefaultBackoffMax        = 30 * time.Second
	DefaultBackoffResetAfter = 60 * time.Second
)

// Backoff is a capped exponential delay between crash restarts: Initial,
// 2×Initial, 4×Initial, … up to Max. The count of consecutive failures, and
// with it the delay, starts over once an instance has run healthy for
// ResetAfter. A zero field takes its default (1 s, 30 s, 60 s).
type Backoff struct {
	Initial    time.Duration // first delay; default 1 s
	Max        time.Duration // cap; default 30 s
	ResetAfter time.Duration // healthy run time that resets the failure count; default 60 s
}

// WithDefaults returns b with every zero field set to its default.
func (b Backoff) WithDefaults() Backoff {
	if b.Initial == 0 {
		b.Initial = DefaultBackoffInitial
	}
	if b.Max == 0 {
		b.Max = DefaultBackoffMax
	}
	if b.ResetAfter == 0 {
		b.ResetAfter = DefaultBackoffResetAfter
	}
	return b
}

// Validate reports a negative field or a cap below the initial delay. It
// checks the values after defaults are applied.
func (b Backoff) Validate() error {
	d := b.WithDefaults()
	switch {
	case d.Initial < 0 || d.Max < 0 || d.ResetAfter < 0:
		return fmt.Errorf("backoff: negative duration in %+v", b)
	case d.Max < d.Initial:
		return fmt.Errorf("backoff: max %s is below initial %s", d.Max, d.Initial)
	}
	return nil
}

// Delay returns the wait before the restart that follows the n-th
// consecutive failure (n >= 1): Initial×2^(n-1), capped at Max. n < 1 is
// treated as 1.
func (b Backoff) Delay(n int) time.Duration {
	b = b.WithDefaults()
	d := b.Initial
	for i := 1; i < n; i++ {
		if d >= b.Max/2 { // doubling would reach or pass the cap (and never overflows)
			return b.Max
		}
		d *= 2
	}
	return min(d, b.Max)
}
