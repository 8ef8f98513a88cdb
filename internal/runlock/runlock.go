// Package runlock makes sure only one onaird runs per runtime directory: the
// second one must exit with a clear error before it touches the ring, the
// child sockets or the API socket of the running one.
//
// The lock is an exclusive, non-blocking flock(2) on DIR/onaird.lock, which
// also holds the holder's PID for the error message. The kernel drops the
// lock when the holder exits, however it dies, so a stale file never blocks
// a restart (unlike a bare PID file). The file is opened close-on-exec, so
// the children onaird starts do not inherit (and prolong) the lock.
//
// Not for: locking between the components of one onaird, or anything across
// machines (flock on NFS is not reliable).
package runlock

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// FileName is the lock file's name inside the runtime directory.
const FileName = "onaird.lock"

// ErrLocked is returned (wrapped) by Acquire when another process holds the lock.
var ErrLocked = errors.New("runlock: runtime directory in use by another onaird")

// Acquire takes the exclusive lock on dir/onaird.lock without waiting and
// writes the caller's PID into it. It fails with ErrLocked, naming dir and
// the holder's PID when the file says it, if another process holds it; it
// then changes nothing in dir. release drops the lock (the file stays, so
// that a racing Acquire never locks a file that is about to vanish).
func Acquire(dir string) (release func() error, err error) {
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644) // no O_TRUNC: the holder's PID must stay
	if err != nil {
		return nil, fmt.Errorf("runlock: open %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer func() { _ = f.Close() }() // not ours: only read from
		if errors.Is(err, unix.EWOULDBLOCK) {
			if pid := holder(f); pid > 0 {
				return nil, fmt.Errorf("%w: %s is locked by pid %d (%s)", ErrLocked, dir, pid, path)
			}
			return nil, fmt.Errorf("%w: %s is locked (%s)", ErrLocked, dir, path)
		}
		return nil, fmt.Errorf("runlock: lock %s: %w", path, err)
	}
	if err := writePID(f); err != nil {
		_ = f.Close() // closing drops the lock; the write error is the one to report
		return nil, fmt.Errorf("runlock: write pid to %s: %w", path, err)
	}
	released := false
	return func() error {
		if released {
			return nil
		}
		released = true
		// Clear the PID first, so nobody reads a dead process's PID as the holder.
		terr := f.Truncate(0)
		if err := f.Close(); err != nil {
			return fmt.Errorf("runlock: release %s: %w", path, err)
		}
		if terr != nil {
			return fmt.Errorf("runlock: release %s: %w", path, terr)
		}
		return nil
	}, nil
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	if err != nil {
		return err
	}
	return f.Sync()
}

// holder is the PID written in the lock file, or 0 when it cannot be read.
func holder(f *os.File) int {
	var b [32]byte
	n, _ := f.ReadAt(b[:], 0)
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
