// Command bench measures the figures the issues ask for and prints one
// "name value unit" line per figure (`make bench`). Every comparison is
// measured side by side in the same run, one thing at a time on the 2 cores:
//
//   - CPU seconds and peak RSS (process tree) of onaird + children streaming
//     20 s of 720p30 at 4 Mbit/s, single encoder and twins, against the
//     ffmpeg CLI doing the same, and the ratios;
//   - time from onaird start to the first video frame at the receiver;
//   - switch latency (capture stamp → muxed) p50/p99, twins against single;
//   - frames lost and duplicated per fault kind, how long onaird takes to act
//     on each kind (worst of the run), and re-lock time in frames;
//   - the bonding figures of issue 9 in network namespaces (bond.go);
//   - the backup audio figures of issue 10 (audio.go);
//   - the power and panel figures of issue 11 (power.go);
//   - the web page's and the recording's figures of issue 12 (page.go);
//   - the on-air canary of issue 13 (canary.go);
//   - the update's install throughput, the image's sizes and, with
//     ONAIR_IMAGE=1 as root, the nspawn boot and restart times of issue 13
//     (image.go);
//   - the per-process CPU and memory breakdown of issue 14 against the
//     ffmpeg CLI (breakdown.go), and the SRT library's own floor in a
//     process of its own (srtfloor.go);
//   - twin 1080p30 of issue 14: each encoder's real-time margin and the
//     frames lost under faults (hd.go).
//
// -only box, -only breakdown, -only hd, -only bond, -only audio, -only power, -only page, -only canary or -only image runs one of the parts.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"onair/ingest"
	"onair/internal/fault"
	"onair/web/api"
)

// fps is the frame rate of every run.
const fps = 30

var (
	binDir  = flag.String("bin", "bin", "directory with onaird, onair-av, onair-ingest")
	seconds = flag.Int("seconds", 20, "stream length of the CPU runs")
	faults  = flag.Int("faults", 3, "faults of each kind in the fault runs")
	keep    = flag.Bool("keep", false, "keep the work directory (recordings, configs, onaird logs) and print its path")
	part    = flag.String("part", "", "with -only bond: run only the bond parts whose name starts with this (abr_clean, cut_, abr_step, cpu); with -only breakdown: srt_floor runs only the SRT library's floor (srtfloor.go), x264_session only the cost of a fresh x264 session per GOP (x264session.go), onaird only the box runs and the floor (onaird's own CPU over the floor, no ffmpeg CLI runs)")
	profDir = flag.String("cpuprofile-dir", "", "with -only breakdown: onaird of each box run writes its CPU profile (-cpuprofile) to DIR/<run>.pprof, for `go tool pprof`")
	only    = flag.String("only", "", "run only this part: box (encoders, faults), breakdown (CPU and memory per process against the ffmpeg CLI), hd (twin 1080p30: margins, frames lost under faults), audio (backup chain), bond (bonded uplinks, needs root), power (UPS end of stream, panel press), page (SSE latency, CPU of pages and of the recording), canary (a new encoder worker promoted on air) or image (update install throughput, image sizes; nspawn boot and restarts with ONAIR_IMAGE=1; the disk in QEMU with ONAIR_QEMU=1 too)")
)

func main() {
	flag.Parse()
	if floorChildMain() {
		return
	}
	work, err := os.MkdirTemp("", "onair-bench-")
	check(err)
	defer func() {
		if *keep {
			fmt.Fprintln(os.Stderr, "bench: kept", work)
			return
		}
		if err := os.RemoveAll(work); err != nil {
			fmt.Fprintln(os.Stderr, "bench: remove work dir:", err)
		}
	}()
	switch *only {
	case "":
		runBoxes(work)
		runBreakdown(work)
		runHD(work)
		runAudio(work)
		runBond(work)
		runPower(work)
		runPage(work)
		runCanary(work)
		runImage(work)
	case "box":
		runBoxes(work)
	case "breakdown":
		runBreakdown(work)
	case "hd":
		runHD(work)
	case "audio":
		runAudio(work)
	case "bond":
		runBond(work)
	case "power":
		runPower(work)
	case "page":
		runPage(work)
	case "canary":
		runCanary(work)
	case "image":
		runImage(work)
	default:
		check(fmt.Errorf("-only %q: want box, breakdown, hd, audio, bond, power, page, canary or image", *only))
	}
}

// runBoxes measures the encoder and fault figures on loopback.
func runBoxes(work string) {
	d := time.Duration(*seconds) * time.Second

	single := runBox(work, "single", false, "gop", d, nil)
	twins := runBox(work, "twins", true, "gop", d, nil)
	twinsCmd := runBox(work, "twins-command", true, "command", d, nil)
	ff := runFFmpeg(work, d)

	emit("onaird_single_cpu", single.cpu.Seconds(), "s")
	emit("onaird_single_max_rss", float64(single.rss)/(1<<20), "MiB")
	emit("onaird_twins_cpu", twins.cpu.Seconds(), "s")
	emit("onaird_twins_max_rss", float64(twins.rss)/(1<<20), "MiB")
	emit("ffmpeg_cli_cpu", ff.cpu.Seconds(), "s")
	emit("ffmpeg_cli_max_rss", float64(ff.rss)/(1<<20), "MiB")
	emit("cpu_ratio_single_vs_ffmpeg", single.cpu.Seconds()/ff.cpu.Seconds(), "x")
	emit("cpu_ratio_twins_vs_ffmpeg", twins.cpu.Seconds()/ff.cpu.Seconds(), "x")
	emit("cpu_ratio_twins_vs_single", twins.cpu.Seconds()/single.cpu.Seconds(), "x")
	emit("onaird_twins_relock_command_cpu", twinsCmd.cpu.Seconds(), "s")
	emit("cpu_ratio_relock_gop_vs_command", twins.cpu.Seconds()/twinsCmd.cpu.Seconds(), "x")
	emit("time_to_first_frame_single", single.firstFrame.Seconds()*1000, "ms")
	emit("time_to_first_frame_twins", twins.firstFrame.Seconds()*1000, "ms")
	emit("switch_latency_p50_single", single.st.Video.LatencyP50Ms, "ms")
	emit("switch_latency_p99_single", single.st.Video.LatencyP99Ms, "ms")
	emit("switch_latency_p50_twins", twins.st.Video.LatencyP50Ms, "ms")
	emit("switch_latency_p99_twins", twins.st.Video.LatencyP99Ms, "ms")
	emit("twin_skew_max", float64(twins.st.Video.TwinSkewMaxFrames), "frames")
	restarts := 0
	for _, c := range twins.st.Children {
		restarts += c.Restarts
	}
	emit("twins_fault_free_restarts", float64(restarts), "restarts") // false positives of the health checks

	for _, k := range fault.Kinds {
		var detect []time.Duration
		r := runBox(work, "fault-"+string(k), true, "gop", 0, func(b *box) { detect = injectFaults(b, k, *faults) })
		rep := r.rep.Video
		emit("faults_"+string(k)+"_injected", float64(*faults), "faults")
		emit("faults_"+string(k)+"_frames_lost", float64(rep.Missing), "frames")
		emit("faults_"+string(k)+"_frames_duplicated", float64(rep.Duplicates), "frames")
		emit("faults_"+string(k)+"_relock_gop", float64(r.st.Video.Switch.LastRelockF), "frames")
		worst := slices.Max(detect)
		emit("faults_"+string(k)+"_detect_max", worst.Seconds()*1000, "ms")
		emit("faults_"+string(k)+"_detect_max_frames", worst.Seconds()*fps, "frames")
	}
	r := runBox(work, "fault-kill-command", true, "command", 0, func(b *box) { injectFaults(b, fault.Kill, *faults) })
	emit("faults_kill_relock_command", float64(r.st.Video.Switch.LastRelockF), "frames")
	emit("faults_kill_frames_lost_relock_command", float64(r.rep.Video.Missing), "frames")
}

func emit(name string, v float64, unit string) {
	fmt.Printf("%s %s %s\n", name, strconv.FormatFloat(v, 'f', 3, 64), unit)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type result struct {
	cpu        time.Duration
	rss        int64
	firstFrame time.Duration
	st         api.Status
	rep        ingest.Report
}

type box struct {
	cmd    *exec.Cmd
	client *api.Client
}

func (b *box) status() (api.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return b.client.Status(ctx)
}

func (b *box) waitFor(limit time.Duration, cond func(api.Status) bool) api.Status {
	return b.waitForEvery(limit, 50*time.Millisecond, cond)
}

func (b *box) waitForEvery(limit, poll time.Duration, cond func(api.Status) bool) api.Status {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if st, err := b.status(); err == nil && cond(st) {
			return st
		}
		time.Sleep(poll)
	}
	check(fmt.Errorf("onaird did not reach the expected state in %s", limit))
	return api.Status{}
}

func freePort(network string) int {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		check(err)
		defer func() { _ = c.Close() }() // only asked for its port
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer func() { _ = l.Close() }() // only asked for its port
	return l.Addr().(*net.TCPAddr).Port
}

func startIngest(dir string, port int) (*exec.Cmd, string) {
	out := filepath.Join(dir, "received.ts")
	cmd := exec.Command(filepath.Join(*binDir, "onair-ingest"), "-listen", fmt.Sprintf("127.0.0.1:%d", port),
		"-out", out, "-report", filepath.Join(dir, "live.json"), "-fps", strconv.Itoa(fps))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	check(cmd.Start())
	return cmd, out
}

func stop(cmd *exec.Cmd) *os.ProcessState {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	// A signalled exit is an error here; the caller judges ProcessState.
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // ESRCH: the group is gone already
		<-done
	}
	return cmd.ProcessState
}

// writeBoxConfig writes dir/onair.yaml: onaird streaming the test pattern
// and tone at 720p, 4000 kbps, to the receiver on port, its API on a fresh
// loopback port (listen). relock "" keeps the default; extra is appended
// (more top-level keys).
func writeBoxConfig(dir string, port int, twins bool, relock, extra string) (path, listen string, err error) {
	relockKey := ""
	if relock != "" {
		relockKey = "\n  relock: " + relock
	}
	video := fmt.Sprintf(`video:
  source: "lavfi:testsrc2=size=1280x720:rate=%d"
  fps: %d
  bitrate_kbps: 4000
  gop: 30
  twins: %v%s
`, fps, fps, twins, relockKey)
	return writeVideoConfig(dir, port, video, extra)
}

// writeVideoConfig writes dir/onair.yaml with the video block video, a
// 1 kHz main audio chain, the output to the receiver on port and the API
// on a fresh loopback port (listen); extra is appended (more top-level
// keys).
func writeVideoConfig(dir string, port int, video, extra string) (path, listen string, err error) {
	listen = fmt.Sprintf("127.0.0.1:%d", freePort("tcp"))
	cfg := fmt.Sprintf(`%saudio:
  main:
    source: "lavfi:sine=frequency=1000:sample_rate=48000"
output:
  url: "srt://127.0.0.1:%d?latency=200"
api:
  listen: %q
  socket: %q
  auth_dir: %q
runtime_dir: %q
log_level: warn
%s`, video, port, listen, filepath.Join(dir, "api.sock"), filepath.Join(dir, "auth"), filepath.Join(dir, "run"), extra)
	path = filepath.Join(dir, "onair.yaml")
	if err = os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", "", fmt.Errorf("bench: %w", err)
	}
	return path, listen, nil
}

// runBox streams with onaird for d (or while during runs) to onair-ingest.
func runBox(work, name string, twins bool, relock string, d time.Duration, during func(*box)) result {
	dir := filepath.Join(work, name)
	check(os.MkdirAll(dir, 0o755))
	port := freePort("udp")
	rx, out := startIngest(dir, port)
	defer stop(rx)
	path, _, err := writeBoxConfig(dir, port, twins, relock, "")
	check(err)

	t0 := time.Now()
	cmd := exec.Command(filepath.Join(*binDir, "onaird"), "-config", path)
	cmd.Stderr = nil
	check(cmd.Start())
	peak := sampleRSS(cmd.Process.Pid)
	b := &box{cmd: cmd, client: api.NewUnixClient(filepath.Join(dir, "api.sock"))}
	b.waitFor(30*time.Second, func(st api.Status) bool {
		return st.Output.State == "connected" && (!twins || st.Video.Switch.Locked)
	})
	if during != nil {
		during(b)
	} else {
		time.Sleep(d)
	}
	st, _ := b.status()
	ps := stop(cmd)
	rss := peak()
	time.Sleep(500 * time.Millisecond)
	stop(rx)

	var live ingest.Report
	if raw, rerr := os.ReadFile(filepath.Join(dir, "live.json")); rerr == nil {
		_ = json.Unmarshal(raw, &live)
	}
	r := result{cpu: cpuOf(ps), rss: rss, st: st}
	if live.FirstVideoAt != nil {
		r.firstFrame = live.FirstVideoAt.Sub(t0)
	}
	rep, err := ingest.AnalyzeFile(out, ingest.Options{FPS: fps})
	check(err)
	r.rep = rep
	return r
}

// injectFaults injects n faults of kind k, alternating encoders, each once
// the twins are locked, and returns for each how long onaird took to act on
// it: from the injection to the victim's supervisor leaving "running" (dead,
// stalled or being restarted for lag), polled every 5 ms.
func injectFaults(b *box, k fault.Kind, n int) []time.Duration {
	ctx := context.Background()
	var detect []time.Duration
	for i := 0; i < n; i++ {
		victim := []string{"encoder-a", "encoder-b"}[i%2]
		st := b.waitFor(20*time.Second, func(st api.Status) bool { return st.Video.Switch.Locked })
		pid := 0
		for _, c := range st.Children {
			if c.Name == victim {
				pid = c.PID
			}
		}
		injected := time.Now()
		done := make(chan error, 1)
		go func() { done <- fault.Inject(ctx, k, pid, 3*time.Second) }()
		b.waitForEvery(20*time.Second, 5*time.Millisecond, func(st api.Status) bool {
			for _, c := range st.Children {
				if c.Name == victim {
					return c.PID != pid || c.State != "running"
				}
			}
			return false
		})
		detect = append(detect, time.Since(injected))
		check(<-done)
		b.waitFor(20*time.Second, func(st api.Status) bool {
			for _, c := range st.Children {
				if c.Name == victim {
					return c.PID != pid && st.Video.Switch.Locked
				}
			}
			return false
		})
		time.Sleep(time.Second)
	}
	return detect
}

func runFFmpeg(work string, d time.Duration) result {
	dir := filepath.Join(work, "ffmpeg")
	check(os.MkdirAll(dir, 0o755))
	port := freePort("udp")
	rx, _ := startIngest(dir, port)
	defer stop(rx)
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate="+strconv.Itoa(fps),
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
		"-t", strconv.Itoa(int(d.Seconds())),
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-b:v", "4M", "-g", "30", "-bf", "0",
		"-c:a", "aac", "-b:a", "128k",
		"-f", "mpegts", fmt.Sprintf("srt://127.0.0.1:%d?latency=200000&linger=2", port))
	check(cmd.Start())
	peak := sampleRSS(cmd.Process.Pid)
	_ = cmd.Wait()
	return result{cpu: cpuOf(cmd.ProcessState), rss: peak()}
}

// cpuOf is user+system CPU of a process and of the children it waited for
// (onaird reaps its children, so their CPU is included).
func cpuOf(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

// sampleRSS samples the summed RSS of pid and its descendants every 100 ms
// until the returned function is called; it returns the peak.
func sampleRSS(pid int) func() int64 {
	stopc := make(chan struct{})
	res := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v := treeRSS(pid); v > peak {
				peak = v
			}
			select {
			case <-stopc:
				res <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 { close(stopc); return <-res }
}

func treeRSS(root int) int64 {
	parent := map[int]int{}
	rss := map[int]int64{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) < 22 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		pages, _ := strconv.ParseInt(f[21], 10, 64)
		parent[pid] = pp
		rss[pid] = pages * int64(os.Getpagesize())
	}
	var total int64
	for pid := range rss {
		for p := pid; p > 1; p = parent[p] {
			if p == root {
				total += rss[pid]
				break
			}
		}
	}
	return total
}
