// Package logindtest runs a private D-Bus system bus (a real dbus-daemon
// from a temporary directory) with a fake systemd-logind on it, so a test
// can see the power-off that onaird asks for, how often and when, without
// powering anything off. Point the process under test at it with Env (it
// sets DBUS_SYSTEM_BUS_ADDRESS, which godbus and go-systemd read).
//
// Not for: anything but tests. It fakes only Manager.PowerOff (the one call
// onair makes); everything else on the bus is the real dbus-daemon.
package logindtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"onair/internal/testutil"
)

// Logind names of the fake.
const (
	BusName   = "org.freedesktop.login1"
	Path      = dbus.ObjectPath("/org/freedesktop/login1")
	Interface = "org.freedesktop.login1.Manager"
)

// Call is one PowerOff the fake received.
type Call struct {
	Interactive bool
	At          time.Time
}

// Logind is a running private bus with the fake on it.
type Logind struct {
	// Address is the bus address (unix:path=…).
	Address string

	conn *dbus.Conn
	mu   sync.Mutex
	log  []Call
	fail string
	got  chan struct{}
}

// Start runs dbus-daemon and the fake; both are stopped by t.Cleanup. It
// skips (or fails under ONAIR_REQUIRE_ALL=1) without dbus-daemon.
func Start(t testing.TB) *Logind {
	t.Helper()
	testutil.Need(t, "dbus-daemon")
	dir := t.TempDir()
	sock := filepath.Join(dir, "system_bus_socket")
	conf := filepath.Join(dir, "bus.conf")
	// A system bus that lets anyone own and call anything: the fake must
	// own login1's name as an ordinary user, and the test is alone on it.
	xml := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=` + sock + `</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`
	if err := os.WriteFile(conf, []byte(xml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--print-address")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err = cmd.Start(); err != nil {
		t.Fatalf("logindtest: dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by PID; the socket goes with the temp dir
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			addr <- strings.TrimSpace(sc.Text())
		}
		close(addr)
		for sc.Scan() { // keep draining: dbus-daemon must never block on stdout
		}
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(10 * time.Second):
	}
	if a == "" {
		t.Fatalf("logindtest: dbus-daemon printed no address: %s", stderr.String())
	}
	l := &Logind{Address: a, got: make(chan struct{}, 16)}
	if l.conn, err = dbus.Connect(a); err != nil {
		t.Fatalf("logindtest: connect %s: %v", a, err)
	}
	t.Cleanup(func() { _ = l.conn.Close() })
	if err = l.conn.Export(manager{l}, Path, Interface); err != nil {
		t.Fatal(err)
	}
	reply, err := l.conn.RequestName(BusName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("logindtest: own %s: %v (reply %d)", BusName, err, reply)
	}
	return l
}

// Env is the environment entry that points a process at this bus.
func (l *Logind) Env() string { return "DBUS_SYSTEM_BUS_ADDRESS=" + l.Address }

// FailWith makes every later PowerOff answer with this D-Bus error name
// (e.g. org.freedesktop.login1.OperationInProgress); empty: succeed.
func (l *Logind) FailWith(name string) {
	l.mu.Lock()
	l.fail = name
	l.mu.Unlock()
}

// Calls returns the PowerOff calls so far.
func (l *Logind) Calls() []Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Call(nil), l.log...)
}

// WaitCall waits up to d for the n-th PowerOff call (1 for the first).
func (l *Logind) WaitCall(n int, d time.Duration) (Call, error) {
	end := time.After(d)
	for {
		if c := l.Calls(); len(c) >= n {
			return c[n-1], nil
		}
		select {
		case <-l.got:
		case <-end:
			return Call{}, fmt.Errorf("logindtest: %d PowerOff calls after %s, want %d", len(l.Calls()), d, n)
		}
	}
}

// manager is the exported object: godbus calls its methods by name.
type manager struct{ l *Logind }

// PowerOff is org.freedesktop.login1.Manager.PowerOff(b interactive).
func (m manager) PowerOff(interactive bool) *dbus.Error {
	l := m.l
	l.mu.Lock()
	l.log = append(l.log, Call{Interactive: interactive, At: time.Now()})
	fail := l.fail
	l.mu.Unlock()
	select {
	case l.got <- struct{}{}:
	default:
	}
	if fail != "" {
		return dbus.NewError(fail, []any{"logindtest: refused"})
	}
	return nil
}
