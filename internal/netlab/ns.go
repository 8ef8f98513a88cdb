package netlab

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Command returns a command that runs name inside the namespace ns (Box or
// Studio) through `ip netns exec`, in its own process group. The lab keeps
// it: once started (by the caller), Close kills it and its group by PID if
// it still runs. The caller waits for it as usual.
func (l *Lab) Command(ns, name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	l.mu.Lock()
	l.cmds = append(l.cmds, cmd)
	l.mu.Unlock()
	return cmd
}

// killCmd kills a started, still running command and its process group.
// os.Process.Signal uses a pidfd, so a finished process is never confused
// with a new one holding the same PID; the group kill follows only when
// the process itself was still there.
func killCmd(c *exec.Cmd) {
	p := c.Process
	if p == nil {
		return
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return // already finished
	}
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
}

// killNetnsPids kills every process still inside the lab namespace ns (all
// of them were started by the lab or its users), so deleting the namespace
// frees its interfaces at once.
func killNetnsPids(ctx context.Context, ns string) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Do runs fn on an OS thread switched into the namespace ns and returns its
// error. Sockets fn creates stay in ns and can be used from any goroutine
// afterwards. fn runs on a goroutine of its own; if switching the thread
// back fails, that thread is discarded rather than reused.
func (l *Lab) Do(ns string, fn func() error) error {
	l.mu.Lock()
	h, ok := l.ns[ns]
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if !ok {
		return fmt.Errorf("netlab: unknown namespace %q", ns)
	}
	return doIn(h, fn)
}

// doIn runs fn on a fresh OS thread switched into the namespace h.
func doIn(h netns.NsHandle, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("netlab: current netns: %w", err)
			return
		}
		defer func() { _ = orig.Close() }()
		if err := netns.Set(h); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("netlab: enter netns: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it ends with this goroutine.
			done <- errors.Join(ferr, fmt.Errorf("netlab: leave netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// Counters are the box-side interface statistics of one uplink.
type Counters struct {
	TxBytes, TxPackets, RxBytes, RxPackets uint64
}

// Counters returns the box-side interface statistics of the link: Tx is
// what the box sent on it, Rx what it received.
func (l *Lab) Counters(name string) (Counters, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := l.link(name)
	if err != nil {
		return Counters{}, err
	}
	nl, err := l.handle(l.Box)
	if err != nil {
		return Counters{}, err
	}
	li, err := nl.LinkByName(ln.BoxIf)
	if err != nil {
		return Counters{}, fmt.Errorf("netlab: link %s: %w", ln.BoxIf, err)
	}
	s := li.Attrs().Statistics
	if s == nil {
		return Counters{}, fmt.Errorf("netlab: link %s: no statistics", ln.BoxIf)
	}
	return Counters{TxBytes: s.TxBytes, TxPackets: s.TxPackets, RxBytes: s.RxBytes, RxPackets: s.RxPackets}, nil
}

// TxBytes returns the bytes the box has sent on the link.
func (l *Lab) TxBytes(name string) (uint64, error) {
	c, err := l.Counters(name)
	return c.TxBytes, err
}

// TxPackets returns the packets the box has sent on the link.
func (l *Lab) TxPackets(name string) (uint64, error) {
	c, err := l.Counters(name)
	return c.TxPackets, err
}

// handle returns the netlink handle of ns; l.mu is held.
func (l *Lab) handle(ns string) (*netlink.Handle, error) {
	h, ok := l.nl[ns]
	if !ok {
		return nil, fmt.Errorf("netlab: unknown namespace %q", ns)
	}
	return h, nil
}

// Leftovers lists, one line each, the policy rules in ns other than the
// kernel's defaults (pref 0 local, 32766 main, 32767 default) and the
// routes in any table other than main, local and default: what a routing
// daemon added and must remove again. Empty means clean.
func (l *Lab) Leftovers(ns string) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	nl, err := l.handle(ns)
	if err != nil {
		return nil, err
	}
	var out []string
	// Per family: FAMILY_ALL would also list the multicast routing rules
	// (RTNL_FAMILY_IPMR, IP6MR), which are kernel defaults too.
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := nl.RuleList(fam)
		if err != nil {
			return nil, fmt.Errorf("netlab: rules in %s: %w", ns, err)
		}
		for _, r := range rules {
			if !isDefaultRule(r) {
				out = append(out, "rule "+fmtRule(r))
			}
		}
		routes, err := nl.RouteListFiltered(fam, &netlink.Route{Table: syscall.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("netlab: routes in %s: %w", ns, err)
		}
		for _, r := range routes {
			switch r.Table {
			case syscall.RT_TABLE_MAIN, syscall.RT_TABLE_LOCAL, syscall.RT_TABLE_DEFAULT:
				continue
			}
			out = append(out, fmt.Sprintf("route table %d %s", r.Table, r.String()))
		}
	}
	return out, nil
}

func isDefaultRule(r netlink.Rule) bool {
	if r.Src != nil || r.Dst != nil || r.Mark != 0 || r.Tos != 0 || r.IifName != "" || r.OifName != "" {
		return false
	}
	switch {
	case r.Priority == 0 && r.Table == syscall.RT_TABLE_LOCAL,
		r.Priority == 32766 && r.Table == syscall.RT_TABLE_MAIN,
		r.Priority == 32767 && r.Table == syscall.RT_TABLE_DEFAULT:
		return true
	}
	return false
}

func fmtRule(r netlink.Rule) string {
	fam := "v4"
	if r.Family == netlink.FAMILY_V6 {
		fam = "v6"
	}
	s := fmt.Sprintf("%s pref %d table %d", fam, r.Priority, r.Table)
	if r.Src != nil {
		s += " from " + r.Src.String()
	}
	if r.Dst != nil {
		s += " to " + r.Dst.String()
	}
	if r.Tos != 0 {
		s += fmt.Sprintf(" tos %#x", r.Tos)
	}
	if r.Mark != 0 {
		s += fmt.Sprintf(" fwmark %#x", r.Mark)
	}
	return s
}
