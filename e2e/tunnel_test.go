package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"onair/internal/sshlab"
	"onair/internal/testutil"
	"onair/web/api"
)

// A box behind cellular NAT dials out: onaird keeps a reverse SSH tunnel to
// the studio's maintenance host (a real sshd in a network namespace), and
// from there `ssh -p REMOTE_PORT localhost onairctl status` reaches the
// box's own sshd and runs onairctl against the running onaird. The
// maintenance host restarted, the tunnel comes back by itself.
func TestMaintenanceTunnelRunsOnairctlStatusAndComesBackAfterARestart(t *testing.T) {
	testutil.NeedRoot(t, "network namespaces and sshd")
	testutil.Need(t, sshlab.SSHD, sshlab.SSH, sshlab.SSHKeygen, "ip")
	const remotePort = 42022
	dir := t.TempDir()
	boxKey := sshlab.GenerateKey(t, dir, "box")            // the box logs in to the maintenance host
	maintainer := sshlab.GenerateKey(t, dir, "maintainer") // an engineer logs in to the box
	ns := sshlab.NewNetns(t)
	maint := sshlab.Start(t, sshlab.Options{Addr: ns.NsAddr.String() + ":22", Netns: ns,
		AuthorizedKeys: []sshlab.Key{boxKey}, Dir: filepath.Join(dir, "maint")})
	own := sshlab.Start(t, sshlab.Options{Addr: "127.0.0.1:" + strconv.Itoa(sshlab.FreePort(t)),
		AuthorizedKeys: []sshlab.Key{maintainer}, Dir: filepath.Join(dir, "own")})
	knownHosts := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(sshlab.KnownHostsLine(maint.Addr, maint.HostKey.Public)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port, out, rx := independentReceiver(t)
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, gop: 30,
		extra: fmt.Sprintf("maintenance:\n  tunnel:\n    host: %q\n    user: root\n    key_file: %q\n    known_hosts: %q\n    remote_port: %d\n    local: %q\n    keepalive: 2s\n    backoff_max: 2s\n",
			ns.NsAddr.String(), boxKey.Private, knownHosts, remotePort, own.Addr)})
	up := func(connects int) func(api.Status) bool {
		return func(st api.Status) bool {
			return st.Tunnel != nil && st.Tunnel.State == api.TunnelUp && st.Tunnel.Connects == connects
		}
	}
	st := b.waitFor(t, 30*time.Second, "tunnel up", up(1))
	t.Logf("tunnel: %+v", *st.Tunnel)

	through := func() (string, error) {
		kh := filepath.Join(dir, "maintainer_known_hosts")
		lines := sshlab.KnownHostsLine("127.0.0.1:"+strconv.Itoa(remotePort), own.HostKey.Public) + "\n" +
			sshlab.KnownHostsLine("localhost:"+strconv.Itoa(remotePort), own.HostKey.Public) + "\n"
		if err := os.WriteFile(kh, []byte(lines), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := ns.Command(ctx, t, sshlab.SSH, "-F", "/dev/null", "-p", strconv.Itoa(remotePort), "-i", maintainer.Private,
			"-o", "UserKnownHostsFile="+kh, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
			"-o", "ConnectTimeout=10", "root@localhost", bin("onairctl"), "--socket", b.socket, "status").CombinedOutput()
		return string(res), err
	}
	res, err := through()
	if err != nil || !strings.Contains(res, "tunnel   up") || !strings.Contains(res, "encoder-a") {
		t.Fatalf("onairctl status through the tunnel: %v\n%s\nmaintenance sshd:\n%s\nbox sshd:\n%s", err, res, maint.Log(), own.Log())
	}
	t.Logf("through the tunnel:\n%s", res)

	maint.Kill()
	b.waitFor(t, 15*time.Second, "tunnel down", func(st api.Status) bool { return st.Tunnel.State != api.TunnelUp })
	maint.Restart()
	st = b.waitFor(t, 30*time.Second, "tunnel back by itself", up(2))
	if res, err = through(); err != nil || !strings.Contains(res, "tunnel   up") {
		t.Errorf("onairctl status through the tunnel after the restart: %v\n%s", err, res)
	}
	if res, err = onairctl(t, b, "", "events"); err != nil || !strings.Contains(res, "tunnel") || !strings.Contains(res, "→ up") {
		t.Errorf("events: %v\n%s", err, res)
	}
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)
	noGap(t, out)
}
