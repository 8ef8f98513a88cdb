package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"onair/ingest"
	"onair/internal/tone"
	"onair/web/api"
)

// The backup audio figures of issue 10, from one box with both chains
// (main 1 kHz, backup 440 Hz) recorded by onair-ingest:
//
//   - audio_silence_to_switch_ms: from main's first silent sample to the
//     backup tone, read in the recording (10 ms windows): silence_after
//     (3 s) plus at most a frame is the goal;
//   - audio_kill_to_switch_ms, audio_stall_to_switch_ms: from SIGKILL
//     (SIGSTOP) of the main chain's process to the status naming backup,
//     polled every 5 ms (wall clock: how fast the box acts);
//   - audio_gap_frames / audio_gap_ms over every switch of the run, at the
//     receiver (goal 0);
//   - audio_av_offset_*_ms: each chain's frame timeline against the box
//     clock, which video is stamped on (status offset_ms), before and after
//     the switches;
//   - CPU of each chain process over 8 s, and backup's against main's.
func runAudio(work string) {
	if err := benchAudio(filepath.Join(work, "audio")); err != nil {
		fmt.Fprintln(os.Stderr, "bench: audio:", err)
	}
}

// Main's own time: tone, silent from t=8 s to 13 s, tone again.
const benchMainSource = `"lavfi:aevalsrc=exprs='if(lt(t,8)+gte(t,13),0.125*sin(2*PI*1000*t),0)':s=48000:c=stereo"`

func benchAudio(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	port := freePort("udp")
	rx, out := startIngest(dir, port)
	defer stop(rx)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort("tcp"))
	cfg := fmt.Sprintf(`video:
  source: "lavfi:testsrc2=size=1280x720:rate=%d"
  fps: %d
  bitrate_kbps: 4000
  gop: 30
  twins: false
audio:
  main:
    source: %s
  backup:
    source: "lavfi:sine=frequency=440:sample_rate=48000"
  return_after: 4s
output:
  url: "srt://127.0.0.1:%d?latency=200"
api:
  listen: %q
  socket: %q
  auth_dir: %q
runtime_dir: %q
log_level: warn
`, fps, fps, benchMainSource, port, listen, filepath.Join(dir, "api.sock"), filepath.Join(dir, "auth"), filepath.Join(dir, "run"))
	path := filepath.Join(dir, "onair.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(*binDir, "onaird"), "-config", path)
	if err := cmd.Start(); err != nil {
		return err
	}
	defer stop(cmd)
	b := &box{cmd: cmd, client: api.NewUnixClient(filepath.Join(dir, "api.sock"))}
	b.waitFor(30*time.Second, func(st api.Status) bool { return st.Output.State == "connected" })
	// The silence at main's t=8 s switches (t=11 s), main returns at t=17 s.
	b.waitFor(40*time.Second, func(st api.Status) bool { return st.Audio.Switches == 2 && st.Audio.Active == "main" })
	before := b.waitFor(5*time.Second, func(api.Status) bool { return true })

	cpuMain, cpuBackup, err := chainCPU(b, 8*time.Second)
	if err != nil {
		return err
	}
	kill, err := switchAfter(b, syscall.SIGKILL)
	if err != nil {
		return err
	}
	b.waitFor(30*time.Second, func(st api.Status) bool { return st.Audio.Switches == 4 && st.Audio.Active == "main" })
	stall, err := switchAfter(b, syscall.SIGSTOP)
	if err != nil {
		return err
	}
	// The supervisor restarts the stopped chain after 1 s without a frame.
	b.waitFor(30*time.Second, func(st api.Status) bool { return st.Audio.Switches == 6 && st.Audio.Active == "main" })
	time.Sleep(time.Second)
	after, err := b.status()
	if err != nil {
		return err
	}
	stop(cmd)
	time.Sleep(500 * time.Millisecond)
	stop(rx)

	rep, err := ingest.AnalyzeFile(out, ingest.Options{FPS: fps})
	if err != nil {
		return err
	}
	pcm, err := tone.Decode(out)
	if err != nil {
		return err
	}
	silence, err := silenceToSwitch(tone.Names(pcm, tone.Rate/100))
	if err != nil {
		return err
	}
	a := rep.Audio
	gap := a.Missing + a.Duplicates + a.PTSGaps
	emit("audio_silence_to_switch_ms", silence.Seconds()*1000, "ms")
	emit("audio_kill_to_switch_ms", kill.Seconds()*1000, "ms")
	emit("audio_stall_to_switch_ms", stall.Seconds()*1000, "ms")
	emit("audio_switches", float64(after.Audio.Switches), "switches")
	emit("audio_gap_frames", float64(gap), "frames")
	emit("audio_gap_ms", float64(gap)*1024/48, "ms")
	emit("audio_missing_frames_selector", float64(after.Audio.Missing), "frames")
	for _, c := range []struct {
		when string
		st   api.Status
	}{{"before", before}, {"after", after}} {
		for _, ch := range c.st.Audio.Chains {
			emit("audio_av_offset_"+ch.Name+"_"+c.when+"_switches_ms", ch.OffsetMs, "ms")
		}
	}
	emit("audio_chain_cpu_main_pct", cpuMain*100, "%")
	emit("audio_chain_cpu_backup_pct", cpuBackup*100, "%")
	emit("cpu_ratio_audio_backup_vs_main", cpuBackup/cpuMain, "x")
	return nil
}

// chainCPU is the CPU share (1 = one core) of each chain's process over d.
func chainCPU(b *box, d time.Duration) (float64, float64, error) {
	pids := [2]int{}
	st, err := b.status()
	if err != nil {
		return 0, 0, err
	}
	for _, c := range st.Children {
		switch c.Name {
		case "audio-main":
			pids[0] = c.PID
		case "audio-backup":
			pids[1] = c.PID
		}
	}
	var c0 [2]time.Duration
	for i, pid := range pids {
		if c0[i], err = procCPU(pid, "onair-av"); err != nil {
			return 0, 0, err
		}
	}
	time.Sleep(d)
	var share [2]float64
	for i, pid := range pids {
		c1, err := procCPU(pid, "onair-av")
		if err != nil {
			return 0, 0, err
		}
		share[i] = (c1 - c0[i]).Seconds() / d.Seconds()
	}
	return share[0], share[1], nil
}

// switchAfter sends sig to the main chain's process and returns how long
// until the status names backup (SIGSTOP is followed by SIGCONT once it
// does).
func switchAfter(b *box, sig syscall.Signal) (time.Duration, error) {
	st, err := b.status()
	if err != nil {
		return 0, err
	}
	pid := 0
	for _, c := range st.Children {
		if c.Name == "audio-main" {
			pid = c.PID
		}
	}
	if pid == 0 {
		return 0, errors.New("no audio-main process")
	}
	t0 := time.Now()
	if err := syscall.Kill(pid, sig); err != nil {
		return 0, err
	}
	b.waitForEvery(10*time.Second, 5*time.Millisecond, func(st api.Status) bool { return st.Audio.Active == "backup" })
	took := time.Since(t0)
	if sig == syscall.SIGSTOP {
		_ = syscall.Kill(pid, syscall.SIGCONT) // ESRCH: already restarted
	}
	return took, nil
}

// silenceToSwitch finds main's first silence in names (10 ms windows) and
// the backup tone after it.
func silenceToSwitch(names string) (time.Duration, error) {
	runs, _ := tone.Runs(names, 2)
	for i := 1; i+1 < len(runs); i++ {
		if runs[i].Tone == tone.Silence && runs[i-1].Tone == tone.Main && runs[i+1].Tone == tone.Backup {
			return time.Duration(runs[i+1].At-runs[i].At) * 10 * time.Millisecond, nil
		}
	}
	return 0, fmt.Errorf("no main → silence → backup in the recording: %q", tone.Pattern(runs))
}
