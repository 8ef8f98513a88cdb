package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"onair/ingest"
	"onair/internal/nspawnlab"
	"onair/internal/testutil"
)

// imageRootfs is the built image's root tree: $ONAIR_IMAGE_ROOTFS, or
// out/image/rootfs, built here with make image. The image test runs only
// with ONAIR_IMAGE=1 (make integration sets it): a cold image build is about
// 3 minutes (the Debian base, 161 s), too long for make test and CI's
// budget, so there it skips, saying so, even under ONAIR_REQUIRE_ALL=1.
func imageRootfs(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ONAIR_IMAGE_ROOTFS"); p != "" {
		return p
	}
	if os.Getenv("ONAIR_IMAGE") != "1" {
		t.Skip("the image test runs under make integration (ONAIR_IMAGE=1): it builds the image (minutes cold) and boots it")
	}
	p, err := filepath.Abs("../out/image/rootfs")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mk := exec.Command("make", "-C", "..", "image")
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, tail(string(out), 40))
	}
	t.Logf("make image: %s", time.Since(start).Round(100*time.Millisecond))
	return p
}

// imageReceiver is onair-ingest in this process, on the host's loopback: the
// studio outside the container.
type imageReceiver struct {
	srv    *ingest.Server
	out    string
	cancel context.CancelFunc
	done   chan error
	err    error // Run's return, once stopped
}

func startImageReceiver(t *testing.T, port int, out string) *imageReceiver {
	t.Helper()
	srv, err := ingest.New(ingest.Config{Listen: fmt.Sprintf("127.0.0.1:%d", port), OutFile: out, Analyzer: ingest.Options{FPS: 30}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &imageReceiver{srv: srv, out: out, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-r.done:
		t.Fatalf("receiver: %v", err)
	}
	t.Cleanup(r.stop)
	return r
}

// stop ends the receiver and closes its file; safe to call twice.
func (r *imageReceiver) stop() {
	r.cancel()
	if r.done != nil {
		r.err = <-r.done
		r.done = nil
	}
}

func (r *imageReceiver) frames() int64 { return r.srv.Report().Video.Frames }

// backOnAir waits until a connection newer than the first `conns` brings
// video frames, and returns when that connection was first seen and when its
// first new frame arrived.
func (r *imageReceiver) backOnAir(t *testing.T, conns int, limit time.Duration) (connected, frame time.Time) {
	t.Helper()
	deadline := time.Now().Add(limit)
	base := int64(-1)
	for time.Now().Before(deadline) {
		rep := r.srv.Report()
		if base < 0 && rep.Connections > conns {
			connected, base = time.Now(), rep.Video.Frames
		}
		if base >= 0 && rep.Video.Frames > base {
			return connected, time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("not back on air after %s (connections %d, frames %d)", limit, r.srv.Report().Connections, r.frames())
	return
}

// TestImageOnAirUnderSystemd boots the image's rootfs in systemd-nspawn (the
// FACTS §5 recipe, nspawnlab) with a data partition of its own bound at
// /data holding a config that streams the demo over SRT to a receiver on the
// host, outside the container. onaird must reach READY under systemd and
// stream; killed (SIGKILL) systemd restarts it and it is back on air; hung
// (SIGSTOP) the watchdog restarts it; `systemctl poweroff` ends the stream
// cleanly (the last recording decodes to its end). The times back on air are
// logged.
func TestImageOnAirUnderSystemd(t *testing.T) {
	testutil.NeedRoot(t, "systemd-nspawn boots the image")
	need(t, "systemd-nspawn", "nsenter", "unshare", "ffmpeg", "journalctl")
	rootfs := imageRootfs(t)
	if _, err := os.Stat(filepath.Join(rootfs, "usr/bin/onaird")); err != nil {
		t.Fatalf("no image at %s (make image): %v", rootfs, err)
	}
	dir := t.TempDir()
	port, apiPort := freePort(t, "udp"), freePort(t, "tcp")
	data := filepath.Join(dir, "data")
	writeImageConfig(t, data, port, apiPort)
	rx := startImageReceiver(t, port, filepath.Join(dir, "received-1.ts"))

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	booted := time.Now()
	c, err := nspawnlab.Boot(ctx, nspawnlab.Config{Rootfs: rootfs, Machine: "onair-image-test", Binds: []string{data + ":/data"}, Volatile: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() }) // after a failure; a passing run checks Close below
	t.Cleanup(func() {
		if t.Failed() {
			logJournal(t, data)
		}
	})
	state, err := c.WaitRunning(ctx)
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	if state != "running" {
		failed, _ := c.Exec(ctx, "systemctl", "--failed", "--no-legend")
		t.Errorf("system %s; failed units:\n%s", state, failed)
	}
	t.Logf("booted to %s in %s", state, time.Since(booted).Round(time.Millisecond))

	// READY under systemd (Type=notify: active only after READY=1) and on air.
	first := waitUnit(ctx, t, c, "active", "running", "0")
	t.Logf("onaird READY under systemd %s after boot (MainPID %s)", time.Since(booted).Round(time.Millisecond), first["MainPID"])
	_, f := rx.backOnAir(t, 0, 30*time.Second)
	t.Logf("first frame at the receiver %s after boot", f.Sub(booted).Round(time.Millisecond))
	checkImageSetup(ctx, t, c, data)
	checkHardening(ctx, t, c, first["MainPID"])

	// Killed: systemd restarts it.
	conns := rx.srv.Report().Connections
	killed := time.Now()
	if _, err = c.Exec(ctx, "sh", "-c", "kill -s KILL "+first["MainPID"]); err != nil {
		t.Fatal(err)
	}
	second := waitUnit(ctx, t, c, "active", "running", "1")
	ready := time.Now()
	connected, f := rx.backOnAir(t, conns, 30*time.Second)
	t.Logf("SIGKILL: back on air in %s (READY again within %s, the new SRT connection at %s)",
		f.Sub(killed).Round(time.Millisecond), ready.Sub(killed).Round(time.Millisecond), connected.Sub(killed).Round(time.Millisecond))

	// Hung: the watchdog restarts it. The receiver is replaced meanwhile, so
	// that the last recording holds one whole session, start to clean end.
	stopped := time.Now()
	if _, err = c.Exec(ctx, "sh", "-c", "kill -s STOP "+second["MainPID"]); err != nil {
		t.Fatal(err)
	}
	rx.stop()
	rx = startImageReceiver(t, port, filepath.Join(dir, "received-2.ts"))
	waitUnit(ctx, t, c, "active", "running", "2")
	connected, f = rx.backOnAir(t, 0, 60*time.Second)
	t.Logf("SIGSTOP: back on air in %s (the new SRT connection at %s)", f.Sub(stopped).Round(time.Millisecond), connected.Sub(stopped).Round(time.Millisecond))
	if j, _ := c.Exec(ctx, "journalctl", "-u", "onaird.service", "-o", "cat", "--no-pager"); !strings.Contains(j, "Watchdog timeout") {
		t.Errorf("onaird was restarted, but not by the watchdog:\n%s", tail(j, 30))
	}
	time.Sleep(3 * time.Second) // a few seconds of stream to end cleanly

	// Power off: onaird ends the stream cleanly, the container stops.
	before := rx.frames()
	off := time.Now()
	if err = c.Poweroff(ctx); err != nil {
		t.Fatalf("poweroff: %v\n%s", err, c.Output())
	}
	t.Logf("systemctl poweroff: the container stopped in %s", time.Since(off).Round(time.Millisecond))
	if err = c.Close(); err != nil {
		t.Errorf("cleanup after the container: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // the last packets in flight
	rx.stop()
	if msg := decodeErrors(t, rx.out); msg != "" {
		t.Errorf("the recording does not decode to its end after poweroff:\n%s", tail(msg, 20))
	}
	rep := analyze(t, rx.out)
	t.Logf("last session: %d video frames (%d after the poweroff was asked for: the drained tail)", rep.Video.Frames, rep.Video.Frames-before)
	j, err := exec.Command("journalctl", "-D", filepath.Join(data, "journal"), "-u", "onaird.service", "-o", "cat", "--no-pager").CombinedOutput()
	if err != nil || !strings.Contains(string(j), "onaird stopped") || strings.Contains(string(j), "stopped with error") {
		t.Errorf("onaird's journal on the data partition does not show a clean stop (%v):\n%s", err, tail(string(j), 20))
	}
}

// TestImageSeedsBlankDataPartition boots the image with a blank data
// partition, as a box whose data partition was just formatted: the mounts'
// directories are made, onair-data.service seeds the stored config with the
// image's default, the page's auth dir and the SSH dir private, the box's own
// host key, and the journal goes there. onaird is masked: the default config
// captures /dev/video0 and listens on the host's ports (the container shares
// its network).
func TestImageSeedsBlankDataPartition(t *testing.T) {
	testutil.NeedRoot(t, "systemd-nspawn boots the image")
	need(t, "systemd-nspawn", "nsenter", "unshare")
	rootfs := imageRootfs(t)
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := nspawnlab.Boot(ctx, nspawnlab.Config{Rootfs: rootfs, Machine: "onair-image-seed", Binds: []string{data + ":/data"},
		Volatile: true, InitArgs: []string{"systemd.mask=onaird.service"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if state, werr := c.WaitRunning(ctx); werr != nil || state != "running" {
		failed, _ := c.Exec(ctx, "systemctl", "--failed", "--no-legend")
		t.Errorf("system %q (%v); failed units:\n%s", state, werr, failed)
	}
	want, err := os.ReadFile(filepath.Join(rootfs, "usr/share/onair/onair.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, rerr := os.ReadFile(filepath.Join(data, "onair", "onair.yaml")); rerr != nil || string(got) != string(want) {
		t.Errorf("the stored config is not the image's default (%v)", rerr)
	}
	for p, mode := range map[string]os.FileMode{"onair/auth": 0o700, "onair/ssh": 0o700, "onair/recordings": 0o750,
		"onair/ssh/ssh_host_ed25519_key": 0o600, "onair/ssh/authorized_keys": 0o600} {
		if fi, serr := os.Stat(filepath.Join(data, p)); serr != nil || fi.Mode().Perm() != mode {
			t.Errorf("data partition %s: %v (%v), want mode %v", p, fi, serr, mode)
		}
	}
	if ents, rerr := os.ReadDir(filepath.Join(data, "journal")); rerr != nil || len(ents) == 0 {
		t.Errorf("no journal on the data partition (%v)", rerr)
	}
	if err = c.Poweroff(ctx); err != nil {
		t.Fatalf("poweroff: %v\n%s", err, c.Output())
	}
	if err = c.Close(); err != nil {
		t.Errorf("cleanup after the container: %v", err)
	}
}

// writeImageConfig writes the box's stored config onto the test's data
// partition: the demo (test pattern, twin encoders, a tone) to the receiver
// on the host, with the page's secrets and the recording on the partition.
func writeImageConfig(t *testing.T, data string, port, apiPort int) {
	t.Helper()
	writeImageConfigTo(t, data, "127.0.0.1", port, apiPort, 1280, 720)
}

// writeImageConfigTo is writeImageConfig with the receiver at host and the
// picture's size.
func writeImageConfigTo(t *testing.T, data, host string, port, apiPort, width, height int) {
	t.Helper()
	cfg := fmt.Sprintf(`version: 1
video:
  source: "lavfi:testsrc2=size=%dx%d:rate=30"
  width: %d
  height: %d
  fps: 30
  bitrate_kbps: 4000
  gop: 60
  twins: true
audio:
  main:
    source: "lavfi:sine=frequency=1000:sample_rate=48000"
output:
  url: "srt://%s?latency=200&streamid=image"
api:
  listen: "127.0.0.1:%d"
  socket: "/run/onair/onaird.sock"
  auth_dir: "/var/lib/onair/auth"
recording:
  dir: "/var/lib/onair/recordings"
  segment: 1m
runtime_dir: "/dev/shm/onair"
`, width, height, width, height, net.JoinHostPort(host, strconv.Itoa(port)), apiPort)
	if err := os.MkdirAll(filepath.Join(data, "onair"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "onair", "onair.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitUnit waits until onaird is in the state with NRestarts restarts, and
// returns its properties.
func waitUnit(ctx context.Context, t *testing.T, c *nspawnlab.Container, active, sub, restarts string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last map[string]string
	for time.Now().Before(deadline) {
		p, err := c.Show(ctx, "onaird.service", "ActiveState", "SubState", "NRestarts", "MainPID", "Result")
		if err == nil && p["ActiveState"] == active && p["SubState"] == sub && p["NRestarts"] == restarts {
			return p
		}
		last = p
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("onaird never %s/%s with %s restarts: %v", active, sub, restarts, last)
	return nil
}

// checkImageSetup checks what the box's setup promises on a running box: the
// stored config and the secrets are on the data partition, the journal
// too, SSH takes keys only, root has no password.
func checkImageSetup(ctx context.Context, t *testing.T, c *nspawnlab.Container, data string) {
	t.Helper()
	for _, p := range []string{"onair/auth", "onair/ssh/ssh_host_ed25519_key", "onair/ssh/authorized_keys", "onair/recordings"} {
		if _, err := os.Stat(filepath.Join(data, p)); err != nil {
			t.Errorf("data partition: %v", err)
		}
	}
	// The hardening must leave the devices alone (capture card, ALSA, GPIO):
	// any DeviceAllow= entry turns the device cgroup into an allow-list.
	if p, err := c.Show(ctx, "onaird.service", "DevicePolicy", "DeviceAllow"); err != nil || p["DevicePolicy"] != "auto" || p["DeviceAllow"] != "" {
		t.Errorf("onaird's device access is restricted: %v (%v)", p, err)
	}
	if link, err := c.Exec(ctx, "readlink", "/etc/onair"); err != nil || strings.TrimSpace(link) != "/var/lib/onair" {
		t.Errorf("/etc/onair links to %q (%v), want /var/lib/onair", strings.TrimSpace(link), err)
	}
	sshd, err := c.Exec(ctx, "sshd", "-T", "-C", "user=root,host=x,addr=192.0.2.1")
	if err != nil {
		t.Errorf("sshd -T: %v", err)
	}
	for _, want := range []string{"passwordauthentication no", "kbdinteractiveauthentication no", "permitrootlogin without-password", "permitemptypasswords no"} {
		if !strings.Contains(sshd, want+"\n") {
			t.Errorf("sshd's effective config lacks %q", want)
		}
	}
	if shadow, err := c.Exec(ctx, "getent", "shadow", "root"); err != nil || !strings.HasPrefix(shadow, "root:*:") {
		t.Errorf("root's password is not locked: %q (%v)", shadow, err)
	}
	if out, err := c.Exec(ctx, "systemctl", "is-enabled", "systemd-timesyncd.service"); err != nil {
		t.Errorf("systemd-timesyncd is not enabled: %q (%v)", out, err)
	}
	if out, err := c.Exec(ctx, "systemctl", "is-active", "nut-server.service"); err != nil {
		t.Errorf("upsd (nut-server) is not running: %q (%v)", out, err)
	}
	if out, _ := c.Exec(ctx, "journalctl", "--header", "-q"); !strings.Contains(out, "/var/log/journal/") {
		t.Errorf("the journal is not persistent:\n%s", tail(out, 10))
	}
	if ents, err := os.ReadDir(filepath.Join(data, "journal")); err != nil || len(ents) == 0 {
		t.Errorf("no journal on the data partition (%v)", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if segs, _ := filepath.Glob(filepath.Join(data, "onair", "recordings", "*.ts")); len(segs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("no recording segment on the data partition after 10 s (ReadWritePaths?)")
			break
		}
	}
}

// checkHardening checks, inside onaird's own mount namespace, that
// ProtectSystem=strict is in force (the OS is read-only to it) and that what
// it must write stays writable: the data partition, the frame ring, its
// socket's directory.
func checkHardening(ctx context.Context, t *testing.T, c *nspawnlab.Container, pid string) {
	t.Helper()
	inOnaird := func(script string) error {
		_, err := c.Exec(ctx, "nsenter", "-t", pid, "-m", "sh", "-c", script)
		return err
	}
	for _, p := range []string{"/usr/onair-probe", "/etc/onair-probe", "/var/onair-probe"} {
		if inOnaird("touch "+p) == nil {
			_ = inOnaird("rm -f " + p)
			t.Errorf("onaird can write %s: ProtectSystem=strict is not in force", p)
		}
	}
	for _, d := range []string{"/var/lib/onair", "/var/lib/onair/recordings", "/dev/shm/onair", "/run/onair"} {
		if err := inOnaird("touch " + d + "/.probe && rm " + d + "/.probe"); err != nil {
			t.Errorf("onaird cannot write %s: %v", d, err)
		}
	}
}

// logJournal prints the container's journal (on the test's data partition)
// for a failed run.
func logJournal(t *testing.T, data string) {
	out, _ := exec.Command("journalctl", "-D", filepath.Join(data, "journal"), "-o", "short-monotonic", "--no-pager").CombinedOutput()
	t.Logf("container journal (tail):\n%s", tail(string(out), 120))
}
