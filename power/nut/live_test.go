package nut_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"onair/internal/nutlab"
	"onair/internal/testutil"
	"onair/power/nut"
)

// These tests run the real upsd (internal/nutlab): they take real time
// (a lab is ready after about 3 s) and belong to the Makefile's LIVE_RACE.

// liveClient is a client of the lab's UPS with short timeouts and backoff.
func liveClient(t *testing.T, l *nutlab.Lab, user, password string) *nut.Client {
	t.Helper()
	c, err := nut.New(nut.Config{
		Addr: l.Addr(), UPS: l.UPS(), User: user, Password: password,
		Timeout: time.Second, BackoffMin: 100 * time.Millisecond, BackoffMax: 400 * time.Millisecond,
	}, testutil.NilLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// readUntil reads every 50 ms until ok(reading, err) holds, for at most
// within; it returns how long that took and the last result.
func readUntil(t *testing.T, c *nut.Client, within time.Duration, ok func(nut.Reading, error) bool) (time.Duration, nut.Reading, error) {
	t.Helper()
	start := time.Now()
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r, err := c.Read(ctx)
		cancel()
		if ok(r, err) {
			return time.Since(start), r, err
		}
		if time.Since(start) > within || i > int(within/(50*time.Millisecond))+10 {
			t.Fatalf("not within %s: last read %+v, %v", within, r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The box must see the mains go (OB) on the real upsd, logged in as the
// upsmon user it is configured with; a wrong password must say ACCESS-DENIED
// at login, not pass silently (upsd answers OK to PASSWORD whatever it is).
func TestLiveReadFollowsTheRealUpsd(t *testing.T) {
	l := nutlab.Start(t, nutlab.Options{Users: map[string]string{"mon": "s3cret pass"}})
	c := liveClient(t, l, "mon", "s3cret pass")
	r, err := c.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !r.Has("OL") || r.Charge != 100 || r.Runtime != 3600 || r.Vars["driver.name"] != "dummy-ups" {
		t.Fatalf("first read %+v", r)
	}

	l.Set(t, "OB", 80, 1800)
	took, r, _ := readUntil(t, c, 5*time.Second, func(r nut.Reading, err error) bool { return err == nil && r.Has("OB") })
	t.Logf("OB read %s after Set", took.Round(time.Millisecond))
	if r.Has("OL") || r.Charge != 80 || r.Runtime != 1800 {
		t.Fatalf("on battery: %+v", r)
	}
	if s := c.Stats(); s.Dials != 1 || s.Errors != 0 {
		t.Fatalf("stats %+v: one connection, no errors expected", s)
	}

	_, err = liveClient(t, l, "mon", "wrong").Read(context.Background())
	if !errors.Is(err, nut.ErrAccessDenied) || !strings.HasSuffix(err.Error(), ": login: nut: upsd: ERR ACCESS-DENIED") {
		t.Fatalf("wrong password: %v", err)
	}
	_, err = liveClient(t, l, "nobody", "x").Read(context.Background())
	if !errors.Is(err, nut.ErrAccessDenied) {
		t.Fatalf("unknown user: %v", err)
	}
	other, err := nut.New(nut.Config{Addr: l.Addr(), UPS: "nope"}, testutil.NilLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Close() }()
	if _, err := other.Read(context.Background()); !errors.Is(err, nut.ErrUnknownUPS) {
		t.Fatalf("unknown UPS: %v", err)
	}
}

// upsd dies and comes back (a restart, an update): the client must report
// the failure, back off instead of hammering, and read again by itself once
// upsd is back; a dead driver must read as DRIVER-NOT-CONNECTED.
func TestLiveReadRecoversAfterUpsdRestart(t *testing.T) {
	l := nutlab.Start(t, nutlab.Options{})
	c := liveClient(t, l, "", "")
	if _, err := c.Read(context.Background()); err != nil {
		t.Fatal(err)
	}

	l.KillUpsd(t)
	_, err := c.Read(context.Background())
	if err == nil || errors.Is(err, nut.ErrBackoff) {
		t.Fatalf("first read after upsd died: %v", err)
	}
	t.Logf("upsd killed: %v", err)
	if _, err = c.Read(context.Background()); !errors.Is(err, nut.ErrBackoff) {
		t.Fatalf("second read, within the backoff: %v", err)
	}
	_, _, err = readUntil(t, c, 2*time.Second, func(_ nut.Reading, err error) bool { return errors.Is(err, syscall.ECONNREFUSED) })
	t.Logf("redial while upsd is down: %v", err)
	if !strings.HasSuffix(err.Error(), ": dial: connection refused") {
		t.Fatalf("dial error for the status line: %q", err)
	}

	dials := c.Stats().Dials
	l.StartUpsd(t)
	took, r, _ := readUntil(t, c, 5*time.Second, func(_ nut.Reading, err error) bool { return err == nil })
	t.Logf("read again %s after upsd was back (%d dials before)", took.Round(time.Millisecond), dials)
	if !r.Has("OL") {
		t.Fatalf("after restart: %+v", r)
	}

	l.KillDriver(t)
	_, _, err = readUntil(t, c, 2*time.Second, func(_ nut.Reading, err error) bool { return err != nil })
	if !errors.Is(err, nut.ErrDriverNotConnected) {
		t.Fatalf("driver killed: %v", err)
	}
}
