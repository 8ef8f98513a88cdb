// Package nspawnlab boots a root file system tree in systemd-nspawn the way
// this kind of machine allows it, for the image's tests. The documented way
// (`systemd-nspawn -b`) fails here: the host's PID 1 is not systemd, /run is
// on disk and the cgroups are the v1 hybrid (FACTS §5). The recipe that works:
// a private mount namespace (unshare -m) with a tmpfs on /run/systemd/nspawn,
// then `systemd-nspawn -b --register=no --keep-unit --console=pipe`, and every
// command in the container through nsenter into its PID 1.
//
// The container shares the host's network (no --private-network): a receiver
// on the host's loopback is reachable from the box inside, and ports the box
// listens on are the host's.
//
// Not for: building the tree (scripts/image.sh) or QEMU boots. One container
// at a time: the tests hold /tmp/onair-live.lock.
package nspawnlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"onair/internal/testutil"
)

// Config is what to boot.
type Config struct {
	// Rootfs is the tree to boot (out/image/rootfs).
	Rootfs string
	// Machine is the container's name (its hostname).
	Machine string
	// Binds are nspawn --bind values, "HOSTPATH:CONTAINERPATH".
	Binds []string
	// Volatile boots the tree read-only under a tmpfs overlay
	// (--volatile=overlay): the tree is the same after the boot.
	Volatile bool
	// InitArgs go to the container's systemd, which reads them as a kernel
	// command line (e.g. systemd.mask=UNIT).
	InitArgs []string
}

// Container is a booted container.
type Container struct {
	cfg  Config
	cmd  *exec.Cmd
	out  *testutil.SyncBuffer
	done chan struct{}
	err  error // nspawn's exit, once done is closed
	init int   // the container's PID 1 as the host sees it
	// cgroups nspawn creates under this process's cgroups (FACTS §5:
	// payload and supervisor), removed by Close when they were not there
	// before.
	cgroups []string
	// madeRunDir: Boot made /run/systemd/nspawn, Close removes it.
	madeRunDir bool
}

// Boot starts systemd-nspawn and returns once the container's systemd
// answers on its private bus (not yet when its units have started: see
// WaitRunning). ctx bounds the wait only.
func Boot(ctx context.Context, cfg Config) (*Container, error) {
	if _, err := os.Stat(filepath.Join(cfg.Rootfs, "usr/lib/systemd/systemd")); err != nil {
		return nil, fmt.Errorf("nspawnlab: %s is no systemd rootfs: %w", cfg.Rootfs, err)
	}
	_, statErr := os.Stat(runDir)
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("nspawnlab: %w", err)
	}
	args := []string{"-q", "-D", cfg.Rootfs, "-b", "--register=no", "--keep-unit", "--console=pipe", "-M", cfg.Machine}
	if cfg.Volatile {
		args = append(args, "--volatile=overlay")
	}
	for _, b := range cfg.Binds {
		args = append(args, "--bind="+b)
	}
	args = append(args, cfg.InitArgs...)
	// The tmpfs makes /run/systemd/nspawn a file system nspawn may clean up
	// ("we can't allow that" on a disk /run); only this mount namespace
	// sees it.
	script := `mount -t tmpfs tmpfs /run/systemd/nspawn && exec systemd-nspawn "$@"`
	cmd := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c := &Container{cfg: cfg, cmd: cmd, out: &testutil.SyncBuffer{}, done: make(chan struct{}), cgroups: newCgroups(), madeRunDir: statErr != nil}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nspawnlab: start: %w", err)
	}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	if err := c.findInit(ctx); err != nil {
		_ = c.Close() // the boot's error is the one to report
		return nil, err
	}
	for {
		if _, err := c.Exec(ctx, "test", "-S", "/run/systemd/private"); err == nil {
			return c, nil
		}
		if err := c.sleep(ctx, 50*time.Millisecond); err != nil {
			_ = c.Close() // the boot's error is the one to report
			return nil, fmt.Errorf("nspawnlab: waiting for systemd's bus: %w\n%s", err, c.Output())
		}
	}
}

// sleep waits d, or fails when ctx ends or nspawn exits.
func (c *Container) sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		if c.err == nil {
			return errors.New("systemd-nspawn exited")
		}
		return fmt.Errorf("systemd-nspawn exited: %w", c.err)
	case <-time.After(d):
		return nil
	}
}

// findInit finds the container's PID 1: a descendant of nspawn whose
// innermost PID is 1.
func (c *Container) findInit(ctx context.Context) error {
	for {
		if pid := findNSInit(c.cmd.Process.Pid); pid > 0 {
			c.init = pid
			return nil
		}
		if err := c.sleep(ctx, 20*time.Millisecond); err != nil {
			return fmt.Errorf("nspawnlab: the container's PID 1 never appeared: %w\n%s", err, c.Output())
		}
	}
}

// findNSInit returns the host PID of a process below root whose innermost
// PID namespace number is 1, or 0.
func findNSInit(root int) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		ns := parseNSpid(status)
		if len(ns) < 2 || ns[len(ns)-1] != 1 {
			continue
		}
		if descends(pid, root) {
			return pid
		}
	}
	return 0
}

// parseNSpid returns the NSpid: line of a /proc/PID/status, outermost first.
func parseNSpid(status []byte) []int {
	for line := range strings.SplitSeq(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, "NSpid:")
		if !ok {
			continue
		}
		var out []int
		for f := range strings.FieldsSeq(rest) {
			n, err := strconv.Atoi(f)
			if err != nil {
				return nil
			}
			out = append(out, n)
		}
		return out
	}
	return nil
}

// descends reports whether pid has root among its ancestors.
func descends(pid, root int) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		ppid := parsePPid(stat)
		if ppid == root {
			return true
		}
		pid = ppid
	}
	return false
}

// parsePPid returns the parent PID from a /proc/PID/stat line (the command
// name in parentheses may hold spaces and parentheses).
func parsePPid(stat []byte) int {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// Init is the container's PID 1 as the host sees it.
func (c *Container) Init() int { return c.init }

// Exec runs a command in the container (all its namespaces) and returns its
// combined output.
func (c *Container) Exec(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(c.init), "-a"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("nspawnlab: %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// WaitRunning waits for systemd to finish starting its units and returns the
// system state: "running", or "degraded" with failed units.
func (c *Container) WaitRunning(ctx context.Context) (string, error) {
	out, err := c.Exec(ctx, "systemctl", "is-system-running", "--wait")
	state := strings.TrimSpace(out)
	if state == "degraded" {
		return state, nil // not an error of the wait: the caller asks systemctl --failed
	}
	return state, err
}

// Show returns systemctl show's properties of a unit.
func (c *Container) Show(ctx context.Context, unit string, props ...string) (map[string]string, error) {
	out, err := c.Exec(ctx, "systemctl", "show", "-p", strings.Join(props, ","), unit)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m, nil
}

// Done is closed when systemd-nspawn has exited.
func (c *Container) Done() <-chan struct{} { return c.done }

// Err is nspawn's exit error, once Done is closed (nil: a clean exit).
func (c *Container) Err() error { return c.err }

// Output is what nspawn printed (with --console=pipe, systemd logs to the
// container's journal, not here).
func (c *Container) Output() string { return c.out.String() }

// Poweroff asks the container's systemd to power off and waits for nspawn to
// exit.
func (c *Container) Poweroff(ctx context.Context) error {
	// The call may lose its bus as the container goes: its exit says
	// nothing; nspawn's does.
	_, _ = c.Exec(ctx, "systemctl", "poweroff")
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return fmt.Errorf("nspawnlab: poweroff: %w", ctx.Err())
	}
}

// runDir is where nspawn keeps its state; Boot's private tmpfs covers it.
const runDir = "/run/systemd/nspawn"

// Close stops the container if it still runs (SIGKILL to its PID 1 ends
// its PID namespace; nspawn then exits) and removes the cgroups nspawn left
// behind and the /run/systemd/nspawn Boot made. It fails naming what it
// could not remove. Safe to call more than once.
func (c *Container) Close() error {
	select {
	case <-c.done:
	default:
		if c.init > 0 {
			_ = syscall.Kill(c.init, syscall.SIGKILL) // ESRCH: it has just gone
		}
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.done
		}
	}
	var left []string
	for _, cg := range c.cgroups {
		removeCgroup(cg)
		if _, err := os.Stat(cg); err == nil {
			left = append(left, cg)
		}
	}
	c.cgroups = nil
	if c.madeRunDir {
		if err := os.Remove(runDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			left = append(left, runDir)
		}
		c.madeRunDir = false
	}
	if len(left) > 0 {
		return fmt.Errorf("nspawnlab: left behind: %s", strings.Join(left, ", "))
	}
	return nil
}

// newCgroups lists the payload and supervisor cgroups nspawn --keep-unit
// makes below this process's cgroups (v1 name=systemd and the v2 unified
// hierarchy), leaving out any that exist already (not ours to remove).
func newCgroups() []string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	var out []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		var mount string
		switch {
		case f[1] == "name=systemd":
			mount = "/sys/fs/cgroup/systemd"
		case f[0] == "0" && f[1] == "":
			mount = "/sys/fs/cgroup/unified"
			if _, err := os.Stat(mount); err != nil {
				mount = "/sys/fs/cgroup"
			}
		default:
			continue
		}
		for _, sub := range []string{"payload", "supervisor"} {
			p := filepath.Join(mount, f[2], sub)
			if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
				out = append(out, p)
			}
		}
	}
	return out
}

// removeCgroup removes an empty cgroup tree, deepest first (cgroupfs
// removes a directory with rmdir only, and only when it has no processes).
func removeCgroup(root string) {
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	slices.Reverse(dirs)
	for _, d := range dirs {
		_ = syscall.Rmdir(d) // EBUSY: a process is still in it; nothing more to do
	}
}
