package board

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
	"onair/web/api"
)

// base is a healthy box: on mains, twins locked with A active, main audio,
// on air, one uplink up.
func base() api.Status {
	return api.Status{
		Children: []api.ChildStatus{
			{ProcessStatus: api.ProcessStatus{Name: "encoder-a", State: "running"}},
			{ProcessStatus: api.ProcessStatus{Name: "encoder-b", State: "running"}},
		},
		Video:  api.VideoStatus{Switch: api.SwitchStatus{Twins: true, Locked: true, Active: "encoder-a", Names: []string{"encoder-a", "encoder-b"}}},
		Audio:  api.AudioStatus{Mode: api.AudioAuto, Active: "main", Chains: []api.AudioChainStatus{{Name: "main", State: api.AudioChainOK}, {Name: "backup", State: api.AudioChainOK}}},
		Output: api.OutputStatus{State: "connected"},
		OnAir:  api.OnAirStatus{Phase: api.OnAirLive},
		Power:  &api.PowerStatus{State: api.PowerOnline},
		Bond:   &api.BondStatus{Uplinks: []api.UplinkStatus{{Name: "wired", State: api.UplinkUp}}},
	}
}

// rowCases builds, for every row of Table, a status in which that row
// wins for one LED.
var rowCases = map[string]struct {
	led string
	mod func(*api.Status)
}{
	"power/low: ending":           {"power", func(s *api.Status) { s.Power.State = api.PowerLowBattery }},
	"power/battery":               {"power", func(s *api.Status) { s.Power.State = api.PowerOnBattery }},
	"power/hot: load shed":        {"power", func(s *api.Status) { s.Thermal = &api.ThermalStatus{Hot: true} }},
	"power/UPS unreachable":       {"power", func(s *api.Status) { s.Power.State = api.PowerUnreachable }},
	"power/mains":                 {"power", func(*api.Status) {}},
	"encoder/not fitted":          {"encoder-b", func(s *api.Status) { s.Video.Switch.Names = s.Video.Switch.Names[:1] }},
	"encoder/restarting":          {"encoder-b", func(s *api.Status) { s.Children[1].State = "backoff" }},
	"encoder/down":                {"encoder-b", func(s *api.Status) { s.Children[1].State = "stopped" }},
	"encoder/active, locked":      {"encoder-a", func(*api.Status) {}},
	"encoder/active":              {"encoder-a", func(s *api.Status) { s.Video.Switch.Locked = false }},
	"encoder/standby, locked":     {"encoder-b", func(*api.Status) {}},
	"encoder/standby, not locked": {"encoder-b", func(s *api.Status) { s.Video.Switch.Locked = false }},
	"audio/no audio":              {"audio", func(s *api.Status) { s.Audio.Chains = nil; s.Audio.Active = "" }},
	"audio/silent":                {"audio", func(s *api.Status) { s.Audio.Chains[0].State = api.AudioChainSilent }},
	"audio/backup":                {"audio", func(s *api.Status) { s.Audio.Active = "backup" }},
	"audio/main":                  {"audio", func(*api.Status) {}},
	"tally/stopping":              {"tally", func(s *api.Status) { s.OnAir.Phase = api.OnAirStopping }},
	"tally/off air":               {"tally", func(s *api.Status) { s.OnAir.Phase = api.OnAirStopped; s.Output.State = "idle" }},
	"tally/on air":                {"tally", func(*api.Status) {}},
	"tally/connecting":            {"tally", func(s *api.Status) { s.Output.State = "backoff" }},
	"recording/recording failed": {"recording", func(s *api.Status) {
		s.Recording = &api.RecordingStatus{State: api.RecordingStopped, Reason: "disk full: no space", LastError: "disk full: no space"}
	}},
	"recording/starting": {"recording", func(s *api.Status) {
		s.Recording = &api.RecordingStatus{State: api.RecordingRecording, WaitingKeyframe: true}
	}},
	"recording/recording": {"recording", func(s *api.Status) { s.Recording = &api.RecordingStatus{State: api.RecordingRecording} }},
	"recording/not recording": {"recording", func(s *api.Status) {
		s.Recording = &api.RecordingStatus{State: api.RecordingStopped, Reason: "operator", LastError: "disk full: no space"}
	}},
	"uplink/up":                    {"uplink:wired", func(*api.Status) {}},
	"uplink/registering or capped": {"uplink:wired", func(s *api.Status) { s.Bond.Uplinks[0].State = api.UplinkCapped }},
	"uplink/down":                  {"uplink:wired", func(s *api.Status) { s.Bond.Uplinks[0].State = api.UplinkDead }},
	"uplink/absent":                {"uplink:wired", func(s *api.Status) { s.Bond = nil }},
}

// TestEveryLEDTableRowIsReachableAndWins: each row of the one table is the
// one that decides its LED in some box state, so no row is dead and every
// state the crew can see is pinned.
func TestEveryLEDTableRowIsReachableAndWins(t *testing.T) {
	for _, r := range Table {
		key := r.LED + "/" + r.Meaning
		c, ok := rowCases[key]
		if !ok {
			t.Errorf("row %q (%s) has no case", key, r.When)
			continue
		}
		st := base()
		c.mod(&st)
		var got *api.LEDStatus
		leds := LEDs(st, []string{"wired"})
		for i := range leds {
			if leds[i].Name == c.led {
				got = &leds[i]
			}
		}
		if got == nil || got.Pattern != r.Pattern || got.Meaning != r.Meaning {
			t.Errorf("%s: LED %s is %+v, want %s %q", key, c.led, got, r.Pattern, r.Meaning)
		}
	}
	if len(rowCases) != len(Table) {
		t.Errorf("%d cases for %d rows", len(rowCases), len(Table))
	}
	if n := len(LEDs(base(), []string{"wired", "cell1"})); n != 8 {
		t.Errorf("%d LEDs, want power, encoders, audio, tally, recording and two uplinks", n)
	}
}

func TestLitPatterns(t *testing.T) {
	count := func(p api.LEDPattern) (on int) {
		for n := range 8 { // one second
			if Lit(p, n) {
				on++
			}
		}
		return on
	}
	if count(api.LEDSolid) != 8 || count(api.LEDOff) != 0 || count(api.LEDFastBlink) != 4 || count(api.LEDSlowBlink) != 4 {
		t.Error("patterns")
	}
	if Lit(api.LEDSlowBlink, 0) == Lit(api.LEDSlowBlink, 4) || Lit(api.LEDFastBlink, 0) == Lit(api.LEDFastBlink, 1) {
		t.Error("blinks do not toggle")
	}
}

// fakeBox is the status source and the actions.
type fakeBox struct {
	mu  sync.Mutex
	st  api.Status
	log []string
	b   *Board // when set, Status calls b.Status (the box's own recursion)
}

func (f *fakeBox) Status() api.Status {
	if f.b != nil {
		_ = f.b.Status()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeBox) add(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, s)
}

func (f *fakeBox) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func (f *fakeBox) GoLive(reason string) error { f.add("golive " + reason); return nil }
func (f *fakeBox) Stop(_ context.Context, reason string) error {
	f.add("stop " + reason)
	return nil
}
func (f *fakeBox) FailoverVideo() (api.FailoverResult, error) {
	f.add("failover")
	return api.FailoverResult{Result: api.FailoverSwitched, Target: "encoder-b"}, nil
}
func (f *fakeBox) SetAudioMode(m api.AudioMode) error {
	f.add("audio " + string(m))
	f.mu.Lock()
	f.st.Audio.Mode = m
	f.mu.Unlock()
	return nil
}

func TestVirtualPresses(t *testing.T) {
	f := &fakeBox{st: base()}
	b, err := New(Config{}, Pins{}, f, f, testutil.NilLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := b.Press(ctx, "go_live", false)
	if err != nil || !strings.HasPrefix(r.Action, "ignored") {
		t.Errorf("short go_live while live: %+v %v", r, err)
	}
	if _, err = b.Press(ctx, "go_live", true); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.stops.Wait()
	b.mu.Unlock()
	f.mu.Lock()
	f.st.OnAir.Phase = api.OnAirStopping
	f.mu.Unlock()
	if r, err = b.Press(ctx, "go_live", true); err != nil || r.Action != "ignored: a stop is under way" {
		t.Errorf("long go_live while stopping: %+v %v", r, err)
	}
	f.mu.Lock()
	f.st.OnAir.Phase = api.OnAirStopped
	f.mu.Unlock()
	if r, err = b.Press(ctx, "go_live", false); err != nil || r.Action != "go live" {
		t.Errorf("short go_live while stopped: %+v %v", r, err)
	}
	if r, _ = b.Press(ctx, "failover", false); r.Action != "failover video: switched to encoder-b" {
		t.Errorf("failover: %+v", r)
	}
	_, _ = b.Press(ctx, "audio", false)
	_, _ = b.Press(ctx, "audio", false)
	want := "stop panel|golive panel|failover|audio backup|audio auto"
	if got := strings.Join(f.got(), "|"); got != want {
		t.Errorf("actions %q, want %q", got, want)
	}
	if _, err = b.Press(ctx, "eject", false); !errors.Is(err, ErrUnknownButton) {
		t.Errorf("unknown button: %v", err)
	}
	st := b.Status()
	if !st.Virtual || len(st.Buttons) != 3 || !strings.HasPrefix(st.LastPress, "audio (short)") {
		t.Errorf("status %+v", st)
	}
}

// rig runs a board with gpiotest buttons and LEDs on a fake clock.
type rig struct {
	t     *testing.T
	b     *Board
	f     *fakeBox
	clock *clockwork.FakeClock
	btn   map[Button]*gpiotest.Pin
	led   map[string]*gpiotest.Pin
	stop  func()
}

func startRig(t *testing.T, activeLow bool) *rig {
	t.Helper()
	clk := clockwork.NewFakeClock()
	idle := gpio.Level(activeLow)
	r := &rig{t: t, f: &fakeBox{st: base()}, clock: clk, btn: map[Button]*gpiotest.Pin{}, led: map[string]*gpiotest.Pin{}}
	pins := Pins{Buttons: map[Button]Input{}, LEDs: map[string]Output{}}
	for _, n := range Buttons {
		p := &gpiotest.Pin{N: string(n), L: idle, EdgesChan: make(chan gpio.Level, 16)}
		r.btn[n] = p
		pins.Buttons[n] = Input{Pin: p, ActiveLow: activeLow}
	}
	for _, n := range []string{"power", "tally"} {
		p := &gpiotest.Pin{N: n}
		r.led[n] = p
		pins.LEDs[n] = Output{Pin: p, ActiveLow: activeLow}
	}
	b, err := New(Config{LongPress: 2 * time.Second, Debounce: 50 * time.Millisecond}, pins, r.f, r.f, testutil.NilLogger(t), clk)
	if err != nil {
		t.Fatal(err)
	}
	r.b = b
	r.f.b = b // the box's Status calls the board's: Run must not hold its lock then
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	if err := clk.BlockUntilContext(ctx, 2); err != nil { // the refresh and blink tickers
		t.Fatal(err)
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
				t.Fatal("Run did not return")
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

// level queues a level on a button (pressed or not) and waits until the
// watcher read it, then moves the clock by d.
func (r *rig) level(n Button, pressed bool, d time.Duration) {
	r.t.Helper()
	p := r.btn[n]
	p.EdgesChan <- gpio.Level(pressed != r.b.pins.Buttons[n].ActiveLow)
	deadline := time.Now().Add(2 * time.Second)
	for len(p.EdgesChan) > 0 {
		if time.Now().After(deadline) {
			r.t.Fatal("the level was never read")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(3 * time.Millisecond)
	r.clock.Advance(d)
	time.Sleep(3 * time.Millisecond)
}

func (r *rig) waitActions(n int) []string {
	r.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for len(r.f.got()) < n {
		if time.Now().After(deadline) {
			r.t.Fatalf("actions %v, want %d", r.f.got(), n)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // and no more
	return r.f.got()
}

// TestBouncyPressActsExactlyOnce: a contact that bounces five times on the
// way down and up is one press, one failover.
func TestBouncyPressActsExactlyOnce(t *testing.T) {
	for _, activeLow := range []bool{false, true} {
		t.Run(fmt.Sprintf("active_low=%v", activeLow), func(t *testing.T) {
			r := startRig(t, activeLow)
			for range 5 {
				r.level(Failover, true, 5*time.Millisecond)
				r.level(Failover, false, 5*time.Millisecond)
			}
			r.level(Failover, true, 200*time.Millisecond) // held down
			for range 3 {
				r.level(Failover, false, 5*time.Millisecond)
				r.level(Failover, true, 5*time.Millisecond)
			}
			r.level(Failover, false, 200*time.Millisecond) // released
			if got := r.waitActions(1); len(got) != 1 || got[0] != "failover" {
				t.Errorf("actions %q, want one failover", got)
			}
		})
	}
}

// TestShortGoLiveWhileLiveNeverStops: a bump (a short press) of go_live
// during the show does nothing; held for the long press it stops, once,
// without waiting for the release.
func TestShortGoLiveWhileLiveNeverStops(t *testing.T) {
	r := startRig(t, true)
	r.level(GoLive, true, 300*time.Millisecond)
	r.level(GoLive, false, 300*time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if got := r.f.got(); len(got) != 0 {
		t.Fatalf("a short press while live did %q", got)
	}
	if !strings.Contains(r.b.Status().LastPress, "ignored") {
		t.Errorf("last press %q", r.b.Status().LastPress)
	}
	r.level(GoLive, true, time.Second)
	if len(r.f.got()) != 0 {
		t.Fatal("stopped before the long press")
	}
	for range 12 { // the watcher polls while held; the clock moves in steps
		r.clock.Advance(100 * time.Millisecond)
		time.Sleep(2 * time.Millisecond)
	}
	r.waitActions(1)
	r.level(GoLive, false, 100*time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if got := r.f.got(); len(got) != 1 || got[0] != "stop panel" {
		t.Errorf("actions %q, want one stop", got)
	}
}

func TestAudioButtonTogglesBackupAndAuto(t *testing.T) {
	r := startRig(t, false)
	r.level(Audio, true, 100*time.Millisecond)
	r.level(Audio, false, 100*time.Millisecond)
	r.waitActions(1)
	r.level(Audio, true, 100*time.Millisecond)
	r.level(Audio, false, 100*time.Millisecond)
	if got := r.waitActions(2); strings.Join(got, "|") != "audio backup|audio auto" {
		t.Errorf("actions %q", got)
	}
}

// TestLEDLinesFollowTheTableAndGoOffAtTheEnd: the tally line is lit solid
// on air, the power line blinks slowly on battery, and Run leaves every
// line dark.
func TestLEDLinesFollowTheTableAndGoOffAtTheEnd(t *testing.T) {
	r := startRig(t, true)
	lit := func(n string) bool { return r.led[n].Read() == gpio.Low } // active low
	r.f.mu.Lock()
	r.f.st.Power.State = api.PowerOnBattery
	r.f.mu.Unlock()
	var tally, power []bool
	for range 16 { // two seconds of 125 ms phases
		r.clock.Advance(125 * time.Millisecond)
		time.Sleep(3 * time.Millisecond)
		tally, power = append(tally, lit("tally")), append(power, lit("power"))
	}
	on := 0
	for i := 4; i < 16; i++ { // after the refresh picked the battery up
		if power[i] {
			on++
		}
		if !tally[i] {
			t.Errorf("tally dark at phase %d while on air", i)
		}
	}
	if on < 4 || on > 8 {
		t.Errorf("power lit %d of 12 phases on battery (slow blink: about half): %v", on, power)
	}
	if leds := r.b.Status().LEDs; leds[0].Name != "power" || leds[0].Pattern != api.LEDSlowBlink {
		t.Errorf("status LEDs %+v", leds)
	}
	r.stop()
	if lit("tally") || lit("power") {
		t.Error("LEDs lit after Run returned")
	}
}
