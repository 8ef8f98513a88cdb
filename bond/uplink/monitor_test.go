package uplink

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/internal/testutil"
)

// fakeKernel is an in-memory kernel: apply changes its state as the kernel
// would, and every read and applied op is reported on a channel.
type fakeKernel struct {
	mu         sync.Mutex
	st         state
	subErr     error
	subscribes int
	wakeFn     func()
	dead       chan struct{}

	reads   chan struct{}
	applied chan string
}

func newFakeKernel(st state) *fakeKernel {
	return &fakeKernel{st: st, reads: make(chan struct{}, 256), applied: make(chan string, 256)}
}

func (f *fakeKernel) read() (state, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads <- struct{}{}
	st := f.st
	st.links, st.addrs = slices.Clone(st.links), slices.Clone(st.addrs)
	st.routes, st.rules = slices.Clone(st.routes), slices.Clone(st.rules)
	return st, nil
}

func (f *fakeKernel) apply(o op) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st = applyOps(f.st, []op{o})
	f.applied <- o.String()
	return nil
}

func (f *fakeKernel) subscribe(wake func()) (func(), <-chan struct{}, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subscribes++
	if f.subErr != nil {
		return nil, nil, f.subErr
	}
	f.wakeFn, f.dead = wake, make(chan struct{})
	return func() {}, f.dead, nil
}

func (f *fakeKernel) close() {}

// change edits the state and, like a netlink event, wakes the monitor when
// event is true (false: a silent change, as the kernel dropping a route).
func (f *fakeKernel) change(event bool, edit func(*state)) {
	f.mu.Lock()
	edit(&f.st)
	wake := f.wakeFn
	f.mu.Unlock()
	if event && wake != nil {
		wake()
	}
}

type loopHarness struct {
	k       *fakeKernel
	m       *Monitor
	clock   *clockwork.FakeClock
	changes chan []Uplink
	done    chan error
	cancel  context.CancelFunc
}

func startLoop(t *testing.T, cfg Config, k *fakeKernel) *loopHarness {
	t.Helper()
	h := &loopHarness{k: k, clock: clockwork.NewFakeClock(), changes: make(chan []Uplink, 64), done: make(chan error, 1)}
	cfg.OnChange = func(u []Uplink) { h.changes <- u }
	m, err := New(cfg, testutil.NilLogger(t), h.clock)
	if err != nil {
		t.Fatal(err)
	}
	m.open = func(Config, *zap.Logger) (kernel, error) { return k, nil }
	h.m = m
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-h.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

func (h *loopHarness) next(t *testing.T) []Uplink {
	t.Helper()
	select {
	case u := <-h.changes:
		return u
	case <-time.After(5 * time.Second):
		t.Fatal("no snapshot within 5 s")
		return nil
	}
}

// waiters waits until the loop waits on n timers and tickers.
func (h *loopHarness) waiters(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.clock.BlockUntilContext(ctx, n); err != nil {
		t.Fatalf("the loop never waited on %d timers: %v", n, err)
	}
}

func drain[T any](ch chan T) int {
	n := 0
	for {
		select {
		case <-ch:
			n++
		default:
			return n
		}
	}
}

func waitApplied(t *testing.T, k *fakeKernel, want string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case got := <-k.applied:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("%q never applied", want)
		}
	}
}

func loopConfig() Config {
	return Config{Uplinks: []Spec{bond("wired", "eth0")}, Debounce: 250 * time.Millisecond, Resync: 5 * time.Second}
}

func TestEventBurstCostsOneReadAfterTheDebounce(t *testing.T) {
	k := newFakeKernel(wired())
	h := startLoop(t, loopConfig(), k)
	if u := h.next(t); u[0].State != Ready {
		t.Fatalf("first snapshot: %+v", u[0])
	}
	h.waiters(t, 1) // the resync ticker
	drain(k.reads)

	k.change(true, func(s *state) { s.addrs[1] = v4(2, "192.0.2.3/24") }) // DHCP renew
	for range 4 {
		k.change(true, func(*state) {})
	}
	h.waiters(t, 2) // ticker and debounce timer
	if n := drain(k.reads); n != 0 {
		t.Fatalf("%d reads before the debounce expired", n)
	}
	h.clock.Advance(250 * time.Millisecond)
	u := h.next(t)
	if !slices.Equal(u[0].Addrs, []netip.Addr{ip("192.0.2.3")}) {
		t.Fatalf("after the renew: %+v", u[0])
	}
	if n := drain(k.reads); n != 1 {
		t.Fatalf("five events cost %d reads, want 1", n)
	}
	waitApplied(t, k, "add rule pref 1200 from 192.0.2.3/32 lookup 1200")
}

func TestSilentlyDroppedRouteIsReaddedAtResync(t *testing.T) {
	k := newFakeKernel(wired())
	h := startLoop(t, loopConfig(), k)
	h.next(t)
	waitApplied(t, k, "add rule pref 1200 from 192.0.2.2/32 lookup 1200")
	h.waiters(t, 1)
	// The kernel drops the default route of our table without an event.
	k.change(false, func(s *state) {
		s.routes = slices.DeleteFunc(s.routes, func(r route) bool { return r.table == 1200 })
	})
	h.clock.Advance(5 * time.Second)
	waitApplied(t, k, "add route 0.0.0.0/0 via 192.0.2.1 dev 2 table 1200")
}

func TestSubscribeFailureFallsBackToPolling(t *testing.T) {
	k := newFakeKernel(wired())
	k.subErr = errors.New("netlink: operation not permitted")
	h := startLoop(t, loopConfig(), k)
	h.next(t)
	h.waiters(t, 1)
	k.change(false, func(s *state) { s.links[1].carrier = false })
	h.clock.Advance(5 * time.Second)
	if u := h.next(t); u[0].State != Down || u[0].Reason != ReasonNoCarrier {
		t.Fatalf("after the poll: %+v", u[0])
	}
	waitApplied(t, k, "del rule pref 1200 from 192.0.2.2/32 lookup 1200")
}

func TestBrokenSubscriptionRereadsAndResubscribes(t *testing.T) {
	k := newFakeKernel(wired())
	h := startLoop(t, loopConfig(), k)
	h.next(t)
	k.change(false, func(s *state) { s.links[1].carrier = false })
	k.mu.Lock()
	close(k.dead) // e.g. ENOBUFS: events were lost
	k.mu.Unlock()
	if u := h.next(t); u[0].State != Down {
		t.Fatalf("after the subscription broke: %+v", u[0])
	}
	h.waiters(t, 1)
	drain(k.reads)
	h.clock.Advance(5 * time.Second)
	<-k.reads
	k.mu.Lock()
	n := k.subscribes
	k.mu.Unlock()
	if n != 2 {
		t.Fatalf("subscribed %d times, want 2 (again at the resync)", n)
	}
}

func TestRunRemovesStaleAtStartAndEverythingOfOursOnReturn(t *testing.T) {
	st := wired()
	foreignRules := []rule{{priority: 1200, table: 99, src: pf("10.9.9.9/32")}, {priority: 32766, table: tableMain}}
	foreignRoutes := slices.Clone(st.routes)
	st.rules = append(slices.Clone(foreignRules), rule{priority: 1200, table: 1200, src: pf("192.0.2.77/32")})
	st.routes = append(st.routes, route{table: 1200, linkIndex: 2, dst: pf("10.1.0.0/16"), gw: ip("192.0.2.1")})
	k := newFakeKernel(st)
	h := startLoop(t, loopConfig(), k)
	h.next(t)
	k.mu.Lock()
	var ours []string
	for _, r := range k.st.rules {
		if r.table == 1200 {
			ours = append(ours, op{rule: &r}.String())
		}
	}
	k.mu.Unlock()
	if !slices.Equal(ours, []string{"add rule pref 1200 from 192.0.2.2/32 lookup 1200"}) {
		t.Fatalf("our rules after the start: %v (the stale one must be gone)", ours)
	}
	h.cancel()
	if err := <-h.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	h.done <- nil // for the cleanup
	k.mu.Lock()
	defer k.mu.Unlock()
	if !slices.Equal(k.st.rules, foreignRules) || !slices.Equal(k.st.routes, foreignRoutes) {
		t.Fatalf("after Run returned: rules %+v routes %+v; want only the foreign ones", k.st.rules, k.st.routes)
	}
}
