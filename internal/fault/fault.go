// Package fault injects the failures the twin encoders must survive, on real
// processes: SIGKILL, SIGSTOP/SIGCONT (a hang), and CPU starvation (the victim
// alone limited to 1 % of a CPU by a cgroup quota).
// Used by the end-to-end tests and the benchmarks, never by the box itself.
package fault

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
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

// starve limits pid to 1 % of one CPU with a CFS bandwidth quota in a cgroup
// of its own, for d. Only the victim is starved: unlike a busy loop at high
// priority, it does not take a core away from the rest of the box, which on
// 2 cores would starve the twin encoder too.
func starve(ctx context.Context, pid int, d time.Duration) error {
	cg, err := newQuotaGroup(pid)
	if err != nil {
		return err
	}
	defer cg.remove()
	if err := os.WriteFile(filepath.Join(cg.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("fault: move %d into %s: %w", pid, cg.dir, err)
	}
	sleep(ctx, d)
	return nil
}

// quotaGroup is a CPU cgroup (v1 "cpu" controller or v2) made for one fault.
type quotaGroup struct {
	dir, parent string
	pid         int
}

func newQuotaGroup(pid int) (*quotaGroup, error) {
	name := fmt.Sprintf("onair-starve-%d", pid)
	// cgroup v1 cpu controller, else a cgroup v2 hierarchy with the cpu controller.
	for _, root := range []string{"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup"} {
		v1 := fileExists(filepath.Join(root, "cpu.cfs_quota_us"))
		v2 := fileExists(filepath.Join(root, "cgroup.controllers"))
		if !v1 && !v2 {
			continue
		}
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			return nil, fmt.Errorf("fault: make cgroup %s (needs root): %w", dir, err)
		}
		g := &quotaGroup{dir: dir, parent: root, pid: pid}
		var err error
		if v1 {
			err = os.WriteFile(filepath.Join(dir, "cpu.cfs_period_us"), []byte("100000"), 0)
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, "cpu.cfs_quota_us"), []byte("1000"), 0)
			}
		} else {
			err = os.WriteFile(filepath.Join(dir, "cpu.max"), []byte("1000 100000"), 0)
		}
		if err != nil {
			g.remove()
			return nil, fmt.Errorf("fault: set CPU quota in %s: %w", dir, err)
		}
		return g, nil
	}
	return nil, fmt.Errorf("fault: no cgroup CPU controller found under /sys/fs/cgroup")
}

// remove lifts the quota, moves what is left of the victim back and deletes
// the cgroup. The quota goes first: a task moved out of a group that is still
// throttled could stay off the CPU after the fault (seen here: 0 ticks in 0.5 s).
func (g *quotaGroup) remove() {
	_ = os.WriteFile(filepath.Join(g.dir, "cpu.cfs_quota_us"), []byte("-1"), 0) // v1
	_ = os.WriteFile(filepath.Join(g.dir, "cpu.max"), []byte("max"), 0)         // v2
	if procs, err := os.ReadFile(filepath.Join(g.dir, "cgroup.procs")); err == nil {
		for _, p := range strings.Fields(string(procs)) {
			_ = os.WriteFile(filepath.Join(g.parent, "cgroup.procs"), []byte(p), 0)
		}
	}
	for i := 0; i < 50; i++ { // a just-killed victim may take a moment to leave
		if err := os.Remove(g.dir); err == nil || os.IsNotExist(err) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
