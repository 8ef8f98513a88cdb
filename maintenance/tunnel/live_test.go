package tunnel

// The tests below run real OpenSSH servers (internal/sshlab): the
// maintenance host's sshd inside a network namespace the test makes, and
// "the box's own sshd" on the root namespace's loopback, with the tunnel
// between them in real time (a few seconds each). On the shared machine
// run them under the lock, one package at a time:
//
//	flock /tmp/onair-live.lock go test -p 1 -count=1 -v ./maintenance/... ./internal/sshlab/
//
// Traffic goes only to loopback and to the test's namespace.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"onair/internal/sshlab"
	"onair/internal/testutil"
	"onair/web/api"
)

// remotePort is opened on the maintenance host's loopback (inside the
// test's namespace, so any port is free).
const remotePort = 2222

// liveWait bounds every wait for a state in the live tests.
const liveWait = 30 * time.Second

type liveLab struct {
	dir        string
	ns         *sshlab.Netns
	maint      *sshlab.Server // the maintenance host
	box        *sshlab.Server // the box's own sshd, Local
	tunnelKey  sshlab.Key     // the box logs in to maint with it
	maintainer sshlab.Key     // a maintainer logs in to box with it
	cfg        Config
}

func newLiveLab(t *testing.T) *liveLab {
	t.Helper()
	testutil.NeedRoot(t, "network namespaces and sshd")
	testutil.Need(t, sshlab.SSHD, sshlab.SSH, sshlab.SSHKeygen, "ip")
	l := &liveLab{dir: t.TempDir()}
	l.tunnelKey = sshlab.GenerateKey(t, l.dir, "tunnel")
	l.maintainer = sshlab.GenerateKey(t, l.dir, "maintainer")
	l.ns = sshlab.NewNetns(t)
	l.maint = sshlab.Start(t, sshlab.Options{Addr: l.ns.NsAddr.String() + ":22", Netns: l.ns,
		AuthorizedKeys: []sshlab.Key{l.tunnelKey}, Dir: filepath.Join(l.dir, "maint")})
	l.box = sshlab.Start(t, sshlab.Options{Addr: "127.0.0.1:" + strconv.Itoa(sshlab.FreePort(t)),
		AuthorizedKeys: []sshlab.Key{l.maintainer}, Dir: filepath.Join(l.dir, "box")})
	l.cfg = Config{Host: l.ns.NsAddr.String(), User: "root", KeyFile: l.tunnelKey.Private,
		KnownHosts: filepath.Join(l.dir, "known_hosts"), RemotePort: remotePort, Local: l.box.Addr,
		Keepalive: 2 * time.Second}
	l.knownHosts(t, l.maint.HostKey.Public)
	return l
}

func (l *liveLab) knownHosts(t *testing.T, keys ...ssh.PublicKey) {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(sshlab.KnownHostsLine(l.maint.Addr, k) + "\n")
	}
	if err := os.WriteFile(l.cfg.KnownHosts, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// run starts the tunnel; t.Cleanup stops it and checks Run returned nil.
func (l *liveLab) run(t *testing.T) *Tunnel {
	t.Helper()
	tun, err := New(l.cfg, Deps{Log: testutil.NilLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tun.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil at the end of its ctx", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10 s of cancel")
		}
	})
	return tun
}

// throughTunnel runs cmd on the box's own sshd as a maintainer does: ssh
// to the maintenance host's loopback remotePort, from inside its namespace.
func (l *liveLab) throughTunnel(t *testing.T, cmd ...string) (string, error) {
	t.Helper()
	kh := filepath.Join(l.dir, "maintainer_known_hosts")
	line := sshlab.KnownHostsLine("127.0.0.1:"+strconv.Itoa(remotePort), l.box.HostKey.Public)
	if err := os.WriteFile(kh, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), liveWait)
	defer cancel()
	args := append([]string{"-F", "/dev/null", "-p", strconv.Itoa(remotePort), "-i", l.maintainer.Private,
		"-o", "UserKnownHostsFile=" + kh, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10", "root@127.0.0.1"}, cmd...)
	out, err := l.ns.Command(ctx, t, sshlab.SSH, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestTunnelLetsTheMaintenanceHostLogInToTheBoxsOwnSSHD(t *testing.T) {
	l := newLiveLab(t)
	tun := l.run(t)
	t0 := time.Now()
	st := waitStatus(t, tun, liveWait, func(s api.TunnelStatus) bool { return s.State == api.TunnelUp })
	t.Logf("up in %s: %+v", time.Since(t0).Round(time.Millisecond), st)
	if st.Connects != 1 || st.Target != "root@"+l.maint.Addr || st.RemotePort != remotePort || st.LastError != "" {
		t.Fatalf("status %+v", st)
	}
	out, err := l.throughTunnel(t, "echo", "tunnel-ok")
	if err != nil || out != "tunnel-ok" {
		t.Fatalf("ssh through the tunnel: %v: %q\nmaintenance sshd:\n%s\nbox sshd:\n%s", err, out, l.maint.Log(), l.box.Log())
	}
	st = waitStatus(t, tun, liveWait, func(s api.TunnelStatus) bool { return s.Sessions == 0 })
	if st.BytesIn == 0 || st.BytesOut == 0 || st.State != api.TunnelUp {
		t.Fatalf("after the session: %+v", st)
	}
	t.Logf("after one login: %d bytes in, %d out", st.BytesIn, st.BytesOut)
}

func TestMaintenanceHostRestartBringsTheTunnelBack(t *testing.T) {
	l := newLiveLab(t)
	tun := l.run(t)
	waitStatus(t, tun, liveWait, func(s api.TunnelStatus) bool { return s.State == api.TunnelUp })

	l.maint.Kill()
	t0 := time.Now()
	st := waitStatus(t, tun, liveWait, func(s api.TunnelStatus) bool { return s.State == api.TunnelBackoff })
	t.Logf("backoff %s after the kill: %s", time.Since(t0).Round(time.Millisecond), st.LastError)
	if st.RetryAt.IsZero() || st.LastError == "" {
		t.Fatalf("backoff without retry_at or last_error: %+v", st)
	}

	l.maint.Restart()
	t0 = time.Now()
	st = waitStatus(t, tun, liveWait, func(s api.TunnelStatus) bool { return s.State == api.TunnelUp })
	t.Logf("up again %s after the restart", time.Since(t0).Round(time.Millisecond))
	if st.Connects != 2 {
		t.Fatalf("connects %d, want 2: %+v", st.Connects, st)
	}
	if out, err := l.throughTunnel(t, "echo", "tunnel-ok"); err != nil || out != "tunnel-ok" {
		t.Fatalf("ssh through the tunnel after the restart: %v: %q", err, out)
	}
}

// A host that stops answering (frozen, or its uplink gone without a RST)
// is found by the keepalive, not by waiting for TCP to give up. It pins a
// hang: the teardown closed the remote forward's listener first, whose
// cancel request queued behind the unanswered keepalive (x/crypto/ssh
// sends one global request at a time), so the tunnel stayed "up" forever.
func TestFrozenMaintenanceHostIsFoundDeadByTheKeepalive(t *testing.T) {
	l := newLiveLab(t)
	tun := l.run(t)
	waitStatus(t, tun, liveWait, func(s api.TunnelStatus) bool { return s.State == api.TunnelUp })
	// Freeze every process in the namespace: the sshd and its session.
	out, err := exec.Command("ip", "netns", "pids", l.ns.Name).Output()
	if err != nil {
		t.Fatalf("ip netns pids: %v", err)
	}
	var frozen []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && syscall.Kill(pid, syscall.SIGSTOP) == nil {
			frozen = append(frozen, pid)
		}
	}
	defer func() {
		for _, pid := range frozen {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	t0 := time.Now()
	st := waitStatus(t, tun, liveWait, func(s api.TunnelStatus) bool { return s.State != api.TunnelUp })
	took := time.Since(t0)
	t.Logf("down %s after the freeze: %s", took.Round(time.Millisecond), st.LastError)
	if !strings.Contains(st.LastError, "keepalive timed out") || took > 3*l.cfg.Keepalive+time.Second {
		t.Fatalf("after %s: %+v, want a keepalive timeout within 2 × keepalive", took, st)
	}
}

func TestUnknownOrChangedHostKeyIsRefusedAndNothingIsTunnelled(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys func(l *liveLab) []ssh.PublicKey
		want string
	}{
		{"unknown", func(*liveLab) []ssh.PublicKey { return nil }, "is not in"},
		{"changed", func(l *liveLab) []ssh.PublicKey {
			return []ssh.PublicKey{sshlab.GenerateKey(t, l.dir, "impostor").Public}
		}, "differs from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLiveLab(t)
			l.knownHosts(t, tc.keys(l)...)
			tun := l.run(t)
			st := waitStatus(t, tun, liveWait, func(s api.TunnelStatus) bool { return s.State == api.TunnelRefused })
			t.Logf("%s", st.LastError)
			fp := "ssh-ed25519 " + ssh.FingerprintSHA256(l.maint.HostKey.Public)
			if !strings.HasPrefix(st.LastError, "maintenance.tunnel: host key of "+l.maint.Addr+" ") ||
				!strings.Contains(st.LastError, tc.want) || !strings.Contains(st.LastError, fp) ||
				!strings.Contains(st.LastError, l.cfg.KnownHosts) || st.RetryAt.IsZero() {
				t.Fatalf("status %+v, want refused naming %s, %q, %s and %s", st, l.maint.Addr, tc.want, fp, l.cfg.KnownHosts)
			}
			if st.Connects != 0 {
				t.Fatalf("connects %d with a refused host key", st.Connects)
			}
			if strings.Contains(l.maint.Log(), "Accepted publickey") {
				t.Fatalf("the box logged in to a host it refused:\n%s", l.maint.Log())
			}
			if out, err := l.throughTunnel(t, "echo", "tunnel-ok"); err == nil {
				t.Fatalf("ssh through a refused tunnel worked: %q", out)
			}
		})
	}
}

func TestKeyTheMaintenanceHostDoesNotAcceptIsRefused(t *testing.T) {
	l := newLiveLab(t)
	stranger := sshlab.GenerateKey(t, l.dir, "stranger")
	l.cfg.KeyFile = stranger.Private
	tun := l.run(t)
	st := waitStatus(t, tun, liveWait, func(s api.TunnelStatus) bool { return s.State == api.TunnelRefused })
	t.Logf("%s", st.LastError)
	if !strings.HasPrefix(st.LastError, "maintenance.tunnel: login refused: "+l.maint.Addr+" did not accept root") ||
		!strings.Contains(st.LastError, ssh.FingerprintSHA256(stranger.Public)) || st.Connects != 0 {
		t.Fatalf("status %+v, want refused naming the host, user and key", st)
	}
}

// The rate limit sits on the tunnel's real path: a bulk upload through it
// cannot beat rate_kbps (a lower bound on the time only, which no slow
// machine can break).
func TestBulkCopyThroughTheTunnelIsHeldToRateKbps(t *testing.T) {
	l := newLiveLab(t)
	l.cfg.RateKbps = 800 // 100 000 B/s
	tun := l.run(t)
	waitStatus(t, tun, liveWait, func(s api.TunnelStatus) bool { return s.State == api.TunnelUp })
	const size = 300_000
	t0 := time.Now()
	out, err := l.throughTunnel(t, "head", "-c", strconv.Itoa(size), "/dev/zero")
	took := time.Since(t0)
	if err != nil || len(out) != size {
		t.Fatalf("ssh: %v: %d bytes, want %d", err, len(out), size)
	}
	st := tun.Status()
	rate := float64(st.BytesIn+st.BytesOut) / took.Seconds()
	t.Logf("%d bytes in %s through the tunnel: %.0f B/s (limit 100000 B/s, burst %.0f B)", st.BytesIn+st.BytesOut, took.Round(time.Millisecond), rate, tun.lim.burst)
	if st.BytesOut < size {
		t.Fatalf("only %d bytes came out of the box", st.BytesOut)
	}
	if minTook := time.Duration(float64(size-int(tun.lim.burst)) / 100_000 * float64(time.Second)); took < minTook {
		t.Fatalf("%d bytes in %s: faster than rate_kbps allows (at least %s)", size, took, minTook)
	}
}
