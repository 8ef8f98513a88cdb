package update

import (
	"context"
	"errors"
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
