package update

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/internal/atomicfile"
	"onair/internal/version"
	"onair/web/api"
)

// DefaultPoll is how often the Marker samples Healthy during a trial.
const DefaultPoll = time.Second

// MarkerConfig configures the Marker.
type MarkerConfig struct {
	// HealthyAfter is how long Healthy must hold without a break.
	HealthyAfter time.Duration
	// Deadline is how long the trial may take to get there, counted from
	// the first Run of this boot (see MarkerDeps.TrialFile); past it the
	// trial is abandoned (0: DefaultTrialDeadlineFactor × HealthyAfter).
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
	// TrialFile keeps how long this boot's trial has run, across onaird
	// restarts within the boot, so an onaird that crashes every few minutes
	// does not restart the deadline each time and stay on a trial forever.
	// It belongs on a tmpfs (onaird: runtime_dir), which a boot clears;
	// the boot ID in it guards a directory that survives. Empty: each Run
	// starts the deadline afresh.
	TrialFile string
	// BootID names this boot (nil: the kernel's
	// /proc/sys/kernel/random/boot_id).
	BootID func() (string, error)
}

// State is where the update is (api.UpdateState, whose comment lists the
// transitions).
type State = api.UpdateState

// Status is the update's side of the box for the status page and onairctl.
type Status = api.UpdateStatus

// Marker makes a trial boot permanent once the box has been healthy for
// HealthyAfter without a break: it marks the running slot good (the new
// default). A trial that does not get there by the deadline (counted from
// onaird's first start in the boot, so an onaird that crashes every few
// minutes cannot keep a trial alive by restarting it) is abandoned:
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
	cfg       MarkerConfig
	boot      Bootloader
	healthy   func() bool
	log       *zap.Logger
	clock     clockwork.Clock
	poll      time.Duration
	trialFile string
	bootID    func() (string, error)

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
	if deps.BootID == nil {
		deps.BootID = kernelBootID
	}
	m := &Marker{
		cfg: cfg, boot: deps.Boot, healthy: deps.Healthy, log: deps.Log, clock: deps.Clock, poll: deps.Poll,
		trialFile: deps.TrialFile, bootID: deps.BootID,
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
// fails is retried at the next sample. The time the trial already ran in
// this boot, before an onaird restart, counts against the deadline.
func (m *Marker) watch(ctx context.Context, slot Slot) error {
	log := m.log.With(zap.String("slot", string(slot)))
	clock := m.trialClock(log, slot)
	deadline := m.clock.Now().Add(m.cfg.Deadline - clock.ran)
	var since time.Time
	for {
		now := m.clock.Now()
		clock.save(log, now)
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

// trialClock is the trial's running time in this boot, kept in TrialFile.
type trialClock struct {
	path   string
	bootID string
	slot   Slot
	ran    time.Duration // before this Run
	start  time.Time     // this Run's
	failed bool          // a save failed (said once)
}

// trialRecord is TrialFile's content.
type trialRecord struct {
	BootID string `json:"boot_id"`
	Slot   Slot   `json:"slot"`
	RanNs  int64  `json:"ran_ns"`
}

// trialClock reads what an earlier Run of this boot left in TrialFile. A
// missing, unreadable or foreign record (another boot, another slot)
// starts from zero; only the one the Marker wrote itself is trusted.
func (m *Marker) trialClock(log *zap.Logger, slot Slot) *trialClock {
	c := &trialClock{path: m.trialFile, slot: slot, start: m.clock.Now()}
	if c.path == "" {
		return c
	}
	id, err := m.bootID()
	if err != nil {
		log.Warn("trial: no boot ID: an onaird restart restarts the deadline", zap.Error(err))
		c.path = ""
		return c
	}
	c.bootID = id
	b, err := os.ReadFile(c.path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("trial: reading the trial's running time", zap.Error(err))
		}
		return c
	}
	var r trialRecord
	if err := json.Unmarshal(b, &r); err != nil || r.RanNs < 0 {
		log.Warn("trial: the trial's running time is unreadable; counting from now", zap.String("file", c.path), zap.Error(err))
		return c
	}
	if r.BootID == id && r.Slot == slot {
		c.ran = time.Duration(r.RanNs)
		log.Info("trial: onaird restarted during the trial; the deadline counts from the boot's first start",
			zap.Duration("ran", c.ran), zap.Duration("deadline", m.cfg.Deadline))
	}
	return c
}

// save writes the running time at now; a failure is said once and the
// trial goes on (a restart would then restart the deadline).
func (c *trialClock) save(log *zap.Logger, now time.Time) {
	if c.path == "" {
		return
	}
	b, err := json.Marshal(trialRecord{BootID: c.bootID, Slot: c.slot, RanNs: int64(c.ran + now.Sub(c.start))})
	if err == nil {
		err = atomicfile.WriteFile(c.path, b, 0o600)
	}
	if err != nil && !c.failed {
		c.failed = true
		log.Warn("trial: keeping the trial's running time", zap.Error(err))
	}
}

// kernelBootID is this boot's ID from the kernel.
func kernelBootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("boot id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", errors.New("boot id: empty")
	}
	return id, nil
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
