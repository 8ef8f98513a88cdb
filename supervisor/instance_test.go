//go:build linux

package supervisor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// Found in review: packets still draining from a killed encoder counted as
// progress of its new instance, so a successor that never started working
// was not seen as stalled.
func TestProgressOfAKilledInstanceDoesNotKeepItsSuccessorAlive(t *testing.T) {
	fc := clockwork.NewFakeClock()
	h := run(t, Spec{Args: []string{"-mode=sleep"}, StallTimeout: 8 * time.Second, StartTimeout: 10 * time.Second}, fc)
	h.waitState(StateRunning, 1)
	h.c.Restart(1, "test")
	h.waitState(StateRunning, 2)
	// instance 1's tail keeps "progressing" while instance 2 does nothing
	for range 3 {
		blockUntilTimer(t, fc, 1)
		h.c.Progress(1)
		fc.Advance(4 * time.Second)
	}
	st := h.waitFor("instance 2 stalled", func(st Status) bool { return st.Instance >= 2 && st.State == StateBackoff })
	if !errors.Is(h.exitCauses()[1], ErrStalled) {
		t.Fatalf("instance 2 ended with %v, want a stall; status %+v", h.exitCauses()[1], st)
	}
}

// A restart asked for an instance that has already been replaced (the
// request raced with a crash) must not kill the healthy successor.
func TestLateRestartOfAnOldInstanceDoesNotKillItsSuccessor(t *testing.T) {
	h := run(t, Spec{Args: []string{"-mode=sleep"}}, clockwork.NewFakeClock())
	h.waitState(StateRunning, 1)
	h.c.Restart(1, "first")
	second := h.waitState(StateRunning, 2)
	h.c.Restart(1, "late, for instance 1")
	h.c.Restart(2, "for instance 2")
	third := h.waitState(StateRunning, 3)
	if len(h.exitCauses()) != 2 {
		t.Fatalf("exits %v, want 2: the late request for instance 1 killed instance 2 too", h.exitCauses())
	}
	assertReaped(t, second.PID)
	if third.LastError != "restart requested: for instance 2" {
		t.Errorf("LastError %q", third.LastError)
	}
}

// A child that keeps breaking its wire contract is killed with Fail: that
// is a failure, and the next start waits for the backoff (no tight loop).
func TestFailIsAFailureAndWaitsForTheBackoff(t *testing.T) {
	fc := clockwork.NewFakeClock()
	h := run(t, Spec{Args: []string{"-mode=sleep"}, Backoff: Backoff{Initial: time.Hour, Max: 2 * time.Hour}}, fc)
	h.waitState(StateRunning, 1)
	h.c.Fail(1, "wire: video from an audio chain")
	st := h.waitState(StateBackoff, 1)
	if got := st.RetryAt.Sub(st.Since); got != time.Hour {
		t.Fatalf("backoff %s after Fail, want 1h", got)
	}
	if !errors.Is(h.exitCauses()[0], ErrFailed) {
		t.Fatalf("cause %v, want ErrFailed", h.exitCauses()[0])
	}
	h.c.Fail(1, "again, for the dead instance") // ignored: the backoff stands
	if st := h.c.Status(); st.State != StateBackoff || st.Instance != 1 {
		t.Fatalf("status %+v after a request for the gone instance", st)
	}
}

// A process stuck in the kernel (a wedged V4L2 driver) dies only when it
// leaves it. Stopping onaird must not hang on it: after SIGTERM, Grace,
// SIGKILL and another Grace, Run gives up, says so and returns.
func TestStopNeverHangsOnAChildStuckInTheKernel(t *testing.T) {
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	h := newHarness(t, Spec{Args: []string{"-mode=sleep"}, Grace: 50 * time.Millisecond}, clockwork.NewRealClock())
	h.c.waitExit = func(int) error { <-stuck; return nil }
	done := make(chan error, 1)
	ctx, cancel := contextWithCancel()
	go func() { done <- h.c.Run(ctx) }()
	h.waitState(StateRunning, 1)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnreaped) {
			t.Fatalf("Run = %v, want ErrUnreaped", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run hung on a child that is never reaped")
	}
	if st := h.c.Status(); st.State != StateStopped || st.LastError == "" {
		t.Errorf("status %+v: want stopped, with the reason", st)
	}
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
