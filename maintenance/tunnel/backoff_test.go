package tunnel

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"onair/internal/testutil"
	"onair/web/api"
)

func TestBackoffDoublesToTheCapAndResetsAfterAMinuteUp(t *testing.T) {
	clock := clockwork.NewFakeClock()
	b := newBackoff(time.Second, 60*time.Second, clock)
	b.jitter = func() float64 { return 1 } // the top of each range
	var got []time.Duration
	for range 8 {
		got = append(got, b.failed())
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("waits %v, want %v s", got, want)
		}
	}

	b.up()
	clock.Advance(59 * time.Second) // not healthy long enough: keep doubling
	if d := b.failed(); d != 60*time.Second {
		t.Fatalf("after 59 s up: %v, want 60s", d)
	}
	b.up()
	clock.Advance(60 * time.Second)
	if d := b.failed(); d != time.Second {
		t.Fatalf("after 60 s up: %v, want 1s (reset)", d)
	}
	if d := b.failed(); d != 2*time.Second {
		t.Fatalf("then %v, want 2s", d)
	}

	b.jitter = func() float64 { return 0 } // the bottom: half, never under min
	b.next = 8 * time.Second
	if d := b.failed(); d != 4*time.Second {
		t.Fatalf("bottom of 8s: %v, want 4s", d)
	}
	b.next = time.Second
	if d := b.failed(); d != time.Second {
		t.Fatalf("bottom of 1s: %v, want 1s (min)", d)
	}
}

// newTestTunnel returns a tunnel with a real key and an empty known_hosts.
func newTestTunnel(t *testing.T, deps Deps) *Tunnel {
	t.Helper()
	dir := t.TempDir()
	c := validConfig()
	c.Host = "10.99.0.2"
	c.KeyFile, c.KnownHosts = filepath.Join(dir, "key"), filepath.Join(dir, "known_hosts")
	writeKey(t, c.KeyFile)
	if err := os.WriteFile(c.KnownHosts, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tun, err := New(c, deps)
	if err != nil {
		t.Fatal(err)
	}
	return tun
}

// A maintenance host that cannot be reached is retried after 1, 2, 4 … s,
// each wait on the injected clock, and Run ends cleanly with its ctx.
func TestUnreachableMaintenanceHostIsRetriedWithDoublingBackoff(t *testing.T) {
	clock := clockwork.NewFakeClock()
	dials := 0
	tun := newTestTunnel(t, Deps{Log: testutil.NilLogger(t), Clock: clock,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			dials++
			return nil, errors.New("network is unreachable")
		}})
	tun.bo.jitter = func() float64 { return 1 }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tun.Run(ctx) }()

	for i, want := range []time.Duration{1, 2, 4, 8, 16, 32, 60, 60} {
		// This attempt's backoff: entered now (fake time stands still).
		st := waitStatus(t, tun, 5*time.Second, func(s api.TunnelStatus) bool {
			return s.State == api.TunnelBackoff && s.Since.Equal(clock.Now())
		})
		bctx, bcancel := context.WithTimeout(ctx, 5*time.Second)
		err := clock.BlockUntilContext(bctx, 1) // the backoff timer
		bcancel()
		if err != nil {
			t.Fatalf("attempt %d: Run does not wait: %v", i+1, err)
		}
		if st.State != api.TunnelBackoff || st.RetryAt.Sub(st.Since) != want*time.Second ||
			!strings.Contains(st.LastError, "dial 10.99.0.2:22: network is unreachable") {
			t.Fatalf("attempt %d: %+v, want backoff retrying in %ds", i+1, st, want)
		}
		clock.Advance(want * time.Second)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil at the end of its ctx", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if st := tun.Status(); dials != 9 || st.Connects != 0 || st.Target != "box17@10.99.0.2:22" || st.RemotePort != 2217 {
		t.Fatalf("dials %d, status %+v", dials, st)
	}
}

// waitStatus waits (on Changed, bounded by within) until ok(Status()).
func waitStatus(t *testing.T, tun *Tunnel, within time.Duration, ok func(api.TunnelStatus) bool) api.TunnelStatus {
	t.Helper()
	deadline := time.After(within)
	for {
		ch := tun.Changed()
		st := tun.Status()
		if ok(st) {
			return st
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("status not reached within %s; now %+v", within, st)
		}
	}
}
