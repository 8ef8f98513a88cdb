package pulselab

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"onair/internal/testutil"
)

// pulsePluginGlobs are where Debian's libasound2-plugins puts the ALSA
// "pulse" PCM type.
var pulsePluginGlobs = []string{
	"/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so",
	"/usr/lib/alsa-lib/libasound_module_pcm_pulse.so",
}

// Start starts a lab for t: it skips t with the reason when pulseaudio,
// pactl, parec, ffmpeg or the ALSA pulse plugin is missing (fails instead under
// ONAIR_REQUIRE_ALL=1), fails t if the server does not come up, and closes
// the lab in t.Cleanup, even when t fails. The lab logs to t.
func Start(t testing.TB) *Lab {
	t.Helper()
	need(t)
	l, err := New(context.Background(), Options{Log: testutil.NilLogger(t).Named("pulselab")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("pulselab close: %v", err)
		}
	})
	return l
}

// need skips t (fails it under ONAIR_REQUIRE_ALL=1) unless everything a
// lab needs is installed.
func need(t testing.TB) {
	t.Helper()
	testutil.Need(t, "pulseaudio", "pactl", "parec", "ffmpeg")
	if !havePulsePlugin() {
		reason := "ALSA pulse plugin (libasound2-plugins) not installed: run scripts/deps.sh"
		if testutil.RequireAll() {
			t.Fatalf("%s; ONAIR_REQUIRE_ALL=1 forbids skipping", reason)
		}
		t.Skip(reason)
	}
}

// Setenv points the test process itself at the lab (Vars, through
// t.Setenv, restored when t ends), for tests that open the devices
// in-process, such as encoder/av's RunAudio. Like t.Setenv it cannot be
// used in parallel tests.
func (l *Lab) Setenv(t testing.TB) {
	t.Helper()
	for _, kv := range l.Vars() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

func havePulsePlugin() bool {
	for _, g := range pulsePluginGlobs {
		if m, _ := filepath.Glob(g); len(m) > 0 {
			return true
		}
	}
	return false
}
