package abr

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"onair/internal/testutil"
)

// fakeSource is an SRT output that is not connected (the controller holds).
type fakeSource struct{}

func (*fakeSource) Sample() Sample { return Sample{} }

// fakeBitrate records SetBitrate calls and fails while fail is set.
type fakeBitrate struct {
	mu    sync.Mutex
	calls []int
	fail  bool
	ch    chan int
}

func (f *fakeBitrate) SetBitrate(kbps int) (uint64, error) {
	f.mu.Lock()
	f.calls = append(f.calls, kbps)
	fail := f.fail
	f.mu.Unlock()
	f.ch <- kbps
	if fail {
		return 0, errors.New("encoder: not running")
	}
	return uint64(len(f.calls)), nil
}

func (f *fakeBitrate) setFail(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = v
}

func TestNewRejectsBadConfigAndNilDependencies(t *testing.T) {
	good := Config{MinKbps: 500, MaxKbps: 6000, Latency: time.Second}
	for _, tc := range []struct {
		name string
		cfg  Config
		src  Source
		out  Bitrate
		want error
	}{
		{"bad config", Config{MinKbps: 500, MaxKbps: 100, Latency: time.Second}, &fakeSource{}, &fakeBitrate{}, ErrConfig},
		{"nil source", good, nil, &fakeBitrate{}, ErrNilDependency},
		{"nil bitrate", good, &fakeSource{}, nil, ErrNilDependency},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, tc.src, tc.out, nil, nil); !errors.Is(err, tc.want) {
				t.Fatalf("New: %v, want %v", err, tc.want)
			}
		})
	}
}

type abrHarness struct {
	a     *ABR
	src   *fakeSource
	out   *fakeBitrate
	clock *clockwork.FakeClock
	ctx   context.Context
	done  chan error
	steps chan struct{}
}

func startABR(t *testing.T, cfg Config) *abrHarness {
	t.Helper()
	h := &abrHarness{src: &fakeSource{}, out: &fakeBitrate{ch: make(chan int, 16)}, clock: clockwork.NewFakeClockAt(t0), done: make(chan error, 1)}
	a, err := New(cfg, h.src, h.out, testutil.NilLogger(t).Named("abr"), h.clock)
	if err != nil {
		t.Fatal(err)
	}
	h.steps = make(chan struct{}, 16)
	a.stepped = func() { h.steps <- struct{}{} }
	h.a = a
	ctx, cancel := context.WithCancel(context.Background())
	h.ctx = ctx
	go func() { h.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-h.done; err != nil {
			t.Errorf("Run: %v, want nil on cancel", err)
		}
	})
	return h
}

// wantSet waits for the end of the next step and checks it called
// SetBitrate(want) (no sleeping: channels).
func (h *abrHarness) wantSet(t *testing.T, want int) {
	t.Helper()
	h.waitStep(t)
	select {
	case got := <-h.out.ch:
		if got != want {
			t.Fatalf("SetBitrate(%d), want %d", got, want)
		}
	default:
		t.Fatalf("no SetBitrate(%d) in that step", want)
	}
}

// wantNoSet waits for the end of the next step and checks it set nothing.
func (h *abrHarness) wantNoSet(t *testing.T) {
	t.Helper()
	h.waitStep(t)
	select {
	case k := <-h.out.ch:
		t.Fatalf("SetBitrate(%d) with nothing to change", k)
	default:
	}
}

func (h *abrHarness) waitStep(t *testing.T) {
	t.Helper()
	select {
	case <-h.steps:
	case <-time.After(10 * time.Second):
		t.Fatal("Run made no step")
	}
}

// tick advances the fake clock by one interval once Run waits on it.
func (h *abrHarness) tick(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	if err := h.clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("Run never waited on its ticker: %v", err)
	}
	h.clock.Advance(100 * time.Millisecond)
}

// Run applies the start bitrate before the first tick, an operator cap on
// the next tick, and reports both in Status.
func TestRunAppliesStartThenOperatorCap(t *testing.T) {
	h := startABR(t, Config{MinKbps: 500, MaxKbps: 6000, Latency: time.Second})
	h.wantSet(t, 6000)
	st := h.a.Status()
	if st.Kbps != 6000 || st.Reason != "start" || !st.ABR || st.MinKbps != 500 || st.MaxKbps != 6000 || !st.ChangedAt.Equal(t0) {
		t.Fatalf("status after start %+v", st)
	}
	h.a.SetMax(2500)
	h.tick(t)
	h.wantSet(t, 2500)
	if st := h.a.Status(); st.Kbps != 2500 || st.MaxKbps != 2500 || st.Reason != "operator cap 2500 kbps" {
		t.Fatalf("status after SetMax %+v", st)
	}
}

// A failing SetBitrate (encoders restarting) is retried on the next tick
// and Status keeps the last bitrate the encoders accepted.
func TestRunRetriesFailedSetBitrate(t *testing.T) {
	h := startABR(t, Config{MinKbps: 500, MaxKbps: 6000, Latency: time.Second})
	h.wantSet(t, 6000)
	h.out.setFail(true)
	h.a.SetMax(3000)
	h.tick(t)
	h.wantSet(t, 3000)
	if st := h.a.Status(); st.Kbps != 6000 {
		t.Fatalf("status after a failed set: %d kbps, want the last accepted 6000", st.Kbps)
	}
	h.out.setFail(false)
	h.tick(t)
	h.wantSet(t, 3000)
	if st := h.a.Status(); st.Kbps != 3000 {
		t.Fatalf("status after the retry: %d kbps, want 3000", st.Kbps)
	}
	for range 3 {
		h.tick(t)
		h.wantNoSet(t)
	}
}
