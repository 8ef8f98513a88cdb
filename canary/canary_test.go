package canary

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap/zaptest"

	"onair/web/api"
)

// fakeBox is twin encoders as the status shows them: each restart is a new
// instance that makes progress; a "crash" worker dies after a few reads;
// two workers lock unless one of them encodes differently.
type fakeBox struct {
	mu        sync.Mutex
	st        api.Status
	workers   map[string]string
	crash     string // this worker's instances die after 5 reads
	differ    string // this worker encodes differently: never locks with another
	reads     map[string]int
	pending   bool
	failovers int
}

func newFakeBox() *fakeBox {
	b := &fakeBox{workers: map[string]string{"encoder-a": "/old", "encoder-b": "/old"}, reads: map[string]int{}}
	b.st.Video.Switch = api.SwitchStatus{Twins: true, Locked: true, Active: "encoder-a", Names: []string{"encoder-a", "encoder-b"}, Alive: []bool{true, true}}
	for _, n := range []string{"encoder-a", "encoder-b"} {
		b.st.Children = append(b.st.Children, api.ChildStatus{ProcessStatus: api.ProcessStatus{Name: n, State: "running", Instance: 1, Binary: "/old"}, Frames: 1})
	}
	return b
}

func (b *fakeBox) Status() api.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.st.Children {
		c := &b.st.Children[i]
		c.Frames++
		b.reads[c.Name]++
		if b.workers[c.Name] == b.crash && b.crash != "" && b.reads[c.Name] > 5 {
			c.Instance++
			c.LastError = "killed by signal: segmentation fault"
			b.reads[c.Name] = 0
		}
	}
	wa, wb := b.workers["encoder-a"], b.workers["encoder-b"]
	b.st.Video.Switch.Locked = wa == wb || (wa != b.differ && wb != b.differ)
	if b.pending { // the other's next seamless IDR
		b.pending = false
		b.swap()
	}
	st := b.st
	st.Children = append([]api.ChildStatus(nil), b.st.Children...)
	return st
}

func (b *fakeBox) swap() {
	sw := &b.st.Video.Switch
	if sw.Active == "encoder-a" {
		sw.Active = "encoder-b"
	} else {
		sw.Active = "encoder-a"
	}
}

func (b *fakeBox) Worker(name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.workers[name]
}

func (b *fakeBox) SetWorker(name, path string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.workers[name] = path
}

func (b *fakeBox) RestartEncoder(name, _ string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.st.Children {
		if c := &b.st.Children[i]; c.Name == name {
			c.Instance++
			c.Binary = b.workers[name]
			b.reads[name] = 0
		}
	}
}

func (b *fakeBox) Failover() (string, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failovers++
	if b.st.Video.Switch.Locked {
		b.swap()
		return b.st.Video.Switch.Active, false, nil
	}
	b.pending = true
	return "", true, nil
}

func worker(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCanary(t *testing.T, b *fakeBox, w string) api.CanaryStatus {
	t.Helper()
	c, err := New(Config{After: 200 * time.Millisecond, Poll: 2 * time.Millisecond, StartTimeout: 5 * time.Second}, b, zaptest.NewLogger(t), clockwork.NewRealClock())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	ctx, cancel := contextWithCancel()
	go func() { defer close(done); _ = c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if err := c.Start(w); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		switch st := c.Status(); st.State {
		case api.CanaryPromoted, api.CanaryRolledBack, api.CanaryFailed:
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the canary never ended: %+v", c.Status())
	return api.CanaryStatus{}
}

func TestIdenticalWorkerIsPromotedOnTheStandbyFirstWithTheTwinsLocked(t *testing.T) {
	b := newFakeBox()
	w := worker(t, "onair-av-new")
	st := runCanary(t, b, w)
	if st.State != api.CanaryPromoted || !st.Identical || st.Encoder != "encoder-b" || st.Previous != "/old" {
		t.Fatalf("status %+v", st)
	}
	if b.Worker("encoder-a") != w || b.Worker("encoder-b") != w || b.st.Video.Switch.Active != "encoder-b" || b.failovers != 1 {
		t.Errorf("workers %v, active %s, %d failovers", b.workers, b.st.Video.Switch.Active, b.failovers)
	}
}

func TestWorkerWithOtherSettingsTakesOverAtASeamlessIDR(t *testing.T) {
	b := newFakeBox()
	w := worker(t, "onair-av-preset")
	b.differ = w
	st := runCanary(t, b, w)
	if st.State != api.CanaryPromoted || st.Identical {
		t.Fatalf("status %+v; want promoted, not identical", st)
	}
	if b.st.Video.Switch.Active != "encoder-b" || b.Worker("encoder-a") != w {
		t.Errorf("active %s, workers %v", b.st.Video.Switch.Active, b.workers)
	}
}

func TestCrashingWorkerIsRolledBackAndNeverCarriesTheStream(t *testing.T) {
	b := newFakeBox()
	w := worker(t, "onair-av-crash")
	b.crash = w
	st := runCanary(t, b, w)
	if st.State != api.CanaryRolledBack || !strings.Contains(st.Reason, "crashed") || !strings.Contains(st.Reason, "segmentation fault") {
		t.Fatalf("status %+v; want rolled back saying it crashed", st)
	}
	if b.Worker("encoder-b") != "/old" || b.Worker("encoder-a") != "/old" || b.failovers != 0 || b.st.Video.Switch.Active != "encoder-a" {
		t.Errorf("workers %v, %d failovers, active %s; want the old worker back and no switch", b.workers, b.failovers, b.st.Video.Switch.Active)
	}
}

func TestStartRefusesUnlockedTwinsAMissingWorkerAndASecondCanary(t *testing.T) {
	b := newFakeBox()
	c, err := New(Config{After: time.Hour}, b, zaptest.NewLogger(t), clockwork.NewRealClock())
	if err != nil {
		t.Fatal(err)
	}
	w := worker(t, "onair-av-new")
	if err := c.Start("relative/onair-av"); err == nil {
		t.Error("a relative path was accepted")
	}
	if err := c.Start(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing worker was accepted")
	}
	notExec := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(notExec); err == nil || !strings.Contains(err.Error(), "not an executable") {
		t.Errorf("a non-executable worker: %v", err)
	}
	b.mu.Lock()
	b.st.Video.Switch.Alive[1] = false
	b.mu.Unlock()
	if err := c.Start(w); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("twins not both running: %v", err)
	}
	b.mu.Lock()
	b.st.Video.Switch.Alive[1] = true
	b.mu.Unlock()
	if err := c.Start(w); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(w); !errors.Is(err, ErrBusy) {
		t.Errorf("a second canary: %v; want ErrBusy", err)
	}
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
