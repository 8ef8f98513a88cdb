package tunnel

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// limiter is a token bucket over bytes shared by every copy of the tunnel,
// both directions. It lends: a take larger than the tokens present goes
// into debt and waits until the debt is paid back at rate, so over any
// long window the bytes passed are at most rate × window + burst, however
// many copies share it and whatever their chunk sizes.
//
// It is written by hand because golang.org/x/time/rate is not in go.mod,
// and it waits on the injected clock so that tests measure it in fake time.
type limiter struct {
	clock clockwork.Clock
	rate  float64 // bytes per second
	burst float64 // bytes

	mu     sync.Mutex
	tokens float64 // may be negative: debt
	last   time.Time
}

// newLimiter returns a limiter passing kbps kbit/s that starts full.
func newLimiter(kbps int, clock clockwork.Clock) *limiter {
	rate := float64(kbps) * 1000 / 8
	burst := max(rate/4, float64(copyChunk)) // a quarter second, at least one chunk
	return &limiter{clock: clock, rate: rate, burst: burst, tokens: burst, last: clock.Now()}
}

// copyChunk is the most a copy moves per take.
const copyChunk = 16 << 10

// take takes n bytes' worth of tokens and waits until they are paid for,
// or until ctx ends (the tokens stay taken: the bytes are dropped with the
// connection anyway).
func (l *limiter) take(ctx context.Context, n int) error {
	l.mu.Lock()
	now := l.clock.Now()
	if el := now.Sub(l.last); el > 0 {
		l.tokens = min(l.burst, l.tokens+el.Seconds()*l.rate)
		l.last = now
	}
	l.tokens -= float64(n)
	var wait time.Duration
	if l.tokens < 0 {
		wait = time.Duration(-l.tokens / l.rate * float64(time.Second))
	}
	l.mu.Unlock()
	if wait <= 0 {
		return ctx.Err()
	}
	tm := l.clock.NewTimer(wait)
	defer tm.Stop()
	select {
	case <-tm.Chan():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// copy copies src to dst through l until src ends, a write fails or ctx
// ends, calling add with every count of bytes written. It returns the
// bytes copied.
func (l *limiter) copy(ctx context.Context, dst io.Writer, src io.Reader, add func(int)) (int64, error) {
	buf := make([]byte, min(copyChunk, int(l.burst)))
	var total int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if err := l.take(ctx, n); err != nil {
				return total, err
			}
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			add(w)
			if werr != nil {
				return total, werr
			}
			if w < n {
				return total, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}
