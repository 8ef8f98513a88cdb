package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// RequireAll reports whether skipping is forbidden: CI sets ONAIR_REQUIRE_ALL=1
// so that a test that cannot run fails instead of passing unnoticed.
func RequireAll() bool { return os.Getenv("ONAIR_REQUIRE_ALL") == "1" }

// skip skips t with reason, or fails it when RequireAll.
func skip(t testing.TB, reason string) {
	t.Helper()
	if RequireAll() {
		t.Fatalf("%s; ONAIR_REQUIRE_ALL=1 forbids skipping", reason)
	}
	t.Skip(reason)
}

// Need skips t unless every tool is on PATH (run scripts/deps.sh); under
// ONAIR_REQUIRE_ALL=1 a missing tool fails the test.
func Need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			skip(t, tool+" not installed: run scripts/deps.sh")
		}
	}
}

// NeedRoot skips t unless it runs as root, saying why root is needed; under
// ONAIR_REQUIRE_ALL=1 it fails the test.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		skip(t, "needs root ("+why+")")
	}
}

// StartProcess starts cmd, collecting its output, and kills it by PID in
// t.Cleanup if it is still running. The returned channel yields the exit
// error once; a failed exit is logged with the output.
func StartProcess(t testing.TB, cmd *exec.Cmd) <-chan error {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	result := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		if err != nil {
			t.Logf("%s exited: %v\n%s", filepath.Base(cmd.Path), err, strings.TrimSpace(out.String()))
		}
		result <- err
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	return result
}
