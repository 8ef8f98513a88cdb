package e2e

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"onair/ingest"
	"onair/internal/pulselab"
	"onair/internal/tone"
	"onair/web/api"
)

// The backup audio chain, end to end: main (1 kHz) and backup (440 Hz) run
// as two onair-av processes, an independent receiver (srt-live-transmit)
// records, and the test decodes the recording's audio with ffmpeg and reads
// the dominant frequency of every 100 ms: M (1 kHz), B (440 Hz), '.'
// (silence) or '?' (a window that holds a switch, or neither tone).

const (
	mainTone   = `"lavfi:sine=frequency=1000:sample_rate=48000"`
	backupTone = `"lavfi:sine=frequency=440:sample_rate=48000"`
)

type audioRig struct {
	b   *box
	out string
	rx  *proc
}

// startAudioBox starts a box whose audio: block is audio, recorded by an
// independent receiver, and waits until it streams with both chains ok.
func startAudioBox(t *testing.T, audio string, twins bool) *audioRig {
	t.Helper()
	port, out, rx := independentReceiver(t)
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: twins, audio: audio})
	b.waitFor(t, 20*time.Second, "streaming, both audio chains ok", func(st api.Status) bool {
		if !connected(st) || len(st.Audio.Chains) != 2 {
			return false
		}
		for _, c := range st.Audio.Chains {
			if c.State != api.AudioChainOK {
				return false
			}
		}
		return st.Audio.Active == "main"
	})
	return &audioRig{b: b, out: out, rx: rx}
}

// finish stops the box, then the receiver, checks that the recorded audio
// is continuous (every frame index once, every PTS step one frame, no
// decode error) and returns the box's last status and the tone of every
// 100 ms of the recording.
func (r *audioRig) finish(t *testing.T) (api.Status, ingest.AudioReport, string) {
	t.Helper()
	st := mustStatus(t, r.b)
	r.b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	r.rx.stop(t, 5*time.Second)
	a := analyze(t, r.out).Audio
	if a.Frames == 0 || a.Missing != 0 || a.Duplicates != 0 || a.PTSGaps != 0 || a.OutOfOrder != 0 || a.NonMonotonic != 0 || a.ADTSErrors != 0 {
		keep(t, r.out)
		t.Errorf("recorded audio: frames %d missing %d %v duplicates %d pts_gaps %d out_of_order %d non_monotonic %d adts_errors %d",
			a.Frames, a.Missing, a.MissingIndexes, a.Duplicates, a.PTSGaps, a.OutOfOrder, a.NonMonotonic, a.ADTSErrors)
	}
	if e := decodeErrors(t, r.out); e != "" {
		t.Errorf("decode errors:\n%s", tail(e, 20))
	}
	tones := tonesOf(t, r.out)
	t.Logf("audio: %d frames; switches %d; tones per 100 ms:\n%s", a.Frames, st.Audio.Switches, tones)
	for _, s := range st.Audio.LastSwitches {
		t.Logf("switch at frame %d: %s → %s (%s)", s.Index, s.From, s.To, s.Reason)
	}
	return st, a, tones
}

// tonesOf names the tone of every 100 ms of path's audio; the first and
// last windows (the receiver's start and end) are left out.
func tonesOf(t *testing.T, path string) string {
	t.Helper()
	pcm, err := tone.Decode(path)
	if err != nil {
		t.Fatal(err)
	}
	s := tone.Names(pcm, tone.Rate/10)
	if len(s) < 10 {
		t.Fatalf("only %d windows of audio recorded", len(s))
	}
	return s[2 : len(s)-2]
}

// runsOf splits tones into runs of one tone; between two runs at most two
// windows may be neither (the window that holds a switch: the decoder
// blends one frame of each chain).
func runsOf(t *testing.T, tones string) []tone.Run {
	t.Helper()
	rs, other := tone.Runs(tones, 2)
	if other > 2 {
		t.Errorf("%d windows in a row of neither tone nor silence (a switch takes at most one frame)", other)
	}
	return rs
}

func pattern(rs []tone.Run) string { return tone.Pattern(rs) }

func near(got, want, tol int) bool { return got >= want-tol && got <= want+tol }

func pidOf(t *testing.T, b *box, name string) int {
	t.Helper()
	c := b.child(t, name)
	if c.PID == 0 {
		t.Fatalf("%s has no process: %+v", name, c)
	}
	return c.PID
}

// Killing the main chain's process switches the programme to backup at the
// next frame, without a gap; main returns return_after (10 s) after its
// restarted process is healthy.
func TestMainAudioChainKilledBackupTakesOverAtOnceAndMainReturnsAfterTenSeconds(t *testing.T) {
	r := startAudioBox(t, "  main:\n    source: "+mainTone+"\n  backup:\n    source: "+backupTone+"\n", false)
	time.Sleep(3 * time.Second)
	if err := syscall.Kill(pidOf(t, r.b, "audio-main"), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.b.waitFor(t, 20*time.Second, "main back on air", func(st api.Status) bool { return st.Audio.Active == "main" && st.Audio.Switches == 2 })
	time.Sleep(2 * time.Second)
	st, _, tones := r.finish(t)
	rs := runsOf(t, tones)
	if pattern(rs) != "MBM" {
		t.Fatalf("tones %q: want main, backup, main", pattern(rs))
	}
	// backup: main's restart (backoff 200 ms, start, first frames) + 10 s
	if rs[1].N < 100 || rs[1].N > 125 {
		t.Errorf("backup on air for %d ms, want 10 s after main's restart", rs[1].N*100)
	}
	sw := st.Audio.LastSwitches
	if len(sw) != 2 || sw[0].Reason != "main down" || sw[1].Reason != "main healthy for 10s" || st.Audio.Missing != 0 {
		t.Errorf("switches %+v, missing %d", sw, st.Audio.Missing)
	}
}

// The programme follows main's silence for silence_after, then backup;
// while main flaps (one second of tone, one of silence) it stays on backup,
// and returns to main return_after after main is steady: one switch each
// way, each on a frame boundary.
func TestSilentThenFlappingMainFeedSwitchesOnceEachWay(t *testing.T) {
	// Main's own time t: tone, 3 s of silence from t=5, flapping each second
	// for 20 s (t=8 to 28), then steady.
	// (Inside the quotes the commas need no escaping.)
	expr := "if(lt(t,5)+gte(t,28)+(gte(t,8)*lt(mod(t-8,2),1)),0.125*sin(2*PI*1000*t),0)"
	main := strconv.Quote("lavfi:aevalsrc=exprs='" + expr + "':s=48000:c=stereo")
	r := startAudioBox(t, "  main:\n    source: "+main+"\n  backup:\n    source: "+backupTone+"\n  silence_after: 2s\n  return_after: 4s\n", false)
	r.b.waitFor(t, 50*time.Second, "main back after the flapping", func(st api.Status) bool { return st.Audio.Switches >= 2 })
	time.Sleep(2 * time.Second)
	st, _, tones := r.finish(t)
	rs := runsOf(t, tones)
	if pattern(rs) != "M.BM" {
		t.Fatalf("tones %q: want main, main's silence, backup, main", pattern(rs))
	}
	if !near(rs[1].N, 20, 2) {
		t.Errorf("main's silence went out for %d ms, want silence_after (2 s)", rs[1].N*100)
	}
	// main steady from its t=28, 23 s after the silence began; + return_after
	if !near(rs[3].At-rs[1].At, 230+40, 3) {
		t.Errorf("main back %d ms after its silence began, want 27 s", (rs[3].At-rs[1].At)*100)
	}
	if st.Audio.Switches != 2 {
		t.Errorf("%d switches through the flapping, want 2", st.Audio.Switches)
	}
}

// With every video process stopped for 5 s the programme still carries
// audio, every frame.
func TestEveryVideoProcessDownFiveSecondsAudioGoesOn(t *testing.T) {
	r := startAudioBox(t, "  main:\n    source: "+mainTone+"\n  backup:\n    source: "+backupTone+"\n", true)
	time.Sleep(3 * time.Second)
	before := mustStatus(t, r.b).Audio.Frames
	stopped := map[int]bool{}
	end := time.Now().Add(5 * time.Second)
	for time.Now().Before(end) { // bounded: 5 s; the supervisor restarts what it finds stalled: stop those too
		for _, n := range []string{"capture", "encoder-a", "encoder-b"} {
			if pid := r.b.child(t, n).PID; pid != 0 && !stopped[pid] {
				if err := syscall.Kill(pid, syscall.SIGSTOP); err == nil {
					stopped[pid] = true
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	during := mustStatus(t, r.b).Audio.Frames - before
	for pid := range stopped {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	time.Sleep(3 * time.Second)
	st, _, tones := r.finish(t)
	if rs := runsOf(t, tones); pattern(rs) != "M" {
		t.Errorf("tones %q: want main throughout", pattern(rs))
	}
	if during < 5*46 {
		t.Errorf("%d audio frames muxed in the 5 s without video, want %d", during, 5*47)
	}
	if st.Audio.Switches != 0 {
		t.Errorf("%d audio switches", st.Audio.Switches)
	}
	t.Logf("%d video processes stopped; %d audio frames muxed meanwhile", len(stopped), during)
}

// The operator forces backup; the backup chain dies: the programme falls
// back to main at once, without a gap, and goes back to the forced backup
// return_after after it is healthy again.
func TestForcedBackupKilledFallsBackToMainWithoutAGap(t *testing.T) {
	r := startAudioBox(t, "  main:\n    source: "+mainTone+"\n  backup:\n    source: "+backupTone+"\n  return_after: 4s\n", false)
	time.Sleep(2 * time.Second)
	out, err := exec.Command(bin("onairctl"), "--socket", r.b.socket, "audio", "backup").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "on air backup") {
		t.Fatalf("onairctl audio backup: %v %s", err, out)
	}
	time.Sleep(3 * time.Second)
	if err := syscall.Kill(pidOf(t, r.b, "audio-backup"), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.b.waitFor(t, 20*time.Second, "backup back on air", func(st api.Status) bool { return st.Audio.Active == "backup" && st.Audio.Switches == 3 })
	time.Sleep(2 * time.Second)
	st, _, tones := r.finish(t)
	rs := runsOf(t, tones)
	if pattern(rs) != "MBMB" {
		t.Fatalf("tones %q: want main, backup (forced), main (backup dead), backup", pattern(rs))
	}
	if rs[2].N < 40 || rs[2].N > 60 {
		t.Errorf("main filled in for %d ms, want return_after (4 s) after backup's restart", rs[2].N*100)
	}
	if st.Audio.Mode != api.AudioBackup || st.Audio.LastSwitches[1].Reason != "backup down" {
		t.Errorf("mode %s, switches %+v", st.Audio.Mode, st.Audio.LastSwitches)
	}
}

// Two sound cards (PulseAudio null sinks read as ALSA devices, fed 1 kHz and
// 440 Hz in real time): main's feeder stops, main's card is muted, main's
// chain is killed, main's card is unplugged. Each time the programme turns
// to the backup card, silence_after after main went silent or at once for
// a dead chain or a gone device, and back to main return_after after main
// is healthy again; the recorded audio stays continuous throughout.
func TestTwoSoundCardsMainStoppedMutedKilledUnpluggedBackupCoversEachTime(t *testing.T) {
	lab := pulselab.Start(t)
	cards := map[string]*pulselab.Sink{}
	for name, hz := range map[string]int{"main": 1000, "backup": 440} {
		s, err := lab.AddSink(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Feed(hz); err != nil {
			t.Fatal(err)
		}
		cards[name] = s
	}
	port, out, rx := independentReceiver(t)
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), env: lab.Env(),
		audio: "  main:\n    source: \"alsa:main\"\n  backup:\n    source: \"alsa:backup\"\n  silence_after: 2s\n  return_after: 4s\n",
		extra: "  backoff_max: 1s\n"})
	r := &audioRig{b: b, out: out, rx: rx}
	switches := func(n uint64, active string) {
		t.Helper()
		b.waitFor(t, 20*time.Second, fmt.Sprintf("%d switches, %s on air", n, active), func(st api.Status) bool {
			return st.Audio.Switches == n && st.Audio.Active == active
		})
	}
	switches(0, "main")
	time.Sleep(2 * time.Second)
	steps := []struct {
		what        string
		fail, heal  func() error
		wantSilence bool
	}{
		{"feeder stopped", cards["main"].StopFeed, func() error { return cards["main"].Feed(1000) }, true},
		{"card muted", func() error { return cards["main"].Mute(true) }, func() error { return cards["main"].Mute(false) }, true},
		{"chain killed", func() error { return syscall.Kill(pidOf(t, b, "audio-main"), syscall.SIGKILL) }, func() error { return nil }, false},
		{"card unplugged", cards["main"].Remove, func() error {
			s, err := lab.AddSink("main")
			if err != nil {
				return err
			}
			return s.Feed(1000)
		}, false},
	}
	for n, s := range steps {
		if err := s.fail(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		switches(uint64(2*n+1), "backup")
		if err := s.heal(); err != nil {
			t.Fatalf("%s, healing: %v", s.what, err)
		}
		switches(uint64(2*n+2), "main")
		time.Sleep(time.Second)
	}
	st, _, tones := r.finish(t)
	rs := runsOf(t, tones)
	if got := pattern(rs); got != "M.BM.BMBMBM" {
		t.Fatalf("tones %q: want main, then for each of %d faults backup (after main's silence for the first two) and main again", got, len(steps))
	}
	for _, i := range []int{1, 4} {
		if !near(rs[i].N, 20, 2) {
			t.Errorf("main's silence went out for %d ms, want silence_after (2 s)", rs[i].N*100)
		}
	}
	want := []string{"main silent", "main healthy", "main silent", "main healthy", "main down", "main healthy", "main down", "main healthy"}
	for i, sw := range st.Audio.LastSwitches {
		if i < len(want) && !strings.HasPrefix(sw.Reason, want[i]) {
			t.Errorf("switch %d at frame %d: %q, want %q…", i, sw.Index, sw.Reason, want[i])
		}
	}
	for _, c := range st.Audio.Chains {
		t.Logf("%s: rate %+.1f ppm (measured %v), offset %.2f ms, delay %.0f ms", c.Name, c.RatePPM, c.RateMeasured, c.OffsetMs, c.DelayMs)
	}
}
