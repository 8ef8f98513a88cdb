package update

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"onair/web/api"
)

// The first test: a good bundle goes into the inactive slot, boots
// on trial, is healthy for healthy_after and becomes the default.
func TestGoodBundleTrialHealthyMarkedGood(t *testing.T) {
	bx := newBox(t)
	path, rootfs := makeBundle(t, bx.dir, bx.priv, "v2", 2<<20+3, 11)
	res, err := bx.in.Install(context.Background(), path, InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Slot != SlotB || res.Device != bx.cfg.SlotB || res.Manifest.Version != "v2" || res.Tries != DefaultMaxTries {
		t.Fatalf("installed %+v", res)
	}
	if got := fileHash(t, bx.cfg.SlotB); got != sum(rootfs) {
		t.Fatal("slot b does not hold the rootfs")
	}
	want := BootState{Booted: SlotA, Default: SlotA, Trial: SlotB, TriesLeft: DefaultMaxTries, GoodA: true}
	if st := bx.state(); st != want {
		t.Fatalf("after install %+v, want %+v", st, want)
	}
	if s := bx.bootOnce(); s != SlotB {
		t.Fatalf("the trial boot booted %s", s)
	}

	mk := runMarker(t, bx.boot, bx.cfg.MarkerConfig(), func() bool { return true })
	took := mk.advanceUntil("marked good", 10*time.Minute, func(s Status) bool { return s.State == api.UpdateGood })
	if took != bx.cfg.HealthyAfter {
		t.Errorf("marked good after %s of health, want %s", took, bx.cfg.HealthyAfter)
	}
	want = BootState{Booted: SlotB, Default: SlotB, GoodA: true, GoodB: true}
	if st := bx.state(); st != want {
		t.Fatalf("after marking %+v, want %+v", st, want)
	}
	s := mk.m.Status()
	if s.Slot != "b" || !s.Good || s.Trial != "" || s.Next != "b" || s.Version != "test" {
		t.Fatalf("status %+v", s)
	}
	for range 3 {
		if s := bx.bootOnce(); s != SlotB {
			t.Fatalf("after marking good a boot booted %s", s)
		}
	}
}

// An unhealthy new version, one that boots but never reports healthy, is
// abandoned at the deadline and the next boot returns to the old slot.
func TestNeverHealthyNewVersionRollsBackToTheOldSlot(t *testing.T) {
	bx := newBox(t)
	path, _ := makeBundle(t, bx.dir, bx.priv, "v2", 1<<20, 12)
	if _, err := bx.in.Install(context.Background(), path, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if s := bx.bootOnce(); s != SlotB {
		t.Fatalf("the trial boot booted %s", s)
	}
	mk := runMarker(t, bx.boot, bx.cfg.MarkerConfig(), func() bool { return false })
	took := mk.advanceUntil("abandoned", time.Hour, func(s Status) bool { return s.State == api.UpdateAbandoned })
	if took != bx.cfg.Deadline() {
		t.Errorf("abandoned after %s, want the deadline %s", took, bx.cfg.Deadline())
	}
	if s := mk.m.Status(); s.Next != "a" || s.Good || s.LastError == "" {
		t.Fatalf("status %+v", s)
	}
	if s := bx.bootOnce(); s != SlotA {
		t.Fatalf("the boot after the abandoned trial booted %s", s)
	}
	after := runMarker(t, bx.boot, bx.cfg.MarkerConfig(), func() bool { return true })
	after.advanceUntil("rolled back", time.Minute, func(s Status) bool { return s.State == api.UpdateRolledBack })
	if st := bx.state(); st.Default != SlotA || st.GoodB || st.Next() != SlotA {
		t.Fatalf("after the rollback %+v", st)
	}
}

// A new slot that never gets as far as onaird (a kernel panic, a hang the
// watchdog resets) boots max_tries times, then the old slot boots.
func TestTrialSlotThatNeverComesUpFallsBackAfterMaxTries(t *testing.T) {
	bx := newBox(t)
	path, _ := makeBundle(t, bx.dir, bx.priv, "v2", 1<<20, 13)
	if _, err := bx.in.Install(context.Background(), path, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range bx.cfg.MaxTries {
		if s := bx.bootOnce(); s != SlotB {
			t.Fatalf("trial boot %d booted %s", i+1, s)
		}
	}
	for range 2 {
		if s := bx.bootOnce(); s != SlotA {
			t.Fatalf("after %d failed trial boots the box booted %s", bx.cfg.MaxTries, s)
		}
	}
}

// Health must hold without a break: a dip starts the wait again.
func TestHealthDipStartsTheWaitAgain(t *testing.T) {
	bx := newBox(t)
	path, _ := makeBundle(t, bx.dir, bx.priv, "v2", 1<<20, 14)
	if _, err := bx.in.Install(context.Background(), path, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	bx.bootOnce()
	var samples atomic.Int64
	healthy := func() bool {
		n := samples.Add(1) // one sample a second from 0 s
		return n != 61      // a dip at 60 s, half-way through the 2 min
	}
	mk := runMarker(t, bx.boot, bx.cfg.MarkerConfig(), healthy)
	took := mk.advanceUntil("marked good", time.Hour, func(s Status) bool { return s.State == api.UpdateGood })
	if want := 61*time.Second + bx.cfg.HealthyAfter; took != want {
		t.Fatalf("marked good after %s, want %s (healthy again at 61 s, then 2 min)", took, want)
	}
}

// The interruption test: the write stops at random offsets (an
// error, a cancelled ctx); each time the old slot still boots, and the next
// attempt succeeds.
func TestInterruptedWritesLeaveTheOldSlotBooting(t *testing.T) {
	bx := newBox(t)
	const size = 3<<20 + 12345
	path, rootfs := makeBundle(t, bx.dir, bx.priv, "v2", size, 15)
	st := bx.state()
	r := mrand(42)
	for i := range 20 {
		at := r.Int64N(size)
		ctx, cancel := context.WithCancel(context.Background())
		var written int64
		errDisk := errors.New("disk gone")
		bx.in.wrap = func(w io.Writer) io.Writer {
			return writerFunc(func(p []byte) (int, error) {
				if written+int64(len(p)) <= at {
					written += int64(len(p))
					return w.Write(p)
				}
				n, _ := w.Write(p[:at-written])
				written += int64(n)
				if i%2 == 0 {
					return n, errDisk
				}
				cancel() // the operator's Ctrl-C: the rest of the chunk lands, then it stops
				return w.Write(p[n:])
			})
		}
		_, err := bx.in.Install(ctx, path, InstallOptions{})
		cancel()
		if i%2 == 0 && !errors.Is(err, errDisk) || i%2 == 1 && !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupt %d at %d: Install: %v", i, at, err)
		}
		if got := bx.state(); got != st || got.Next() != SlotA {
			t.Fatalf("interrupt %d at %d: boot state %+v, was %+v", i, at, got, st)
		}
	}
	bx.in.wrap = nil
	res, err := bx.in.Install(context.Background(), path, InstallOptions{})
	if err != nil {
		t.Fatalf("the attempt after the interruptions: %v", err)
	}
	if res.Slot != SlotB || fileHash(t, bx.cfg.SlotB) != sum(rootfs) || bx.state().Next() != SlotB {
		t.Fatalf("installed %+v, state %+v", res, bx.state())
	}
}

// A second update while the first waits for its trial boot overwrites the
// pending slot: the pending trial must end before the first byte, or an
// interrupted second write would be booted.
func TestReinstallOverAPendingTrialEndsItFirst(t *testing.T) {
	bx := newBox(t)
	first, _ := makeBundle(t, bx.dir, bx.priv, "v2", 1<<20, 16)
	second, _ := makeBundle(t, bx.dir, bx.priv, "v3", 1<<20, 17)
	if _, err := bx.in.Install(context.Background(), first, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	bx.in.wrap = func(io.Writer) io.Writer {
		return writerFunc(func([]byte) (int, error) { return 0, errors.New("power cut") })
	}
	if _, err := bx.in.Install(context.Background(), second, InstallOptions{}); err == nil {
		t.Fatal("the interrupted install succeeded")
	}
	if st := bx.state(); st.Trial != "" || st.Next() != SlotA {
		t.Fatalf("after an interrupted write over the pending slot %+v: it would be booted", st)
	}
}

// While the new slot runs on trial the old one is the only good one: an
// update now would overwrite it.
func TestInstallRefusedWhileRunningATrial(t *testing.T) {
	bx := newBox(t)
	path, _ := makeBundle(t, bx.dir, bx.priv, "v2", 1<<20, 18)
	if _, err := bx.in.Install(context.Background(), path, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	bx.bootOnce()
	slotA, opened := fileHash(t, bx.cfg.SlotA), bx.opened
	if _, err := bx.in.Install(context.Background(), path, InstallOptions{}); !errors.Is(err, ErrTrialRunning) {
		t.Fatalf("Install on a trial boot: %v, want ErrTrialRunning", err)
	}
	if fileHash(t, bx.cfg.SlotA) != slotA || bx.opened != opened {
		t.Fatal("the good slot was touched")
	}
}

// After a good update to b, the next one goes to a, and a stops being good
// before its first byte is overwritten.
func TestSecondUpdateGoesToTheOtherSlot(t *testing.T) {
	bx := newBox(t)
	v2, _ := makeBundle(t, bx.dir, bx.priv, "v2", 1<<20, 19)
	v3, rootfs3 := makeBundle(t, bx.dir, bx.priv, "v3", 1<<20, 20)
	if _, err := bx.in.Install(context.Background(), v2, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	bx.bootOnce()
	if err := bx.boot.MarkGood(SlotB); err != nil {
		t.Fatal(err)
	}
	var goodDuringWrite bool
	bx.in.wrap = func(w io.Writer) io.Writer {
		goodDuringWrite = bx.state().GoodA
		return w
	}
	res, err := bx.in.Install(context.Background(), v3, InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Slot != SlotA || fileHash(t, bx.cfg.SlotA) != sum(rootfs3) || goodDuringWrite {
		t.Fatalf("installed %+v; a still good while written: %v", res, goodDuringWrite)
	}
	if s := bx.bootOnce(); s != SlotA {
		t.Fatalf("the trial boot booted %s", s)
	}
}

// BenchmarkInstall measures the update's write throughput: two hashing
// passes over the bundle, the write, fsync and the read-back of a 64 MiB
// rootfs in a temp dir (MB/s is of the rootfs).
func BenchmarkInstall(b *testing.B) {
	bx := newBox(b)
	const size = 64 << 20
	path, _ := makeBundle(b, bx.dir, bx.priv, "v2", size, 21)
	bx.in.log = zap.NewNop() // b.Log of every install would be the output
	b.SetBytes(size)
	for b.Loop() {
		if _, err := bx.in.Install(context.Background(), path, InstallOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// The process is killed (SIGKILL) in the middle of the write, at random
// offsets: the old slot still boots, and the next attempt succeeds. The
// writer is a child process, this test binary re-run as
// TestInstallKilledHelperProcess, which stops at the offset and waits for
// its kill.
func TestKilledInstallLeavesTheOldSlotBooting(t *testing.T) {
	bx := newBox(t)
	const size = 3<<20 + 999
	path, rootfs := makeBundle(t, bx.dir, bx.priv, "v2", size, 22)
	st := bx.state()
	r := mrand(43)
	for i := range 5 {
		at := r.Int64N(size)
		cmd := exec.Command(os.Args[0], "-test.run=^TestInstallKilledHelperProcess$")
		cmd.Env = append(os.Environ(), "ONAIR_UPDATE_HELPER=1",
			"ONAIR_UPDATE_STATE="+bx.cfg.StateFile, "ONAIR_UPDATE_SLOT_A="+bx.cfg.SlotA, "ONAIR_UPDATE_SLOT_B="+bx.cfg.SlotB,
			"ONAIR_UPDATE_PUB="+hex.EncodeToString(bx.pub), "ONAIR_UPDATE_BUNDLE="+path, fmt.Sprint("ONAIR_UPDATE_AT=", at))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stopped := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if sc.Text() == "stopped" {
					stopped <- true
					return
				}
			}
			stopped <- false
		}()
		select {
		case ok := <-stopped:
			if !ok {
				t.Fatalf("kill %d: the helper ended before offset %d", i, at)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("kill %d: the helper did not reach offset %d", i, at)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if got := bx.state(); got != st || got.Next() != SlotA {
			t.Fatalf("kill %d at %d: boot state %+v, was %+v", i, at, got, st)
		}
	}
	if _, err := bx.in.Install(context.Background(), path, InstallOptions{}); err != nil {
		t.Fatalf("the attempt after the kills: %v", err)
	}
	if fileHash(t, bx.cfg.SlotB) != sum(rootfs) || bx.state().Next() != SlotB {
		t.Fatalf("after the install: state %+v", bx.state())
	}
}

// TestInstallKilledHelperProcess is the child of
// TestKilledInstallLeavesTheOldSlotBooting; run alone it does nothing.
func TestInstallKilledHelperProcess(t *testing.T) {
	if os.Getenv("ONAIR_UPDATE_HELPER") != "1" {
		return
	}
	pub, err := hex.DecodeString(os.Getenv("ONAIR_UPDATE_PUB"))
	if err != nil {
		t.Fatal(err)
	}
	at, err := strconv.ParseInt(os.Getenv("ONAIR_UPDATE_AT"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.PublicKey, cfg.Bootloader, cfg.StateFile = "/unused.pub", BootloaderFile, os.Getenv("ONAIR_UPDATE_STATE")
	cfg.SlotA, cfg.SlotB = os.Getenv("ONAIR_UPDATE_SLOT_A"), os.Getenv("ONAIR_UPDATE_SLOT_B")
	in, err := NewInstaller(cfg, InstallerDeps{Boot: NewFileBootloader(cfg.StateFile), PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	var written int64
	in.wrap = func(w io.Writer) io.Writer {
		return writerFunc(func(p []byte) (int, error) {
			if written+int64(len(p)) > at {
				n, _ := w.Write(p[:at-written])
				written += int64(n)
				fmt.Println("stopped")
				time.Sleep(time.Hour) // until killed
			}
			written += int64(len(p))
			return w.Write(p)
		})
	}
	_, err = in.Install(context.Background(), os.Getenv("ONAIR_UPDATE_BUNDLE"), InstallOptions{})
	t.Fatalf("Install returned (%v) instead of stopping at %d", err, at)
}

// onairctl update shows the install going: every phase reports up to its
// total, in order.
func TestInstallReportsProgressOfEveryPhase(t *testing.T) {
	bx := newBox(t)
	const size = 2<<20 + 5
	path, _ := makeBundle(t, bx.dir, bx.priv, "v2", size, 23)
	var got []Progress
	bx.in.progress = func(p Progress) { got = append(got, p) }
	if _, err := bx.in.Install(context.Background(), path, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	var phases []string
	for i, p := range got {
		if p.Total != size || p.Done <= 0 || p.Done > p.Total {
			t.Fatalf("progress %+v", p)
		}
		if i == 0 || got[i-1].Phase != p.Phase {
			phases = append(phases, p.Phase)
		} else if p.Done <= got[i-1].Done {
			t.Fatalf("progress went back: %+v after %+v", p, got[i-1])
		}
		if (i == len(got)-1 || got[i+1].Phase != p.Phase) && p.Done != p.Total {
			t.Fatalf("phase %s ended at %d of %d", p.Phase, p.Done, p.Total)
		}
	}
	if want := []string{PhaseVerify, PhaseWrite, PhaseReadBack}; !slices.Equal(phases, want) {
		t.Fatalf("phases %q, want %q", phases, want)
	}
}
