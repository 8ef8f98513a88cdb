// Package sshlab runs real OpenSSH servers for tests: /usr/sbin/sshd -D -e
// with its own config, host key and authorized_keys in a temp dir,
// public-key login only, listening on a given address, optionally inside a
// network namespace of its own joined to the root namespace by a veth pair
// (Netns). The maintenance tunnel's tests use one as the maintenance host
// and one as the box's own sshd.
//
// It is NOT part of the product and touches no system sshd: everything it
// starts, creates or adds is named by the test (onair-sshlab-<random>) and
// removed in t.Cleanup by that name and by PID, even when the test fails.
// It needs root (netns, sshd's privilege separation), /usr/sbin/sshd and
// /usr/bin/ssh-keygen (scripts/deps.sh installs them).
package sshlab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Binaries the lab runs.
const (
	SSHD      = "/usr/sbin/sshd"
	SSH       = "/usr/bin/ssh"
	SSHKeygen = "/usr/bin/ssh-keygen"
)

// readyTimeout bounds an sshd's start.
const readyTimeout = 10 * time.Second

// Key is a key pair made by ssh-keygen.
type Key struct {
	// Private is the private key file (OpenSSH format, no passphrase).
	Private string
	// Public is the public key.
	Public ssh.PublicKey
	// Line is the public key as one authorized_keys line ("ssh-ed25519 AAAA… comment").
	Line string
}

// GenerateKey makes an ed25519 key pair dir/name and dir/name.pub.
func GenerateKey(t testing.TB, dir, name string) Key {
	t.Helper()
	path := filepath.Join(dir, name)
	out, err := exec.Command(SSHKeygen, "-q", "-t", "ed25519", "-N", "", "-C", "sshlab-"+name, "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("sshlab: ssh-keygen %s: %v\n%s", path, err, out)
	}
	line, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatalf("sshlab: %v", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		t.Fatalf("sshlab: parse %s.pub: %v", path, err)
	}
	return Key{Private: path, Public: pub, Line: strings.TrimSpace(string(line))}
}

// KnownHostsLine is the known_hosts line saying that addr (host:port) has key.
func KnownHostsLine(addr string, key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
}

// Netns is a network namespace made by the test, with a veth pair to the
// root namespace: RootAddr on the root side, NsAddr inside (a /30).
type Netns struct {
	// Name is the namespace's name, onair-sshlab-<random>.
	Name string
	// RootIf and NsIf are the veth ends.
	RootIf, NsIf string
	// RootAddr and NsAddr are the addresses on them.
	RootAddr, NsAddr netip.Addr
}

// NewNetns makes a namespace with its loopback up and a veth pair
// 10.99.x.y/30 to the root namespace, removed in t.Cleanup.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	var b [3]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	y := b[1] &^ 3
	n := &Netns{
		Name:     "onair-sshlab-" + id,
		RootIf:   "osl" + id + "r",
		NsIf:     "osl" + id + "n",
		RootAddr: netip.AddrFrom4([4]byte{10, 99, b[0], y + 1}),
		NsAddr:   netip.AddrFrom4([4]byte{10, 99, b[0], y + 2}),
	}
	t.Cleanup(func() {
		killNetnsPids(n.Name)
		_ = exec.Command("ip", "link", "del", n.RootIf).Run()
		_ = exec.Command("ip", "netns", "del", n.Name).Run()
	})
	for _, args := range [][]string{
		{"netns", "add", n.Name},
		{"-n", n.Name, "link", "set", "lo", "up"},
		{"link", "add", n.RootIf, "type", "veth", "peer", "name", n.NsIf, "netns", n.Name},
		{"addr", "add", n.RootAddr.String() + "/30", "dev", n.RootIf},
		{"link", "set", n.RootIf, "up"},
		{"-n", n.Name, "addr", "add", n.NsAddr.String() + "/30", "dev", n.NsIf},
		{"-n", n.Name, "link", "set", n.NsIf, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("sshlab: ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return n
}

// Command returns a command running name inside the namespace (ip netns
// exec), in a process group of its own, killed when ctx ends and in
// t.Cleanup (by PID) if it still runs.
func (n *Netns) Command(ctx context.Context, t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Cleanup(func() {
		if p := cmd.Process; p != nil && p.Signal(syscall.SIGKILL) == nil {
			_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
		}
	})
	return cmd
}

// killNetnsPids kills every process left in the namespace (all of them the
// test's), so that it can be deleted at once.
func killNetnsPids(ns string) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Options configures Start.
type Options struct {
	// Addr is the listen address, host:port with a concrete port.
	Addr string
	// Netns, if set, runs sshd inside that namespace.
	Netns *Netns
	// AuthorizedKeys are the keys that may log in (as any user, root in
	// the tests).
	AuthorizedKeys []Key
	// Dir holds config, host key and authorized_keys (made if missing);
	// empty: a t.TempDir.
	Dir string
}

// Server is a running (or killed) sshd.
type Server struct {
	// Addr is where it listens, host:port.
	Addr string
	// HostKey is its host key, the same across Restart.
	HostKey Key
	// Config is its sshd_config.
	Config string

	t     testing.TB
	netns *Netns

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	log    bytes.Buffer
}

// Start writes the config and keys and starts sshd, returning once it
// listens; t.Cleanup kills it and its connection processes.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation dir
		t.Fatalf("sshlab: %v", err)
	}
	dir := opts.Dir
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("sshlab: %v", err)
	}
	s := &Server{Addr: opts.Addr, t: t, netns: opts.Netns, Config: filepath.Join(dir, "sshd_config")}
	s.HostKey = GenerateKey(t, dir, "host_ed25519")
	var ak strings.Builder
	for _, k := range opts.AuthorizedKeys {
		ak.WriteString(k.Line + "\n")
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, []byte(ak.String()), 0o600); err != nil {
		t.Fatalf("sshlab: %v", err)
	}
	conf := strings.Join([]string{
		"ListenAddress " + opts.Addr,
		"HostKey " + s.HostKey.Private,
		"AuthorizedKeysFile " + authorized,
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"AllowTcpForwarding yes",
		"GatewayPorts no",
		"X11Forwarding no",
		"StrictModes no",
		"PidFile none",
		"UsePAM no",
		"UseDNS no",
		"PrintMotd no",
		"LogLevel VERBOSE",
		"",
	}, "\n")
	if err := os.WriteFile(s.Config, []byte(conf), 0o600); err != nil {
		t.Fatalf("sshlab: %v", err)
	}
	if out, err := s.command("-t").CombinedOutput(); err != nil {
		t.Fatalf("sshlab: sshd -t -f %s: %v\n%s", s.Config, err, out)
	}
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("sshd %s log:\n%s", s.Addr, s.Log())
		}
	})
	s.start()
	return s
}

// command is sshd with the lab's config and extra args, in the lab's netns.
func (s *Server) command(args ...string) *exec.Cmd {
	args = append([]string{"-f", s.Config}, args...)
	if s.netns != nil {
		return exec.Command("ip", append([]string{"netns", "exec", s.netns.Name, SSHD}, args...)...)
	}
	return exec.Command(SSHD, args...)
}

// start starts sshd -D -e and waits (bounded) for "Server listening on".
func (s *Server) start() {
	t := s.t
	t.Helper()
	cmd := s.command("-D", "-e")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("sshlab: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("sshlab: start sshd: %v", err)
	}
	ready, exited := make(chan struct{}), make(chan struct{})
	go func() { // ends at sshd's exit (EOF on the pipe)
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log.WriteString(line + "\n")
			s.mu.Unlock()
			if !signalled && strings.Contains(line, "Server listening on") {
				signalled = true
				close(ready)
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	select {
	case <-ready:
	case <-time.After(readyTimeout):
		t.Fatalf("sshlab: sshd on %s not listening within %s:\n%s", s.Addr, readyTimeout, s.Log())
	}
}

// Log returns what sshd wrote so far (all its runs).
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Kill kills sshd and every process it started (the per-connection
// sessions, which hold the connections and their forwards) at once, as a
// crash or a power cut of the host would.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	// sshd's session processes call setsid: not in its process group, but
	// its descendants.
	pids := append(descendants(cmd.Process.Pid), cmd.Process.Pid)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	// Wait (bounded) until the listener is reaped, so a Restart can bind.
	select {
	case <-exited:
	case <-time.After(readyTimeout):
		s.t.Errorf("sshlab: sshd on %s (pid %d) still there %s after SIGKILL", s.Addr, cmd.Process.Pid, readyTimeout)
	}
}

// Restart starts sshd again with the same config and host key.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// descendants lists the PIDs whose ancestry leads to pid, from /proc.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold blanks and parentheses.
		rest := string(b[bytes.LastIndexByte(b, ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			parent[p] = pp
		}
	}
	var out []int
	for p := range parent {
		for a, n := parent[p], 0; a > 1 && n < 64; a, n = parent[a], n+1 {
			if a == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// FreePort returns a TCP port free on 127.0.0.1 in the root namespace now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sshlab: %v", err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}
