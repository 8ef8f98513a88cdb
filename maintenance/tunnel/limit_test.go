package tunnel

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// zeros is an endless source.
type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

type counter struct{ n atomic.Int64 }

func (c *counter) Write(b []byte) (int, error) { c.n.Add(int64(len(b))); return len(b), nil }

// Both directions of every tunnelled connection share one bucket: two
// copies flat out pass rate_kbps together, measured in fake time.
func TestRateLimitHoldsBothDirectionsTogetherToRateKbps(t *testing.T) {
	const kbps = 800 // 100 000 B/s
	const rate = kbps * 1000 / 8
	clock := clockwork.NewFakeClock()
	lim := newLimiter(kbps, clock)
	ctx, cancel := context.WithCancel(context.Background())
	var in, out counter
	var wg sync.WaitGroup
	for _, c := range []*counter{&in, &out} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = lim.copy(ctx, c, zeros{}, func(int) {})
		}()
	}
	defer func() { cancel(); wg.Wait() }()

	total := func() int64 { return in.n.Load() + out.n.Load() }
	const step, steps = 100 * time.Millisecond, 100 // 10 s of fake time
	var atHalf int64
	for i := range steps {
		bctx, bcancel := context.WithTimeout(ctx, 5*time.Second)
		err := clock.BlockUntilContext(bctx, 2) // both copies wait for tokens
		bcancel()
		if err != nil {
			t.Fatalf("step %d: the copies did not wait for tokens: %v", i, err)
		}
		if i == steps/2 {
			atHalf = total()
		}
		clock.Advance(step)
	}
	if err := clock.BlockUntilContext(ctx, 2); err != nil {
		t.Fatal(err)
	}
	got, secs := total(), float64(steps)*step.Seconds()
	slack := int64(lim.burst) + 2*copyChunk
	if lo, hi := int64(rate*secs)-2*copyChunk, int64(rate*secs)+slack; got < lo || got > hi {
		t.Fatalf("%d bytes in %.0f s, want %d..%d (%d B/s)", got, secs, lo, hi, rate)
	}
	// Steady state, past the initial burst: the rate itself.
	half := float64(got-atHalf) / (secs / 2)
	if half < rate*0.95 || half > rate*1.05 {
		t.Fatalf("%.0f B/s in the second half, want %d ±5%%", half, rate)
	}
	if in.n.Load() == 0 || out.n.Load() == 0 {
		t.Fatalf("one direction starved: in %d out %d", in.n.Load(), out.n.Load())
	}
	t.Logf("%d bytes in %.0f s of fake time (in %d, out %d), %.0f B/s steady", got, secs, in.n.Load(), out.n.Load(), half)
}

func TestRateLimitWaitEndsWithTheContext(t *testing.T) {
	clock := clockwork.NewFakeClock()
	lim := newLimiter(64, clock)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lim.take(ctx, 10*copyChunk) }()
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("take returned nil after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("take did not return after cancel")
	}
}
