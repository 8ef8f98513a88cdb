package fault

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"onair/internal/testutil"
)

func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

// spin starts a shell that burns CPU until the test ends.
func spin(t *testing.T) *exec.Cmd {
	t.Helper()
	victim := exec.Command("/bin/sh", "-c", "while :; do :; done")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := victim.Process.Kill(); err != nil {
			t.Error(err)
		}
		_ = victim.Wait() // "signal: killed", by design
	})
	return victim
}

// A starved process must get (almost) no CPU while the fault lasts, or the
// hang-detection tests would test nothing.
func TestStarveReallyStarves(t *testing.T) {
	testutil.NeedRoot(t, "cgroup CPU quota")
	victim := spin(t)
	time.Sleep(200 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- Inject(context.Background(), Starve, victim.Process.Pid, 1500*time.Millisecond) }()
	time.Sleep(300 * time.Millisecond)
	before := cpuTicks(t, victim.Process.Pid)
	time.Sleep(1000 * time.Millisecond)
	during := cpuTicks(t, victim.Process.Pid) - before
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// 1 s is 100 ticks; a starved process gets next to none.
	if during > 5 {
		t.Fatalf("starved process used %d ticks in 1 s", during)
	}
	before = cpuTicks(t, victim.Process.Pid)
	time.Sleep(500 * time.Millisecond)
	if after := cpuTicks(t, victim.Process.Pid) - before; after < 20 {
		t.Fatalf("process still starved after the fault: %d ticks in 0.5 s", after)
	}
}

func TestStopThenContinue(t *testing.T) {
	victim := spin(t)
	done := make(chan error, 1)
	go func() { done <- Inject(context.Background(), Stop, victim.Process.Pid, 500*time.Millisecond) }()
	time.Sleep(100 * time.Millisecond)
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(victim.Process.Pid) + "/stat")
	if !strings.Contains(string(b), ") T ") {
		t.Fatalf("not stopped: %s", b)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile("/proc/" + strconv.Itoa(victim.Process.Pid) + "/stat")
	if strings.Contains(string(b), ") T ") {
		t.Fatalf("not continued: %s", b)
	}
	_ = syscall.SIGCONT
}
