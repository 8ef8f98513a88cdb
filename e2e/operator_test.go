package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"onair/internal/testutil"
	"onair/web/api"
)

// onairctl runs onairctl against b's socket with stdin and returns its
// output; a failure is the one clear line onairctl prints.
func onairctl(t *testing.T, b *box, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin("onairctl"), append([]string{"--socket", b.socket}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("onairctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// The engineer over SSH: a fresh box has no password and its page offers
// only setup (its TCP API refuses without a session); onairctl
// setup-token and passwd work over the socket; then the page's login
// works, a failover from onairctl is in the post-event report with its
// frame, the log tail has onaird's lines but neither the password nor the
// token, and the receiver saw no gap.
func TestOnairctlOverTheSocketAndThePagesLoginOnARunningBox(t *testing.T) {
	port, out, rx := independentReceiver(t)
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, gop: 30})
	b.waitFor(t, 20*time.Second, "locked", func(st api.Status) bool { return connected(st) && locked(st) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	fi, err := os.Stat(b.socket)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("api socket %s: mode %v, %v; want a socket with 0660", b.socket, fi.Mode(), err)
	}
	page := api.NewHTTPClient("http://" + b.listen)
	var se *api.StatusError
	if _, err = page.Status(ctx); !errors.As(err, &se) || se.Code != http.StatusUnauthorized {
		t.Fatalf("the page's status without a session: %v; want 401", err)
	}
	tok, err := onairctl(t, b, "", "setup-token")
	tok = strings.TrimSpace(tok)
	if err != nil || len(tok) < 20 {
		t.Fatalf("setup-token: %q %v", tok, err)
	}
	st, _ := b.status(t)
	if st.Page == nil || st.Page.Auth != "setup" {
		t.Errorf("page status %+v; want auth setup", st.Page)
	}
	const password = "the show must go on 42"
	if res, perr := onairctl(t, b, password+"\n", "passwd", "--stdin"); perr != nil || !strings.Contains(res, "password set") {
		t.Fatalf("passwd: %v %s", perr, res)
	}
	if err = page.Login(ctx, "not the password"); !errors.As(err, &se) || se.Code != http.StatusUnauthorized {
		t.Errorf("a wrong password: %v; want 401", err)
	}
	if err = page.Login(ctx, password); err != nil {
		t.Fatalf("login: %v", err)
	}
	if st, err = page.Status(ctx); err != nil || st.Page == nil || st.Page.Auth != "ready" {
		t.Fatalf("status over the page's session: %v %+v", err, st.Page)
	}

	b.waitFor(t, 20*time.Second, "locked", locked)
	res, err := onairctl(t, b, "", "failover", "video")
	if err != nil || !strings.Contains(res, "video failover done") {
		t.Fatalf("failover: %v %s", err, res)
	}
	var report string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if report, err = onairctl(t, b, "", "events", "--since", "2h"); err == nil && strings.Contains(report, "video_failover") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{"video_failover", "@frame", "manual failover", "login", "logged in", "password set over the unix socket"} {
		if !strings.Contains(report, want) {
			t.Errorf("events --since 2h lacks %q:\n%s", want, report)
		}
	}
	if res, err = onairctl(t, b, "", "bitrate", "3000"); err != nil || !strings.Contains(res, "3000 kbit/s from frame") {
		t.Errorf("bitrate: %v %s", err, res)
	}
	if res, err = onairctl(t, b, "", "record", "start"); err == nil || !strings.Contains(err.Error(), "recording.dir is not configured") {
		t.Errorf("record start without recording.dir: %v %s", err, res)
	}
	logs, err := onairctl(t, b, "", "logs", "-n", "1000")
	if err != nil || !strings.Contains(logs, "onaird") || !strings.Contains(logs, "active encoder changed") {
		t.Errorf("logs: %v\n%s", err, tail(logs, 10))
	}
	for _, secret := range []string{password, tok} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log tail holds a secret %q", secret)
		}
	}
	if strings.Contains(b.logs(), password) {
		t.Error("onaird's log holds the password")
	}
	if res, err = onairctl(t, b, "", "status"); err != nil || !strings.Contains(res, "page     auth ready") {
		t.Errorf("status: %v\n%s", err, res)
	}
	if res, err = onairctl(t, b, "", "frobnicate"); err == nil || strings.Count(strings.TrimSpace(res), "\n") > 0 {
		t.Errorf("an unknown command: %v %q; want one clear line", err, res)
	}
	time.Sleep(time.Second)
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)
	noGap(t, out)
}

// The ISO backup on a disk that fills up mid-show: the recording stops and
// says why, the segments written play, and the stream to the receiver
// loses nothing.
func TestFullDiskStopsTheRecordingNotTheStream(t *testing.T) {
	testutil.NeedRoot(t, "mounts a small tmpfs as the recording disk")
	disk := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", disk, "tmpfs", 0, "size=3m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(disk, 0); err != nil {
			t.Errorf("unmount %s: %v", disk, err)
		}
	})
	port, out, rx := independentReceiver(t)
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, gop: 30,
		extra: fmt.Sprintf("recording:\n  dir: %q\n  segment: 2s\n", disk)})
	b.waitFor(t, 20*time.Second, "recording", func(st api.Status) bool {
		return connected(st) && st.Recording != nil && st.Recording.State == api.RecordingRecording && st.Recording.File != ""
	})
	// 4000 kbit/s fills 3 MiB in about 6 s.
	st := b.waitFor(t, 30*time.Second, "the recording stopped by the full disk", func(st api.Status) bool {
		return st.Recording.State != api.RecordingRecording
	})
	t.Logf("recording: %s (%s), %d segments, %d bytes", st.Recording.State, st.Recording.Reason, st.Recording.Segments, st.Recording.Bytes)
	if !strings.Contains(st.Recording.Reason, "disk full") {
		t.Errorf("recording stopped with %q; want it to say disk full", st.Recording.Reason)
	}
	if st.State != api.BoxOnAir && st.State != api.BoxDegraded || !connected(st) {
		t.Errorf("box %s, output %s after the disk filled; want still on air", st.State, st.Output.State)
	}
	st = b.waitFor(t, 5*time.Second, "the panel's recording LED says it failed", func(st api.Status) bool {
		for _, l := range st.Panel.LEDs {
			if l.Name == "recording" {
				return l.Pattern == api.LEDFastBlink
			}
		}
		return false
	})
	time.Sleep(3 * time.Second) // the stream goes on
	if res, err := onairctl(t, b, "", "events"); err != nil || !strings.Contains(res, "recording") || !strings.Contains(res, "disk full") {
		t.Errorf("events: %v\n%s", err, res)
	}
	if _, err := b.client.SetRecording(context.Background(), true); err == nil {
		t.Error("recording started again on a full disk")
	}
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)
	noGap(t, out)
	segs, _ := filepath.Glob(filepath.Join(disk, "onair-*.ts"))
	if len(segs) < 2 {
		t.Fatalf("segments %v; want at least 2", segs)
	}
	for _, s := range segs {
		if e := decodeErrors(t, s); e != "" {
			t.Errorf("segment %s does not play cleanly:\n%s", filepath.Base(s), tail(e, 5))
		}
		if fi, err := os.Stat(s); err != nil || fi.Size() == 0 {
			t.Errorf("segment %s empty: %v", s, err)
		}
	}
}

// The studio's Prometheus scrapes metrics.listen while faults happen: a
// killed encoder moves its restart counter and the switch counter.
func TestMetricsScrapedDuringAFaultMoveWithIt(t *testing.T) {
	port, out, rx := independentReceiver(t)
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, gop: 30,
		extra: fmt.Sprintf("metrics:\n  listen: %q\n", maddr)})
	st := b.waitFor(t, 20*time.Second, "locked", func(st api.Status) bool { return connected(st) && locked(st) })
	before := scrape(t, maddr)
	active := st.Video.Switch.Active
	victim := b.child(t, active)
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, 30*time.Second, "replaced and relocked", replaced(active, victim.PID, true))
	after := scrape(t, maddr)
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"onair_child_restarts_total", map[string]string{"child": active}},
		{"onair_video_switches_total", nil},
	} {
		v0, v1 := value(before, c.name, c.labels), value(after, c.name, c.labels)
		t.Logf("%s%v: %v → %v", c.name, c.labels, v0, v1)
		if v1 <= v0 {
			t.Errorf("%s%v did not move with the fault: %v → %v", c.name, c.labels, v0, v1)
		}
	}
	if value(after, "onair_video_gap_frames_total", nil) != 0 {
		t.Errorf("gap frames after a locked failover: %v", value(after, "onair_video_gap_frames_total", nil))
	}
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)
	noGap(t, out)
}

func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape: parse: %v", err)
	}
	return fams
}

// value is the sample of name whose labels include labels (-1: none).
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range labels {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// config apply is atomic: a bad file is refused with the key named and the
// box untouched; a good one changes the bitrate live (the twins stay
// locked, no gap) and saves the file, listing what waits for a restart.
// onairctl restart brings one encoder back, the stream kept, and refuses
// the vital cadence and an output restart without --yes.
func TestConfigApplyAndRestartOnARunningBoxCostNoFrame(t *testing.T) {
	port, out, rx := independentReceiver(t)
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, gop: 30})
	st := b.waitFor(t, 20*time.Second, "locked", func(st api.Status) bool { return connected(st) && locked(st) })
	path := filepath.Join(filepath.Dir(b.socket), "onair.yaml")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad, good := filepath.Join(dir, "bad.yaml"), filepath.Join(dir, "good.yaml")
	if err = os.WriteFile(bad, []byte(strings.Replace(string(orig), "gop: 30", "gop: -5", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(strings.Replace(string(orig), "bitrate_kbps: 4000", "bitrate_kbps: 2500", 1), "stall_after: 500ms", "stall_after: 600ms", 1)
	if err = os.WriteFile(good, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := onairctl(t, b, "", "config", "apply", bad)
	if err == nil || !strings.Contains(err.Error(), "video.gop") {
		t.Fatalf("apply of a bad file: %v %s; want refused naming video.gop", err, res)
	}
	if now, _ := os.ReadFile(path); string(now) != string(orig) {
		t.Error("a refused config changed the file")
	}
	if res, err = onairctl(t, b, "", "config", "validate", good); err != nil || !strings.Contains(res, "would apply live: video.bitrate_kbps") {
		t.Errorf("validate: %v\n%s", err, res)
	}
	// Above what the encoders started with, the bitrate waits for a restart.
	raise := filepath.Join(dir, "raise.yaml")
	if err = os.WriteFile(raise, []byte(strings.Replace(string(orig), "bitrate_kbps: 4000", "bitrate_kbps: 6000", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if res, err = onairctl(t, b, "", "config", "validate", raise); err != nil || !strings.Contains(res, "would need a restart of onaird: video.bitrate_kbps") {
		t.Errorf("validate of a raise: %v\n%s", err, res)
	}
	if st, _ = b.status(t); st.Video.BitrateKbps != 4000 {
		t.Errorf("bitrate %d after a refused apply and a validate; want 4000", st.Video.BitrateKbps)
	}
	res, err = onairctl(t, b, "", "config", "apply", good)
	if err != nil || !strings.Contains(res, "applied live: video.bitrate_kbps") || !strings.Contains(res, "video.stall_after") {
		t.Fatalf("apply: %v\n%s", err, res)
	}
	st = b.waitFor(t, 10*time.Second, "2500 kbit/s, still locked", func(st api.Status) bool { return st.Video.BitrateKbps == 2500 && locked(st) })
	if now, _ := os.ReadFile(path); string(now) != next {
		t.Error("the applied config was not saved")
	}
	if res, err = onairctl(t, b, "", "events"); err != nil || !strings.Contains(res, "applied: live video.bitrate_kbps; at the next restart video.stall_after") || !strings.Contains(res, "refused: video.gop") {
		t.Errorf("events: %v\n%s", err, res)
	}

	other := "encoder-a"
	if st.Video.Switch.Active == other {
		other = "encoder-b"
	}
	pid := b.child(t, other).PID
	if res, err = onairctl(t, b, "", "restart", other); err != nil || !strings.Contains(res, "child "+other+" restarted") {
		t.Fatalf("restart %s: %v %s", other, err, res)
	}
	b.waitFor(t, 30*time.Second, other+" replaced and relocked", replaced(other, pid, true))
	if _, err = onairctl(t, b, "", "restart", "cadence"); err == nil || !strings.Contains(err.Error(), "vital") {
		t.Errorf("restart cadence: %v", err)
	}
	if _, err = onairctl(t, b, "", "restart", "output"); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("restart output without --yes: %v", err)
	}
	if _, err = onairctl(t, b, "", "restart", "capture"); err == nil || !strings.Contains(err.Error(), "picture freezes") {
		t.Errorf("restart capture without --yes: %v", err)
	}
	if _, err = onairctl(t, b, "", "restart", "nosuch"); err == nil || !strings.Contains(err.Error(), "no such child or component") {
		t.Errorf("restart nosuch: %v", err)
	}
	if res, err = onairctl(t, b, "", "restart", "events"); err != nil || !strings.Contains(res, "component events restarted") {
		t.Errorf("restart events: %v %s", err, res)
	}
	time.Sleep(time.Second)
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)
	noGap(t, out)
}
