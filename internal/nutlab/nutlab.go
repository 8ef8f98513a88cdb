// Package nutlab gives tests a real Network UPS Tools server: NUT's own
// /lib/nut/upsd serving the dummy-ups driver's UPS "dummy", both run as
// root from a temporary directory of their own (configuration in <dir>/etc
// through NUT_CONFPATH, a fresh <dir>/state through NUT_STATEPATH, so no
// stale driver socket survives a killed lab), with upsd listening on a free
// 127.0.0.1 port. Tests change the UPS (Set), wait until upsd shows it
// (WaitStatus), and kill and restart upsd (KillUpsd, StartUpsd) or kill the
// driver (KillDriver).
//
// It is for tests only: nothing outside _test.go files imports it. It reads
// and writes nothing in /etc/nut, starts no system service, sends traffic
// only to loopback, and kills every process it started, by PID (each runs
// in its own process group), when the test ends. It is not a NUT client:
// power/nut is; the lab speaks just enough raw GET VAR to know when upsd
// is ready and what it shows.
//
// Behaviour measured on this machine (nut-server 2.8.0, FACTS.md §4; the
// tests log the figures with -v):
//   - /usr/sbin/upsd is Debian's wrapper that reads /etc/nut/nut.conf and
//     only prints "upsd disabled": the lab runs /lib/nut/upsd and
//     /lib/nut/dummy-ups directly, with -F (foreground: no PID file, the
//     PID is the child's) and -u root (as user nut neither can enter the
//     state directory).
//   - upsd answers ups.status WAIT until the driver's first dump: a lab is
//     ready about 3 s after it starts.
//   - A .dev file runs dummy-ups in dummy-once mode: it re-reads the file
//     only when its mtime (whole seconds) changes, so two rewrites in one
//     second lose the second. Set therefore gives every rewrite an mtime
//     strictly above the last one; a change then shows in 0.4 to 1 s
//     (pollinterval 1).
//   - LOGIN needs a user with the upsmon role: the lab's users get
//     `upsmon secondary` (NUT 2.8's name for the old `upsmon slave`).
package nutlab

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"onair/internal/testutil"
)

// The NUT programs the lab runs, and the UPS it serves.
const (
	UpsdPath   = "/lib/nut/upsd"
	DriverPath = "/lib/nut/dummy-ups"
	upsName    = "dummy"
)

// Bounds of the lab's waits.
const (
	readyTimeout = 15 * time.Second // upsd up and past WAIT (about 3 s measured)
	socketWait   = 5 * time.Second  // the driver's socket in the state directory
	reapTimeout  = 5 * time.Second  // a SIGKILLed child reaped
	pollEvery    = 50 * time.Millisecond
	ioTimeout    = time.Second // one raw GET VAR
)

// Options set up the lab's UPS.
type Options struct {
	// Status is the initial ups.status; "" is "OL".
	Status string
	// Charge (battery.charge, %) and Runtime (battery.runtime, s) start at
	// these values; 0 is 100 and 3600 (Set can set 0 later).
	Charge, Runtime float64
	// Users are upsd users, name → password, each with the upsmon role so
	// that LOGIN dummy works.
	Users map[string]string
}

// Lab is a running upsd with its dummy-ups driver.
type Lab struct {
	dir  string
	port int
	env  []string

	mu     sync.Mutex
	mtime  int64 // the .dev file's last mtime (Unix seconds); strictly increasing
	upsd   *proc
	driver *proc
	pids   []int
}

// Start starts a lab for t and stops it in t.Cleanup, even when t fails:
// it skips t (fails it under ONAIR_REQUIRE_ALL=1) when NUT's programs are
// missing or it does not run as root, and fails t when upsd does not come
// up or does not leave WAIT within 15 s.
func Start(t testing.TB, opt Options) *Lab {
	t.Helper()
	testutil.Need(t, UpsdPath, DriverPath)
	testutil.NeedRoot(t, "upsd and dummy-ups run with -u root from a private state directory")
	if opt.Status == "" {
		opt.Status = "OL"
	}
	if opt.Charge == 0 {
		opt.Charge = 100
	}
	if opt.Runtime == 0 {
		opt.Runtime = 3600
	}
	// Not t.TempDir: the driver's unix socket lives in it, and a long test
	// name would push the path over the 108 bytes a socket path may have.
	dir, err := os.MkdirTemp("", "nutlab")
	if err != nil {
		t.Fatal(err)
	}
	l := &Lab{
		dir: dir,
		env: append(os.Environ(),
			"NUT_CONFPATH="+filepath.Join(dir, "etc"),
			"NUT_STATEPATH="+filepath.Join(dir, "state"),
			"NUT_ALTPIDPATH="+filepath.Join(dir, "state")),
	}
	t.Cleanup(func() { l.stop(t) })
	if err = l.writeConfig(opt); err != nil {
		t.Fatal(err)
	}
	l.Set(t, opt.Status, opt.Charge, opt.Runtime)

	start := time.Now()
	l.mu.Lock()
	l.driver, err = l.startProc(DriverPath, "driver.log", "-a", upsName, "-u", "root", "-F")
	l.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "state", "dummy-ups-"+upsName)
	for deadline := time.Now().Add(socketWait); ; {
		if _, err = os.Stat(sock); err == nil {
			break
		}
		if l.driver.exited() || time.Now().After(deadline) {
			t.Fatalf("nutlab: dummy-ups made no socket %s within %s:\n%s", sock, socketWait, l.driver.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A free port can be taken between picking it and upsd binding it (by
	// another package's test): upsd then exits, and the lab tries another.
	for attempt := 1; ; attempt++ {
		if l.port, err = freePort(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "etc", "upsd.conf"), fmt.Appendf(nil, "LISTEN 127.0.0.1 %d\n", l.port), 0o600); err != nil {
			t.Fatal(err)
		}
		err := l.startUpsd()
		if err == nil {
			break
		}
		if attempt == 3 || !errors.Is(err, errUpsdExited) {
			t.Fatal(err)
		}
		t.Logf("nutlab: upsd on port %d: %v; trying another port", l.port, err)
	}
	t.Logf("nutlab: upsd %s ready in %s (%s)", l.Addr(), time.Since(start).Round(time.Millisecond), dir)
	return l
}

// Addr is upsd's address, 127.0.0.1:PORT.
func (l *Lab) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(l.port)) }

// UPS is the UPS's name on upsd: "dummy".
func (l *Lab) UPS() string { return upsName }

// PIDs are the process IDs of every process the lab started, running or
// not (a killed upsd's too), in start order.
func (l *Lab) PIDs() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.pids...)
}

// Set rewrites the driver's .dev file with ups.status status (tokens
// separated by spaces, e.g. "OB LB"), battery.charge and battery.runtime.
// It renames a new file into place, with an mtime strictly above the last
// one's, so the driver never misses a change, and returns at once: upsd
// shows the change within about a second (WaitStatus).
func (l *Lab) Set(t testing.TB, status string, charge, runtime float64) {
	t.Helper()
	if strings.ContainsAny(status, "\r\n") {
		t.Fatalf("nutlab: status %q has a line break", status)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mtime = max(l.mtime+1, time.Now().Unix()+1)
	mtime := time.Unix(l.mtime, 0)
	dev := filepath.Join(l.dir, "etc", "dummy.dev")
	tmp := dev + ".tmp"
	body := fmt.Sprintf("ups.mfr: onair\nups.model: nutlab\nups.status: %s\nbattery.charge: %s\nbattery.runtime: %s\n",
		status, strconv.FormatFloat(charge, 'f', -1, 64), strconv.FormatFloat(runtime, 'f', -1, 64))
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatalf("nutlab: %v", err)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatalf("nutlab: %v", err)
	}
	if err := os.Rename(tmp, dev); err != nil {
		t.Fatalf("nutlab: %v", err)
	}
}

// WaitStatus polls upsd (GET VAR every 50 ms) until ups.status is status
// and returns how long that took; it fails t when within passes first.
func (l *Lab) WaitStatus(t testing.TB, status string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var got string
	var err error
	for {
		got, err = l.Var("ups.status")
		if err == nil && got == status {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("nutlab: ups.status not %q within %s: last %q, %v", status, within, got, err)
		}
		time.Sleep(pollEvery)
	}
}

// Var is one variable as upsd shows it now (a raw GET VAR, 1 s timeout);
// an ERR answer is an error "nutlab: upsd: ERR CODE".
func (l *Lab) Var(name string) (string, error) {
	conn, err := net.DialTimeout("tcp", l.Addr(), ioTimeout)
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close() }()
	if err = conn.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		return "", err
	}
	if _, err = fmt.Fprintf(conn, "GET VAR %s %s\n", upsName, name); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "ERR ") {
		return "", fmt.Errorf("nutlab: upsd: %s", line)
	}
	prefix := fmt.Sprintf("VAR %s %s \"", upsName, name)
	if !strings.HasPrefix(line, prefix) || !strings.HasSuffix(line, `"`) || len(line) < len(prefix)+1 {
		return "", fmt.Errorf("nutlab: unexpected answer %q", line)
	}
	v := line[len(prefix) : len(line)-1]
	return strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(v), nil
}

// KillUpsd SIGKILLs upsd and waits until it is reaped; the driver goes on.
func (l *Lab) KillUpsd(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	p := l.upsd
	l.upsd = nil
	l.mu.Unlock()
	if p == nil {
		t.Fatal("nutlab: KillUpsd: upsd is not running")
	}
	if err := p.kill(); err != nil {
		t.Fatal(err)
	}
}

// KillDriver SIGKILLs dummy-ups and waits until it is reaped: upsd then
// answers ERR DRIVER-NOT-CONNECTED. There is no restart.
func (l *Lab) KillDriver(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	p := l.driver
	l.driver = nil
	l.mu.Unlock()
	if p == nil {
		t.Fatal("nutlab: KillDriver: dummy-ups is not running")
	}
	if err := p.kill(); err != nil {
		t.Fatal(err)
	}
}

// StartUpsd starts upsd again, on the same port and directory, and waits
// until it answers a ups.status other than WAIT.
func (l *Lab) StartUpsd(t testing.TB) {
	t.Helper()
	start := time.Now()
	if err := l.startUpsd(); err != nil {
		t.Fatal(err)
	}
	t.Logf("nutlab: upsd restarted, ready in %s", time.Since(start).Round(time.Millisecond))
}

// errUpsdExited is upsd exiting before it was ready (e.g. its port was taken).
var errUpsdExited = errors.New("nutlab: upsd exited before it was ready")

// startUpsd starts upsd and waits until it is ready.
func (l *Lab) startUpsd() error {
	l.mu.Lock()
	if l.upsd != nil {
		l.mu.Unlock()
		return errors.New("nutlab: upsd is already running")
	}
	p, err := l.startProc(UpsdPath, "upsd.log", "-u", "root", "-F")
	if err == nil {
		l.upsd = p
	}
	l.mu.Unlock()
	if err != nil {
		return err
	}
	var got string
	for deadline := time.Now().Add(readyTimeout); ; {
		got, err = l.Var("ups.status")
		if err == nil && got != "WAIT" {
			return nil
		}
		if p.exited() {
			l.mu.Lock()
			l.upsd = nil
			l.mu.Unlock()
			return fmt.Errorf("%w (%s):\n%s", errUpsdExited, exitString(p.waitErr()), p.output())
		}
		if time.Now().After(deadline) {
			last := fmt.Sprintf("ups.status %q", got)
			if err != nil {
				last = err.Error()
			}
			return fmt.Errorf("nutlab: upsd not ready within %s: %s:\n%s", readyTimeout, last, p.output())
		}
		time.Sleep(pollEvery)
	}
}

// writeConfig writes ups.conf and upsd.users and makes the state directory.
func (l *Lab) writeConfig(opt Options) error {
	etc, state := filepath.Join(l.dir, "etc"), filepath.Join(l.dir, "state")
	if err := os.Mkdir(etc, 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(state, 0o700); err != nil {
		return err
	}
	ups := fmt.Sprintf("[%s]\n  driver = dummy-ups\n  port = dummy.dev\n  pollinterval = 1\n  desc = \"nutlab UPS\"\n", upsName)
	if err := os.WriteFile(filepath.Join(etc, "ups.conf"), []byte(ups), 0o600); err != nil {
		return err
	}
	var users strings.Builder
	for name, pass := range opt.Users {
		if name == "" || strings.ContainsAny(name, " \t\r\n\"\\[]") || strings.ContainsAny(pass, "\r\n") {
			return fmt.Errorf("nutlab: user %q: a name is one word, a password one line", name)
		}
		esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(pass)
		fmt.Fprintf(&users, "[%s]\n  password = \"%s\"\n  upsmon secondary\n", name, esc)
	}
	return os.WriteFile(filepath.Join(etc, "upsd.users"), []byte(users.String()), 0o600)
}

// stop kills what runs, logs the programs' output when t failed, and
// removes the directory.
func (l *Lab) stop(t testing.TB) {
	l.mu.Lock()
	procs := []*proc{l.upsd, l.driver}
	l.upsd, l.driver = nil, nil
	l.mu.Unlock()
	for _, p := range procs {
		if p == nil {
			continue
		}
		if err := p.kill(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("nutlab: %s:\n%s", filepath.Base(p.cmd.Path), p.output())
		}
	}
	if err := os.RemoveAll(l.dir); err != nil {
		t.Errorf("nutlab: %v", err)
	}
}

// freePort is a TCP port on 127.0.0.1 free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("nutlab: free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}

// proc is a child the lab started and owns by PID, in its own process
// group, its output in a log file of the lab's directory.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once the child is reaped
	err  error         // Wait's result, valid after done
}

// startProc starts path with args in the lab's environment; l.mu is held.
func (l *Lab) startProc(path, logName string, args ...string) (*proc, error) {
	logPath := filepath.Join(l.dir, logName)
	out, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("nutlab: %w", err)
	}
	defer func() { _ = out.Close() }() // the child has its own copy
	p := &proc{log: logPath, done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = l.env
	p.cmd.Dir = l.dir
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("nutlab: start %s: %w", path, err)
	}
	l.pids = append(l.pids, p.cmd.Process.Pid)
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitErr is Wait's result; only after exited.
func (p *proc) waitErr() error {
	<-p.done
	return p.err
}

// exitString describes Wait's result.
func exitString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// kill SIGKILLs the child's process group (the child's PID is its ID) and
// waits until the child is reaped.
func (p *proc) kill() error {
	if !p.exited() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(reapTimeout):
		return fmt.Errorf("nutlab: [unexpected] %s (pid %d) not reaped %s after SIGKILL", p.cmd.Path, p.cmd.Process.Pid, reapTimeout)
	}
}

// output is the tail of what the child wrote.
func (p *proc) output() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	const keep = 4 << 10
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return strings.TrimSpace(string(b))
}
