package ctl

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"onair/events"
	"onair/internal/logging"
	"onair/internal/testutil"
	"onair/web"
	"onair/web/api"
	"onair/web/auth"
)

// serveFull runs the real API server with an event ring, a log tail and
// the page's authentication, on a socket.
func serveFull(t *testing.T, box web.Box, ring *events.Ring, tail *logging.Tail, a *auth.Auth) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	cfg := web.Config{Socket: sock, Events: ring, Logs: tail, Auth: a}
	s, err := web.New(cfg, box, zaptest.NewLogger(t))
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
	<-s.Ready()
	return sock
}

func TestEventsSinceTwoHoursPrintsTheReportWithFrames(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Now().Add(-3 * time.Hour))
	ring := events.New(0, zaptest.NewLogger(t), clock)
	ring.Add(api.Event{Kind: api.EventOnAir, Reason: "stopped → live (auto-start)"})
	clock.Advance(2 * time.Hour)
	frame := uint64(81234)
	ring.Add(api.Event{Kind: api.EventVideoFailover, Subject: "encoder-b", Frame: &frame, Reason: "encoder-a → encoder-b: active encoder down"})
	sock := serveFull(t, &fakeBox{}, ring, nil, nil)
	out, err := run(sock, "events", "--since", "2h")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "auto-start") || !strings.Contains(out, "video_failover") || !strings.Contains(out, "encoder-b @frame 81234: encoder-a → encoder-b: active encoder down") {
		t.Errorf("events --since 2h:\n%s", out)
	}
	if out, err = run(sock, "events"); err != nil || !strings.Contains(out, "auto-start") {
		t.Errorf("events: %v\n%s", err, out)
	}
	if _, err = run(sock, "events", "--since", "last tuesday"); err == nil || !strings.Contains(err.Error(), "since=") {
		t.Errorf("a bad --since: %v; want the server's one clear line", err)
	}
}

func TestLogsPrintsTheNewestLinesWithFields(t *testing.T) {
	tail := logging.NewTail(0)
	log := logging.WithTail(zaptest.NewLogger(t), tail).Named("onaird")
	for i := range 5 {
		log.Named("bond").Info("uplink up", zap.Int("n", i))
	}
	sock := serveFull(t, &fakeBox{}, nil, tail, nil)
	out, err := run(sock, "logs", "-n", "2")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "INFO   onaird.bond  uplink up  {\"n\":4}") {
		t.Errorf("logs -n 2:\n%s", out)
	}
}

func TestRecordStartStopAndARefusalIsOneLine(t *testing.T) {
	box := &fakeBox{st: api.Status{Recording: &api.RecordingStatus{State: api.RecordingStopped, Dir: "/rec"}}}
	sock := serveFull(t, box, nil, nil, nil)
	if out, err := run(sock, "record", "start"); err != nil || !strings.Contains(out, "recording  recording (operator) in /rec") {
		t.Errorf("record start: %v %q", err, out)
	}
	if out, err := run(sock, "record", "stop"); err != nil || !strings.Contains(out, "stopped (operator)") {
		t.Errorf("record stop: %v %q", err, out)
	}
	box.st.Recording.LastError = "disk full"
	if _, err := run(sock, "record", "start"); err == nil || err.Error() != "record: disk full: 0 bytes free in /rec" {
		t.Errorf("refused start: %v", err)
	}
	box.st.Recording = nil
	if _, err := run(sock, "record", "start"); err == nil || !strings.Contains(err.Error(), "recording.dir is not configured") {
		t.Errorf("no recording configured: %v", err)
	}
	if _, err := run(sock, "record", "pause"); err == nil || !strings.Contains(err.Error(), "record start or record stop") {
		t.Errorf("record pause: %v", err)
	}
}

func TestSetupTokenThenPasswdFromStdinSetsThePassword(t *testing.T) {
	a, err := auth.New(auth.Config{Dir: t.TempDir(), Params: auth.Params{Time: 1, MemoryKiB: 64, Threads: 1}}, zaptest.NewLogger(t), clockwork.NewRealClock())
	if err != nil {
		t.Fatal(err)
	}
	sock := serveFull(t, &fakeBox{}, nil, nil, a)
	want, _ := a.SetupToken()
	if out, err := run(sock, "setup-token"); err != nil || strings.TrimSpace(out) != want {
		t.Fatalf("setup-token: %v %q; want %q", err, out, want)
	}
	root := Root()
	var out strings.Builder
	root.SetOut(&out)
	root.SetIn(strings.NewReader("a long enough password\n"))
	root.SetArgs([]string{"--socket", sock, "passwd", "--stdin"})
	if err := root.ExecuteContext(context.Background()); err != nil || !strings.Contains(out.String(), "password set") {
		t.Fatalf("passwd: %v %q", err, out.String())
	}
	if st, _ := a.State(); st != auth.StateReady {
		t.Errorf("auth state after passwd: %v; want ready", st)
	}
	if _, err := run(sock, "setup-token"); err == nil || !strings.Contains(err.Error(), "setup") {
		t.Errorf("setup-token after passwd: %v; want refused", err)
	}
	root = Root()
	root.SetIn(strings.NewReader("short\n"))
	root.SetArgs([]string{"--socket", sock, "passwd"})
	if err := root.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("a short password: %v; want refused naming the rule", err)
	}
}

func TestConfigValidateAndApplyPrintWhatChangesAndABadKeyIsOneLine(t *testing.T) {
	sock := serveFull(t, &fakeBox{}, nil, nil, nil)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("video:\n  bitrate_kbps: 3000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("video:\n  gop: -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(sock, "config", "validate", good)
	if err != nil || !strings.Contains(out, "valid") || !strings.Contains(out, "would apply live: video.bitrate_kbps") || !strings.Contains(out, "would need a restart of onaird: video.gop") {
		t.Errorf("validate: %v\n%s", err, out)
	}
	if out, err = run(sock, "config", "apply", good); err != nil || !strings.Contains(out, "applied live: video.bitrate_kbps") {
		t.Errorf("apply: %v\n%s", err, out)
	}
	if _, err = run(sock, "config", "apply", bad); err == nil || err.Error() != bad+": video.gop: -1: must be 1..600: invalid" {
		t.Errorf("apply of a bad file: %v", err)
	}
	if _, err = run(sock, "config", "validate", filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("validate of a missing file: %v", err)
	}
}

// logs -f keeps printing the lines logged after it started, until its
// context ends (Ctrl-C).
func TestLogsFollowPrintsNewLinesUntilCancelled(t *testing.T) {
	tail := logging.NewTail(0)
	log := logging.WithTail(zaptest.NewLogger(t), tail).Named("onaird")
	log.Info("before")
	sock := serveFull(t, &fakeBox{}, nil, tail, nil)
	root := Root()
	out := &testutil.SyncBuffer{}
	root.SetOut(out)
	root.SetArgs([]string{"--socket", sock, "logs", "-f"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "before") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	log.Warn("after", zap.String("uplink", "cell1"))
	for !strings.Contains(out.String(), "after") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "INFO   onaird  before") || !strings.Contains(s, `WARN   onaird  after  {"uplink":"cell1"}`) || strings.Count(s, "before") != 1 {
		t.Errorf("logs -f:\n%s", s)
	}
}
