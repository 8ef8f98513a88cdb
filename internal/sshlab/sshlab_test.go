package sshlab

// These tests start real sshd processes and a network namespace. On the
// shared machine run them under the lock, one package at a time:
//
//	flock /tmp/onair-live.lock go test -p 1 -count=1 -v ./internal/sshlab/

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"onair/internal/testutil"
)

func need(t *testing.T) {
	t.Helper()
	testutil.NeedRoot(t, "network namespaces and sshd")
	testutil.Need(t, SSHD, SSH, SSHKeygen, "ip")
}

// ssh logs in to addr with key, checking hostKey, and runs echo.
func login(ctx context.Context, t *testing.T, n *Netns, s *Server, key Key) (string, error) {
	t.Helper()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(KnownHostsLine(s.Addr, s.HostKey.Public)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(s.Addr, ":")
	args := []string{"-F", "/dev/null", "-p", port, "-i", key.Private, "-o", "UserKnownHostsFile=" + kh,
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
		"-o", "ConnectTimeout=10", "root@" + host, "echo", "sshlab-ok"}
	out, err := n.Command(ctx, t, SSH, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestSSHDInANamespaceTakesItsKeyOnlyAndKeepsItsHostKeyAcrossRestart(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	good, bad := GenerateKey(t, dir, "good"), GenerateKey(t, dir, "bad")
	n := NewNetns(t)
	s := Start(t, Options{Addr: n.NsAddr.String() + ":22", Netns: n, AuthorizedKeys: []Key{good}})
	if out, err := login(ctx, t, n, s, good); err != nil || out != "sshlab-ok" {
		t.Fatalf("login with the authorized key: %v: %q", err, out)
	}
	if out, err := login(ctx, t, n, s, bad); err == nil {
		t.Fatalf("login with another key worked: %q", out)
	}
	host := s.HostKey.Line
	s.Restart()
	if s.HostKey.Line != host {
		t.Fatal("host key changed across Restart")
	}
	if out, err := login(ctx, t, n, s, good); err != nil || out != "sshlab-ok" {
		t.Fatalf("login after Restart (same known_hosts): %v: %q", err, out)
	}
	s.Kill()
	if out, err := login(ctx, t, n, s, good); err == nil {
		t.Fatalf("login after Kill worked: %q", out)
	}
}
