package supervisor

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/web/api"
)

// ComponentSpec describes one in-process component of onaird.
type ComponentSpec struct {
	// Name identifies it in logs and status ("output", "api").
	Name string
	// Vital: when it fails the whole box cannot go on (only the frame
	// cadence is): Group.Run ends with its error and systemd restarts
	// onaird. Every other component is restarted with Backoff.
	Vital bool
	// Run is the component's blocking Run. Returning nil before ctx is done
	// means it has finished its job: it is not restarted.
	Run func(ctx context.Context) error
	// Backoff paces restarts; zero fields take the defaults.
	Backoff Backoff
}

// ComponentStatus is one component's state for the status API.
//
// States and their transitions:
//
//	stopped  -> running    Group.Run started it
//	running  -> backoff    its Run failed (error or panic): restarted after the backoff
//	backoff  -> running    the backoff elapsed
//	running  -> stopped    ctx done, or its Run returned nil (finished)
//	backoff  -> stopped    ctx done
//	running  -> failed     a vital component failed: Group.Run ends
type ComponentStatus = api.Component

// Component states (the same type as a child's state).
const (
	StateFailed State = "failed" // a vital component failed
)

// ErrPanic wraps a panic recovered from a component's Run.
var ErrPanic = errors.New("panic")

// Group runs onaird's in-process components, each restarted with capped
// backoff when it fails, so that one failing part (a web listener that
// cannot bind, later an uplink, the power client) leaves the box on air and
// says so in status and the log. A panic in a component is recovered and
// counts as a failure: no component can crash onaird.
type Group struct {
	log   *zap.Logger
	clock clockwork.Clock

	mu    sync.Mutex
	comps []*component
	ran   bool
}

type component struct {
	spec ComponentSpec
	st   ComponentStatus
	// cancel ends the current run (nil between runs); restart, when set,
	// is why Restart asked for it.
	cancel  context.CancelFunc
	restart string
}

// NewGroup makes an empty group. A nil log discards; a nil clock is real.
func NewGroup(log *zap.Logger, clock clockwork.Clock) *Group {
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	return &Group{log: log, clock: clock}
}

// Add registers a component; only before Run.
func (g *Group) Add(spec ComponentSpec) error {
	if spec.Name == "" || spec.Run == nil {
		return errors.New("supervisor: component needs a name and a Run")
	}
	if err := spec.Backoff.Validate(); err != nil {
		return fmt.Errorf("supervisor: component %s: %w", spec.Name, err)
	}
	spec.Backoff = spec.Backoff.WithDefaults()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ran {
		return fmt.Errorf("supervisor: component %s added after Run", spec.Name)
	}
	for _, c := range g.comps {
		if c.spec.Name == spec.Name {
			return fmt.Errorf("supervisor: component %s added twice", spec.Name)
		}
	}
	g.comps = append(g.comps, &component{spec: spec, st: ComponentStatus{
		Name: spec.Name, State: StateStopped, Vital: spec.Vital, Since: g.clock.Now()}})
	return nil
}

// Run runs every component until ctx is done, then waits for all of them
// to return and returns nil. If a vital component fails, Run stops the
// others and returns its error.
func (g *Group) Run(ctx context.Context) error {
	g.mu.Lock()
	g.ran = true
	comps := append([]*component(nil), g.comps...)
	g.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var once sync.Once
	var vitalErr error
	for _, c := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.loop(ctx, c); err != nil {
				once.Do(func() { vitalErr = err })
				cancel()
			}
		}()
	}
	wg.Wait()
	return vitalErr
}

// loop runs one component and restarts it; it returns an error only when a
// vital component failed.
func (g *Group) loop(ctx context.Context, c *component) error {
	log := g.log.With(zap.String("component", c.spec.Name))
	failures := 0
	for {
		runCtx, cancel := context.WithCancel(ctx)
		g.mu.Lock()
		c.cancel = cancel
		g.setLocked(c, func(st *ComponentStatus) { st.State = StateRunning })
		g.mu.Unlock()
		started := g.clock.Now()
		err := runSafe(runCtx, c.spec.Run)
		ownEnd := runCtx.Err() == nil // it returned before anyone cancelled it
		cancel()
		g.mu.Lock()
		c.cancel = nil
		why := c.restart
		c.restart = ""
		g.mu.Unlock()
		if why != "" && !ownEnd && ctx.Err() == nil {
			log.Info("component restarted on request", zap.String("reason", why), zap.NamedError("run_returned", err))
			g.set(c, func(st *ComponentStatus) {
				st.LastError = "restarted: " + why
				st.Restarts++
			})
			continue // at once: a requested restart is not a failure
		}
		if ctx.Err() != nil {
			g.set(c, func(st *ComponentStatus) { st.State = StateStopped })
			return nil
		}
		if err == nil {
			log.Info("component finished")
			g.set(c, func(st *ComponentStatus) { st.State = StateStopped })
			return nil
		}
		if c.spec.Vital {
			log.Error("vital component failed: stopping the box", zap.Error(err))
			g.set(c, func(st *ComponentStatus) { st.State, st.LastError = StateFailed, err.Error() })
			return fmt.Errorf("supervisor: vital component %s: %w", c.spec.Name, err)
		}
		if g.clock.Since(started) >= c.spec.Backoff.ResetAfter {
			failures = 0
		}
		failures++
		delay := c.spec.Backoff.Delay(failures)
		log.Warn("component failed: restarting after backoff", zap.Error(err), zap.Duration("delay", delay), zap.Int("failures", failures))
		g.set(c, func(st *ComponentStatus) {
			st.State, st.LastError = StateBackoff, err.Error()
			st.Restarts++
		})
		t := g.clock.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			g.set(c, func(st *ComponentStatus) { st.State = StateStopped })
			return nil
		case <-t.Chan():
		}
	}
}

// runSafe calls run and turns a panic into an error.
func runSafe(ctx context.Context, run func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v [unexpected]\n%s", ErrPanic, r, debug.Stack())
		}
	}()
	return run(ctx)
}

func (g *Group) set(c *component, f func(st *ComponentStatus)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.setLocked(c, f)
}

func (g *Group) setLocked(c *component, f func(st *ComponentStatus)) {
	prev := c.st.State
	f(&c.st)
	if c.st.State != prev {
		c.st.Since = g.clock.Now()
	}
}

// ErrUnknownComponent is wrapped by Restart's error for a name not in the
// group.
var ErrUnknownComponent = errors.New("supervisor: no such component")

// Restart ends the named component's current run (its ctx is cancelled)
// and starts it again at once, without backoff; reason ends up in its
// LastError. A vital component is refused: its end would stop the box. A
// component in backoff starts at its timer, as before.
func (g *Group) Restart(name, reason string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.comps {
		if c.spec.Name != name {
			continue
		}
		if c.spec.Vital {
			return fmt.Errorf("supervisor: %s is vital: restarting it would stop the box", name)
		}
		if c.cancel == nil {
			return fmt.Errorf("supervisor: %s is not running (%s)", name, c.st.State)
		}
		c.restart = reason
		c.cancel()
		return nil
	}
	return fmt.Errorf("%w: %q", ErrUnknownComponent, name)
}

// Status returns every component's state, in the order they were added.
func (g *Group) Status() []ComponentStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]ComponentStatus, len(g.comps))
	for i, c := range g.comps {
		out[i] = c.st
	}
	return out
}

// State returns the state of the named component and whether it exists.
func (g *Group) State(name string) (ComponentStatus, bool) {
	for _, st := range g.Status() {
		if st.Name == name {
			return st, true
		}
	}
	return ComponentStatus{}, false
}
