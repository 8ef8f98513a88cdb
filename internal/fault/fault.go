// Package fault injects the failures the twin encoders must survive, on real
// processes: SIGKILL, SIGSTOP/SIGCONT (a hang), and CPU starvation (the victim
// pinned to one core at the lowest priority beside a busy loop at the highest).
// Used by the end-to-end tests and the benchmarks, never by the box itself.
package fault

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Kind is a fault kind.
type Kind string

// Fault kinds.
const (
	Kill   Kind = "kill"
	Stop   Kind = "stop"
	Starve Kind = "starve"
)

// Kinds lists every kind, in the order tests alternate them.
var Kinds = []Kind{Kill, Stop, Starve}

// Inject applies fault k to pid; Stop and Starve last for d (or until ctx is
// done) and are undone afterwards if the process still exists.
func Inject(ctx context.Context, k Kind, pid int, d time.Duration) error {
	switch k {
	case Kill:
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("fault: kill %d: %w", pid, err)
		}
		return nil
	case Stop:
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return fmt.Errorf("fault: stop %d: %w", pid, err)
		}
		sleep(ctx, d)
		_ = syscall.Kill(pid, syscall.SIGCONT) // the supervisor may have killed it already
		return nil
	case Starve:
		return starve(ctx, pid, d)
	}
	return fmt.Errorf("fault: unknown kind %q", k)
}

// starve pins every thread of pid to the last CPU at nice 19 and runs a busy
// loop at nice -20 on that CPU for d.
func starve(ctx context.Context, pid int, d time.Duration) error {
	cpu := 0
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil {
		for c := 0; c < 1024; c++ {
			if set.IsSet(c) {
				cpu = c
			}
		}
	}
	var one unix.CPUSet
	one.Set(cpu)
	busy := exec.Command("/bin/sh", "-c", "while :; do :; done")
	if err := busy.Start(); err != nil {
		return fmt.Errorf("fault: start busy loop: %w", err)
	}
	defer func() { busy.Process.Kill(); busy.Wait() }()
	_ = unix.SchedSetaffinity(busy.Process.Pid, &one)
	if err := unix.Setpriority(unix.PRIO_PROCESS, busy.Process.Pid, -20); err != nil {
		return fmt.Errorf("fault: raise busy loop priority (needs root): %w", err)
	}
	if err := eachThread(pid, func(tid int) {
		_ = unix.SchedSetaffinity(tid, &one)
		_ = unix.Setpriority(unix.PRIO_PROCESS, tid, 19)
	}); err != nil {
		return err
	}
	sleep(ctx, d)
	// Undo on the survivor, if any (a restarted encoder is a new process anyway).
	_ = eachThread(pid, func(tid int) {
		_ = unix.SchedSetaffinity(tid, &set)
		_ = unix.Setpriority(unix.PRIO_PROCESS, tid, 0)
	})
	return nil
}

func eachThread(pid int, f func(tid int)) error {
	tasks, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	if err != nil {
		return fmt.Errorf("fault: threads of %d: %w", pid, err)
	}
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			f(tid)
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
