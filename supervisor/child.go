// Package supervisor keeps onaird's child processes alive: the cgo onair-av
// binary in its capture, encoder and audio roles. Each Child runs one
// program in its own process group, restarts it with capped exponential
// backoff when it exits, kills and restarts it when it stops making progress
// (Progress), and on shutdown stops it with SIGTERM then SIGKILL and reaps
// it. It keeps the last lines the child printed for the web page and the CLI.
//
// The point is crash isolation (DESIGN.md "Crash domains"): a libav segfault
// or hang ends one child, never onaird, and never leaves a zombie, an orphan
// holding the camera, or a child outliving onaird (Pdeathsig).
//
// Not for: talking to the child (the wire protocol over the socketpair handed
// in through Spec.ExtraFiles is the caller's), deciding what "progress" means
// (the caller calls Progress), or restarting in-process goroutines. Linux
// only; elsewhere every start fails.
package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/web/api"
)

// Spec defaults.
const (
	DefaultGrace        = 5 * time.Second
	DefaultStartTimeout = 10 * time.Second
	DefaultLogLines     = 200
)

const (
	// maxLineLen bounds one captured output line; the rest of a longer line
	// is dropped and the kept part marked "[truncated]".
	maxLineLen = 16 << 10
	// outputDrain is how long a dead instance's output pipe is read before
	// giving up on EOF: only something that escaped the process group and
	// inherited the pipe keeps it open longer.
	outputDrain = 2 * time.Second
)

// Sentinel causes passed to Spec.OnExit and shown in Status.LastError.
// Check them with errors.Is.
var (
	// ErrStalled: the instance made no Progress for StallTimeout (or
	// StartTimeout after its start) and was killed.
	ErrStalled = errors.New("stalled")
	// ErrRestartRequested: Restart killed the instance.
	ErrRestartRequested = errors.New("restart requested")
	// ErrFailed: Fail killed the instance (it broke its contract); the
	// next start waits for the backoff like after a crash.
	ErrFailed = errors.New("failed")
	// ErrUnreaped: the instance did not die after SIGKILL within the stop
	// bound (stuck in the kernel, e.g. a wedged driver); Run returned anyway.
	ErrUnreaped = errors.New("not reaped after SIGKILL")
	// ErrStopped: Run's context was cancelled and the instance stopped.
	ErrStopped = errors.New("stopped")
	// ErrAlreadyRunning is returned by Run when another Run of the same
	// Child has not returned yet.
	ErrAlreadyRunning = errors.New("supervisor: run already in progress")
)

// Spec describes one supervised child program.
type Spec struct {
	// Name identifies the child in logs and Status ("encoder-a", "capture",
	// "audio-main"). Required.
	Name string
	// Role is the onair-av role ("capture", "encode", "audio"); informational.
	Role string
	// Path is the program to run. Required.
	Path string
	// Args are the arguments after the program name.
	Args []string
	// Env is the child's environment; nil inherits onaird's.
	Env []string
	// ExtraFiles, if set, is called before each start. The files it returns
	// become the child's fd 3, 4, …; cleanup (may be nil) runs right after
	// the start attempt, successful or not, to close the parent's copies.
	// Used to hand the child one end of a fresh socketpair per instance.
	ExtraFiles func() (files []*os.File, cleanup func(), err error)
	// Grace is how long a stopping child has between StopSignal and SIGKILL
	// to the group. Default 5 s.
	Grace time.Duration
	// StopSignal is sent to the group on shutdown. Default SIGTERM.
	StopSignal syscall.Signal
	// StallTimeout enables liveness from progress: an instance with no
	// Progress call for this long is SIGKILLed and restarted (with backoff).
	// 0 disables stall detection.
	StallTimeout time.Duration
	// StartTimeout is how long a new instance may take to make its first
	// progress when StallTimeout is set (opening a device, codec setup).
	// Default 10 s.
	StartTimeout time.Duration
	// Backoff paces restarts after crashes and stalls; zero fields take the
	// defaults (1 s, 30 s, 60 s).
	Backoff Backoff
	// LogLines is how many output lines Logs keeps. Default 200.
	LogLines int
	// OnStart, if set, is called from Run after each successful start. It
	// must not block for long: the instance is not watched meanwhile.
	OnStart func(inst Instance)
	// OnExit, if set, is called from Run after each instance is reaped, with
	// the cause: an *ExitError, or an error wrapping ErrStalled,
	// ErrRestartRequested or ErrStopped. Same rule as OnStart.
	OnExit func(inst Instance, cause error)
}

// Instance identifies one started process of a Child.
type Instance struct {
	Number  int       // 1 for the first successful start, then 2, 3, …
	Seq     uint64    // Number as the key of Progress, Restart and Fail
	PID     int       // also the process group ID
	Started time.Time // clock time of the start
}

// Status is a snapshot of a Child for the web page and onairctl; the type
// lives in the API package so that clients share it.
type Status = api.ProcessStatus

// ExitError describes how an instance ended on its own.
type ExitError struct {
	Code     int            // exit status; -1 when killed by a signal
	Signal   syscall.Signal // the killing signal, or 0
	CoreDump bool
}

// Error returns "exit status N" or "killed by signal: NAME".
func (e *ExitError) Error() string {
	if e.Signal == 0 {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	s := "killed by signal: " + e.Signal.String()
	if e.CoreDump {
		s += " (core dumped)"
	}
	return s
}

// Child supervises one Spec. Create it with New and call Run once; the other
// methods are safe to call from any goroutine at any time.
type Child struct {
	spec  Spec
	log   *zap.Logger // supervision events
	out   *zap.Logger // the child's own output lines
	clock clockwork.Clock
	epoch time.Time // clock time at New; progress is kept as an offset from it
	ring  *lineRing

	// lastProgress is clock.Since(epoch)+1 ns at the last Progress call, 0
	// if none. An offset from a monotonic reading, not a wall time: the box
	// has no RTC and its wall clock jumps at the first NTP sync.
	lastProgress atomic.Int64
	restartCh    chan request  // pending Restart or Fail, capacity 1
	cur          atomic.Uint64 // Seq of the running instance, 0 while none runs
	active       atomic.Bool   // Run in progress
	// waitExit waits for a process to exit without reaping it; a field so
	// a test can stand in for a process stuck in the kernel.
	waitExit func(pid int) error

	pathMu sync.Mutex
	path   string // SetPath's program, "" for spec.Path

	mu       sync.Mutex
	st       Status
	attempts int
	changed  chan struct{} // closed and replaced on every status change
}

// New checks spec, fills in its defaults and returns a stopped Child. A nil
// log discards logs; a nil clock is the real clock.
func New(spec Spec, log *zap.Logger, clock clockwork.Clock) (*Child, error) {
	if spec.Name == "" {
		return nil, errors.New("supervisor: spec has no name")
	}
	if spec.Path == "" {
		return nil, fmt.Errorf("supervisor: %s: spec has no path", spec.Name)
	}
	if spec.Grace < 0 || spec.StallTimeout < 0 || spec.StartTimeout < 0 || spec.LogLines < 0 {
		return nil, fmt.Errorf("supervisor: %s: negative grace, timeout or log lines", spec.Name)
	}
	if err := spec.Backoff.Validate(); err != nil {
		return nil, fmt.Errorf("supervisor: %s: %w", spec.Name, err)
	}
	spec.Backoff = spec.Backoff.WithDefaults()
	if spec.Grace == 0 {
		spec.Grace = DefaultGrace
	}
	if spec.StopSignal == 0 {
		spec.StopSignal = syscall.SIGTERM
	}
	if spec.StartTimeout == 0 {
		spec.StartTimeout = DefaultStartTimeout
	}
	if spec.LogLines == 0 {
		spec.LogLines = DefaultLogLines
	}
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	log = log.With(zap.String("child", spec.Name), zap.String("role", spec.Role))
	now := clock.Now()
	return &Child{
		spec:      spec,
		log:       log,
		out:       log.Named("output"),
		clock:     clock,
		epoch:     now,
		ring:      newLineRing(spec.LogLines),
		restartCh: make(chan request, 1),
		waitExit:  waitExitNoReap,
		st:        Status{Name: spec.Name, Role: spec.Role, State: StateStopped, Since: now, Binary: spec.Path},
		changed:   make(chan struct{}),
	}, nil
}

// SetPath changes the program the next instance runs (the running one is
// not touched: Restart it to switch): the on-air canary of a new encoder
// worker. It does not check the file; a start that fails is a failure like
// any other.
func (c *Child) SetPath(path string) {
	c.pathMu.Lock()
	defer c.pathMu.Unlock()
	c.path = path
}

// Path is the program the next instance runs.
func (c *Child) Path() string {
	c.pathMu.Lock()
	defer c.pathMu.Unlock()
	if c.path != "" {
		return c.path
	}
	return c.spec.Path
}

// Run starts the child and keeps it running until ctx is cancelled: after
// each exit or stall it restarts it with backoff, after Restart at once. On
// cancel it sends StopSignal to the process group, SIGKILL to the group
// after Grace, reaps the instance and returns nil. If the instance is not
// reaped within Grace after the SIGKILL either (stuck in the kernel), Run
// returns an error wrapping ErrUnreaped instead of hanging the stop. It returns ErrAlreadyRunning if called while
// another Run of c is in progress.
func (c *Child) Run(ctx context.Context) error {
	if !c.active.CompareAndSwap(false, true) {
		return fmt.Errorf("supervisor: %s: %w", c.spec.Name, ErrAlreadyRunning)
	}
	defer c.active.Store(false)

	failures := 0 // consecutive, for the backoff
loop:
	for ctx.Err() == nil {
		inst, err := c.start()
		if err != nil {
			failures++
			c.log.Error("start failed", zap.Error(err), zap.Int("failures", failures))
			c.update(func(st *Status) { st.LastError, st.LastExit = err.Error(), c.clock.Now() })
			if !c.backoff(ctx, failures) {
				break
			}
			continue
		}
		healthy, cause := c.watch(ctx, inst)
		switch {
		case errors.Is(cause, ErrStopped):
			break loop
		case errors.Is(cause, ErrRestartRequested):
			continue // requested, not a failure: no backoff
		case errors.Is(cause, ErrUnreaped) && ctx.Err() != nil:
			c.setState(StateStopped)
			return fmt.Errorf("supervisor: %s: %w", c.spec.Name, cause)
		}
		if healthy >= c.spec.Backoff.ResetAfter {
			failures = 0
		}
		failures++
		if !c.backoff(ctx, failures) {
			break
		}
	}
	c.setState(StateStopped)
	c.log.Info("supervision ended")
	return nil
}

// Progress records that instance seq made progress (a packet arrived). A
// seq that is not the running instance is ignored: packets still draining
// from a killed instance never count for its successor. It is lock-free and
// cheap enough to call per packet.
func (c *Child) Progress(seq uint64) {
	if seq == 0 || seq != c.cur.Load() {
		return
	}
	c.lastProgress.Store(int64(c.clock.Since(c.epoch)) + 1)
}

// request is a pending Restart or Fail.
type request struct {
	seq    uint64 // the instance it is for; 0: whatever runs (operator)
	reason string
	fail   bool
}

// Restart SIGKILLs instance seq's process group; Run starts a new instance
// at once, without backoff. seq 0 means the current instance, and during
// backoff it cuts the wait short (an operator's restart). A request for an
// instance that is no longer running is ignored, so a late request can never
// kill its successor. It does not block; requests made while one is pending
// are merged. reason ends up in Status.LastError.
func (c *Child) Restart(seq uint64, reason string) { c.request(request{seq: seq, reason: reason}) }

// Fail SIGKILLs instance seq like Restart, but counts it as a failure: the
// next start waits for the backoff, so a child that keeps breaking its
// contract is not restarted in a tight loop.
func (c *Child) Fail(seq uint64, reason string) {
	c.request(request{seq: seq, reason: reason, fail: true})
}

func (c *Child) request(r request) {
	if r.seq != 0 && r.seq != c.cur.Load() {
		c.log.Debug("request for an instance that is gone: ignored", zap.Uint64("instance", r.seq), zap.String("reason", r.reason))
		return
	}
	select {
	case c.restartCh <- r:
	default:
		c.log.Info("restart already pending", zap.String("reason", r.reason))
	}
}

// Status returns a snapshot of the child's state.
func (c *Child) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// Changes returns a channel that is closed at the next change of Status.
// Get the channel, then read Status, then wait: no change is missed.
func (c *Child) Changes() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Logs returns the last Spec.LogLines lines the child wrote to stdout or
// stderr (both go to one pipe, so their order is kept), oldest first,
// across instances.
func (c *Child) Logs() []string { return c.ring.snapshot() }

// update applies f to the status under the lock and wakes Changes waiters.
func (c *Child) update(f func(st *Status)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.st)
	close(c.changed)
	c.changed = make(chan struct{})
}

// setState enters s. Leaving backoff clears RetryAt.
func (c *Child) setState(s State) {
	now := c.clock.Now()
	c.update(func(st *Status) {
		st.State, st.Since = s, now
		if s != StateBackoff {
			st.RetryAt = time.Time{}
		}
	})
}

// instance is one started process and its two helper goroutines (output
// reader, reaper).
type instance struct {
	Instance
	cmd      *exec.Cmd
	startOff time.Duration // clock.Since(epoch) just before the start
	done     chan struct{} // closed once reaped and its output drained
	cause    error         // how it ended; written before done is closed
}

// start runs ExtraFiles and forks the program. It enters starting, and
// running on success.
func (c *Child) start() (*instance, error) {
	// A Restart requested while nothing was running is satisfied by this start.
	select {
	case <-c.restartCh:
	default:
	}
	now := c.clock.Now()
	c.update(func(st *Status) {
		c.attempts++
		if c.attempts > 1 {
			st.Restarts++
		}
		st.State, st.Since, st.RetryAt = StateStarting, now, time.Time{}
	})

	if err := platformErr(); err != nil {
		return nil, err
	}
	var files []*os.File
	if c.spec.ExtraFiles != nil {
		fs, cleanup, err := c.spec.ExtraFiles()
		if err != nil {
			return nil, fmt.Errorf("supervisor: %s: extra files: %w", c.spec.Name, err)
		}
		if cleanup != nil {
			defer cleanup()
		}
		files = fs
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("supervisor: %s: output pipe: %w", c.spec.Name, err)
	}
	path := c.Path()
	c.update(func(st *Status) { st.Binary = path })
	cmd := exec.Command(path, c.spec.Args...)
	cmd.Env = c.spec.Env
	// An *os.File is handed to the child as is: no copying goroutine in
	// os/exec, and Wait does not wait for grandchildren holding the pipe.
	cmd.Stdout, cmd.Stderr = w, w
	cmd.ExtraFiles = files
	cmd.SysProcAttr = sysProcAttr()
	startOff := c.clock.Since(c.epoch)
	err = cmd.Start()
	_ = w.Close() // the child has its own copy of the write end
	if err != nil {
		_ = r.Close() // nothing was read; the start error is the one to report
		return nil, fmt.Errorf("supervisor: %s: start %s: %w", c.spec.Name, path, err)
	}

	now = c.clock.Now()
	var inst *instance
	c.update(func(st *Status) {
		st.Instance++
		st.PID = cmd.Process.Pid
		st.State, st.Since = StateRunning, now
		inst = &instance{
			Instance: Instance{Number: st.Instance, Seq: uint64(st.Instance), PID: cmd.Process.Pid, Started: now},
			cmd:      cmd,
			startOff: startOff,
			done:     make(chan struct{}),
		}
		c.cur.Store(inst.Seq) // before the status shows the instance running
	})
	outDone := make(chan struct{})
	go c.readOutput(r, outDone)
	go c.reap(inst, r, outDone)
	c.log.Info("started", zap.Int("instance", inst.Number), zap.Int("pid", inst.PID))
	if c.spec.OnStart != nil {
		c.spec.OnStart(inst.Instance)
	}
	return inst, nil
}

// watch waits for the instance to exit, stall, be restarted or be stopped,
// makes sure it is reaped, and records the cause. healthy is how long it
// ran (up to its last progress, for a stall).
func (c *Child) watch(ctx context.Context, inst *instance) (healthy time.Duration, cause error) {
	var stallC <-chan time.Time
	var stallT clockwork.Timer
	if c.spec.StallTimeout > 0 {
		stallT = c.clock.NewTimer(c.spec.StartTimeout)
		defer stallT.Stop()
		stallC = stallT.Chan()
	}
	fields := []zap.Field{zap.Int("instance", inst.Number), zap.Int("pid", inst.PID)}
wait:
	for {
		select {
		case <-inst.done:
			cause, healthy = inst.cause, c.clock.Since(inst.Started)
			c.log.Warn("exited", append(fields, zap.String("cause", cause.Error()), zap.Duration("ran", healthy))...)
			break wait
		case <-ctx.Done():
			if c.stop(inst, fields) {
				cause = ErrStopped
				c.log.Info("stopped", append(fields, zap.String("exit", inst.cause.Error()))...)
			} else {
				cause = fmt.Errorf("%w: stop gave up after %s", ErrUnreaped, 2*c.spec.Grace+c.reapBound())
				c.log.Error("[unexpected] not dead after SIGKILL: stop goes on without it", append(fields, zap.Error(cause))...)
			}
			break wait
		case req := <-c.restartCh:
			if req.seq != 0 && req.seq != inst.Seq {
				continue
			}
			if req.fail {
				cause = fmt.Errorf("%w: %s", ErrFailed, req.reason)
			} else {
				cause = fmt.Errorf("%w: %s", ErrRestartRequested, req.reason)
			}
			c.log.Info("restart requested, killing group", append(fields, zap.String("reason", req.reason), zap.Bool("failure", req.fail))...)
			if !c.kill(inst, fields, 0) {
				cause = fmt.Errorf("%w: %w", ErrUnreaped, cause)
			}
			break wait
		case <-stallC:
			idle, limit, progressed := c.idle(inst)
			if idle < limit {
				stallT.Reset(limit - idle)
				continue
			}
			if progressed {
				cause = fmt.Errorf("%w: no progress for %s", ErrStalled, limit)
				healthy = time.Duration(c.lastProgress.Load()-1) - inst.startOff
			} else {
				cause = fmt.Errorf("%w: no progress within %s of start", ErrStalled, limit)
			}
			c.setState(StateStalled)
			c.log.Warn("stalled, killing group", append(fields, zap.String("cause", cause.Error()))...)
			if !c.kill(inst, fields, 0) {
				cause = fmt.Errorf("%w: %w", ErrUnreaped, cause)
			}
			break wait
		}
	}
	c.cur.Store(0)
	now := c.clock.Now()
	c.update(func(st *Status) { st.PID, st.LastError, st.LastExit = 0, cause.Error(), now })
	if c.spec.OnExit != nil {
		c.spec.OnExit(inst.Instance, cause)
	}
	return healthy, cause
}

// idle returns how long inst has gone without progress, the limit that
// applies, and whether it made any progress at all.
func (c *Child) idle(inst *instance) (idle, limit time.Duration, progressed bool) {
	now := c.clock.Since(c.epoch)
	if last := c.lastProgress.Load(); last > int64(inst.startOff) {
		return now - time.Duration(last-1), c.spec.StallTimeout, true
	}
	return now - inst.startOff, c.spec.StartTimeout, false
}

// stop asks the group to exit with StopSignal, SIGKILLs it after Grace, and
// waits until the instance is reaped — for a bounded time: false means it
// gave up (the process is stuck in the kernel), so a stop never hangs.
func (c *Child) stop(inst *instance, fields []zap.Field) bool {
	c.setState(StateStopping)
	if err := signalGroup(inst.PID, c.spec.StopSignal); err != nil {
		c.log.Error("[unexpected] signal group", append(fields, zap.Error(err))...)
	}
	t := c.clock.NewTimer(c.spec.Grace)
	select {
	case <-inst.done:
		t.Stop()
		return true
	case <-t.Chan():
	}
	c.log.Warn("still alive after grace, killing group", append(fields, zap.Duration("grace", c.spec.Grace))...)
	return c.kill(inst, fields, c.reapBound())
}

// reapBound is how long a stop waits for the reap after SIGKILL (beyond
// Grace) before it gives up.
func (c *Child) reapBound() time.Duration { return c.spec.Grace }

// kill SIGKILLs the group and waits until the instance is reaped. SIGKILL
// cannot be ignored, but a process stuck in the kernel (a wedged V4L2
// driver) dies only when it leaves it. After Grace it says so; then it
// waits another bound (0: for good) and reports false if the instance is
// still not reaped.
func (c *Child) kill(inst *instance, fields []zap.Field, bound time.Duration) bool {
	if err := signalGroup(inst.PID, syscall.SIGKILL); err != nil {
		c.log.Error("[unexpected] kill group", append(fields, zap.Error(err))...)
	}
	t := c.clock.NewTimer(c.spec.Grace)
	defer t.Stop()
	select {
	case <-inst.done:
		return true
	case <-t.Chan():
		c.log.Error("[unexpected] not dead after SIGKILL, still waiting", fields...)
	}
	if bound <= 0 {
		<-inst.done
		return true
	}
	b := c.clock.NewTimer(bound)
	defer b.Stop()
	select {
	case <-inst.done:
		return true
	case <-b.Chan():
		return false
	}
}

// reap waits for the instance's leader to exit, SIGKILLs whatever is left in
// its group, reaps the leader, waits for the output to drain, and closes
// inst.done.
func (c *Child) reap(inst *instance, out *os.File, outDone <-chan struct{}) {
	if err := c.waitExit(inst.PID); err != nil {
		c.log.Error("[unexpected] waitid", zap.Int("pid", inst.PID), zap.Error(err))
	}
	// The leader is dead but not reaped, so its PID (the group ID) cannot
	// have been reused: helpers it forked must not outlive it holding the
	// camera or the socketpair.
	if err := signalGroup(inst.PID, syscall.SIGKILL); err != nil {
		c.log.Error("[unexpected] kill group after exit", zap.Int("pid", inst.PID), zap.Error(err))
	}
	werr := inst.cmd.Wait()
	// Every writer is dead or dying, so EOF is near. The deadline matters
	// only if something outside the group inherited the pipe.
	_ = out.SetReadDeadline(time.Now().Add(outputDrain))
	<-outDone
	inst.cause = exitCause(inst.cmd.ProcessState, werr)
	close(inst.done)
}

// exitCause turns a reaped process's state into an *ExitError.
func exitCause(ps *os.ProcessState, werr error) error {
	if ps == nil {
		return fmt.Errorf("supervisor: wait: %w", werr)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return &ExitError{Code: -1, Signal: ws.Signal(), CoreDump: ws.CoreDump()}
	}
	return &ExitError{Code: ps.ExitCode()}
}

// readOutput copies the child's output, line by line, into the ring and the
// log until EOF (or the drain deadline), then closes r.
func (c *Child) readOutput(r *os.File, done chan<- struct{}) {
	defer close(done)
	defer func() { _ = r.Close() }() // the read end: nothing to flush
	br := bufio.NewReaderSize(r, maxLineLen)
	for {
		line, err := readLine(br)
		if line != "" || err == nil {
			c.ring.add(line)
			logChildLine(c.out, parseChildLine(line))
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.log.Warn("[unexpected] output pipe still open after the group died; something outside the group holds it")
		}
		if err != nil {
			return
		}
	}
}

// readLine reads one line without its line ending. A line longer than the
// reader's buffer is cut there, marked "[truncated]", and the rest of it
// skipped.
func readLine(br *bufio.Reader) (string, error) {
	b, err := br.ReadSlice('\n')
	line := string(bytes.TrimRight(b, "\r\n"))
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n')
		}
		line += " [truncated]"
	}
	return line, err
}

// backoff waits Backoff.Delay(failures) in the backoff state. It returns
// false if ctx was cancelled meanwhile; a Restart cuts the wait short.
func (c *Child) backoff(ctx context.Context, failures int) bool {
	delay := c.spec.Backoff.Delay(failures)
	now := c.clock.Now()
	c.update(func(st *Status) { st.State, st.Since, st.RetryAt = StateBackoff, now, now.Add(delay) })
	c.log.Info("restarting after backoff", zap.Duration("delay", delay), zap.Int("failures", failures))
	t := c.clock.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.Chan():
			return true
		case req := <-c.restartCh:
			if req.seq != 0 {
				// for an instance that is already gone: the backoff stands
				c.log.Debug("restart of a gone instance ignored during backoff", zap.String("reason", req.reason))
				continue
			}
			c.log.Info("restart requested, skipping backoff", zap.String("reason", req.reason))
			return true
		}
	}
}
