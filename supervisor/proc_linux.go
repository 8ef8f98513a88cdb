package supervisor

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysProcAttr puts the child in its own process group (so that stopping it
// reaches the helpers it forks) and asks the kernel to SIGKILL it if onaird
// dies, so no encoder outlives the daemon that owns the output.
//
// Pdeathsig fires when the parent *thread* that forked exits, not the
// process (golang/go#27505). The Go runtime only ends threads whose
// goroutine exited while locked with runtime.LockOSThread, so Run must not
// be called from such a goroutine.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup sends sig to every process in the group led by pgid. A group
// that is already empty is not an error.
func signalGroup(pgid int, sig syscall.Signal) error {
	if err := unix.Kill(-pgid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return err
	}
	return nil
}

// waitExitNoReap blocks until process pid has exited but leaves it a zombie.
// While the leader is an unreaped zombie its PID, and so the process group
// ID, cannot be reused, which makes the group kill that follows safe.
func waitExitNoReap(pid int) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// platformErr is nil where child processes are supported.
func platformErr() error { return nil }
