// Package canary is the blue-green upgrade of the encoder worker on air:
// the twins make it possible. The standby encoder restarts with the new
// onair-av while the active one carries the stream; it is watched for
// Config.After (running, on time, no restart); then the switch moves to it
// (at once while the twins are locked, else at its next IDR that follows
// the stream without a gap), and the other encoder restarts with the new
// worker too. A new worker that fails before it carries the stream is
// rolled back: the standby runs the old one again. The viewer sees none of
// it: the stream always comes from an encoder that is running and on time.
//
// A worker that encodes bit for bit like the old one locks with it
// (Status.Identical) and is promoted at any frame; one built with other
// encoder settings cannot lock, is judged healthy alone, and takes over at
// a seamless IDR.
//
// Not for: choosing or checking the build (the update bundle's signature is
// update's business), starting processes (supervisor), or the switch
// itself (encoder). It only sequences what onaird already does, through
// Box.
package canary

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/web/api"
)

// Box is what the canary needs from onaird.
type Box interface {
	Status() api.Status
	// Worker is the program encoder name runs at its next start; SetWorker
	// changes it (the running instance is not touched).
	Worker(name string) string
	SetWorker(name, path string)
	// RestartEncoder restarts encoder name now: its new instance runs
	// Worker(name).
	RestartEncoder(name, reason string)
	// Failover swaps the active encoder: at once while the twins are
	// locked, else pending until the other's next seamless IDR.
	Failover() (target string, pending bool, err error)
}

// Config paces the canary. Zero fields take the defaults.
type Config struct {
	// After is how long the new worker runs on the standby before it is
	// promoted (update.canary_after) [30s].
	After time.Duration
	// StartTimeout bounds a restart with a worker until it runs [20s].
	StartTimeout time.Duration
	// SwitchTimeout bounds the wait for the switch to move to the new
	// worker (a seamless IDR comes every GOP) [15s].
	SwitchTimeout time.Duration
	// MaxLagFrames: a canary further behind capture than this is not on
	// time [30].
	MaxLagFrames int64
	// Poll is how often the status is read [100ms].
	Poll time.Duration
}

func (c Config) withDefaults() Config {
	if c.After <= 0 {
		c.After = 30 * time.Second
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 20 * time.Second
	}
	if c.SwitchTimeout <= 0 {
		c.SwitchTimeout = 15 * time.Second
	}
	if c.MaxLagFrames == 0 {
		c.MaxLagFrames = 30
	}
	if c.Poll <= 0 {
		c.Poll = 100 * time.Millisecond
	}
	return c
}

// ErrBusy is returned by Start while a canary runs.
var ErrBusy = errors.New("canary: one is running already")

// Canary runs one canary at a time. Create it with New, run it with Run,
// start one with Start.
type Canary struct {
	cfg   Config
	box   Box
	log   *zap.Logger
	clock clockwork.Clock
	reqs  chan string

	mu sync.Mutex
	st api.CanaryStatus
}

// New makes an idle canary.
func New(cfg Config, box Box, log *zap.Logger, clock clockwork.Clock) (*Canary, error) {
	if box == nil {
		return nil, errors.New("canary: no box")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	return &Canary{cfg: cfg.withDefaults(), box: box, log: log, clock: clock, reqs: make(chan string, 1),
		st: api.CanaryStatus{State: api.CanaryIdle}}, nil
}

// Status is the canary now.
func (c *Canary) Status() api.CanaryStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

func (c *Canary) set(f func(st *api.CanaryStatus)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.st.State
	f(&c.st)
	if c.st.State != prev {
		c.st.Since = c.clock.Now()
		c.log.Info("canary", zap.String("state", string(c.st.State)), zap.String("worker", c.st.Worker),
			zap.String("encoder", c.st.Encoder), zap.String("reason", c.st.Reason))
	}
}

// Start asks for a canary of worker (an absolute path to an executable).
// It returns at once; Run does the work. Refused: a worker that is not an
// executable file, a canary already running, twins that are not both
// running and locked (the stream must never hang on one encoder while the
// other tries a new build).
func (c *Canary) Start(worker string) error {
	if !filepath.IsAbs(worker) {
		return fmt.Errorf("canary: worker %q: want an absolute path", worker)
	}
	fi, err := os.Stat(worker)
	if err != nil {
		return fmt.Errorf("canary: worker: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("canary: worker %s: not an executable file", worker)
	}
	if err := twinsReady(c.box.Status()); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.st.State {
	case api.CanaryStarting, api.CanaryWatching, api.CanaryPromoting:
		return ErrBusy
	}
	select {
	case c.reqs <- worker:
	default:
		return ErrBusy
	}
	c.st = api.CanaryStatus{State: api.CanaryStarting, Worker: worker, Started: c.clock.Now(), Since: c.clock.Now()}
	return nil
}

func twinsReady(st api.Status) error {
	sw := st.Video.Switch
	if !sw.Twins || len(sw.Names) != 2 || len(sw.Alive) != 2 {
		return errors.New("canary: needs twin encoders (video.twins)")
	}
	if !sw.Alive[0] || !sw.Alive[1] || !sw.Locked {
		return errors.New("canary: the twins are not both running and locked: try again when they are")
	}
	return nil
}

// Run does the canaries asked for until ctx ends; it returns nil then. A
// canary cut short by ctx leaves the workers as they are (onaird is
// stopping: its next start runs the configured worker).
func (c *Canary) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case w := <-c.reqs:
			c.run(ctx, w)
		}
	}
}

// run is one canary.
func (c *Canary) run(ctx context.Context, worker string) {
	st := c.box.Status()
	sw := st.Video.Switch
	if err := twinsReady(st); err != nil {
		c.set(func(s *api.CanaryStatus) { s.State, s.Reason = api.CanaryRolledBack, err.Error() })
		return
	}
	cand, keeper := sw.Names[1], sw.Names[0]
	if sw.Active == cand {
		cand, keeper = keeper, cand
	}
	old := c.box.Worker(cand)
	c.set(func(s *api.CanaryStatus) { s.Encoder, s.Previous = cand, old })

	// 1. The standby restarts with the new worker.
	if err := c.restart(ctx, cand, worker, "canary: new worker "+worker); err != nil {
		c.rollback(ctx, cand, old, err.Error())
		return
	}
	// 2. Watched while the active encoder carries the stream.
	c.set(func(s *api.CanaryStatus) { s.State = api.CanaryWatching })
	if err := c.watch(ctx, cand, c.cfg.After, true); err != nil {
		c.rollback(ctx, cand, old, err.Error())
		return
	}
	if ctx.Err() != nil {
		return
	}
	// 3. Promotion: the switch moves to the new worker.
	c.set(func(s *api.CanaryStatus) { s.State = api.CanaryPromoting })
	if err := c.switchTo(ctx, cand); err != nil {
		c.rollback(ctx, cand, old, err.Error())
		return
	}
	// 4. The other encoder takes the new worker too.
	err := c.restart(ctx, keeper, worker, "canary: promoted, new worker "+worker)
	if err == nil {
		err = c.watch(ctx, keeper, c.cfg.After/2, false)
	}
	if err != nil {
		c.failed(ctx, keeper, old, cand, worker, err)
		return
	}
	c.set(func(s *api.CanaryStatus) {
		s.State, s.Reason = api.CanaryPromoted, fmt.Sprintf("%s and %s run %s", cand, keeper, worker)
	})
}

// failed: the new worker carries the stream on cand, but keeper would not
// run it: keeper goes back to the old worker.
func (c *Canary) failed(ctx context.Context, keeper, old, cand, worker string, err error) {
	c.box.SetWorker(keeper, old)
	c.box.RestartEncoder(keeper, "canary: "+keeper+" back to "+old)
	why := fmt.Sprintf("%s runs the new %s and carries the stream; %s failed with it (%v) and runs %s again", cand, worker, keeper, err, old)
	c.set(func(s *api.CanaryStatus) { s.State, s.Reason = api.CanaryFailed, why })
	_ = c.waitRunning(ctx, keeper, c.child(keeper).Instance)
}

// rollback gives cand its old worker back.
func (c *Canary) rollback(ctx context.Context, cand, old, why string) {
	c.box.SetWorker(cand, old)
	c.box.RestartEncoder(cand, "canary rolled back: "+why)
	c.set(func(s *api.CanaryStatus) { s.State, s.Reason = api.CanaryRolledBack, why })
	_ = c.waitRunning(ctx, cand, c.child(cand).Instance)
}

// restart restarts name with worker and waits until its new instance runs.
func (c *Canary) restart(ctx context.Context, name, worker, reason string) error {
	inst := c.child(name).Instance
	c.box.SetWorker(name, worker)
	c.box.RestartEncoder(name, reason)
	return c.waitRunning(ctx, name, inst)
}

// waitRunning waits until name runs an instance after inst.
func (c *Canary) waitRunning(ctx context.Context, name string, inst int) error {
	deadline := c.clock.Now().Add(c.cfg.StartTimeout)
	for {
		ch := c.child(name)
		if ch.Instance > inst && ch.State == "running" && ch.Frames > 0 {
			return nil
		}
		if !c.clock.Now().Before(deadline) {
			why := ch.LastError
			if why == "" {
				why = string(ch.State)
			}
			return fmt.Errorf("%s did not start with the new worker within %s (%s)", name, c.cfg.StartTimeout, why)
		}
		if !c.sleep(ctx) {
			return ctx.Err()
		}
	}
}

// watch checks name for d: it keeps its instance, runs, makes progress and
// stays within MaxLagFrames of capture. With judge (the new worker beside
// the old one), a lock with its twin marks the worker identical.
func (c *Canary) watch(ctx context.Context, name string, d time.Duration, judge bool) error {
	start := c.child(name)
	deadline := c.clock.Now().Add(d)
	for c.clock.Now().Before(deadline) {
		if !c.sleep(ctx) {
			return nil
		}
		st := c.box.Status()
		ch := childOf(st, name)
		switch {
		case ch.Instance != start.Instance:
			return fmt.Errorf("%s crashed with the new worker: %s", name, ch.LastError)
		case ch.State != "running": // it exited: in backoff or starting again
			return fmt.Errorf("%s crashed with the new worker (%s): %s", name, ch.State, ch.LastError)
		case ch.LagFrames > c.cfg.MaxLagFrames:
			return fmt.Errorf("%s runs %d frames behind capture with the new worker", name, ch.LagFrames)
		}
		if judge && st.Video.Switch.Locked {
			c.set(func(s *api.CanaryStatus) { s.Identical = true })
		}
	}
	if end := c.child(name); end.Frames <= start.Frames {
		return fmt.Errorf("%s made no progress with the new worker", name)
	}
	return nil
}

// switchTo makes name the active encoder.
func (c *Canary) switchTo(ctx context.Context, name string) error {
	if c.box.Status().Video.Switch.Active != name {
		if _, _, err := c.box.Failover(); err != nil {
			return fmt.Errorf("failover to %s: %w", name, err)
		}
	}
	deadline := c.clock.Now().Add(c.cfg.SwitchTimeout)
	for c.box.Status().Video.Switch.Active != name {
		if !c.clock.Now().Before(deadline) {
			return fmt.Errorf("the switch did not move to %s within %s (no seamless IDR)", name, c.cfg.SwitchTimeout)
		}
		if !c.sleep(ctx) {
			return ctx.Err()
		}
	}
	return nil
}

func (c *Canary) child(name string) api.ChildStatus { return childOf(c.box.Status(), name) }

func childOf(st api.Status, name string) api.ChildStatus {
	for _, ch := range st.Children {
		if ch.Name == name {
			return ch
		}
	}
	return api.ChildStatus{}
}

// sleep waits one Poll; false when ctx ended.
func (c *Canary) sleep(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-c.clock.After(c.cfg.Poll):
		return true
	}
}
