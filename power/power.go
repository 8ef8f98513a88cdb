// Package power is the box's power policy: it reads the UPS through NUT
// (package power/nut) and the GPIO power signals (a power-good input, a
// shutdown-request input), decides where the box stands, and acts through a
// small interface: shed load on battery, end the stream cleanly before the
// battery dies, then power off, once.
//
// The policy, with the defaults a crew expects:
//
//   - on battery (UPS OB, or power-good lost): warn (status, LED, journal)
//     and, with power.shed_on_battery, lower the bitrate cap;
//   - low battery (UPS LB, or battery.runtime below power.min_runtime),
//     forced shutdown (UPS FSD, or the shutdown-request line asserted), or
//     power-good lost for power.grace: a clean end of the stream (the last
//     GOP muxed, the TS ended, the SRT send buffer drained and the
//     connection closed), then, with power.poweroff, the power-off;
//   - power-good back within the grace cancels the end; mains back after
//     an end without power-off re-arms the policy (the crew goes live
//     again when they choose);
//   - the UPS unreachable (upsd down, login refused, driver gone): a
//     warning; the stream goes on.
//
// Power-off happens at most once, only after the end of the stream
// returned, and never because Run's context ended: onaird restarting or
// stopping is not a power failure.
//
// Not for: the NUT protocol (power/nut), the D-Bus call (power/logind),
// heat (power/thermal), ending the stream (package live) or applying a cap
// (package shed).
package power

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"periph.io/x/conn/v3/gpio"

	"onair/power/nut"
	"onair/web/api"
)

// UPS is a UPS the monitor polls (nut.Client).
type UPS interface {
	// Name is how status names it ("ups@host:port").
	Name() string
	// Read returns the UPS's state now, or why it cannot be read.
	Read(ctx context.Context) (nut.Reading, error)
}

// Signal is one GPIO power input.
type Signal struct {
	Pin gpio.PinIn
	// ActiveLow: asserted when the line reads low.
	ActiveLow bool
}

// Inputs are the power sources the monitor watches; any may be nil.
type Inputs struct {
	UPS UPS
	// PowerGood is asserted while the input power is good.
	PowerGood *Signal
	// ShutdownRequest is asserted to ask for a clean shutdown (a UPS HAT's
	// "battery critical" output, a key switch).
	ShutdownRequest *Signal
}

// Actions are what the policy does to the box.
type Actions interface {
	// Shed asks for (on) or lifts the bitrate cap for power.
	Shed(on bool, reason string) error
	// EndStream ends the stream cleanly and returns when the connection is
	// closed (or ctx ended). It is called at most once per end.
	EndStream(ctx context.Context, reason string) error
	// PowerOff flushes files and asks the system to power off. It is
	// called at most once in the monitor's life, after EndStream returned.
	PowerOff(ctx context.Context) error
}

// Config is the policy (config.Power, durations resolved).
type Config struct {
	// Poll is how often the UPS is read.
	Poll time.Duration
	// MinRuntime: battery.runtime below it (on battery) is low battery; 0 off.
	MinRuntime time.Duration
	// Grace: power-good lost this long ends the stream.
	Grace time.Duration
	// Debounce is the quiet time before a GPIO level counts (default 50 ms).
	Debounce time.Duration
	// ShedOnBattery lowers the bitrate cap while on battery.
	ShedOnBattery bool
	// PowerOff powers the box off after the end.
	PowerOff bool
	// PowerOffTimeout bounds the power-off call (default 30 s).
	PowerOffTimeout time.Duration
}

// Monitor is the power policy. Status is safe for concurrent use.
type Monitor struct {
	cfg   Config
	in    Inputs
	act   Actions
	log   *zap.Logger
	clock clockwork.Clock

	wake chan struct{}

	mu   sync.Mutex
	st   api.PowerStatus
	ups  upsView
	sigs [2]sigView // power_good, shutdown_request
	// ending is set when an end was started; ended when EndStream returned.
	ending, ended bool
	shedding      bool      // the cap the Shed action last accepted
	lostAt        time.Time // power-good lost (accepted level), zero while good
}

type upsView struct {
	read    nut.Reading
	err     error
	ok      bool // the last read succeeded
	updated time.Time
	polled  bool // at least one read was made
}

type sigView struct {
	name   string
	line   string
	fitted bool
	active bool
	since  time.Time
	err    error
}

const (
	sigPowerGood = iota
	sigShutdown
)

// New checks the configuration. It starts nothing.
func New(cfg Config, in Inputs, act Actions, log *zap.Logger, clock clockwork.Clock) (*Monitor, error) {
	if act == nil {
		return nil, errors.New("power: actions are required")
	}
	if in.UPS == nil && in.PowerGood == nil && in.ShutdownRequest == nil {
		return nil, errors.New("power: no UPS and no power signal: nothing to watch")
	}
	if in.UPS != nil && cfg.Poll <= 0 {
		return nil, errors.New("power: poll must be positive")
	}
	if cfg.Grace < 0 || cfg.MinRuntime < 0 {
		return nil, errors.New("power: grace and min_runtime must not be negative")
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = 50 * time.Millisecond
	}
	if cfg.PowerOffTimeout <= 0 {
		cfg.PowerOffTimeout = 30 * time.Second
	}
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	m := &Monitor{cfg: cfg, in: in, act: act, log: log, clock: clock, wake: make(chan struct{}, 1)}
	for i, s := range []*Signal{in.PowerGood, in.ShutdownRequest} {
		v := &m.sigs[i]
		v.name = [...]string{"power_good", "shutdown_request"}[i]
		if s == nil || s.Pin == nil {
			continue
		}
		v.fitted, v.line = true, s.Pin.Name()
		v.active = i == sigPowerGood // until read: power good, no request
	}
	m.st = api.PowerStatus{State: api.PowerOnline, Source: api.SourceUnknown, Reason: "starting", Since: clock.Now()}
	if in.UPS != nil {
		m.st.UPS = &api.UPSStatus{Name: in.UPS.Name(), ChargePct: -1, RuntimeS: -1}
	}
	return m, nil
}

// Run watches the inputs and applies the policy until ctx is done; it
// returns after every goroutine it started has exited. An end under way
// when ctx ends is cut (EndStream sees ctx done) and no power-off follows.
func (m *Monitor) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.ending && !m.ended { // a Run before this one was cut during an end: decide afresh
		m.ending = false
	}
	m.mu.Unlock()

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i, s := range []*Signal{m.in.PowerGood, m.in.ShutdownRequest} {
		if s != nil && s.Pin != nil {
			wg.Add(1)
			go func() { defer wg.Done(); m.watchSignal(ctx, i, s) }()
		}
	}
	if m.in.UPS != nil {
		wg.Add(1)
		go func() { defer wg.Done(); m.pollUPS(ctx) }()
	}

	endDone := make(chan error, 1)
	for {
		m.mu.Lock()
		reason, start := m.decide()
		deadline := m.st.Deadline
		m.mu.Unlock()
		if start {
			wg.Add(1)
			go func() {
				defer wg.Done()
				endDone <- m.act.EndStream(ctx, reason)
			}()
		}
		var grace clockwork.Timer
		var graceC <-chan time.Time
		if !deadline.IsZero() {
			grace = m.clock.NewTimer(max(deadline.Sub(m.clock.Now()), 0))
			graceC = grace.Chan()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
		case <-graceC:
		case err := <-endDone:
			m.endReturned(ctx, err)
		}
		if grace != nil {
			grace.Stop()
		}
	}
}

// decide computes the state from the inputs, applies the shedding and says
// whether an end must start (and why). Called with mu held.
func (m *Monitor) decide() (reason string, start bool) {
	now := m.clock.Now()
	state, why := m.assess()
	if m.ending {
		if m.ended && !m.poweredOff() && state == api.PowerOnline {
			// Ended without power-off (power.poweroff false) and the
			// mains are back: the policy re-arms.
			m.ending, m.ended = false, false
			m.setState(api.PowerOnline, "mains back after a power end: go live when ready", now)
		}
		return "", false
	}
	switch state {
	case api.PowerLowBattery, api.PowerForcedShutdown:
		m.setState(state, why, now)
		m.beginEnd(why, now)
		return "power: " + why, true
	case api.PowerLost:
		if dl := m.lostAt.Add(m.cfg.Grace); !now.Before(dl) {
			why = fmt.Sprintf("power-good lost for power.grace %s", m.cfg.Grace)
			m.setState(api.PowerLost, why, now)
			m.beginEnd(why, now)
			return "power: " + why, true
		}
	}
	m.setState(state, why, now)
	return "", false
}

func (m *Monitor) beginEnd(why string, now time.Time) {
	m.ending = true
	m.log.Warn("power: ending the stream", zap.String("reason", why))
	m.st.State, m.st.Reason, m.st.Since, m.st.Deadline = api.PowerEnding, why, now, time.Time{}
	m.applyShed(true, why)
}

// assess is where the inputs put the box, worst first. Called with mu held.
func (m *Monitor) assess() (api.PowerState, string) {
	u := m.ups
	pg, sr := m.sigs[sigPowerGood], m.sigs[sigShutdown]
	ob := u.ok && u.read.Has("OB")
	switch {
	case sr.fitted && sr.active:
		return api.PowerForcedShutdown, fmt.Sprintf("shutdown requested (GPIO %s)", sr.line)
	case u.ok && u.read.Has("FSD"):
		return api.PowerForcedShutdown, "UPS forced shutdown (FSD)"
	case u.ok && u.read.Has("LB"):
		return api.PowerLowBattery, fmt.Sprintf("UPS low battery (LB, charge %s)", pct(u.read.Charge))
	case ob && m.cfg.MinRuntime > 0 && u.read.Runtime >= 0 && u.read.Runtime < m.cfg.MinRuntime.Seconds():
		return api.PowerLowBattery, fmt.Sprintf("battery.runtime %.0f s < power.min_runtime %s", u.read.Runtime, m.cfg.MinRuntime)
	case pg.fitted && !pg.active:
		return api.PowerLost, fmt.Sprintf("power-good lost (GPIO %s): ending at the end of power.grace %s unless it returns", pg.line, m.cfg.Grace)
	case ob:
		return api.PowerOnBattery, fmt.Sprintf("UPS on battery (charge %s, runtime %s)", pct(u.read.Charge), secs(u.read.Runtime))
	case m.in.UPS != nil && u.polled && !u.ok:
		return api.PowerUnreachable, unreachable(u.err)
	case m.in.UPS != nil && !u.polled:
		return api.PowerOnline, "starting: UPS not read yet"
	case u.ok:
		return api.PowerOnline, "UPS on line (" + strings.Join(u.read.Status, " ") + ")"
	default:
		return api.PowerOnline, "power-good asserted"
	}
}

// setState records state (logging a change) and the shedding it implies.
// Called with mu held.
func (m *Monitor) setState(state api.PowerState, why string, now time.Time) {
	if state != m.st.State || why != m.st.Reason {
		if state != m.st.State {
			m.st.Since = now
			lvl := m.log.Warn
			if state == api.PowerOnline {
				lvl = m.log.Info
			}
			lvl("power: "+string(state), zap.String("reason", why), zap.String("was", string(m.st.State)))
		}
		m.st.State, m.st.Reason = state, why
	}
	m.st.Deadline = time.Time{}
	if state == api.PowerLost {
		m.st.Deadline = m.lostAt.Add(m.cfg.Grace)
	}
	switch state {
	case api.PowerOnBattery, api.PowerLost, api.PowerLowBattery, api.PowerForcedShutdown:
		m.applyShed(true, why)
	case api.PowerOnline:
		m.applyShed(false, why)
	}
	// unreachable: the shedding stays as the last reading left it.
}

// applyShed asks for the cap when shedding is configured and it changed.
// Called with mu held (the Shed action must not call back into Monitor).
func (m *Monitor) applyShed(on bool, why string) {
	if !m.cfg.ShedOnBattery || on == m.shedding {
		return
	}
	if err := m.act.Shed(on, why); err != nil {
		m.log.Error("power: bitrate cap not applied (asked again at the next change)", zap.Bool("shed", on), zap.Error(err))
		return
	}
	m.shedding = on
}

// endReturned records the end and powers off, once, if configured and ctx
// is still live.
func (m *Monitor) endReturned(ctx context.Context, err error) {
	now := m.clock.Now()
	m.mu.Lock()
	m.ended = true
	m.st.State, m.st.Since, m.st.EndedAt = api.PowerEnded, now, now
	reason := m.st.Reason
	off := m.cfg.PowerOff && !m.st.PoweredOff && ctx.Err() == nil
	if off {
		m.st.PoweredOff = true // before the call: exactly once, whatever it returns
	}
	m.mu.Unlock()
	if err != nil {
		m.log.Error("power: the end of stream failed; going on", zap.String("reason", reason), zap.Error(err))
	} else {
		m.log.Warn("power: stream ended", zap.String("reason", reason))
	}
	if !off {
		if ctx.Err() == nil && !m.cfg.PowerOff {
			m.log.Warn("power: power.poweroff is false: the box stays up, off air")
		}
		return
	}
	m.log.Warn("power: powering off", zap.String("reason", reason))
	pctx, cancel := context.WithTimeout(ctx, m.cfg.PowerOffTimeout)
	defer cancel()
	if perr := m.act.PowerOff(pctx); perr != nil {
		m.log.Error("power: power-off failed", zap.Error(perr))
		m.mu.Lock()
		m.st.PowerOffError = perr.Error()
		m.mu.Unlock()
	}
}

func (m *Monitor) poweredOff() bool { return m.st.PoweredOff }

// pollUPS reads the UPS now and every Poll.
func (m *Monitor) pollUPS(ctx context.Context) {
	t := m.clock.NewTicker(m.cfg.Poll)
	defer t.Stop()
	for {
		r, err := m.in.UPS.Read(ctx)
		if ctx.Err() != nil {
			return
		}
		m.mu.Lock()
		was := m.ups
		m.ups.polled, m.ups.err, m.ups.ok = true, err, err == nil
		if err == nil {
			m.ups.read, m.ups.updated = r, r.At
		}
		if err != nil && (was.ok || !was.polled || errString(was.err) != err.Error()) {
			m.log.Warn("power: UPS read failed", zap.String("ups", m.in.UPS.Name()), zap.Error(err))
		} else if err == nil && was.polled && !was.ok {
			m.log.Info("power: UPS readable again", zap.String("ups", m.in.UPS.Name()), zap.Strings("status", r.Status))
		}
		m.mu.Unlock()
		m.poke()
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
	}
}

func (m *Monitor) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// watchSignal follows one GPIO input: a level counts once it held for the
// debounce time (periph's gpioutil.Debounce does not filter bounces on
// every driver: the lockout is done here).
func (m *Monitor) watchSignal(ctx context.Context, i int, s *Signal) {
	v := func() *sigView { return &m.sigs[i] }
	if err := s.Pin.In(gpio.PullNoChange, gpio.BothEdges); err != nil {
		m.mu.Lock()
		v().err = fmt.Errorf("power: %s: %w", v().line, err)
		m.mu.Unlock()
		m.log.Error("power: GPIO input unusable", zap.String("signal", v().name), zap.Error(err))
		return
	}
	read := func() bool { return (s.Pin.Read() == gpio.High) != s.ActiveLow }
	accept := func(active bool) {
		now := m.clock.Now()
		m.mu.Lock()
		sv := v()
		changed := sv.active != active || sv.since.IsZero()
		sv.active, sv.since = active, now
		if i == sigPowerGood {
			if active {
				m.lostAt = time.Time{}
			} else if m.lostAt.IsZero() {
				m.lostAt = now
			}
		}
		m.mu.Unlock()
		if changed {
			m.log.Info("power: GPIO signal", zap.String("signal", sv.name), zap.String("line", sv.line), zap.Bool("active", active))
		}
		m.poke()
	}
	accepted := read()
	accept(accepted)
	cand, candAt := accepted, m.clock.Now()
	for ctx.Err() == nil {
		wait := 200 * time.Millisecond
		if cand != accepted {
			wait = max(m.cfg.Debounce/5, time.Millisecond)
		}
		s.Pin.WaitForEdge(wait)
		lvl, now := read(), m.clock.Now()
		if lvl != cand {
			cand, candAt = lvl, now
		}
		if cand != accepted && now.Sub(candAt) >= m.cfg.Debounce {
			accepted = cand
			accept(accepted)
		}
	}
}

// Status is the power as the policy sees it.
func (m *Monitor) Status() api.PowerStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st
	st.Shedding = m.shedding
	src := api.SourceUnknown
	u := m.ups
	pg := m.sigs[sigPowerGood]
	switch {
	case (u.ok && u.read.Has("OB")) || (pg.fitted && !pg.active):
		src = api.SourceBattery
	case (u.ok && u.read.Has("OL")) || (pg.fitted && pg.active):
		src = api.SourceMains
	}
	st.Source = src
	if m.st.UPS != nil {
		us := *m.st.UPS
		us.Reachable = u.ok
		us.LastError = ""
		if u.err != nil {
			us.LastError = u.err.Error()
		}
		if !u.updated.IsZero() {
			us.Status = append([]string(nil), u.read.Status...)
			us.ChargePct, us.RuntimeS, us.Updated = u.read.Charge, u.read.Runtime, u.updated
		}
		st.UPS = &us
	}
	st.Signals = nil
	for _, s := range m.sigs {
		if s.fitted {
			st.Signals = append(st.Signals, api.PowerSignal{Name: s.name, Line: s.line, Active: s.active, Since: s.since})
		}
	}
	return st
}

func pct(v float64) string {
	if v < 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.0f %%", v)
}

func secs(v float64) string {
	if v < 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.0f s", v)
}

// unreachable says why the UPS cannot be read. upsd answering that the
// UPS's driver is not connected is, on a box, no UPS plugged in (the
// driver found none and systemd retries it): said so, in those words.
func unreachable(err error) string {
	switch {
	case errors.Is(err, nut.ErrDriverNotConnected):
		return "no UPS: upsd has no driver connected for it (none plugged in, or its driver cannot reach it: journalctl -u 'nut-driver@*')"
	case errors.Is(err, nut.ErrUnknownUPS):
		return "no UPS: upsd serves none of that name (power.nut.ups against /etc/nut/ups.conf)"
	}
	return "UPS unreachable: " + errString(err)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
