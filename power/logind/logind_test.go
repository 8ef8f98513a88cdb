package logind

import (
	"context"
	"strings"
	"testing"
	"time"

	"onair/internal/logindtest"
)

// TestPowerOffReachesLogindOnce: the call arrives at logind (here the fake
// on a private system bus) as PowerOff(false), once per call.
func TestPowerOffReachesLogindOnce(t *testing.T) {
	l := logindtest.Start(t)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", l.Address)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := PowerOff(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := l.WaitCall(1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if c.Interactive {
		t.Error("PowerOff asked for interactive authorization")
	}
	if n := len(l.Calls()); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

// TestRefusedPowerOffIsAnErrorNotSilence: go-systemd's login1 PowerOff
// drops logind's answer; a refusal (polkit, a busy inhibitor) must come
// back as an error that names it.
func TestRefusedPowerOffIsAnErrorNotSilence(t *testing.T) {
	l := logindtest.Start(t)
	l.FailWith("org.freedesktop.login1.OperationInProgress")
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", l.Address)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := PowerOff(ctx)
	if err == nil || !strings.Contains(err.Error(), "OperationInProgress") {
		t.Fatalf("err = %v, want the refusal named", err)
	}
}

// TestNoBusIsAnError: without a system bus (a container, a laptop without
// dbus) the power-off fails with an error, it does not hang.
func TestNoBusIsAnError(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+t.TempDir()+"/none")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := PowerOff(ctx); err == nil || !strings.Contains(err.Error(), "system bus") {
		t.Fatalf("err = %v", err)
	}
}
