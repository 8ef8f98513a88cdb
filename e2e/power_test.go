package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"onair/internal/logindtest"
	"onair/internal/nutlab"
	"onair/web/api"
)

// powerYAML is a power: block reading the lab's UPS.
func powerYAML(lab *nutlab.Lab, extra string) string {
	host, port, _ := strings.Cut(lab.Addr(), ":")
	return fmt.Sprintf("power:\n  nut:\n    host: %q\n    port: %s\n    ups: %q\n%s  poll: 300ms\n  shed_kbps: 2000\n",
		host, port, lab.UPS(), extra)
}

func powerState(want api.PowerState) func(api.Status) bool {
	return func(st api.Status) bool { return st.Power != nil && st.Power.State == want }
}

// The box must end the show itself before the battery dies: on battery it
// warns and sheds load; at low battery the stream ends cleanly (the
// receiver's TS decodes to its last frame, nothing lost on the way, the
// SRT connection drained and closed), and only then the power-off is asked
// of logind, exactly once.
func TestLowBatteryEndsTheStreamCleanlyThenPowersOffOnce(t *testing.T) {
	need(t, "ffmpeg", "ffprobe")
	lab := nutlab.Start(t, nutlab.Options{})
	logind := logindtest.Start(t)
	port := freePort(t, "udp")
	rx := startIngest(t, port, t.TempDir(), "")
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, gop: 30,
		extra: powerYAML(lab, "  poweroff: true\n"), env: []string{logind.Env()}})
	st := b.waitFor(t, 20*time.Second, "streaming on mains", func(st api.Status) bool {
		return connected(st) && locked(st) && powerState(api.PowerOnline)(st) && st.Power.UPS.Reachable
	})
	if st.Power.Source != api.SourceMains || st.Power.UPS.ChargePct != 100 {
		t.Errorf("on mains: %+v, ups %+v", st.Power, st.Power.UPS)
	}

	lab.Set(t, "OB DISCHRG", 80, 1800)
	st = b.waitFor(t, 10*time.Second, "on battery, shedding", func(st api.Status) bool {
		return powerState(api.PowerOnBattery)(st) && st.Power.Shedding && st.Video.BitrateKbps == 2000
	})
	if st.Power.Source != api.SourceBattery || st.OnAir.Phase != api.OnAirLive || !connected(st) {
		t.Errorf("on battery: %+v, phase %s, output %s", st.Power, st.OnAir.Phase, st.Output.State)
	}
	time.Sleep(2 * time.Second)

	lb := time.Now()
	lab.Set(t, "OB DISCHRG LB", 9, 240)
	st = b.waitFor(t, 20*time.Second, "ended for power", func(st api.Status) bool {
		return powerState(api.PowerEnded)(st) && st.OnAir.Phase == api.OnAirStopped
	})
	call, err := logind.WaitCall(1, 10*time.Second)
	if err != nil {
		t.Fatalf("no power-off: %v (power %+v)", err, st.Power)
	}
	e := st.OnAir.LastEnd
	if e == nil || !e.Drained || e.Error != "" || !strings.HasPrefix(e.Reason, "power: ") || !strings.Contains(e.Reason, "LB") {
		t.Fatalf("end %+v, want a drained end for power (LB)", e)
	}
	if call.At.Before(e.At) {
		t.Errorf("power-off asked at %s, before the end of stream at %s", call.At, e.At)
	}
	t.Logf("LB → end of stream %s, → power-off %s; last frame %d", e.At.Sub(lb), call.At.Sub(lb), e.LastIndex)
	time.Sleep(3 * time.Second) // more polls of an LB UPS: no second end, no second power-off
	if n := len(logind.Calls()); n != 1 {
		t.Errorf("%d power-off calls, want exactly 1", n)
	}
	st, _ = b.status(t)
	if !st.Power.PoweredOff || st.Power.PowerOffError != "" || st.State != api.BoxStopped || st.Output.Connects != 1 {
		t.Errorf("after: power %+v, box %s, connects %d", st.Power, st.State, st.Output.Connects)
	}
	rx.stop(t, 5*time.Second)
	rep := analyze(t, rx.out)
	v, a := rep.Video, rep.Audio
	if v.Missing != 0 || v.Duplicates != 0 || v.Incomplete != 0 || a.Missing != 0 || a.TruncatedFrames != 0 {
		t.Errorf("recording: video missing %d dup %d incomplete %d, audio missing %d truncated %d",
			v.Missing, v.Duplicates, v.Incomplete, a.Missing, a.TruncatedFrames)
	}
	const offset, frame90k = 10 * 90000, 3000
	if (e.LastIndex+1)%30 != 0 || uint64((v.LastPTS-offset)/frame90k) != e.LastIndex {
		t.Errorf("the recording ends at PTS %d, the box ended at frame %d: want the end of a GOP (30)", v.LastPTS, e.LastIndex)
	}
	if errs := decodeErrors(t, rx.out); errs != "" {
		t.Errorf("the recording does not decode to its last frame:\n%s", tail(errs, 10))
	}
	b.stop(t, 10*time.Second)
	if n := len(logind.Calls()); n != 1 {
		t.Errorf("%d power-off calls after onaird stopped, want still 1", n)
	}
}

// Mains back cancels: OB then OL lifts the shedding and the show goes on.
// upsd dying mid-show is a warning, never a reason to stop; the box reads
// the UPS again when upsd returns. onaird stopping is no power event: no
// power-off.
func TestMainsBackAndUpsdDeathNeverStopTheShow(t *testing.T) {
	lab := nutlab.Start(t, nutlab.Options{})
	logind := logindtest.Start(t)
	port, out, rx := independentReceiver(t)
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, gop: 30,
		extra: powerYAML(lab, "  poweroff: true\n"), env: []string{logind.Env()}})
	b.waitFor(t, 20*time.Second, "streaming on mains", func(st api.Status) bool {
		return connected(st) && locked(st) && powerState(api.PowerOnline)(st) && st.Power.UPS.Reachable
	})
	lab.Set(t, "OB DISCHRG", 70, 1500)
	b.waitFor(t, 10*time.Second, "on battery", func(st api.Status) bool {
		return powerState(api.PowerOnBattery)(st) && st.Video.BitrateKbps == 2000
	})
	lab.Set(t, "OL CHRG", 71, 1600)
	st := b.waitFor(t, 10*time.Second, "mains back", func(st api.Status) bool {
		return powerState(api.PowerOnline)(st) && !st.Power.Shedding && st.Video.BitrateKbps == 4000
	})
	if st.OnAir.Phase != api.OnAirLive {
		t.Errorf("after mains back: phase %s", st.OnAir.Phase)
	}

	lab.KillUpsd(t)
	st = b.waitFor(t, 10*time.Second, "UPS unreachable", powerState(api.PowerUnreachable))
	if st.Power.UPS.Reachable || st.Power.UPS.LastError == "" {
		t.Errorf("unreachable: ups %+v", st.Power.UPS)
	}
	t.Logf("upsd killed: %s", st.Power.Reason)
	time.Sleep(3 * time.Second)
	if st, _ = b.status(t); !connected(st) || st.OnAir.Phase != api.OnAirLive || st.State == api.BoxStopped {
		t.Errorf("upsd gone: output %s, phase %s, box %s: want the stream on", st.Output.State, st.OnAir.Phase, st.State)
	}
	lab.StartUpsd(t)
	b.waitFor(t, 20*time.Second, "UPS read again", func(st api.Status) bool {
		return powerState(api.PowerOnline)(st) && st.Power.UPS.Reachable
	})
	time.Sleep(time.Second)
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)
	noGap(t, out)
	if n := len(logind.Calls()); n != 0 {
		t.Errorf("%d power-off calls: onaird stopping is not a power failure", n)
	}
}

// A wrong NUT password is an operator's mistake the status must name, not a
// silent "unknown"; the stream is not affected.
func TestWrongNUTPasswordIsAClearErrorInStatus(t *testing.T) {
	lab := nutlab.Start(t, nutlab.Options{Users: map[string]string{"onair": "right-password"}})
	pw := filepath.Join(t.TempDir(), "nut.pw")
	if err := os.WriteFile(pw, []byte("wrong-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port, _, _ := independentReceiver(t)
	extra := powerYAML(lab, fmt.Sprintf("    user: onair\n    password_file: %q\n  poweroff: false\n", pw))
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), gop: 30, extra: extra})
	st := b.waitFor(t, 20*time.Second, "login refused", func(st api.Status) bool {
		return connected(st) && powerState(api.PowerUnreachable)(st)
	})
	if !strings.Contains(st.Power.UPS.LastError, "ACCESS-DENIED") || !strings.Contains(st.Power.UPS.LastError, "login") {
		t.Errorf("last error %q: want the login refusal named", st.Power.UPS.LastError)
	}
	t.Logf("status says: %s", st.Power.UPS.LastError)
	b.stop(t, 10*time.Second)
}
