package nut

import (
	"context"
	"errors"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"onair/internal/testutil"
)

func newClient(t *testing.T, cfg Config, clock clockwork.Clock) *Client {
	t.Helper()
	if cfg.UPS == "" {
		cfg.UPS = "dummy"
	}
	c, err := New(cfg, testutil.NilLogger(t), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestReadParsesAFullListVar(t *testing.T) {
	f := startFake(t, upsdLike(capturedList(t)))
	clock := clockwork.NewFakeClock()
	c := newClient(t, Config{Addr: f.addr()}, clock)
	r, err := c.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Status, []string{"OL"}) || r.Charge != 100 || r.Runtime != 3600 {
		t.Fatalf("status %q charge %v runtime %v", r.Status, r.Charge, r.Runtime)
	}
	if len(r.Vars) != 15 || r.Vars["driver.name"] != "dummy-ups" || !r.At.Equal(clock.Now()) {
		t.Fatalf("vars %v at %v", r.Vars, r.At)
	}
	if _, err := c.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s != (Stats{Reads: 2, Dials: 1}) || f.accepts.Load() != 1 {
		t.Fatalf("two reads on one connection: %+v, %d accepts", s, f.accepts.Load())
	}
	if c.Name() != "dummy@"+f.addr() {
		t.Fatalf("Name %q", c.Name())
	}
}

// ups.status is several tokens; a charge the UPS reports as text, or a
// runtime it does not report, must read as unknown (-1), not as 0 %.
func TestStatusTokensAndUnknownNumbers(t *testing.T) {
	f := startFake(t, upsdLike([]string{
		"BEGIN LIST VAR dummy",
		`VAR dummy ups.status "OB LB"`,
		`VAR dummy battery.charge "n/a"`,
		"END LIST VAR dummy",
	}))
	r, err := newClient(t, Config{Addr: f.addr()}, nil).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !r.Has("OB") || !r.Has("LB") || r.Has("OL") || r.Charge != -1 || r.Runtime != -1 {
		t.Fatalf("%+v", r)
	}
}

func TestErrAnswersMapToSentinelsAndNameTheStep(t *testing.T) {
	for _, tc := range []struct {
		line string
		want error
	}{
		{"ERR DRIVER-NOT-CONNECTED", ErrDriverNotConnected},
		{"ERR UNKNOWN-UPS", ErrUnknownUPS},
		{"ERR DATA-STALE", ErrDataStale},
	} {
		f := startFake(t, func(string) []string { return []string{tc.line} })
		_, err := newClient(t, Config{Addr: f.addr()}, nil).Read(context.Background())
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v", tc.line, err)
		}
		if want := "nut: dummy@" + f.addr() + ": list var: nut: upsd: " + tc.line; err.Error() != want {
			t.Fatalf("got %q, want %q", err, want)
		}
	}
}

func TestLoginSendsUsernamePasswordThenLogin(t *testing.T) {
	f := startFake(t, upsdLike(capturedList(t)))
	c := newClient(t, Config{Addr: f.addr(), User: "mon", Password: `p w"x`}, nil)
	if _, err := c.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"USERNAME mon", `PASSWORD "p w\"x"`, "LOGIN dummy", "LIST VAR dummy"}
	if got := f.requests(); !reflect.DeepEqual(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
}

// upsd answers OK to a wrong USERNAME and PASSWORD: only LOGIN's answer
// tells, and the operator must see it is the login that failed.
func TestWrongPasswordFailsAtLoginWithAccessDenied(t *testing.T) {
	f := startFake(t, upsdLike(capturedList(t)))
	_, err := newClient(t, Config{Addr: f.addr(), User: "mon", Password: "wrong"}, nil).Read(context.Background())
	if !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("got %v", err)
	}
	if want := "nut: dummy@" + f.addr() + ": login: nut: upsd: ERR ACCESS-DENIED"; err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
}

// A second LOGIN on a connection (a reconnect to a upsd that remembers, or
// a proxy) answers ERR ALREADY-LOGGED-IN: that is a login, not a failure.
func TestAlreadyLoggedInIsASuccessfulLogin(t *testing.T) {
	answer := upsdLike(capturedList(t))
	f := startFake(t, answer)
	answer("USERNAME mon")
	answer(`PASSWORD "p w\"x"`)
	answer("LOGIN dummy")
	if _, err := newClient(t, Config{Addr: f.addr(), User: "mon", Password: `p w"x`}, nil).Read(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A broken upsd line must fail the read and be counted, never panic or
// yield a half Reading.
func TestMalformedLineFailsTheReadAndIsCounted(t *testing.T) {
	for _, tc := range []struct {
		name string
		list []string
		want error
	}{
		{"unterminated quote", []string{"BEGIN LIST VAR dummy", `VAR dummy ups.status "OL`, "END LIST VAR dummy"}, ErrMalformed},
		{"line too long", []string{"BEGIN LIST VAR dummy", strings.Repeat("x", 2*MaxLineLen)}, ErrLineTooLong},
		{"other ups in the list", []string{"BEGIN LIST VAR dummy", `VAR other ups.status "OL"`}, ErrUnexpected},
		{"list of another ups", []string{"BEGIN LIST VAR other"}, ErrUnexpected},
		{"hang up mid-list", []string{"BEGIN LIST VAR dummy", hangUp}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, func(string) []string { return tc.list })
			c := newClient(t, Config{Addr: f.addr()}, nil)
			r, err := c.Read(context.Background())
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || r.Vars != nil {
				t.Fatalf("got %+v, %v; want %v", r, err, tc.want)
			}
			malformed := uint64(0)
			if errors.Is(tc.want, ErrMalformed) || errors.Is(tc.want, ErrLineTooLong) {
				malformed = 1
			}
			if s := c.Stats(); s.Errors != 1 || s.Malformed != malformed {
				t.Fatalf("stats %+v", s)
			}
			t.Log(err)
		})
	}
}

// A upsd that accepts and then says nothing must not hang the poller:
// Timeout bounds the request.
func TestStalledUpsdHitsTheTimeout(t *testing.T) {
	for name, answer := range map[string]func(string) []string{
		"no answer":         func(string) []string { return nil },
		"list never ending": func(string) []string { return []string{"BEGIN LIST VAR dummy"} },
	} {
		t.Run(name, func(t *testing.T) {
			f := startFake(t, answer)
			c := newClient(t, Config{Addr: f.addr(), Timeout: 100 * time.Millisecond}, nil)
			start := time.Now()
			_, err := c.Read(context.Background())
			if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "list var: i/o timeout") {
				t.Fatalf("got %v", err)
			}
			if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
				t.Fatalf("returned after %s with a 100 ms timeout", d)
			}
		})
	}
}

func TestCancelledContextInterruptsARead(t *testing.T) {
	asked := make(chan struct{}, 1)
	f := startFake(t, func(string) []string { asked <- struct{}{}; return nil })
	c := newClient(t, Config{Addr: f.addr(), Timeout: time.Minute}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-asked; cancel() }()
	start := time.Now()
	if _, err := c.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %s", d)
	}
	// The caller gave up, upsd did not fail: the next Read dials at once.
	f.setAnswer(upsdLike(capturedList(t)))
	if _, err := c.Read(context.Background()); err != nil || c.Stats().Dials != 2 {
		t.Fatalf("read after a cancelled one: %v, %+v", err, c.Stats())
	}
}

func TestDialRefusedIsShortForTheStatusLine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, err = newClient(t, Config{Addr: addr}, nil).Read(context.Background())
	if want := "nut: dummy@" + addr + ": dial: connection refused"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("%v is not ECONNREFUSED", err)
	}
}

// A poller calling Read every second must not hammer a failing upsd: during
// the backoff Read answers at once, without dialing, with the last error;
// the backoff doubles up to BackoffMax and resets after a success.
func TestReadDuringBackoffDoesNotDial(t *testing.T) {
	good := upsdLike(capturedList(t))
	driverDown := func(string) []string { return []string{"ERR DRIVER-NOT-CONNECTED"} }
	f := startFake(t, driverDown)
	clock := clockwork.NewFakeClock()
	const minB, maxB = 100 * time.Millisecond, 400 * time.Millisecond
	c := newClient(t, Config{Addr: f.addr(), BackoffMin: minB, BackoffMax: maxB}, clock)
	ctx := context.Background()

	dials := func() uint64 { return c.Stats().Dials }
	mustFail := func(wantDials uint64, backoff bool) {
		t.Helper()
		_, err := c.Read(ctx)
		if !errors.Is(err, ErrDriverNotConnected) || errors.Is(err, ErrBackoff) != backoff || dials() != wantDials {
			t.Fatalf("got %v with %d dials; want backoff %v, %d dials", err, dials(), backoff, wantDials)
		}
	}
	mustFail(1, false)
	mustFail(1, true)
	clock.Advance(minB - time.Millisecond)
	mustFail(1, true)
	clock.Advance(time.Millisecond)
	mustFail(2, false) // backoff now 2×min
	clock.Advance(minB)
	mustFail(2, true)
	clock.Advance(minB)
	mustFail(3, false) // 4×min = max
	clock.Advance(maxB - time.Millisecond)
	mustFail(3, true)
	clock.Advance(time.Millisecond)
	mustFail(4, false) // capped at max
	clock.Advance(maxB - time.Millisecond)
	mustFail(4, true)

	f.setAnswer(good)
	clock.Advance(time.Millisecond)
	if _, err := c.Read(ctx); err != nil || dials() != 5 {
		t.Fatalf("after the backoff: %v, %d dials", err, dials())
	}
	f.setAnswer(driverDown)
	mustFail(5, false) // on the open connection
	clock.Advance(minB)
	mustFail(6, false) // reset to min after the success
	if got := f.accepts.Load(); got != 6 {
		t.Fatalf("upsd saw %d connections, client dialed 6", got)
	}
	if s := c.Stats(); s.Errors != 6 || s.Reads != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCloseLogsOut(t *testing.T) {
	f := startFake(t, upsdLike(capturedList(t)))
	c := newClient(t, Config{Addr: f.addr()}, nil)
	if _, err := c.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := f.requests(); got[len(got)-1] != "LOGOUT" {
		t.Fatalf("requests %q", got)
	}
	if _, err := c.Read(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentReadsShareOneConnection(t *testing.T) {
	f := startFake(t, upsdLike(capturedList(t)))
	c := newClient(t, Config{Addr: f.addr()}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 4 {
		wg.Go(func() {
			for range 5 {
				if _, err := c.Read(context.Background()); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := c.Stats(); s.Reads != 20 || s.Dials != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNewNamesTheBadField(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Addr: "127.0.0.1", UPS: "dummy"}, "Addr"},
		{Config{Addr: ":3493", UPS: "dummy"}, "Addr"},
		{Config{Addr: "127.0.0.1:3493"}, "UPS"},
		{Config{Addr: "127.0.0.1:3493", UPS: "two words"}, "UPS"},
		{Config{Addr: "127.0.0.1:3493", UPS: "dummy", User: "mon"}, "User"},
		{Config{Addr: "127.0.0.1:3493", UPS: "dummy", User: "mon", Password: "a\nLOGOUT"}, "Password"},
		{Config{Addr: "127.0.0.1:3493", UPS: "dummy", Timeout: -time.Second}, "Timeout"},
		{Config{Addr: "127.0.0.1:3493", UPS: "dummy", BackoffMin: time.Minute}, "BackoffMin"},
	} {
		_, err := New(tc.cfg, nil, nil)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), ": "+tc.field+": ") {
			t.Errorf("%+v: %v (want the field %s named)", tc.cfg, err, tc.field)
		}
	}
	c, err := New(Config{Addr: "127.0.0.1:3493", UPS: "dummy"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Timeout != DefaultTimeout || c.cfg.BackoffMin != DefaultBackoffMinimum || c.cfg.BackoffMax != DefaultBackoffMaximum {
		t.Fatalf("defaults %+v", c.cfg)
	}
}
