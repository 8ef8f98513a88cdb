package pulselab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is a child the lab started and owns by PID: pulseaudio or a feeder.
// Its own process group (Setpgid) is killed with it.
type proc struct {
	cmd  *exec.Cmd
	out  *tail
	done chan struct{} // closed once the child is reaped
	err  error         // Wait's result, valid after done
}

// startProc starts name with args and env, collecting its output; stdout,
// when not nil, takes its standard output instead.
func startProc(env []string, stdout io.Writer, name string, args ...string) (*proc, error) {
	p := &proc{out: &tail{max: 16 << 10}, done: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("pulselab: start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid is the child's process ID.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the child has been reaped.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// errExitTimeout reports a child still there after SIGKILL (a process
// stuck in the kernel); it should never happen.
var errExitTimeout = errors.New("pulselab: [unexpected] child not reaped 5 s after SIGKILL")

// stop sends SIGTERM and, after grace, SIGKILL to the child and its group,
// and waits (bounded) until it is reaped. grace 0 kills at once. A finished
// child is left alone: os.Process.Signal uses a pidfd, so its PID, maybe
// reused by now, is never signalled.
func (p *proc) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	if grace > 0 && p.cmd.Process.Signal(syscall.SIGTERM) == nil {
		select {
		case <-p.done:
			return nil
		case <-time.After(grace):
		}
	}
	if p.cmd.Process.Signal(syscall.SIGKILL) == nil {
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%w: %s pid %d", errExitTimeout, p.cmd.Path, p.pid())
	}
}

// tail keeps the last max bytes written to it; safe for concurrent use.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
}

// firstWrite discards what is written to it and closes seen at the first
// non-empty write.
type firstWrite struct {
	once sync.Once
	seen chan struct{}
}

func newFirstWrite() *firstWrite { return &firstWrite{seen: make(chan struct{})} }

func (f *firstWrite) Write(p []byte) (int, error) {
	if len(p) > 0 {
		f.once.Do(func() { close(f.seen) })
	}
	return len(p), nil
}
