package runlock

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// helperEnv makes the test binary a second process that holds the lock on
// the directory it names until its stdin closes.
const helperEnv = "ONAIR_RUNLOCK_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		release, err := Acquire(dir)
		if err != nil {
			_, _ = os.Stdout.WriteString("error: " + err.Error() + "\n") // exiting with 1 says it anyway
			os.Exit(1)
		}
		if _, err := os.Stdout.WriteString("locked\n"); err != nil {
			os.Exit(3) // the test cannot learn that the lock is held
		}
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the test closes stdin
		if err := release(); err != nil {
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holderProcess starts a process holding the lock on dir; closing the
// returned stdin makes it release and exit.
func holderProcess(t *testing.T, dir string) (*exec.Cmd, func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err = cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("holder process: %q %v", line, err)
	}
	return cmd, func() {
		if err := stdin.Close(); err != nil {
			t.Fatalf("closing the holder's stdin: %v", err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("holder exit: %v", err)
		}
	}
}

// A second onaird on the same runtime dir must fail with an error naming the
// dir and the running one's PID, and leave the running one's lock file as it is.
func TestSecondOnairdOnSameRuntimeDirFails(t *testing.T) {
	dir := t.TempDir()
	cmd, stop := holderProcess(t, dir)
	pid := cmd.Process.Pid
	path := filepath.Join(dir, FileName)
	before, err := os.ReadFile(path)
	if err != nil || string(before) != strconv.Itoa(pid)+"\n" {
		t.Fatalf("lock file holds %q (%v), want the holder's pid %d", before, err, pid)
	}

	release, err := Acquire(dir)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Acquire: %v, want ErrLocked", err)
	}
	if release != nil {
		t.Fatal("a failed Acquire returned a release func")
	}
	if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, "pid "+strconv.Itoa(pid)) {
		t.Fatalf("error %q does not name the dir and the holder's pid %d", msg, pid)
	}
	after, err := os.ReadFile(path)
	if err != nil || string(after) != string(before) {
		t.Fatalf("the failed Acquire changed the lock file: %q → %q (%v)", before, after, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("the failed Acquire left files in %s: %v", dir, ents)
	}

	// Once the holder releases, the lock is free for the next onaird.
	stop()
	release, err = Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after the holder released: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != strconv.Itoa(os.Getpid())+"\n" {
		t.Fatalf("lock file holds %q, want our pid", b)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
}

// An onaird that dies without releasing (SIGKILL, crash) leaves its lock
// file with its PID; the kernel dropped the flock, so the next one starts.
func TestLockOfKilledOnairdDoesNotBlockRestart(t *testing.T) {
	dir := t.TempDir()
	cmd, _ := holderProcess(t, dir)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	release, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after the holder was killed: %v", err)
	}
	defer func() {
		if err := release(); err != nil {
			t.Error(err)
		}
	}()
}

// Within one process a second Acquire fails too (each takes its own open
// file description), so a daemon wired twice by mistake notices.
func TestAcquireTwiceInOneProcessFails(t *testing.T) {
	dir := t.TempDir()
	release, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := release(); err != nil {
			t.Error(err)
		}
	}()
	if _, err := Acquire(dir); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second Acquire in one process: %v", err)
	}
}

func TestAcquireMissingDirSaysWhich(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	if _, err := Acquire(dir); err == nil || !strings.Contains(err.Error(), dir) || errors.Is(err, ErrLocked) {
		t.Fatalf("Acquire on a missing dir: %v", err)
	}
}
