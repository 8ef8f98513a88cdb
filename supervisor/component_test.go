package supervisor

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// waitComponent polls the group's status (a test helper: bounded).
func waitComponent(t *testing.T, g *Group, name string, pred func(ComponentStatus) bool) ComponentStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st, ok := g.State(name); ok && pred(st) {
			return st
		}
		time.Sleep(time.Millisecond)
	}
	st, _ := g.State(name)
	t.Fatalf("component %s never reached the state; last %+v", name, st)
	return st
}

// The fault: every component ran bare in one errgroup, so a web
// listener that could not bind took the box off air. An optional component
// that fails is retried with backoff and the others go on.
func TestFailingOptionalComponentIsRetriedAndTheBoxGoesOn(t *testing.T) {
	fc := clockwork.NewFakeClock()
	g := NewGroup(nil, fc)
	var tries atomic.Int32
	var cadenceRunning atomic.Bool
	must(t, g.Add(ComponentSpec{Name: "cadence", Vital: true, Run: func(ctx context.Context) error {
		cadenceRunning.Store(true)
		<-ctx.Done()
		return nil
	}}))
	must(t, g.Add(ComponentSpec{Name: "api", Backoff: Backoff{Initial: time.Second, Max: 4 * time.Second}, Run: func(context.Context) error {
		tries.Add(1)
		return errors.New("listen tcp 127.0.0.1:8080: bind: address already in use")
	}}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	st := waitComponent(t, g, "api", func(st ComponentStatus) bool { return st.State == StateBackoff })
	if !strings.Contains(st.LastError, "address already in use") || st.Restarts != 1 || st.Vital {
		t.Fatalf("api status %+v", st)
	}
	for want := int32(2); want <= 4; want++ {
		if err := fc.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		fc.Advance(4 * time.Second)
		waitComponent(t, g, "api", func(st ComponentStatus) bool { return tries.Load() >= want && st.State == StateBackoff })
	}
	if c, _ := g.State("cadence"); c.State != StateRunning || !cadenceRunning.Load() {
		t.Fatalf("cadence %+v: must keep running", c)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after a clean stop", err)
	}
	for _, st := range g.Status() {
		if st.State != StateStopped {
			t.Errorf("%s is %s after stop", st.Name, st.State)
		}
	}
}

// No input can crash onaird: a panic in a component is a failure of that
// component, logged with its stack, and it is restarted.
func TestPanickingComponentIsRecoveredAndRestarted(t *testing.T) {
	fc := clockwork.NewFakeClock()
	g := NewGroup(nil, fc)
	must(t, g.Add(ComponentSpec{Name: "panel", Run: func(context.Context) error {
		var m map[string]int
		m["x"]++ //nolint:staticcheck // SA5000 on purpose: the test needs a runtime panic (nil map write)
		return nil
	}}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = g.Run(ctx) }()
	st := waitComponent(t, g, "panel", func(st ComponentStatus) bool { return st.State == StateBackoff })
	if !strings.Contains(st.LastError, "panic") || !strings.Contains(st.LastError, "nil map") {
		t.Fatalf("last error %q", st.LastError)
	}
}

func TestVitalFailureEndsTheGroupWithItsError(t *testing.T) {
	g := NewGroup(nil, clockwork.NewFakeClock())
	stopped := make(chan struct{})
	must(t, g.Add(ComponentSpec{Name: "cadence", Vital: true, Run: func(context.Context) error { return errors.New("ring gone") }}))
	must(t, g.Add(ComponentSpec{Name: "api", Run: func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil }}))
	err := g.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ring gone") {
		t.Fatalf("Run = %v, want the vital error", err)
	}
	<-stopped // the others were stopped before Run returned
	if st, _ := g.State("cadence"); st.State != StateFailed {
		t.Fatalf("cadence %+v", st)
	}
}

func TestFinishedComponentIsNotRestarted(t *testing.T) {
	g := NewGroup(nil, clockwork.NewFakeClock())
	var n atomic.Int32
	must(t, g.Add(ComponentSpec{Name: "once", Run: func(context.Context) error { n.Add(1); return nil }}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx) }()
	waitComponent(t, g, "once", func(st ComponentStatus) bool { return n.Load() == 1 && st.State == StateStopped })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if n.Load() != 1 {
		t.Fatalf("ran %d times", n.Load())
	}
}

func TestAddRejectsDuplicatesAndLateAdds(t *testing.T) {
	g := NewGroup(nil, nil)
	run := func(context.Context) error { return nil }
	must(t, g.Add(ComponentSpec{Name: "a", Run: run}))
	if g.Add(ComponentSpec{Name: "a", Run: run}) == nil {
		t.Error("duplicate accepted")
	}
	if g.Add(ComponentSpec{Name: "b"}) == nil {
		t.Error("component without Run accepted")
	}
	_ = g.Run(context.Background())
	if g.Add(ComponentSpec{Name: "c", Run: run}) == nil {
		t.Error("add after Run accepted")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// onairctl restart COMPONENT: the component runs again at once, without
// backoff and without counting a failure; the vital one and unknown names
// are refused, and nothing else is touched.
func TestRestartRequestRunsTheComponentAgainAtOnce(t *testing.T) {
	g := NewGroup(nil, clockwork.NewFakeClock())
	var runs atomic.Int32
	must(t, g.Add(ComponentSpec{Name: "cadence", Vital: true, Run: func(ctx context.Context) error { <-ctx.Done(); return nil }}))
	must(t, g.Add(ComponentSpec{Name: "recording", Backoff: Backoff{Initial: time.Hour, Max: time.Hour}, Run: func(ctx context.Context) error {
		runs.Add(1)
		<-ctx.Done()
		return ctx.Err()
	}}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	waitComponent(t, g, "recording", func(st ComponentStatus) bool { return st.State == StateRunning && runs.Load() == 1 })
	if err := g.Restart("recording", "operator: onairctl restart"); err != nil {
		t.Fatal(err)
	}
	st := waitComponent(t, g, "recording", func(st ComponentStatus) bool { return runs.Load() == 2 && st.State == StateRunning })
	if st.Restarts != 1 || st.LastError != "restarted: operator: onairctl restart" {
		t.Errorf("after a restart: %+v", st)
	}
	if err := g.Restart("cadence", "x"); err == nil || !strings.Contains(err.Error(), "vital") {
		t.Errorf("restart of the vital component: %v", err)
	}
	if err := g.Restart("nope", "x"); !errors.Is(err, ErrUnknownComponent) {
		t.Errorf("restart of an unknown component: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
