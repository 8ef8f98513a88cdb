package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"onair/ingest"
	"onair/internal/fault"
	"onair/internal/testutil"
	"onair/web/api"
)

func locked(st api.Status) bool {
	return st.Video.Switch.Locked && st.Video.Switch.Alive[0] && st.Video.Switch.Alive[1]
}

// replaced reports whether the victim child runs again under a new PID (and,
// with relocked, whether the twins are locked again).
func replaced(victim string, pid int, relocked bool) func(api.Status) bool {
	return func(st api.Status) bool {
		for _, c := range st.Children {
			if c.Name == victim {
				return c.PID != pid && c.State == "running" && (!relocked || locked(st))
			}
		}
		return false
	}
}

// independentReceiver records with srt-live-transmit, a receiver that shares
// no code with the box.
func independentReceiver(t *testing.T) (port int, out string, p *proc) {
	need(t, "srt-live-transmit", "ffmpeg", "ffprobe")
	port = freePort(t, "udp")
	out = filepath.Join(t.TempDir(), "received.ts")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	p = start(t, f, "srt-live-transmit", "-q", fmt.Sprintf("srt://127.0.0.1:%d?mode=listener", port), "file://con")
	if err := f.Close(); err != nil { // the receiver holds its own copy
		t.Fatal(err)
	}
	return port, out, p
}

// noGap asserts the DESIGN.md definition of "no gap" on a recording: every
// video frame index exactly once, in order, every PTS step one frame, and the
// whole file decodes without error.
func noGap(t *testing.T, out string) ingest.Report {
	t.Helper()
	rep := analyze(t, out)
	v := rep.Video
	if v.Frames == 0 || v.Missing != 0 || v.Duplicates != 0 || v.PTSGaps != 0 || v.OutOfOrder != 0 || v.NonMonotonic != 0 {
		t.Errorf("receiver: frames %d missing %d %v duplicates %d pts_gaps %d out_of_order %d non_monotonic %d (first index %d)",
			v.Frames, v.Missing, v.MissingIndexes, v.Duplicates, v.PTSGaps, v.OutOfOrder, v.NonMonotonic, v.FrameIndexes.First)
	}
	if e := decodeErrors(t, out); e != "" {
		t.Errorf("decode errors:\n%s", tail(e, 20))
	}
	return rep
}

// A 60 s stream with 20 faults at random times, alternating encoders A and B
// and cycling SIGKILL, SIGSTOP (SIGCONT after 5 s) and CPU starvation: the
// receiver must see every frame index exactly once.
func TestTwentyFaultsLoseNoFrame(t *testing.T) {
	testutil.NeedRoot(t, "CPU starvation uses a cgroup CPU quota")
	faultStorm(t, boxOpts{twins: true, gop: 30}, 20, 60*time.Second)
}

// faultStorm streams for about over with faults faults at random times (a
// random moment in each fault's share of over, once the twins are locked
// again), alternating encoders A and B and cycling SIGKILL, SIGSTOP (SIGCONT
// after 5 s) and CPU starvation (3 s), to an independent receiver that must
// see every frame index exactly once, with no gap or mismatch at the switch
// and one SRT session. It returns the last status, taken before the stop.
func faultStorm(t *testing.T, o boxOpts, faults int, over time.Duration) api.Status {
	t.Helper()
	port, out, rx := independentReceiver(t)
	o.url = fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port)
	b := startBox(t, o)
	b.waitFor(t, 20*time.Second, "twins locked and on air", func(st api.Status) bool { return connected(st) && locked(st) })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
	begin := time.Now()
	slot := over / time.Duration(faults)
	pending := make(chan error, faults)
	for n := 0; n < faults; n++ {
		victim := []string{"encoder-a", "encoder-b"}[n%2]
		kind := fault.Kinds[(n/2)%len(fault.Kinds)]
		// a random moment in this fault's slot, once the twins are locked again
		at := begin.Add(time.Duration(n)*slot + time.Duration(rng.Int64N(int64(slot/3))))
		time.Sleep(time.Until(at))
		b.waitFor(t, 15*time.Second, fmt.Sprintf("re-lock before fault %d", n+1), locked)
		pid := b.child(t, victim).PID
		t.Logf("fault %2d at %5.1fs: %-6s %s (pid %d)", n+1, time.Since(begin).Seconds(), kind, victim, pid)
		d := 5 * time.Second
		if kind == fault.Starve {
			d = 3 * time.Second
		}
		go func() { pending <- fault.Inject(ctx, kind, pid, d) }()
		// The faulted encoder must be noticed and replaced before the next one.
		b.waitFor(t, 15*time.Second, "faulted encoder replaced", replaced(victim, pid, false))
	}
	for n := 0; n < faults; n++ {
		if err := <-pending; err != nil {
			t.Errorf("inject: %v", err)
		}
	}
	b.waitFor(t, 15*time.Second, "final re-lock", locked)
	time.Sleep(time.Until(begin.Add(over + 2*time.Second)))
	st, _ := b.status(t)
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)

	sw := st.Video.Switch
	t.Logf("switch: emitted %d from A %d from B %d, switches %d, relocks %d, gaps %d, mismatches %d, twin skew max %d frames",
		sw.Emitted, sw.FramesFrom[0], sw.FramesFrom[1], sw.Switches, sw.Relocks, sw.GapFrames, sw.Mismatches, st.Video.TwinSkewMaxFrames)
	if sw.GapFrames != 0 || sw.Mismatches != 0 {
		t.Errorf("switch: %d gap frames, %d mismatches", sw.GapFrames, sw.Mismatches)
	}
	if st.Output.Connects != 1 {
		t.Errorf("SRT reconnected %d times", st.Output.Connects)
	}
	rep := noGap(t, out)
	t.Logf("receiver: frames %d, missing %d, duplicates %d", rep.Video.Frames, rep.Video.Missing, rep.Video.Duplicates)
	if want := int64(over.Seconds() * 30); rep.Video.Frames < want {
		t.Errorf("received %d frames, want at least %d", rep.Video.Frames, want)
	}
	return st
}

// Capture SIGKILLed, and capture stalled (SIGSTOP) for 3 s: the encoders keep
// the cadence with the last picture; PTS stays continuous and the SRT session
// is never restarted. (The slate has its own test below.)
func TestCaptureLossFreezesWithoutGap(t *testing.T) {
	port, out, rx := independentReceiver(t)
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, gop: 30,
		stallAfter: "500ms"})
	b.waitFor(t, 20*time.Second, "on air", func(st api.Status) bool { return connected(st) && locked(st) })

	capPID := b.child(t, "capture").PID
	if err := syscall.Kill(capPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, 10*time.Second, "capture back", func(st api.Status) bool {
		for _, c := range st.Children {
			if c.Name == "capture" {
				return c.PID != capPID && st.Video.Keeper.Signal == "live"
			}
		}
		return false
	})
	capPID = b.child(t, "capture").PID
	ctx := context.Background()
	if err := fault.Inject(ctx, fault.Stop, capPID, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	st := b.waitFor(t, 10*time.Second, "live again after the stall", func(st api.Status) bool { return st.Video.Keeper.Signal == "live" })
	time.Sleep(2 * time.Second)
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)

	k := st.Video.Keeper
	t.Logf("cadence: repeats %d slates %d live %d", k.Repeats, k.Slates, k.Live)
	if k.Repeats == 0 {
		t.Error("no repeated picture while capture was gone")
	}
	if st.Output.Connects != 1 {
		t.Errorf("SRT reconnected %d times", st.Output.Connects)
	}
	noGap(t, out)
}

// The slate appears once capture has been gone for video.slate_after.
func TestSlateAfterCaptureGoneLongEnough(t *testing.T) {
	port, out, rx := independentReceiver(t)
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: false, gop: 30,
		stallAfter: "500ms"})
	b.waitFor(t, 20*time.Second, "on air", func(st api.Status) bool { return connected(st) && st.Video.Switch.Emitted > 30 })
	// Stop capture; the supervisor replaces it after stall_after, so keep
	// stopping each new instance for 4 s: longer than the default slate_after (2 s).
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		pid := b.child(t, "capture").PID
		// The supervisor may have replaced it in between: a gone pid is fine.
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("stop capture %d: %v", pid, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	st := b.waitFor(t, 10*time.Second, "slate shown then live again", func(st api.Status) bool {
		return st.Video.Keeper.Slates > 0 && st.Video.Keeper.Signal == "live"
	})
	time.Sleep(time.Second)
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)
	t.Logf("cadence: %+v", st.Video.Keeper)
	noGap(t, out)
}

// Ten manual failovers while locked: no gap, no duplicate.
func TestManualFailoverTenTimesNoGap(t *testing.T) {
	port, out, rx := independentReceiver(t)
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, gop: 30})
	b.waitFor(t, 20*time.Second, "locked", func(st api.Status) bool { return connected(st) && locked(st) })
	st0, _ := b.status(t)
	for n := 0; n < 10; n++ {
		if r, err := b.failover(t); err != nil || r.Result != api.FailoverSwitched {
			t.Fatalf("failover %d: %v %+v", n, err, r)
		}
		time.Sleep(700 * time.Millisecond)
	}
	st, _ := b.status(t)
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)
	if got := st.Video.Switch.Switches - st0.Video.Switch.Switches; got != 10 {
		t.Errorf("switches %d, want 10", got)
	}
	if st.Video.Switch.GapFrames != 0 {
		t.Errorf("gap frames %d", st.Video.Switch.GapFrames)
	}
	noGap(t, out)
}

// absHashes maps absolute frame index (PTS from the session epoch) to the
// hash of the received access unit.
func absHashes(t *testing.T, rep ingest.Report) map[int64]uint64 {
	t.Helper()
	if len(rep.Video.FrameHashes) == 0 {
		t.Fatal("report has no frame hashes")
	}
	const ptsOffset, frame = 10 * 90000, 3000 // daemon's ptsOffset; 30 fps in 90 kHz
	base := (rep.Video.FirstPTS - ptsOffset) / frame
	m := make(map[int64]uint64, len(rep.Video.FrameHashes))
	for _, h := range rep.Video.FrameHashes {
		m[base+h.Index] = h.Hash
	}
	return m
}

// While the twins are locked a failover is invisible even in the bits: a run
// with kills, hangs and starvation of either encoder delivers, frame for
// frame, the same bitstream as a fault-free run (same test pattern at the same
// index, every GOP a fresh codec session in both encoders).
func TestFailoverIsInvisibleInTheBits(t *testing.T) {
	testutil.NeedRoot(t, "CPU starvation uses a cgroup CPU quota")
	sameBitsWithFaults(t, boxOpts{twins: true, gop: 30})
}

// sameBitsWithFaults streams twice with o, once without faults and once with
// a kill, a stop, a kill and a starvation (alternating encoders, each once
// locked, each replaced and re-locked before the next), and fails unless
// every frame index the runs share past their first two GOPs has the same
// access unit, byte for byte (the receiver's hashes), and both recordings
// have no gap.
func sameBitsWithFaults(t *testing.T, o boxOpts) {
	t.Helper()
	gop := o.gop
	run := func(faults []fault.Kind) map[int64]uint64 {
		port, out, rx := independentReceiver(t)
		o.url = fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port)
		b := startBox(t, o)
		b.waitFor(t, 20*time.Second, "locked", func(st api.Status) bool { return connected(st) && locked(st) })
		begin := time.Now()
		for n, k := range faults {
			victim := []string{"encoder-a", "encoder-b"}[n%2]
			b.waitFor(t, 15*time.Second, "locked before the fault", locked)
			pid := b.child(t, victim).PID
			t.Logf("fault %s on %s", k, victim)
			if err := fault.Inject(context.Background(), k, pid, 2*time.Second); err != nil {
				t.Fatal(err)
			}
			b.waitFor(t, 15*time.Second, "replaced and re-locked", replaced(victim, pid, true))
		}
		// Both runs stream at least 16 s so they overlap over hundreds of frames.
		time.Sleep(max(3*time.Second, time.Until(begin.Add(16*time.Second))))
		b.stop(t, 10*time.Second)
		time.Sleep(500 * time.Millisecond)
		rx.stop(t, 5*time.Second)
		return absHashes(t, noGap(t, out))
	}
	clean := run(nil)
	faulty := run([]fault.Kind{fault.Kill, fault.Stop, fault.Kill, fault.Starve})

	var compared, differ int64
	for i, h := range faulty {
		if i < int64(2*gop) { // the first GOPs depend on when each run's encoders started
			continue
		}
		ref, ok := clean[i]
		if !ok {
			continue
		}
		compared++
		if ref != h {
			differ++
			if differ <= 5 {
				t.Errorf("frame %d differs from the fault-free run", i)
			}
		}
	}
	t.Logf("compared %d frames with the fault-free run, %d differ", compared, differ)
	if compared < 200 {
		t.Fatalf("only %d frames overlap between the runs", compared)
	}
	if differ != 0 {
		t.Fatalf("%d of %d frames differ from the fault-free run", differ, compared)
	}
}

// A runtime bitrate change is applied by both twins at the same frame index,
// so they stay locked; and an encoder restarted afterwards (which starts at the
// configured bitrate) is brought to the current one and re-locks.
func TestBitrateChangeKeepsTwinsLockedAndRestartedTwinRelocks(t *testing.T) {
	port, out, rx := independentReceiver(t)
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, gop: 30})
	b.waitFor(t, 20*time.Second, "locked", func(st api.Status) bool { return connected(st) && locked(st) })
	res, err := exec.Command(bin("onairctl"), "--socket", b.socket, "bitrate", "1500").CombinedOutput()
	if err != nil {
		t.Fatalf("onairctl bitrate: %v %s", err, res)
	}
	time.Sleep(2 * time.Second)
	st := b.waitFor(t, 5*time.Second, "still locked after the bitrate change", locked)
	if st.Video.Switch.Mismatches != 0 || st.Video.BitrateKbps != 1500 {
		t.Fatalf("after bitrate change: mismatches %d bitrate %d", st.Video.Switch.Mismatches, st.Video.BitrateKbps)
	}
	pid := b.child(t, "encoder-b").PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, 10*time.Second, "encoder-b replaced and re-locked", replaced("encoder-b", pid, true))
	time.Sleep(2 * time.Second)
	st, _ = b.status(t)
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)
	if st.Video.Switch.Mismatches != 0 || !st.Video.Switch.Locked {
		t.Errorf("restarted twin at the new bitrate: locked %v mismatches %d", st.Video.Switch.Locked, st.Video.Switch.Mismatches)
	}
	noGap(t, out)
}
