package ctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"onair/internal/version"
	"onair/web"
	"onair/web/api"
)

// Operators type `onairctl status -json` (single dash) out of habit; pflag
// would read it as -j -s -o -n.
func TestSingleDashLongFlagIsAccepted(t *testing.T) {
	got := NormalizeArgs([]string{"status", "-json", "--socket", "/x", "-h"})
	want := []string{"status", "--json", "--socket", "/x", "-h"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// fakeBox answers like onaird: the first failover is pending, the second refused.
type fakeBox struct {
	st        api.Status
	failovers int
	kbps      int
	abr       bool
	onair     []bool
	updates   []api.UpdateRequest
}

func (b *fakeBox) Status() api.Status { return b.st }

func (b *fakeBox) FailoverVideo() (string, bool, error) {
	b.failovers++
	if b.failovers == 1 {
		return "encoder-b", true, nil
	}
	return "", false, errors.New("encoder: failover: encoder-b is not running")
}

func (b *fakeBox) SetVideoBitrate(kbps int) (api.BitrateResult, error) {
	b.kbps = kbps
	if b.abr {
		return api.BitrateResult{Result: api.BitrateCeiling, Kbps: kbps}, nil
	}
	return api.BitrateResult{Result: api.BitrateSet, AtIndex: 1234, Kbps: kbps}, nil
}

func (b *fakeBox) SetUplink(name string, enabled bool) (api.UplinkStatus, error) {
	if b.st.Bond == nil || name != "cell1" {
		return api.UplinkStatus{}, fmt.Errorf("bond: no uplink %q: %w", name, web.ErrNotFound)
	}
	b.st.Bond.Uplinks[1].Enabled = enabled
	b.st.Bond.Uplinks[1].State = api.UplinkDisabled
	return b.st.Bond.Uplinks[1], nil
}

func (b *fakeBox) SetAudioSource(m api.AudioMode) (api.AudioStatus, error) {
	if m != api.AudioAuto && m != api.AudioMain && m != api.AudioBackup {
		return api.AudioStatus{}, fmt.Errorf("audio: unknown mode %q", m)
	}
	b.st.Audio.Mode, b.st.Audio.Active, b.st.Audio.Reason = m, "backup", "operator: "+string(m)
	return b.st.Audio, nil
}

func (b *fakeBox) SetOnAir(_ context.Context, live bool) (api.OnAirStatus, error) {
	b.onair = append(b.onair, live)
	if live {
		b.st.OnAir = api.OnAirStatus{Phase: api.OnAirLive, Reason: "operator"}
		return b.st.OnAir, nil
	}
	b.st.OnAir = api.OnAirStatus{Phase: api.OnAirStopped, Reason: "operator",
		LastEnd: &api.StreamEnd{Reason: "operator", LastIndex: 899, Drained: true, TookMs: 1840}}
	return b.st.OnAir, nil
}

func (b *fakeBox) PanelPress(button string, long bool) (api.PanelPressResult, error) {
	if button != "failover" {
		return api.PanelPressResult{}, fmt.Errorf("board: button %q: %w", button, web.ErrNotFound)
	}
	return api.PanelPressResult{Button: button, Long: long, Action: "failover video"}, nil
}

// serve runs the real API server (every check included) on a socket.
func serve(t *testing.T, box web.Box) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	s, err := web.New(web.Config{Socket: sock}, box, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	}
	return sock
}

func run(sock string, args ...string) (string, error) {
	root := Root()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs(NormalizeArgs(append([]string{"--socket", sock}, args...)))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestStatusOverUnixSocket(t *testing.T) {
	box := &fakeBox{st: api.Status{
		Version: "test", State: api.BoxDegraded,
		Children: []api.ChildStatus{
			{ProcessStatus: api.ProcessStatus{Name: "encoder-a", Role: "encode", PID: 41, State: "running"}, Margin: 2.44, MarginMin: 1.86},
			{ProcessStatus: api.ProcessStatus{Name: "encoder-b", Role: "encode", PID: 42, State: "backoff", Restarts: 3, LastError: "stalled: no progress for 500ms"}},
		},
		Video: api.VideoStatus{Switch: api.SwitchStatus{Twins: true, Locked: false, Active: "encoder-a"}},
	}}
	sock := serve(t, box)
	out, err := run(sock, "status")
	if err != nil {
		t.Fatal(err)
	}
	// encoder-a's margin as the crew reads it; encoder-b restarts and has
	// none yet ("-", never a 0 that reads as "hopelessly behind").
	for _, want := range []string{"DEGRADED", "UNLOCKED", "encoder-b", "backoff", "stalled: no progress", "MARGIN", "2.4x (min 1.9x)"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "encoder-b ") && !strings.Contains(line, " - ") {
			t.Errorf("unmeasured margin not shown as -: %q", line)
		}
	}
	out, err = run(sock, "status", "-json")
	if err != nil || !strings.Contains(out, `"encoder-b"`) || !strings.Contains(out, `"components"`) {
		t.Fatalf("status -json: %v\n%s", err, out)
	}
	if out, err := run(sock, "failover", "video"); err != nil || !strings.Contains(out, "pending: twins unlocked") {
		t.Fatalf("pending failover must say so: %v\n%s", err, out)
	}
	if _, err := run(sock, "failover", "video"); err == nil || err.Error() != "encoder: failover: encoder-b is not running" {
		t.Fatalf("refused failover must say why, in the server's words: %v", err)
	}
	if _, err := run(sock, "failover", "audio"); err == nil {
		t.Fatal("failover audio accepted")
	}
	if box.failovers != 2 {
		t.Fatalf("failover audio reached the box: %d failovers", box.failovers)
	}
}

// The bitrate command is a JSON POST the hardened server accepts.
func TestBitrateReachesTheBox(t *testing.T) {
	box := &fakeBox{}
	out, err := run(serve(t, box), "bitrate", "2500")
	if err != nil {
		t.Fatal(err)
	}
	if box.kbps != 2500 || out != "video bitrate 2500 kbit/s from frame 1234\n" {
		t.Fatalf("box got %d kbps; output %q", box.kbps, out)
	}
	box.abr = true
	if out, err = run(serve(t, box), "bitrate", "3000"); err != nil || !strings.Contains(out, "adaptive bitrate ceiling 3000 kbit/s") {
		t.Fatalf("with ABR: %v %q", err, out)
	}
}

func TestNoDaemonSaysSo(t *testing.T) {
	_, err := run(filepath.Join(t.TempDir(), "none.sock"), "status")
	if err == nil || !strings.Contains(err.Error(), "is onaird running?") {
		t.Fatalf("got %v", err)
	}
}

func TestVersionPrintsTheBuildVersion(t *testing.T) {
	old := version.Version
	version.Version = "v9.9.9-test"
	defer func() { version.Version = old }()
	out, err := run("/nonexistent.sock", "version")
	if err != nil || out != "v9.9.9-test\n" {
		t.Fatalf("version: %v %q", err, out)
	}
}

// onairctl uplinks prints what a crew asks first: which link carries, how
// well, how much of a cap is used; a plain srt:// box says it is not bonded.
func TestUplinksPrintsEveryLinkAndTheBitrate(t *testing.T) {
	box := &fakeBox{st: api.Status{Bond: &api.BondStatus{
		Group: api.GroupRegistered, Receiver: "studio.example:5000", Registers: 1,
		Bitrate: api.BitrateStatus{Kbps: 3200, MinKbps: 1000, MaxKbps: 4000, ABR: true, Reason: "congestion: send buffer 420 ms"},
		Uplinks: []api.UplinkStatus{
			{Name: "wired", Interface: "eth0", Policy: api.PolicyBond, State: api.UplinkUp, Carrying: true, Addresses: []string{"192.0.2.2"}, RTTms: 12, ThroughputKbps: 2100, BytesSent: 5_500_000},
			{Name: "cell1", Interface: "wwan0", Policy: api.PolicyBackup, State: api.UplinkCapped, Addresses: []string{"2001:db8::2"}, BytesSent: 5_000_000_000, CapBytes: 5_000_000_000},
		},
	}}}
	sock := serve(t, box)
	out, err := run(sock, "uplinks")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"studio.example:5000", "registered", "3200 kbit/s", "adaptive 1000..4000", "send buffer 420 ms",
		"wired", "eth0", "192.0.2.2", "5.5 MB", "cell1", "capped", "5000.0 MB / 5000.0 MB", "2001:db8::2"} {
		if !strings.Contains(out, want) {
			t.Errorf("uplinks output lacks %q:\n%s", want, out)
		}
	}
	out, err = run(sock, "uplink", "cell1", "disable")
	if err != nil || out != "uplink cell1 disabled: disabled\n" {
		t.Fatalf("disable: %v %q", err, out)
	}
	if _, err := run(sock, "uplink", "cell9", "disable"); err == nil || !strings.Contains(err.Error(), "cell9") {
		t.Fatalf("unknown uplink: %v", err)
	}
	if _, err := run(sock, "uplink", "cell1", "off"); err == nil {
		t.Fatal("uplink cell1 off accepted")
	}
	box.st.Bond = nil
	box.st.Output.Target = "srt://127.0.0.1:9000?latency=200"
	if out, err := run(sock, "uplinks"); err != nil || !strings.Contains(out, "not bonded") {
		t.Fatalf("plain srt: %v %q", err, out)
	}
}

// onairctl audio shows what the crew asks when the sound goes: which chain
// is on air and why, each chain's level and state; audio backup forces it.
func TestAudioPrintsTheChainsAndForcesBackup(t *testing.T) {
	at := time.Date(2026, 12, 2, 14, 3, 4, 0, time.UTC)
	box := &fakeBox{st: api.Status{Audio: api.AudioStatus{Mode: api.AudioAuto, Active: "backup", Reason: "main silent (below -60 dBFS for 3s)",
		Switches: 1, LastSwitches: []api.AudioSwitch{{At: at, Index: 4711, From: "main", To: "backup", Reason: "main silent (below -60 dBFS for 3s)"}},
		Chains: []api.AudioChainStatus{
			{Name: "main", State: api.AudioChainSilent, PeakDBFS: -120, RMSDBFS: -120, RatePPM: -12, RateMeasured: true},
			{Name: "backup", State: api.AudioChainOK, PeakDBFS: -18, RMSDBFS: -21, HealthyS: 42},
		}}}}
	sock := serve(t, box)
	out, err := run(sock, "audio")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mode auto", "on air backup", "main silent", "silent", "-120.0", "-12", "-18.0", "frame 4711", "main → backup"} {
		if !strings.Contains(out, want) {
			t.Errorf("audio output lacks %q:\n%s", want, out)
		}
	}
	out, err = run(sock, "audio", "backup")
	if err != nil || out != "audio mode backup: on air backup (operator: backup)\n" {
		t.Fatalf("force backup: %v %q", err, out)
	}
	if _, err := run(sock, "audio", "desk"); err == nil || !strings.Contains(err.Error(), "main, backup or auto") {
		t.Fatalf("audio desk: %v", err)
	}
}

// A stop recalled from the shell history must not end a show: without
// --yes it is refused before it reaches the box.
func TestStopNeedsYesAndLiveGoesBackOnAir(t *testing.T) {
	box := &fakeBox{}
	sock := serve(t, box)
	if _, err := run(sock, "stop"); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("stop without --yes: %v", err)
	}
	if len(box.onair) != 0 {
		t.Fatalf("the box saw %v", box.onair)
	}
	out, err := run(sock, "stop", "--yes")
	if err != nil || !strings.Contains(out, "stopped") || !strings.Contains(out, "last frame 899, drained") {
		t.Fatalf("stop --yes: %v\n%s", err, out)
	}
	if out, err = run(sock, "live"); err != nil || !strings.Contains(out, "on air: live") {
		t.Fatalf("live: %v\n%s", err, out)
	}
	if len(box.onair) != 2 || box.onair[0] || !box.onair[1] {
		t.Fatalf("the box saw %v", box.onair)
	}
}

// onairctl power and panel print what the crew asks on battery: the source,
// the UPS figures, why the policy is where it is, the LEDs.
func TestPowerAndPanelPrintTheStateAndPressReachesTheBox(t *testing.T) {
	box := &fakeBox{st: api.Status{
		Power: &api.PowerStatus{State: api.PowerOnBattery, Source: api.SourceBattery, Reason: "UPS on battery", Shedding: true,
			UPS: &api.UPSStatus{Name: "dummy@127.0.0.1:3493", Reachable: true, Status: []string{"OB", "DISCHRG"}, ChargePct: 80, RuntimeS: -1}},
		Thermal: &api.ThermalStatus{MaxC: 71.5, WarnC: 80},
		Panel: &api.PanelStatus{Virtual: true, Buttons: []string{"go_live", "failover", "audio"},
			LEDs: []api.LEDStatus{{Name: "power", Pattern: api.LEDSlowBlink, Meaning: "battery"}}},
	}}
	sock := serve(t, box)
	out, err := run(sock, "power")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"on_battery", "UPS on battery", "shedding", "OB DISCHRG", "charge 80 %", "runtime -", "71.5 °C"} {
		if !strings.Contains(out, want) {
			t.Errorf("power output lacks %q:\n%s", want, out)
		}
	}
	if out, err = run(sock, "panel"); err != nil || !strings.Contains(out, "slow_blink") || !strings.Contains(out, "virtual") {
		t.Errorf("panel: %v\n%s", err, out)
	}
	if out, err = run(sock, "panel", "press", "failover"); err != nil || out != "failover: failover video\n" {
		t.Errorf("panel press: %v %q", err, out)
	}
	if _, err = run(sock, "panel", "press", "eject"); err == nil {
		t.Error("an unknown button was accepted")
	}
}

func (b *fakeBox) SetRecording(_ context.Context, on bool) (api.RecordingStatus, error) {
	if b.st.Recording == nil {
		return api.RecordingStatus{}, fmt.Errorf("recording: recording.dir is not configured: %w", web.ErrNotFound)
	}
	if on && b.st.Recording.LastError != "" {
		return *b.st.Recording, errors.New("record: disk full: 0 bytes free in /rec")
	}
	b.st.Recording.State = api.RecordingStopped
	if on {
		b.st.Recording.State = api.RecordingRecording
	}
	b.st.Recording.Reason = "operator"
	return *b.st.Recording, nil
}

func (b *fakeBox) Restart(name string, force bool) (api.RestartResult, error) {
	switch name {
	case "encoder-b":
		return api.RestartResult{Name: name, Kind: "child"}, nil
	case "output":
		if !force {
			return api.RestartResult{}, errors.New("restart output: it reconnects the stream (the viewers see a break): say --yes")
		}
		return api.RestartResult{Name: name, Kind: "component"}, nil
	}
	return api.RestartResult{}, fmt.Errorf("restart %q: no such child or component: %w", name, web.ErrNotFound)
}

func (b *fakeBox) ApplyConfig(_ context.Context, raw []byte, dryRun bool) (api.ConfigResult, error) {
	if strings.Contains(string(raw), "gop: -1") {
		return api.ConfigResult{}, fmt.Errorf("video.gop: -1: must be 1..600: %w", web.ErrInvalid)
	}
	return api.ConfigResult{DryRun: dryRun, Live: []string{"video.bitrate_kbps"}, Restart: []string{"video.gop"}}, nil
}

func (b *fakeBox) StartCanary(worker string) (api.CanaryStatus, error) {
	if worker == "" {
		return api.CanaryStatus{}, errors.New("canary: worker \"\": want an absolute path")
	}
	return api.CanaryStatus{State: api.CanaryStarting, Worker: worker}, nil
}

func (b *fakeBox) Update(req api.UpdateRequest) (api.UpdateInstall, error) {
	b.updates = append(b.updates, req)
	if req.Bundle == "" {
		return api.UpdateInstall{}, errors.New("update: not configured (update.public_key is empty)")
	}
	if strings.HasSuffix(req.Bundle, "old.bundle") && !req.AllowDowngrade {
		return api.UpdateInstall{}, errors.New("update: not newer than the running version: bundle v1.2.0 is older than the running v1.3.0: refused; --allow-downgrade installs it")
	}
	return api.UpdateInstall{Bundle: req.Bundle, State: "verify"}, nil
}

// --allow-downgrade, --force and --at-stop reach the box in POST
// /api/update; a downgrade refused is the box's one line.
func TestUpdateFlagsReachTheBox(t *testing.T) {
	box := &fakeBox{}
	sock := serve(t, box)
	old := filepath.Join(t.TempDir(), "old.bundle")
	if _, err := run(sock, "update", "--no-wait", old); err == nil || err.Error() != "update: not newer than the running version: bundle v1.2.0 is older than the running v1.3.0: refused; --allow-downgrade installs it" {
		t.Fatalf("a downgrade: %v, want the box's refusal", err)
	}
	out, err := run(sock, "update", "--no-wait", "--allow-downgrade", "--at-stop", old)
	if err != nil || out != "update verify: "+old+"\n" {
		t.Fatalf("update --allow-downgrade: %v %q", err, out)
	}
	if _, err = run(sock, "update", "--no-wait", "--force", old); err == nil {
		t.Fatal("--force allowed a downgrade")
	}
	want := []api.UpdateRequest{{Bundle: old}, {Bundle: old, AtStop: true, AllowDowngrade: true}, {Bundle: old, Force: true}}
	if !slices.Equal(box.updates, want) {
		t.Fatalf("the box got %+v, want %+v", box.updates, want)
	}
}
