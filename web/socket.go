package web

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// testHookBeforeListen is called with the socket's path after it is bound
// and given its mode, right before listen(2): a test checks that nobody can
// connect yet and the mode is already final.
var testHookBeforeListen = func(string) {}

// listenUnix creates the unix socket at path with mode and listens on it.
// socket(2), bind(2), chmod(2) and only then listen(2): until listen, a
// connect is refused, so the socket is never connectable with the looser mode
// the process umask gave it at bind (net.Listen binds and listens in one
// call, and a chmod after it leaves a window). The umask is never changed: it
// is process-wide. cleanup removes the socket file if it is still this one.
func listenUnix(path string, mode os.FileMode) (ln net.Listener, cleanup func(), err error) {
	if err = os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, nil, fmt.Errorf("web: api.socket dir: %w", err)
	}
	if err = removeStale(path); err != nil {
		return nil, nil, err
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("web: api.socket %s: socket: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path) // owns fd from here on
	defer func() { _ = f.Close() }()   // net.FileListener holds a dup
	if err = syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		return nil, nil, fmt.Errorf("web: api.socket %s: bind: %w", path, err)
	}
	fail := func(what string, err error) (net.Listener, func(), error) {
		_ = os.Remove(path)
		return nil, nil, fmt.Errorf("web: api.socket %s: %s: %w", path, what, err)
	}
	if err = os.Chmod(path, mode); err != nil {
		return fail("chmod", err)
	}
	bound, err := os.Lstat(path)
	if err != nil {
		return fail("stat", err)
	}
	testHookBeforeListen(path)
	if err = syscall.Listen(fd, syscall.SOMAXCONN); err != nil {
		return fail("listen", err)
	}
	if ln, err = net.FileListener(f); err != nil {
		return fail("listener", err)
	}
	cleanup = func() {
		if now, err := os.Lstat(path); err == nil && os.SameFile(now, bound) {
			_ = os.Remove(path)
		}
	}
	return ln, cleanup, nil
}

// removeStale removes a socket left by a crashed run. It removes only a
// socket that nobody answers on: a second onaird must not steal the first
// one's socket, and a file that is not a socket is not ours.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("web: api.socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("web: api.socket %s: exists and is not a socket: not removing it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("web: api.socket %s: another process answers on it (a second onaird?)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("web: api.socket %s: cannot tell whether it is in use: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("web: api.socket %s: remove stale: %w", path, err)
	}
	return nil
}
