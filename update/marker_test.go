package update

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"onair/internal/testutil"
	"onair/web/api"
)

// flakyBoot fails MarkGood the first fails times.
type flakyBoot struct {
	Bootloader
	fails atomic.Int32
}

func (f *flakyBoot) MarkGood(slot Slot) error {
	if f.fails.Add(-1) >= 0 {
		return errors.New("grub-editenv: write error")
	}
	return f.Bootloader.MarkGood(slot)
}

// A bootloader write that fails once (an ESP full, an I/O error) must not
// leave a healthy trial unmarked until the next boot abandons it.
func TestMarkGoodThatFailsIsRetriedAtTheNextSample(t *testing.T) {
	bx := newBox(t)
	path, _ := makeBundle(t, bx.dir, bx.priv, "v2", 1<<20, 30)
	if _, err := bx.in.Install(context.Background(), path, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	bx.bootOnce()
	fb := &flakyBoot{Bootloader: bx.boot}
	fb.fails.Store(1)
	mk := runMarker(t, fb, bx.cfg.MarkerConfig(), func() bool { return true })
	took := mk.advanceUntil("marked good", time.Hour, func(s Status) bool { return s.State == api.UpdateGood })
	if took != bx.cfg.HealthyAfter+poll {
		t.Fatalf("marked good after %s, want %s (one retry)", took, bx.cfg.HealthyAfter+poll)
	}
	if s := mk.m.Status(); s.LastError == "" || !s.Good {
		t.Fatalf("status %+v: want good, with the failure said", s)
	}
	if st := bx.state(); st.Default != SlotB {
		t.Fatalf("state %+v", st)
	}
}

// On a boot that is not a trial the Marker only reports: it never asks
// for health and never writes the bootloader.
func TestMarkerOnANormalBootOnlyReports(t *testing.T) {
	bx := newBox(t)
	var asked atomic.Bool
	mk := runMarker(t, bx.boot, bx.cfg.MarkerConfig(), func() bool { asked.Store(true); return true })
	mk.advanceUntil("good", time.Minute, func(s Status) bool { return s.State == api.UpdateGood })
	if s := mk.m.Status(); s.Slot != "a" || !s.Good || s.Next != "a" || s.Trial != "" {
		t.Fatalf("status %+v", s)
	}

	path, _ := makeBundle(t, bx.dir, bx.priv, "v2", 1<<20, 31)
	if _, err := bx.in.Install(context.Background(), path, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	pending := runMarker(t, bx.boot, bx.cfg.MarkerConfig(), func() bool { asked.Store(true); return true })
	pending.advanceUntil("pending", time.Minute, func(s Status) bool { return s.State == api.UpdatePending })
	if s := pending.m.Status(); s.Next != "b" || s.Trial != "b" || s.TriesLeft != DefaultMaxTries {
		t.Fatalf("status %+v", s)
	}
	if asked.Load() {
		t.Fatal("Healthy was asked on a boot that is not a trial")
	}
}

func TestMarkerWithoutABootStateSaysSo(t *testing.T) {
	m, err := New(MarkerConfig{HealthyAfter: time.Minute}, MarkerDeps{
		Boot: NewFileBootloader(t.TempDir() + "/none.json"), Healthy: func() bool { return true }, Log: testutil.NilLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); !errors.Is(err, ErrNoBootState) {
		t.Fatalf("Run: %v", err)
	}
	if s := m.Status(); s.State != api.UpdateError || s.LastError == "" {
		t.Fatalf("status %+v", s)
	}
	if _, err := New(MarkerConfig{HealthyAfter: time.Minute, Deadline: time.Minute}, MarkerDeps{Boot: m.boot, Healthy: m.healthy}); err == nil {
		t.Fatal("a deadline no longer than healthy_after was accepted")
	}
}

// An onaird that crashes every few minutes during a trial, never healthy
// for healthy_after, must still see the trial abandoned at the deadline of
// the boot. Each restart used to start the deadline afresh, so the box ran
// the crashing slot's trial forever and never returned to the old one.
func TestOnairdRestartedDuringATrialKeepsTheBootsDeadline(t *testing.T) {
	bx := newBox(t)
	path, _ := makeBundle(t, bx.dir, bx.priv, "v2", 1<<20, 32)
	if _, err := bx.in.Install(context.Background(), path, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if s := bx.bootOnce(); s != SlotB {
		t.Fatalf("the trial boot booted %s", s)
	}
	file := filepath.Join(t.TempDir(), "trial.json")
	bootID := "boot-1"
	deps := func(d *MarkerDeps) {
		d.TrialFile = file
		d.BootID = func() (string, error) { return bootID, nil }
	}
	deadline := bx.cfg.Deadline()
	third := deadline / 3

	// The first onaird of the boot runs a third of the deadline, then dies.
	first := runMarker(t, bx.boot, bx.cfg.MarkerConfig(), func() bool { return false }, deps)
	first.advanceUntil("a third of the deadline", deadline, func(Status) bool { return first.clock.Since(created) >= third })
	first.stop()

	// The restarted one is abandoned at what is left of the deadline.
	second := runMarker(t, bx.boot, bx.cfg.MarkerConfig(), func() bool { return false }, deps)
	took := second.advanceUntil("abandoned", deadline, func(s Status) bool { return s.State == api.UpdateAbandoned })
	if want := deadline - third; took < want-2*poll || took > want+2*poll {
		t.Errorf("the restarted onaird abandoned the trial after %s, want what was left of the deadline, %s", took, want)
	}
	if s := bx.bootOnce(); s != SlotA {
		t.Fatalf("the boot after the abandoned trial booted %s", s)
	}
}

// A record from another boot (a runtime directory that survived a reboot)
// or of another slot must not shorten this trial.
func TestTrialTimeOfAnotherBootIsNotCounted(t *testing.T) {
	bx := newBox(t)
	path, _ := makeBundle(t, bx.dir, bx.priv, "v2", 1<<20, 33)
	if _, err := bx.in.Install(context.Background(), path, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	bx.bootOnce()
	file := filepath.Join(t.TempDir(), "trial.json")
	for _, rec := range []string{
		`{"boot_id":"boot-0","slot":"b","ran_ns":86400000000000}`,
		`{"boot_id":"boot-1","slot":"a","ran_ns":86400000000000}`,
		`{"boot_id":"boot-1","slot":"b","ran_ns":-5}`,
		`not json`,
	} {
		if err := os.WriteFile(file, []byte(rec), 0o600); err != nil {
			t.Fatal(err)
		}
		mk := runMarker(t, bx.boot, bx.cfg.MarkerConfig(), func() bool { return false }, func(d *MarkerDeps) {
			d.TrialFile = file
			d.BootID = func() (string, error) { return "boot-1", nil }
		})
		took := mk.advanceUntil("abandoned", time.Hour, func(s Status) bool { return s.State == api.UpdateAbandoned })
		if took != bx.cfg.Deadline() {
			t.Errorf("with %s in the trial file: abandoned after %s, want the whole deadline %s", rec, took, bx.cfg.Deadline())
		}
		mk.stop()
		if err := bx.boot.SetTrial(SlotB, 1); err != nil {
			t.Fatal(err)
		}
	}
}
