package nutlab

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// within bounds how long a Set may take to show: measured 0.4 to 1 s
// (pollinterval 1), with room for a loaded CI machine.
const within = 5 * time.Second

// The power policy's tests walk mains → battery → low battery → mains; each
// step must show on upsd, including two Sets in one second (dummy-once
// re-reads only on an mtime change, in whole seconds: the second used to be
// lost).
func TestSetShowsOBThenOBLBThenOL(t *testing.T) {
	l := Start(t, Options{})
	l.WaitStatus(t, "OL", time.Second)
	for _, s := range []struct {
		status          string
		charge, runtime float64
	}{{"OB", 80, 1800}, {"OB LB", 10, 60}, {"OL", 100, 3600}} {
		l.Set(t, s.status, s.charge, s.runtime)
		t.Logf("%q shown after %s", s.status, l.WaitStatus(t, s.status, within).Round(time.Millisecond))
		if got, err := l.Var("battery.charge"); err != nil || got != fmt.Sprint(s.charge) {
			t.Fatalf("battery.charge %q, %v; want %v", got, err, s.charge)
		}
	}
	l.Set(t, "OB", 50, 900)
	l.Set(t, "OB LB", 5, 30)
	t.Logf("second of two Sets in one second shown after %s", l.WaitStatus(t, "OB LB", within).Round(time.Millisecond))
}

// A killed upsd must really be gone (clients are refused), a restarted one
// must serve the same UPS on the same port, the configured users must be
// able to LOGIN (the upsmon role), and after the test nothing the lab
// started may still run.
func TestKillRestartLoginAndNothingLeftRunning(t *testing.T) {
	var pids []int
	var dir string
	t.Run("lab", func(t *testing.T) {
		l := Start(t, Options{Status: "OB", Users: map[string]string{"mon": `p w"x\`}})
		dir = l.dir
		l.WaitStatus(t, "OB", time.Second)
		if got := login(t, l.Addr(), "mon", `"p w\"x\\"`); got != "OK" {
			t.Fatalf("LOGIN with the right password: %q", got)
		}
		if got := login(t, l.Addr(), "mon", "wrong"); got != "ERR ACCESS-DENIED" {
			t.Fatalf("LOGIN with a wrong password: %q", got)
		}

		l.KillUpsd(t)
		if _, err := l.Var("ups.status"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("after KillUpsd: %v, want connection refused", err)
		}
		l.StartUpsd(t)
		l.WaitStatus(t, "OB", time.Second)
		l.Set(t, "OL", 100, 3600)
		l.WaitStatus(t, "OL", within)

		l.KillDriver(t)
		if _, err := l.Var("ups.status"); err == nil || !strings.Contains(err.Error(), "ERR DRIVER-NOT-CONNECTED") {
			t.Fatalf("after KillDriver: %v", err)
		}
		pids = l.PIDs()
	})
	if len(pids) != 3 {
		t.Fatalf("PIDs %v: want the driver and two upsds", pids)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d still there after cleanup: %v", pid, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lab directory %s left: %v", dir, err)
	}
}

// login logs in on a fresh connection and returns LOGIN's answer (upsd
// answers OK to USERNAME and PASSWORD whatever they are).
func login(t *testing.T, addr, user, quotedPass string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if err = conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	var answer string
	for _, cmd := range []string{"USERNAME " + user, "PASSWORD " + quotedPass, "LOGIN dummy"} {
		if _, err = fmt.Fprintf(conn, "%s\n", cmd); err != nil {
			t.Fatal(err)
		}
		if answer, err = r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		answer = strings.TrimSpace(answer)
	}
	return answer
}
