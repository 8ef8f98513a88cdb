package config

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

const good = `
video:
  source: "lavfi:testsrc2=size=1280x720:rate=30"
  fps: 29.97
audio:
  main:
    source: "lavfi:sine=frequency=1000"
output:
  url: "srt://127.0.0.1:9000?latency=200"
`

// withAudio adds lines under good's audio: key.
func withAudio(lines string) string { return strings.Replace(good, "audio:\n", "audio:\n"+lines, 1) }

func TestShippedDemoConfigIsValid(t *testing.T) {
	c, err := Load("../../configs/demo.yaml")
	if err != nil {
		t.Fatalf("configs/demo.yaml: %v", err)
	}
	if c.Video.FPS != (Rate{30, 1}) || !c.Video.TwinsEnabled() || c.Video.GOP != 60 {
		t.Fatalf("demo config decoded wrong: %+v", c.Video)
	}
}

// configs/1080p30.yaml is the crews' 1080p30 configuration: it must load
// and keep the settings its comments promise and the twins need (1080p at
// 30 fps, 6-8 Mbit/s, veryfast, twins with a GOP of whole seconds, a ring
// that holds more than the keeper's lateness), so the documented file
// cannot rot while the e2e test and the bench run its video settings.
func TestShipped1080p30ConfigIsValid(t *testing.T) {
	c, err := Load("../../configs/1080p30.yaml")
	if err != nil {
		t.Fatalf("configs/1080p30.yaml: %v", err)
	}
	v := c.Video
	if v.Width != 1920 || v.Height != 1080 || v.FPS != (Rate{30, 1}) {
		t.Errorf("picture %dx%d at %s, want 1920x1080 at 30", v.Width, v.Height, v.FPS)
	}
	if v.BitrateKbps < 6000 || v.BitrateKbps > 8000 {
		t.Errorf("video.bitrate_kbps = %d: crews send 6000..8000 at 1080p30", v.BitrateKbps)
	}
	if v.Preset != PresetVeryfast || !v.TwinsEnabled() || v.Relock != RelockGOP {
		t.Errorf("preset %s, twins %v, relock %s: want veryfast twins re-locking at a GOP", v.Preset, v.TwinsEnabled(), v.Relock)
	}
	if v.GOP%30 != 0 {
		t.Errorf("video.gop = %d: not a whole number of seconds at 30 fps", v.GOP)
	}
	if v.RingSlots < 12 {
		t.Errorf("video.ring_slots = %d: less than the default 12", v.RingSlots)
	}
	if c.RuntimeDir != "/dev/shm/onair" || c.API.Socket != "/run/onair/onaird.sock" {
		t.Errorf("runtime_dir %q, api.socket %q: not the box's paths (onaird.service)", c.RuntimeDir, c.API.Socket)
	}
}

// The image's default config (seeded onto a new box's data partition by
// onair-data.service) must load, and keep everything the box writes on the
// data partition (/var/lib/onair) or in the paths onaird.service makes
// writable: anything else is read-only under ProtectSystem=strict.
func TestImageDefaultConfigIsValid(t *testing.T) {
	c, err := Load("../../rootfs/overlay/usr/share/onair/onair.yaml")
	if err != nil {
		t.Fatalf("rootfs/overlay/usr/share/onair/onair.yaml: %v", err)
	}
	for key, p := range map[string]string{"api.auth_dir": c.API.AuthDir, "recording.dir": c.Recording.Dir} {
		if !strings.HasPrefix(p, "/var/lib/onair/") {
			t.Errorf("%s = %q: not on the data partition (/var/lib/onair/)", key, p)
		}
	}
	if c.API.Socket != "/run/onair/onaird.sock" {
		t.Errorf("api.socket = %q: onaird.service's RuntimeDirectory is /run/onair", c.API.Socket)
	}
	if !strings.HasPrefix(c.RuntimeDir, "/dev/shm/") {
		t.Errorf("runtime_dir = %q: onaird.service makes only /dev/shm writable for it", c.RuntimeDir)
	}
}

// configs/demo-bonded.yaml is what `make run` starts in the lab: it must
// load, be bonded over the lab's three uplinks (cell2 a capped backup), and
// scripts/demo.sh must start the receiver with the same passphrase,
// streamid and latency, or the demo never connects.
func TestShippedBondedDemoConfigIsValid(t *testing.T) {
	c, err := Load("../../configs/demo-bonded.yaml")
	if err != nil {
		t.Fatalf("configs/demo-bonded.yaml: %v", err)
	}
	u := c.Output.URL
	if !u.SRTLA || u.Host != "studio.lab" || u.Port != 5000 || !c.Video.ABREnabled(u.SRTLA) {
		t.Fatalf("bonded demo output decoded wrong: %+v, abr %v", u, c.Video.ABREnabled(u.SRTLA))
	}
	want := []Uplink{
		{Name: "wired", Interface: "wired", Policy: "bond"},
		{Name: "cell1", Interface: "cell1", Policy: "bond"},
		{Name: "cell2", Interface: "cell2", Policy: "backup", CapMB: 500},
	}
	if len(c.Uplinks) != len(want) {
		t.Fatalf("uplinks %+v, want %+v", c.Uplinks, want)
	}
	for i := range want {
		if c.Uplinks[i] != want[i] {
			t.Errorf("uplinks[%d] = %+v, want %+v", i, c.Uplinks[i], want[i])
		}
	}
	script, err := os.ReadFile("../../scripts/demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{
		"-srtla :" + strconv.Itoa(u.Port),
		"-passphrase " + u.Passphrase,
		"-streamid " + u.StreamID,
		"-latency " + strconv.FormatInt(u.Latency.Milliseconds(), 10) + "ms",
	} {
		if !strings.Contains(string(script), flag) {
			t.Errorf("scripts/demo.sh does not start the receiver with %q (configs/demo-bonded.yaml's output.url)", flag)
		}
	}
}

func TestDefaultsFillWhatTheFileLeavesOut(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Video.FPS != (Rate{30000, 1001}) {
		t.Errorf("29.97 parsed as %v, want 30000/1001", c.Video.FPS)
	}
	if c.API.Listen != "127.0.0.1:8080" || c.Video.Width != 1280 || c.Video.BitrateKbps != 4000 {
		t.Errorf("defaults missing: %+v", c)
	}
	if c.Video.StallAfter.D() != 500*time.Millisecond || c.Video.HangAfter.D() != 200*time.Millisecond {
		t.Errorf("stall_after/hang_after defaults %v %v", c.Video.StallAfter, c.Video.HangAfter)
	}
	if c.Supervisor.StartTimeout.D() != 10*time.Second {
		t.Errorf("supervisor.start_timeout default %v, want 10s (supervisor.DefaultStartTimeout)", c.Supervisor.StartTimeout)
	}
}

// Every bad input must produce an error that starts with the key at fault, so the
// crew (or the engineer over SSH) knows which line to fix.
func TestBadConfigErrorNamesTheKey(t *testing.T) {
	cases := []struct{ name, yaml, key string }{
		{"unknown top key", good + "bogus: 1\n", "bogus: unknown key"},
		{"unknown nested key", strings.Replace(good, "fps: 29.97", "fps: 30\n  colour: red", 1), "video.colour: unknown key"},
		{"missing source", strings.Replace(good, `source: "lavfi:testsrc2=size=1280x720:rate=30"`, `width: 1280`, 1), "video.source: missing"},
		{"bad source", strings.Replace(good, `"lavfi:testsrc2=size=1280x720:rate=30"`, `"rtsp://cam"`, 1), "video.source:"},
		{"bad url scheme", strings.Replace(good, "srt://127.0.0.1:9000", "udp://127.0.0.1:9000", 1), "output.url:"},
		{"url without port", strings.Replace(good, "srt://127.0.0.1:9000", "srt://127.0.0.1", 1), "output.url:"},
		{"missing url", strings.Replace(good, `url: "srt://127.0.0.1:9000?latency=200"`, `url: ""`, 1), "output.url: missing"},
		{"bad fps", strings.Replace(good, "fps: 29.97", "fps: fast", 1), "video.fps:"},
		{"fps out of range", strings.Replace(good, "fps: 29.97", "fps: 500", 1), "video.fps:"},
		{"odd width", strings.Replace(good, "fps: 29.97", "fps: 30\n  width: 1281", 1), "video.width:"},
		{"wrong type", strings.Replace(good, "fps: 29.97", "fps: 30\n  gop: many", 1), "video.gop:"},
		{"bad duration", strings.Replace(good, "fps: 29.97", "fps: 30\n  slate_after: soon", 1), "video.slate_after:"},
		{"bad audio source", strings.Replace(good, `"lavfi:sine=frequency=1000"`, `"mic"`, 1), "audio.main.source:"},
		{"bad backup audio source", withAudio("  backup:\n    source: usb\n"), "audio.backup.source:"},
		{"backup on main's device", strings.Replace(withAudio("  backup:\n    source: \"alsa:hw:1\"\n"), `"lavfi:sine=frequency=1000"`, `"alsa:hw:1"`, 1), "audio.backup.source:"},
		{"silence threshold above -20", withAudio("  silence_dbfs: -10\n"), "audio.silence_dbfs:"},
		{"silence_after of 0", withAudio("  silence_after: 0s\n"), "audio.silence_after:"},
		{"return_after under 1s", withAudio("  return_after: 500ms\n"), "audio.return_after:"},
		{"late_after over 2s", withAudio("  late_after: 5s\n"), "audio.late_after:"},
		{"hang_after under 3 frames", strings.Replace(good, "fps: 29.97", "fps: 30\n  hang_after: 50ms", 1), "video.hang_after:"},
		{"hang_after over stall_after", strings.Replace(good, "fps: 29.97", "fps: 30\n  hang_after: 2s", 1), "video.hang_after:"},
		{"start_timeout under 1s", good + "supervisor:\n  start_timeout: 100ms\n", "supervisor.start_timeout:"},
		{"bad api listen", good + "api:\n  listen: nonsense\n", "api.listen:"},
		{"relative socket", good + "api:\n  socket: onair.sock\n", "api.socket:"},
		{"future version", "version: 9\n" + good, "version:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error %q does not name %q", err, tc.key)
			}
		})
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	_, err := Parse([]byte("video:\n  width: 3\n  gop: 0\n"))
	e := &Error{}
	ok := errors.As(err, &e)
	if !ok {
		t.Fatalf("want *Error, got %T %v", err, err)
	}
	for _, key := range []string{"video.source", "video.width", "video.gop", "output.url"} {
		if !strings.Contains(e.Error(), key) {
			t.Errorf("missing %s in %v", key, e)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(t.TempDir() + "/none.yaml"); !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("want not-exist error, got %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}
