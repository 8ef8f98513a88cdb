package power

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"onair/internal/testutil"
	"onair/power/nut"
	"onair/web/api"
)

// fakeUPS answers Read with what the test set last.
type fakeUPS struct {
	mu  sync.Mutex
	r   nut.Reading
	err error
}

func (u *fakeUPS) Name() string { return "dummy@127.0.0.1:3493" }

func (u *fakeUPS) Read(context.Context) (nut.Reading, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err != nil {
		return nut.Reading{}, u.err
	}
	return u.r, nil
}

func (u *fakeUPS) set(status string, charge, runtime float64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.err = nil
	u.r = nut.Reading{Status: strings.Fields(status), Charge: charge, Runtime: runtime, At: time.Now()}
}

func (u *fakeUPS) fail(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.err = err
}

// actions records what the policy did, in order.
type actions struct {
	mu       sync.Mutex
	log      []string
	endBlock chan struct{} // EndStream waits for it (or ctx) when set
	endErr   error
	offErr   error
}

func (a *actions) add(s string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.log = append(a.log, s)
}

func (a *actions) Shed(on bool, _ string) error {
	if on {
		a.add("shed")
	} else {
		a.add("unshed")
	}
	return nil
}

func (a *actions) EndStream(ctx context.Context, reason string) error {
	a.add("end " + reason)
	if a.endBlock != nil {
		select {
		case <-a.endBlock:
		case <-ctx.Done():
			a.add("end cut")
			return ctx.Err()
		}
	}
	a.add("ended")
	return a.endErr
}

func (a *actions) PowerOff(context.Context) error {
	a.add("poweroff")
	return a.offErr
}

func (a *actions) got() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.log...)
}

func (a *actions) count(prefix string) int {
	n := 0
	for _, s := range a.got() {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

type rig struct {
	t     *testing.T
	m     *Monitor
	ups   *fakeUPS
	act   *actions
	clock *clockwork.FakeClock
	stop  func()
}

func start(t *testing.T, cfg Config, in Inputs, act *actions) *rig {
	t.Helper()
	clk := clockwork.NewFakeClock()
	m, err := New(cfg, in, act, testutil.NilLogger(t), clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	r := &rig{t: t, m: m, act: act, clock: clk}
	if u, ok := in.UPS.(*fakeUPS); ok {
		r.ups = u
	}
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(r.stop)
	// The watchers' In flushes queued edges: wait until they read the lines.
	deadline := time.Now().Add(2 * time.Second)
	for {
		ready := true
		for _, sg := range m.Status().Signals {
			ready = ready && !sg.Since.IsZero()
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the GPIO watchers never read their lines")
		}
		time.Sleep(time.Millisecond)
	}
	return r
}

// poll advances the clock by one poll period.
func (r *rig) poll() { r.clock.Advance(2 * time.Second) }

// waitState waits (bounded, real time: the monitor's goroutines) for state.
func (r *rig) waitState(want api.PowerState) api.PowerStatus {
	r.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		st := r.m.Status()
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("state %s (%s), want %s; actions %v", st.State, st.Reason, want, r.act.got())
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *rig) waitActions(n int) []string {
	r.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for len(r.act.got()) < n {
		if time.Now().After(deadline) {
			r.t.Fatalf("actions %v, want %d", r.act.got(), n)
		}
		time.Sleep(time.Millisecond)
	}
	return r.act.got()
}

var policy = Config{Poll: 2 * time.Second, MinRuntime: 2 * time.Minute, Grace: 30 * time.Second,
	Debounce: 50 * time.Millisecond, ShedOnBattery: true, PowerOff: true}

func TestOnBatteryShedsAndMainsBackLiftsItWithoutAnEnd(t *testing.T) {
	u := &fakeUPS{}
	u.set("OL", 100, 3600)
	r := start(t, policy, Inputs{UPS: u}, &actions{})
	r.waitState(api.PowerOnline)
	u.set("OB DISCHRG", 90, 1800)
	r.poll()
	st := r.waitState(api.PowerOnBattery)
	if st.Source != api.SourceBattery || !st.Shedding || st.UPS == nil || st.UPS.ChargePct != 90 || !st.UPS.Reachable {
		t.Errorf("on battery: %+v ups %+v", st, st.UPS)
	}
	u.set("OL CHRG", 91, 1900)
	r.poll()
	st = r.waitState(api.PowerOnline)
	if st.Shedding || st.Source != api.SourceMains {
		t.Errorf("mains back: %+v", st)
	}
	if got := r.act.got(); len(got) != 2 || got[0] != "shed" || got[1] != "unshed" {
		t.Errorf("actions %v", got)
	}
}

// TestLowBatteryEndsThenPowersOffExactlyOnce: OB LB ends the stream; the
// power-off follows only after EndStream returned, and later readings (LB
// again, FSD) neither end again nor power off again.
func TestLowBatteryEndsThenPowersOffExactlyOnce(t *testing.T) {
	u := &fakeUPS{}
	u.set("OB", 30, 900)
	a := &actions{endBlock: make(chan struct{})}
	r := start(t, policy, Inputs{UPS: u}, a)
	r.waitState(api.PowerOnBattery)
	u.set("OB LB", 9, 300)
	r.poll()
	st := r.waitState(api.PowerEnding)
	if !strings.Contains(st.Reason, "LB") {
		t.Errorf("reason %q", st.Reason)
	}
	r.waitActions(2) // shed, end
	if a.count("poweroff") != 0 {
		t.Fatal("powered off before the end of stream returned")
	}
	close(a.endBlock)
	st = r.waitState(api.PowerEnded)
	r.waitActions(4)
	for range 3 {
		u.set("OB LB FSD", 5, 100)
		r.poll()
	}
	time.Sleep(20 * time.Millisecond)
	want := []string{"shed", "end power: UPS low battery (LB, charge 9 %)", "ended", "poweroff"}
	if got := a.got(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("actions %q, want %q", got, want)
	}
	st = r.m.Status()
	if !st.PoweredOff || st.EndedAt.IsZero() || st.State != api.PowerEnded {
		t.Errorf("status %+v", st)
	}
}

func TestRuntimeBelowMinRuntimeIsLowBattery(t *testing.T) {
	u := &fakeUPS{}
	u.set("OB", 60, 95)
	a := &actions{}
	r := start(t, policy, Inputs{UPS: u}, a)
	r.waitState(api.PowerEnded)
	got := a.got()
	if len(got) < 2 || got[1] != "end power: battery.runtime 95 s < power.min_runtime 2m0s" {
		t.Errorf("actions %q", got)
	}
	// On line with a low runtime (charging) is no reason to end.
	u2 := &fakeUPS{}
	u2.set("OL CHRG", 20, 95)
	r2 := start(t, policy, Inputs{UPS: u2}, &actions{})
	r2.poll()
	time.Sleep(20 * time.Millisecond)
	if st := r2.m.Status(); st.State != api.PowerOnline {
		t.Errorf("on line, charging: %+v", st)
	}
}

func TestForcedShutdownEnds(t *testing.T) {
	u := &fakeUPS{}
	u.set("OL FSD", 100, 3600)
	a := &actions{}
	r := start(t, policy, Inputs{UPS: u}, a)
	r.waitState(api.PowerEnded)
	if a.count("end power: UPS forced shutdown (FSD)") != 1 || a.count("poweroff") != 1 {
		t.Errorf("actions %q", a.got())
	}
}

// TestOnairdStoppingDuringAnEndNeverPowersOff: ctx ends while the end of
// stream is under way (onaird restarting or stopped by systemd): the end is
// cut and no power-off follows.
func TestOnairdStoppingDuringAnEndNeverPowersOff(t *testing.T) {
	u := &fakeUPS{}
	u.set("OB LB", 5, 60)
	a := &actions{endBlock: make(chan struct{})}
	r := start(t, policy, Inputs{UPS: u}, a)
	r.waitState(api.PowerEnding)
	r.stop()
	if a.count("poweroff") != 0 || a.count("end cut") != 1 {
		t.Errorf("actions %q", a.got())
	}
}

func TestNoPowerOffConfiguredReArmsWhenMainsReturn(t *testing.T) {
	u := &fakeUPS{}
	u.set("OB LB", 5, 60)
	cfg := policy
	cfg.PowerOff = false
	a := &actions{}
	r := start(t, cfg, Inputs{UPS: u}, a)
	r.waitState(api.PowerEnded)
	u.set("OL CHRG", 6, 60)
	r.poll()
	r.waitState(api.PowerOnline)
	u.set("OB LB", 5, 60)
	r.poll()
	r.waitState(api.PowerEnded)
	if a.count("end ") != 2 || a.count("poweroff") != 0 {
		t.Errorf("actions %q", a.got())
	}
}

func TestPowerOffRefusedIsInStatusAndNotRetried(t *testing.T) {
	u := &fakeUPS{}
	u.set("OB LB", 5, 60)
	a := &actions{offErr: errors.New("logind: PowerOff refused: org.freedesktop.DBus.Error.AccessDenied")}
	r := start(t, policy, Inputs{UPS: u}, a)
	r.waitActions(4)
	deadline := time.Now().Add(3 * time.Second)
	for r.m.Status().PowerOffError == "" && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	st := r.m.Status()
	if !strings.Contains(st.PowerOffError, "AccessDenied") || !st.PoweredOff {
		t.Errorf("status %+v", st)
	}
	r.poll()
	r.poll()
	time.Sleep(20 * time.Millisecond)
	if a.count("poweroff") != 1 {
		t.Errorf("actions %q", a.got())
	}
}

// TestUPSUnreachableWarnsAndNeverEnds: upsd gone is a warning; the stream
// goes on, and the shedding stays where the last reading left it.
func TestUPSUnreachableWarnsAndNeverEnds(t *testing.T) {
	u := &fakeUPS{}
	u.set("OB", 50, 1200)
	a := &actions{}
	r := start(t, policy, Inputs{UPS: u}, a)
	r.waitState(api.PowerOnBattery)
	u.fail(errors.New("nut: dummy@127.0.0.1:3493: dial: connection refused"))
	r.poll()
	st := r.waitState(api.PowerUnreachable)
	if st.UPS.Reachable || !strings.Contains(st.UPS.LastError, "connection refused") || !strings.Contains(st.Reason, "connection refused") || !st.Shedding {
		t.Errorf("unreachable: %+v ups %+v", st, st.UPS)
	}
	for range 5 {
		r.poll()
	}
	u.set("OL", 55, 1300)
	r.poll()
	r.waitState(api.PowerOnline)
	if a.count("end") != 0 {
		t.Errorf("actions %q", a.got())
	}
}

func TestNewRefusesNothingToWatch(t *testing.T) {
	if _, err := New(policy, Inputs{}, &actions{}, nil, nil); err == nil {
		t.Error("New without inputs succeeded")
	}
}

// pin is a gpiotest input at level l; push queues level changes.
func pin(name string, l gpio.Level) *gpiotest.Pin {
	return &gpiotest.Pin{N: name, L: l, EdgesChan: make(chan gpio.Level, 16)}
}

// TestPowerGoodLostShorterThanTheGraceDoesNothing: a brown-out shorter
// than power.grace moves to power_lost with a deadline and back; no end.
func TestPowerGoodLostShorterThanTheGraceDoesNothing(t *testing.T) {
	pg := pin("PWR_GOOD", gpio.High)
	a := &actions{}
	r := start(t, policy, Inputs{PowerGood: &Signal{Pin: pg}}, a)
	r.waitState(api.PowerOnline)
	pg.EdgesChan <- gpio.Low
	r.waitLevelTaken(pg)
	r.clock.Advance(60 * time.Millisecond) // past the debounce
	st := r.waitState(api.PowerLost)
	if st.Deadline.IsZero() || st.Source != api.SourceBattery {
		t.Errorf("lost: %+v", st)
	}
	r.clock.Advance(20 * time.Second) // inside the 30 s grace
	pg.EdgesChan <- gpio.High
	r.waitLevelTaken(pg)
	r.clock.Advance(60 * time.Millisecond)
	r.waitState(api.PowerOnline)
	r.clock.Advance(time.Minute)
	time.Sleep(20 * time.Millisecond)
	if a.count("end") != 0 {
		t.Errorf("actions %q", a.got())
	}
}

func TestPowerGoodLostForTheGraceEnds(t *testing.T) {
	pg := pin("PWR_GOOD", gpio.Low) // active low: low is good
	a := &actions{}
	r := start(t, policy, Inputs{PowerGood: &Signal{Pin: pg, ActiveLow: true}}, a)
	r.waitState(api.PowerOnline)
	pg.EdgesChan <- gpio.High
	r.waitLevelTaken(pg)
	r.clock.Advance(60 * time.Millisecond)
	r.waitState(api.PowerLost)
	r.clock.Advance(29 * time.Second)
	time.Sleep(10 * time.Millisecond)
	if a.count("end") != 0 {
		t.Fatalf("ended before the grace: %q", a.got())
	}
	r.clock.Advance(2 * time.Second)
	r.waitState(api.PowerEnded)
	if a.count("end power: power-good lost for power.grace 30s") != 1 || a.count("poweroff") != 1 {
		t.Errorf("actions %q", a.got())
	}
}

// TestBouncyPowerGoodIsNotALoss: contact bounce (levels shorter than the
// debounce) never counts as power lost.
func TestBouncyPowerGoodIsNotALoss(t *testing.T) {
	pg := pin("PWR_GOOD", gpio.High)
	a := &actions{}
	r := start(t, policy, Inputs{PowerGood: &Signal{Pin: pg}}, a)
	r.waitState(api.PowerOnline)
	for _, l := range []gpio.Level{gpio.Low, gpio.High, gpio.Low, gpio.High, gpio.Low, gpio.High} {
		pg.EdgesChan <- l
		r.waitLevelTaken(pg)
		r.clock.Advance(10 * time.Millisecond)
	}
	r.clock.Advance(time.Second)
	time.Sleep(20 * time.Millisecond)
	if st := r.m.Status(); st.State != api.PowerOnline || len(a.got()) != 0 {
		t.Errorf("after bounces: %+v, actions %q", st, a.got())
	}
}

func TestShutdownRequestLineEnds(t *testing.T) {
	sr := pin("SHDN_REQ", gpio.Low)
	a := &actions{}
	r := start(t, policy, Inputs{ShutdownRequest: &Signal{Pin: sr}}, a)
	r.waitState(api.PowerOnline)
	sr.EdgesChan <- gpio.High
	r.waitLevelTaken(sr)
	r.clock.Advance(60 * time.Millisecond)
	r.waitState(api.PowerEnded)
	if a.count("end power: shutdown requested (GPIO SHDN_REQ)") != 1 {
		t.Errorf("actions %q", a.got())
	}
	if st := r.m.Status(); len(st.Signals) != 1 || st.Signals[0].Name != "shutdown_request" || !st.Signals[0].Active {
		t.Errorf("signals %+v", st.Signals)
	}
}

// waitLevelTaken waits until the watcher took the queued level.
func (r *rig) waitLevelTaken(p *gpiotest.Pin) {
	r.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for len(p.EdgesChan) > 0 {
		if time.Now().After(deadline) {
			r.t.Fatal("the level was never read")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(5 * time.Millisecond) // the read after WaitForEdge
}

// A box shipped for a USB UPS with none plugged in (the nspawn image test,
// a crew without one): upsd runs and answers DRIVER-NOT-CONNECTED, and the
// status says "no UPS" in those words, never "low battery" nor an end.
func TestNoUPSPluggedInSaysNoUPS(t *testing.T) {
	for _, tc := range []struct {
		code, want string
	}{
		{"DRIVER-NOT-CONNECTED", "no UPS: upsd has no driver connected"},
		{"UNKNOWN-UPS", "no UPS: upsd serves none of that name"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			u := &fakeUPS{}
			u.fail(fmt.Errorf("nut: ups@127.0.0.1:3493: %w", &nut.ServerError{Code: tc.code}))
			a := &actions{}
			r := start(t, policy, Inputs{UPS: u}, a)
			st := r.waitState(api.PowerUnreachable)
			if !strings.HasPrefix(st.Reason, tc.want) || st.UPS.Reachable || !strings.Contains(st.UPS.LastError, tc.code) {
				t.Errorf("status %+v ups %+v; want the reason to start %q", st, st.UPS, tc.want)
			}
			for range 5 {
				r.poll()
			}
			if st := r.m.Status(); st.State != api.PowerUnreachable || len(a.got()) != 0 {
				t.Errorf("after 5 polls %s (%s), actions %v", st.State, st.Reason, a.got())
			}
		})
	}
}
