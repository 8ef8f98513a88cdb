package update

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/internal/version"
	"onair/web/api"
)

// DefaultPoll is how often the Marker samples Healthy during a trial.
const DefaultPoll = time.Second

// MarkerConfig configures the Marker.
type MarkerConfig struct {
	// HealthyAfter is how long Healthy must hold without a break.
	HealthyAfter time.Duration
	// Deadline is how long after Run starts the trial may take to get
	// there; past it the trial is abandoned (0:
	// DefaultTrialDeadlineFactor × HealthyAfter).
	Deadline time.Duration
}

// MarkerConfig is the Marker's part of c.
func (c Config) MarkerConfig() MarkerConfig {
	return MarkerConfig{HealthyAfter: c.HealthyAfter, Deadline: c.Deadline()}
}

// MarkerDeps are the Marker's collaborators.
type MarkerDeps struct {
	// Boot is the bootloader (required).
	Boot Bootloader
	// Healthy reports whether the box is healthy now (onaird: on air,
	// twins locked, output connected). Required; called from Run only.
	Healthy func() bool
	Log     *zap.Logger
	Clock   clockwork.Clock
	// Poll is how often Healthy is sampled (0: DefaultPoll). Healthy is a
	// function of three components' states, not an event; a dip shorter
	// than Poll can go unseen, which a window of minutes tolerates.
	Poll time.Duration
	// Version is the running build's (empty: internal/version.Version).
	Version string
}

// State is where the update is (api.UpdateState, whose comment lists the
// transitions).
type State = api.UpdateState

// Status is the update's side of the box for the status page and onairctl.
type Status = api.UpdateStatus

// Marker makes a trial boot permanent once the box has been healthy for
// HealthyAfter without a break: it marks the running slot good (the new
// default). A trial that does not get there by the deadline is abandoned:
// its tries are set to 0, so the next boot, whenever it comes, returns to
// the old slot; the Marker does not reboot (that is the daemon's call, never
// while on air) and the box runs on meanwhile. A trial slot that never
// gets onaird this far (a kernel panic, a hang the watchdog resets, an
// onaird that fails at every start: on a trial boot the generator
// rootfs/overlay/usr/lib/systemd/system-generators/onair-trial makes ten
// failed starts reboot) burns a try at every boot until the bootloader
// falls back.
//
// On a boot that is not a trial the Marker only reports.
type Marker struct {
	cfg     MarkerConfig
	boot    Bootloader
	healthy func() bool
	log     *zap.Logger
	clock   clockwork.Clock
	poll    time.Duration

	mu      sync.Mutex
	st      Status
	changed chan struct{} // closed (and replaced) on every change of st
}

// New returns a Marker. It reads nothing yet: Run does.
func New(cfg MarkerConfig, deps MarkerDeps) (*Marker, error) {
	if cfg.HealthyAfter <= 0 {
		return nil, fmt.Errorf("update: update.healthy_after: %s: must be positive", cfg.HealthyAfter)
	}
	if cfg.Deadline == 0 {
		cfg.Deadline = DefaultTrialDeadlineFactor * cfg.HealthyAfter
	}
	if cfg.Deadline <= cfg.HealthyAfter {
		return nil, fmt.Errorf("update: update.trial_deadline: %s: must be longer than update.healthy_after (%s)", cfg.Deadline, cfg.HealthyAfter)
	}
	if deps.Boot == nil || deps.Healthy == nil {
		return nil, errors.New("update: marker needs a bootloader and a health check")
	}
	if deps.Log == nil {
		deps.Log = zap.NewNop()
	}
	if deps.Clock == nil {
		deps.Clock = clockwork.NewRealClock()
	}
	if deps.Poll <= 0 {
		deps.Poll = DefaultPoll
	}
	if deps.Version == "" {
		deps.Version = version.Version
	}
	m := &Marker{
		cfg: cfg, boot: deps.Boot, healthy: deps.Healthy, log: deps.Log, clock: deps.Clock, poll: deps.Poll,
		changed: make(chan struct{}),
	}
	m.st = Status{Version: deps.Version, Since: m.clock.Now()}
	return m, nil
}

// Status returns the state now.
func (m *Marker) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st
}

// changes returns a channel closed at the next change of Status.
func (m *Marker) changes() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// set applies f to the status and enters state (Since moves only when the
// state does).
func (m *Marker) set(state State, f func(*Status)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st.State != state {
		m.st.State, m.st.Since = state, m.clock.Now()
	}
	if f != nil {
		f(&m.st)
	}
	close(m.changed)
	m.changed = make(chan struct{})
}

// show copies the boot state into the status.
func (m *Marker) show(state State, bs BootState) {
	m.set(state, func(s *Status) {
		s.Slot, s.Good = string(bs.Booted), bs.Good(bs.Booted)
		s.Trial, s.TriesLeft, s.Next = string(bs.Trial), bs.TriesLeft, string(bs.Next())
	})
}

// classify names a boot state:
//
//	running the trial slot                      trial
//	running the default, trial with tries left  pending
//	running the default, trial with none        rolled_back
//	running the default, no trial               good
func classify(bs BootState) State {
	switch {
	case bs.Trial != "" && bs.Booted == bs.Trial:
		return api.UpdateTrial
	case bs.Trial != "" && bs.TriesLeft > 0:
		return api.UpdatePending
	case bs.Trial != "":
		return api.UpdateRolledBack
	}
	return api.UpdateGood
}

// Run reads the boot state and, on a trial boot, watches Healthy until the
// slot is marked good or abandoned; then it waits for ctx. It returns ctx's
// error, or the error of reading the boot state (a restart retries).
func (m *Marker) Run(ctx context.Context) error {
	bs, err := m.boot.State()
	if err != nil {
		m.set(api.UpdateError, func(s *Status) { s.LastError = err.Error() })
		return err
	}
	state := classify(bs)
	m.show(state, bs)
	m.log.Info("boot state", zap.String("state", string(state)), zap.String("slot", string(bs.Booted)),
		zap.String("trial", string(bs.Trial)), zap.Int("tries_left", bs.TriesLeft))
	if state == api.UpdateTrial {
		if err := m.watch(ctx, bs.Booted); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

// watch samples Healthy every poll until it has held for HealthyAfter
// (MarkGood) or the deadline passed (abandon). A bootloader write that
// fails is retried at the next sample.
func (m *Marker) watch(ctx context.Context, slot Slot) error {
	log := m.log.With(zap.String("slot", string(slot)))
	deadline := m.clock.Now().Add(m.cfg.Deadline)
	var since time.Time
	for {
		now := m.clock.Now()
		if m.healthy() {
			if since.IsZero() {
				since = now
				log.Info("trial: healthy", zap.Duration("marking_good_after", m.cfg.HealthyAfter))
			}
		} else if !since.IsZero() {
			since = time.Time{}
			log.Info("trial: no longer healthy; the wait starts again")
		}
		m.set(api.UpdateTrial, func(s *Status) { s.HealthySince = since })
		if !since.IsZero() && now.Sub(since) >= m.cfg.HealthyAfter && m.markGood(log, slot, now.Sub(since)) {
			return nil
		}
		if !now.Before(deadline) && m.abandon(log, slot) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.clock.After(m.poll):
		}
	}
}

// markGood marks slot good and reports whether it did; a failure is
// shown and retried at the next sample.
func (m *Marker) markGood(log *zap.Logger, slot Slot, healthyFor time.Duration) bool {
	if err := m.boot.MarkGood(slot); err != nil {
		log.Error("trial: mark good failed", zap.Error(err))
		m.set(api.UpdateTrial, func(s *Status) { s.LastError = err.Error() })
		return false
	}
	log.Info("trial: slot marked good", zap.Duration("healthy_for", healthyFor))
	m.reread(api.UpdateGood, "")
	return true
}

// abandon ends slot's trial (no tries left) and reports whether it did.
func (m *Marker) abandon(log *zap.Logger, slot Slot) bool {
	if err := m.boot.SetTrial(slot, 0); err != nil {
		log.Error("trial: abandoning failed", zap.Error(err))
		m.set(api.UpdateTrial, func(s *Status) { s.LastError = err.Error() })
		return false
	}
	msg := fmt.Sprintf("trial of slot %s abandoned: not healthy for %s within %s; the next boot returns to the old slot",
		slot, m.cfg.HealthyAfter, m.cfg.Deadline)
	log.Warn("trial abandoned: the next boot returns to the old slot", zap.Duration("deadline", m.cfg.Deadline))
	m.reread(api.UpdateAbandoned, msg)
	return true
}

// reread shows the boot state after a change, in state, with why as the
// last error when it is not empty: one change of Status.
func (m *Marker) reread(state State, why string) {
	bs, err := m.boot.State()
	m.set(state, func(s *Status) {
		s.HealthySince = time.Time{}
		if why != "" {
			s.LastError = why
		}
		if err != nil {
			s.LastError = err.Error()
			return
		}
		s.Slot, s.Good = string(bs.Booted), bs.Good(bs.Booted)
		s.Trial, s.TriesLeft, s.Next = string(bs.Trial), bs.TriesLeft, string(bs.Next())
	})
}
