//go:build linux

package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"onair/internal/testutil"
)

// waitTimeout bounds every wait on a real process; tests normally take
// milliseconds, this only turns a hang into a failure.
const waitTimeout = 15 * time.Second

// harness runs one Child for a test and stops it at cleanup.
type harness struct {
	t      *testing.T
	c      *Child
	ctx    context.Context
	cancel context.CancelFunc
	runErr chan error
	logs   *observer.ObservedLogs

	mu     sync.Mutex
	starts []Instance
	exits  []error
}

// run builds a Child from spec (Path defaults to the fake child) and starts
// Run in a goroutine.
func run(t *testing.T, spec Spec, clock clockwork.Clock) *harness {
	t.Helper()
	h := newHarness(t, spec, clock)
	h.start()
	return h
}

// newHarness builds the Child; start runs it.
func newHarness(t *testing.T, spec Spec, clock clockwork.Clock) *harness {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "encoder-a"
	}
	if spec.Path == "" {
		spec.Path = testutil.BuildFakeChild(t)
	}
	h := &harness{t: t, runErr: make(chan error, 1)}
	onStart, onExit := spec.OnStart, spec.OnExit
	spec.OnStart = func(inst Instance) {
		h.mu.Lock()
		h.starts = append(h.starts, inst)
		h.mu.Unlock()
		if onStart != nil {
			onStart(inst)
		}
	}
	spec.OnExit = func(inst Instance, cause error) {
		h.mu.Lock()
		h.exits = append(h.exits, cause)
		h.mu.Unlock()
		if onExit != nil {
			onExit(inst, cause)
		}
	}
	obsCore, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(testutil.NilLogger(t).Core(), obsCore))
	c, err := New(spec, log, clock)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.c, h.logs = c, logs
	return h
}

func (h *harness) start() {
	h.ctx, h.cancel = context.WithCancel(context.Background())
	go func() { h.runErr <- h.c.Run(h.ctx) }()
	h.t.Cleanup(func() {
		if err := h.stop(); err != nil {
			h.t.Errorf("Run = %v, want nil", err)
		}
	})
}

// stop cancels Run and waits for it to return. Safe to call twice.
func (h *harness) stop() error {
	h.cancel()
	select {
	case err, ok := <-h.runErr:
		if ok {
			close(h.runErr)
		}
		return err
	case <-time.After(waitTimeout):
		h.t.Fatalf("Run did not return after cancel; status %+v", h.c.Status())
		return nil
	}
}

// waitFor waits, without polling, until pred holds for the child's status.
func (h *harness) waitFor(what string, pred func(Status) bool) Status {
	h.t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	for {
		ch := h.c.Changes()
		st := h.c.Status()
		if pred(st) {
			return st
		}
		select {
		case <-ch:
		case <-timeout.C:
			h.t.Fatalf("timed out waiting for %s; status %+v; output %q", what, st, h.c.Logs())
		}
	}
}

func (h *harness) waitState(s State, instance int) Status {
	h.t.Helper()
	return h.waitFor(fmt.Sprintf("%s, instance %d", s, instance), func(st Status) bool {
		return st.State == s && st.Instance == instance
	})
}

func (h *harness) exitCauses() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.exits...)
}

func (h *harness) startedPIDs() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	var pids []int
	for _, s := range h.starts {
		pids = append(pids, s.PID)
	}
	return pids
}

// blockUntilTimer waits until the fake clock has n pending timers.
func blockUntilTimer(t *testing.T, fc *clockwork.FakeClock, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := fc.BlockUntilContext(ctx, n); err != nil {
		t.Fatalf("waiting for %d timers: %v", n, err)
	}
}

// assertReaped fails unless pid no longer exists at all: a zombie (exited,
// not reaped) still answers kill(pid, 0).
func assertReaped(t *testing.T, pid int) {
	t.Helper()
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("kill(%d, 0) = %v, want ESRCH (process or zombie left behind)", pid, err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/proc/%d still exists (err %v)", pid, err)
	}
}

// readReady reads "ready PID" lines from r until it has n of them.
func readReady(t *testing.T, r *os.File, n int) []int {
	t.Helper()
	if err := r.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(r)
	var pids []int
	for len(pids) < n {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading fd 3 report: %v (have %d pids)", err, len(pids))
		}
		var pid int
		if _, err := fmt.Sscanf(line, "ready %d", &pid); err != nil {
			t.Fatalf("bad report line %q: %v", line, err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// pipeFiles is a Spec.ExtraFiles that hands the child the write end of a
// fresh pipe at fd 3 and sends the read end to the test.
func pipeFiles(readEnds chan<- *os.File) func() ([]*os.File, func(), error) {
	return func() ([]*os.File, func(), error) {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, nil, err
		}
		readEnds <- r
		// The child has its own copy of w; closing ours loses nothing.
		return []*os.File{w}, func() { _ = w.Close() }, nil
	}
}

func TestCrashLoopingChildBacksOff(t *testing.T) {
	fc := clockwork.NewFakeClock()
	h := run(t, Spec{
		Args:    []string{"-mode=crash", "-code=1"},
		Backoff: Backoff{Initial: time.Second, Max: 8 * time.Second},
	}, fc)

	for i, want := range []time.Duration{1, 2, 4, 8, 8, 8} {
		want *= time.Second
		st := h.waitState(StateBackoff, i+1)
		if got := st.RetryAt.Sub(st.Since); got != want {
			t.Errorf("instance %d: backoff %s, want %s", i+1, got, want)
		}
		if st.Restarts != i {
			t.Errorf("instance %d: Restarts = %d, want %d", i+1, st.Restarts, i)
		}
		if st.LastError != "exit status 1" {
			t.Errorf("instance %d: LastError = %q, want %q", i+1, st.LastError, "exit status 1")
		}
		if st.PID != 0 {
			t.Errorf("instance %d: PID = %d in backoff, want 0", i+1, st.PID)
		}
		blockUntilTimer(t, fc, 1)
		fc.Advance(want)
	}
	var exit *ExitError
	if causes := h.exitCauses(); len(causes) < 6 || !errors.As(causes[0], &exit) || exit.Code != 1 {
		t.Errorf("OnExit causes = %v, want *ExitError code 1", causes)
	}
	for _, pid := range h.startedPIDs() {
		assertReaped(t, pid)
	}
}

func TestBackoffResetsAfterHealthyRun(t *testing.T) {
	tests := []struct {
		name      string
		ran       time.Duration
		wantDelay time.Duration
	}{
		{"short run keeps growing", 59 * time.Second, 4 * time.Second},
		{"healthy run resets", 60 * time.Second, 1 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flag := filepath.Join(t.TempDir(), "crash")
			if err := os.WriteFile(flag, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			fc := clockwork.NewFakeClock()
			h := run(t, Spec{
				Args:    []string{"-mode=crashif", "-if=" + flag},
				Backoff: Backoff{Initial: time.Second, Max: 30 * time.Second, ResetAfter: time.Minute},
			}, fc)

			// Two crashes: 1 s, then 2 s.
			h.waitState(StateBackoff, 1)
			blockUntilTimer(t, fc, 1)
			fc.Advance(time.Second)
			h.waitState(StateBackoff, 2)
			if err := os.Remove(flag); err != nil {
				t.Fatal(err)
			}
			blockUntilTimer(t, fc, 1)
			fc.Advance(2 * time.Second)

			// Instance 3 runs for tt.ran, then segfaults (SIGKILL stands in).
			st := h.waitState(StateRunning, 3)
			fc.Advance(tt.ran)
			if err := unix.Kill(st.PID, unix.SIGKILL); err != nil {
				t.Fatal(err)
			}
			st = h.waitState(StateBackoff, 3)
			if got := st.RetryAt.Sub(st.Since); got != tt.wantDelay {
				t.Errorf("backoff after a %s run = %s, want %s", tt.ran, got, tt.wantDelay)
			}
			if st.LastError != "killed by signal: killed" {
				t.Errorf("LastError = %q, want %q", st.LastError, "killed by signal: killed")
			}
		})
	}
}

func TestRequestedRestartSkipsBackoff(t *testing.T) {
	t.Run("while running", func(t *testing.T) {
		fc := clockwork.NewFakeClock() // never advanced: any backoff would hang
		h := run(t, Spec{Args: []string{"-mode=sleep"}}, fc)
		first := h.waitState(StateRunning, 1)
		h.c.Restart(0, "lock lost")
		st := h.waitState(StateRunning, 2)
		if st.LastError != "restart requested: lock lost" || st.Restarts != 1 {
			t.Errorf("status = %+v, want LastError %q, Restarts 1", st, "restart requested: lock lost")
		}
		if causes := h.exitCauses(); len(causes) != 1 || !errors.Is(causes[0], ErrRestartRequested) {
			t.Errorf("OnExit causes = %v, want one ErrRestartRequested", causes)
		}
		assertReaped(t, first.PID)
	})
	t.Run("during backoff", func(t *testing.T) {
		fc := clockwork.NewFakeClock()
		h := run(t, Spec{Args: []string{"-mode=crash"}, Backoff: Backoff{Initial: time.Hour, Max: 4 * time.Hour}}, fc)
		h.waitState(StateBackoff, 1)
		h.c.Restart(0, "operator")
		st := h.waitState(StateBackoff, 2)
		// The requested start does not reset the crash count: still backing off.
		if got := st.RetryAt.Sub(st.Since); got != 2*time.Hour {
			t.Errorf("backoff after the next crash = %s, want 2h", got)
		}
	})
}

func TestStalledChildIsRestarted(t *testing.T) {
	tests := []struct {
		name      string
		progress  bool // one Progress call right after each start
		wantCause string
	}{
		{"never progressed", false, "stalled: no progress within 300ms of start"},
		{"progress stopped", true, "stalled: no progress for 200ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *Child
			spec := Spec{
				Args:         []string{"-mode=sleep"},
				StallTimeout: 200 * time.Millisecond,
				StartTimeout: 300 * time.Millisecond,
				Backoff:      Backoff{Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond},
			}
			if tt.progress {
				spec.OnStart = func(i Instance) { c.Progress(i.Seq) }
			}
			h := newHarness(t, spec, clockwork.NewRealClock())
			c = h.c
			h.start()
			st := h.waitState(StateRunning, 2)
			causes := h.exitCauses()
			if len(causes) == 0 || !errors.Is(causes[0], ErrStalled) || causes[0].Error() != tt.wantCause {
				t.Fatalf("OnExit causes = %v, want first %q (ErrStalled)", causes, tt.wantCause)
			}
			if st.Restarts != 1 {
				t.Errorf("Restarts = %d, want 1", st.Restarts)
			}
			assertReaped(t, h.startedPIDs()[0])
			if n := h.logs.FilterMessage("stalled, killing group").Len(); n == 0 {
				t.Error(`no "stalled, killing group" log entry`)
			}
		})
	}
}

func TestProgressKeepsChildAlive(t *testing.T) {
	fc := clockwork.NewFakeClock()
	h := run(t, Spec{
		Args:         []string{"-mode=sleep"},
		StallTimeout: 8 * time.Second,
		StartTimeout: 10 * time.Second,
	}, fc)
	h.waitState(StateRunning, 1)

	// Progress every 5 s for two minutes: well past both timeouts.
	for range 24 {
		blockUntilTimer(t, fc, 1) // the stall timer is armed
		h.c.Progress(1)
		fc.Advance(5 * time.Second)
	}
	blockUntilTimer(t, fc, 1)
	if st := h.c.Status(); st.State != StateRunning || st.Instance != 1 {
		t.Fatalf("after 2 min of progress: status %+v, want running instance 1", st)
	}

	// Progress stops: stalled after StallTimeout.
	fc.Advance(8 * time.Second)
	st := h.waitState(StateBackoff, 1)
	if st.LastError != "stalled: no progress for 8s" {
		t.Errorf("LastError = %q, want %q", st.LastError, "stalled: no progress for 8s")
	}
}

func TestCancelStopsChildAndReaps(t *testing.T) {
	h := run(t, Spec{Args: []string{"-mode=sleep"}, Grace: 10 * time.Second}, clockwork.NewRealClock())
	st := h.waitState(StateRunning, 1)

	start := time.Now()
	if err := h.stop(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %s: SIGTERM should have ended the child long before Grace", d)
	}
	assertReaped(t, st.PID)
	if st := h.c.Status(); st.State != StateStopped || st.PID != 0 || st.LastError != "stopped" {
		t.Errorf("status after Run = %+v, want stopped, PID 0, LastError stopped", st)
	}
	stopped := h.logs.FilterMessage("stopped").All()
	if len(stopped) != 1 || stopped[0].ContextMap()["exit"] != "killed by signal: terminated" {
		t.Errorf(`"stopped" log entries = %+v, want one with exit "killed by signal: terminated"`, stopped)
	}
}

func TestChildIgnoringSIGTERMIsKilledAfterGrace(t *testing.T) {
	const grace = 300 * time.Millisecond
	readEnds := make(chan *os.File, 4)
	h := run(t, Spec{
		Args:       []string{"-mode=ignoresigterm", "-spawn", "-report"},
		Grace:      grace,
		ExtraFiles: pipeFiles(readEnds),
	}, clockwork.NewRealClock())
	st := h.waitState(StateRunning, 1)
	r := <-readEnds
	// The read end: nothing to flush.
	defer func() { _ = r.Close() }()
	pids := readReady(t, r, 2) // child and grandchild, both ignoring SIGTERM now
	var grandchild int
	for _, pid := range pids {
		if pid != st.PID {
			grandchild = pid
		}
	}
	if grandchild == 0 {
		t.Fatalf("reported pids %v, want the child %d and a grandchild", pids, st.PID)
	}
	// Hold a pidfd so the grandchild's PID cannot be reused under us.
	pidfd, err := unix.PidfdOpen(grandchild, 0)
	if err != nil {
		t.Fatalf("pidfd_open(%d): %v", grandchild, err)
	}
	defer func() {
		if cerr := unix.Close(pidfd); cerr != nil {
			t.Error(cerr)
		}
	}()

	start := time.Now()
	if err = h.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if d := time.Since(start); d < grace {
		t.Errorf("stopped after %s, before the %s grace: SIGTERM was not ignored?", d, grace)
	}
	assertReaped(t, st.PID)
	if h.logs.FilterMessage("still alive after grace, killing group").Len() != 1 {
		t.Error("no escalation to SIGKILL logged")
	}

	// The grandchild is not our child, so we cannot reap it; it must be
	// dead. Its new parent (init) reaps it.
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(waitTimeout/time.Millisecond))
	if err != nil || n != 1 {
		t.Fatalf("grandchild %d still running after Run returned (poll %d, %v)", grandchild, n, err)
	}
	if err := unix.Kill(grandchild, 0); err == nil && !isZombie(grandchild) {
		t.Errorf("grandchild %d still alive", grandchild)
	}
}

// isZombie reports whether pid has exited and awaits reaping by its parent.
func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // gone meanwhile
	}
	// "pid (comm) S …": the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && (s[i+2] == 'Z' || s[i+2] == 'X')
}

func TestExtraFilesAreFreshForEachInstanceAtFD3(t *testing.T) {
	readEnds := make(chan *os.File, 4)
	h := run(t, Spec{Args: []string{"-mode=sleep", "-report"}, ExtraFiles: pipeFiles(readEnds)}, clockwork.NewRealClock())

	st := h.waitState(StateRunning, 1)
	r1 := <-readEnds
	defer func() { _ = r1.Close() }() // the read end: nothing to flush
	if pids := readReady(t, r1, 1); pids[0] != st.PID {
		t.Errorf("fd 3 of instance 1 reported pid %d, want %d", pids[0], st.PID)
	}

	h.c.Restart(0, "new socketpair")
	st = h.waitState(StateRunning, 2)
	r2 := <-readEnds
	defer func() { _ = r2.Close() }() // the read end: nothing to flush
	if pids := readReady(t, r2, 1); pids[0] != st.PID {
		t.Errorf("fd 3 of instance 2 reported pid %d, want %d", pids[0], st.PID)
	}

	// Instance 1 is dead and cleanup closed the parent's write end, so the
	// first pipe is at EOF. A leaked parent copy would block here instead.
	if err := r1.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := r1.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read from instance 1's pipe = %v, want EOF", err)
	}
}

func TestOutputIsCapturedInBoundedRing(t *testing.T) {
	h := run(t, Spec{
		Args:     []string{"-mode=lines", "-n=300", "-code=0"},
		LogLines: 200,
		Backoff:  Backoff{Initial: time.Hour, Max: time.Hour},
	}, clockwork.NewRealClock())
	st := h.waitState(StateBackoff, 1)
	if st.LastError != "exit status 0" {
		t.Errorf("LastError = %q, want %q", st.LastError, "exit status 0")
	}
	logs := h.c.Logs()
	if len(logs) != 200 || logs[0] != "line 100" || logs[199] != "line 299" {
		t.Fatalf("Logs() = %d lines [%q … %q], want 200 lines line 100 … line 299", len(logs), logs[0], logs[len(logs)-1])
	}
	// Every line, stdout and stderr alike, also went to the logger, tagged
	// with the child's name.
	out := h.logs.Filter(func(e observer.LoggedEntry) bool {
		return e.LoggerName == "output" && e.ContextMap()["child"] == "encoder-a"
	})
	if out.Len() != 300 {
		t.Errorf("%d output lines logged with child=encoder-a, want 300", out.Len())
	}
}

func TestStartFailureBacksOff(t *testing.T) {
	fc := clockwork.NewFakeClock()
	h := run(t, Spec{Path: "/nonexistent/onair-av"}, fc)
	st := h.waitFor("backoff after failed start", func(st Status) bool { return st.State == StateBackoff })
	if !strings.Contains(st.LastError, "no such file") || st.Instance != 0 {
		t.Errorf("status = %+v, want LastError about a missing file, Instance 0", st)
	}
	blockUntilTimer(t, fc, 1)
	fc.Advance(time.Second)
	st = h.waitFor("second backoff", func(st Status) bool { return st.State == StateBackoff && st.Restarts == 1 })
	if got := st.RetryAt.Sub(st.Since); got != 2*time.Second {
		t.Errorf("second backoff = %s, want 2s", got)
	}
}

func TestRunTwiceIsRefused(t *testing.T) {
	h := run(t, Spec{Args: []string{"-mode=sleep"}}, clockwork.NewRealClock())
	h.waitState(StateRunning, 1)
	if err := h.c.Run(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Errorf("second Run = %v, want ErrAlreadyRunning", err)
	}
}

func TestNewRejectsBadSpec(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
	}{
		{"no name", Spec{Path: "/bin/true"}},
		{"no path", Spec{Name: "x"}},
		{"negative grace", Spec{Name: "x", Path: "/bin/true", Grace: -1}},
		{"bad backoff", Spec{Name: "x", Path: "/bin/true", Backoff: Backoff{Initial: time.Hour}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.spec, nil, nil); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}

// The JSON shape is what the web page and onairctl read.
func TestStatusJSONIsSnakeCase(t *testing.T) {
	c, err := New(Spec{Name: "capture", Role: "capture", Path: "/bin/true"}, nil, clockwork.NewFakeClock())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c.Status())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"name":"capture"`, `"state":"stopped"`, `"last_error":`, `"restarts":0`, `"pid":0`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
	if strings.Contains(string(b), "retry_at") {
		t.Errorf("JSON %s has retry_at outside backoff", b)
	}
}
