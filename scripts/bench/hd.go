package main

// Twin 1080p30 (issue 14): the crews' configuration (configs/1080p30.yaml's
// video settings, a testsrc2 of that size for the capture card) on this
// machine's two cores. First a fault-free window, in which each encoder's
// real-time margin is read from the status once a second (the worker's own
// figure: the frame interval over its wall time per frame, one per
// heartbeat), then one fault of each kind on each encoder (kill, stop,
// starve; starve only as root), and the receiver's recording of the whole
// run says how many frames were lost or duplicated. Goal: margin ≥ 1.5x, 0
// lost.

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"onair/ingest"
	"onair/internal/config"
	"onair/internal/fault"
	"onair/web/api"
)

// hdConfig is the configuration whose video settings the 1080p30 run uses.
const hdConfig = "configs/1080p30.yaml"

func runHD(work string) {
	window := time.Duration(*seconds) * time.Second
	f, err := benchHD(work, window)
	check(err)
	for _, enc := range []string{"a", "b"} {
		m := f.margins["encoder-"+enc]
		emit("twin_1080p30_margin_"+enc, m.mean(), "x")
		emit("twin_1080p30_margin_"+enc+"_min", m.min(), "x")
		emit("twin_1080p30_margin_"+enc+"_samples", float64(len(m)), "samples")
	}
	emit("twin_1080p30_skew_max", float64(f.skewMax), "frames")
	emit("twin_1080p30_fault_free_restarts", float64(f.cleanRestarts), "restarts")
	emit("twin_1080p30_faults_injected", float64(f.faults), "faults")
	emit("twin_1080p30_frames", float64(f.rep.Frames), "frames")
	emit("twin_1080p30_frames_lost", float64(f.rep.Missing), "frames")
	emit("twin_1080p30_frames_duplicated", float64(f.rep.Duplicates), "frames")
}

// samples are one encoder's per-heartbeat margins over the window.
type samples []float64

func (s samples) mean() float64 {
	if len(s) == 0 {
		return 0
	}
	var sum float64
	for _, v := range s {
		sum += v
	}
	return sum / float64(len(s))
}

func (s samples) min() float64 {
	if len(s) == 0 {
		return 0
	}
	m := math.Inf(1)
	for _, v := range s {
		m = math.Min(m, v)
	}
	return m
}

type hdFigures struct {
	margins       map[string]samples
	skewMax       uint64
	cleanRestarts uint64
	faults        int
	rep           ingest.VideoReport
}

func benchHD(work string, window time.Duration) (hdFigures, error) {
	c, err := config.Load(hdConfig)
	if err != nil {
		return hdFigures{}, fmt.Errorf("bench: hd: %w", err)
	}
	v := c.Video
	if v.FPS != (config.Rate{Num: fps, Den: 1}) {
		return hdFigures{}, fmt.Errorf("bench: hd: %s: fps %s, the receiver counts %d", hdConfig, v.FPS, fps)
	}
	dir := filepath.Join(work, "twin-1080p30")
	if err = os.MkdirAll(dir, 0o755); err != nil {
		return hdFigures{}, fmt.Errorf("bench: %w", err)
	}
	port := freePort("udp")
	rx, out := startIngest(dir, port)
	defer stop(rx)
	video := fmt.Sprintf(`video:
  source: "lavfi:testsrc2=size=%dx%d:rate=%d"
  width: %d
  height: %d
  fps: %d
  bitrate_kbps: %d
  gop: %d
  relock: %s
  preset: %s
  twins: true
  stall_after: %s
  hang_after: %s
  ring_slots: %d
`, v.Width, v.Height, fps, v.Width, v.Height, fps, v.BitrateKbps, v.GOP, v.Relock, v.Preset, v.StallAfter, v.HangAfter, v.RingSlots)
	path, _, err := writeVideoConfig(dir, port, video, "")
	if err != nil {
		return hdFigures{}, err
	}
	cmd := exec.Command(filepath.Join(*binDir, "onaird"), "-config", path)
	if err = cmd.Start(); err != nil {
		return hdFigures{}, fmt.Errorf("bench: %w", err)
	}
	defer stop(cmd)
	b := &box{cmd: cmd, client: api.NewUnixClient(filepath.Join(dir, "api.sock"))}
	b.waitFor(30*time.Second, func(st api.Status) bool { return st.Output.State == "connected" && st.Video.Switch.Locked })
	time.Sleep(settle)

	f := hdFigures{margins: map[string]samples{}}
	st0, err := b.status()
	if err != nil {
		return f, fmt.Errorf("bench: hd: status: %w", err)
	}
	pids := map[string]int{}
	for _, c := range st0.Children {
		pids[c.Name] = c.PID
	}
	var st api.Status
	for end := time.Now().Add(window); time.Now().Before(end); {
		time.Sleep(time.Second)
		if st, err = b.status(); err != nil {
			return f, fmt.Errorf("bench: hd: status: %w", err)
		}
		for _, c := range st.Children {
			if c.Role != "encode" || c.Margin <= 0 {
				continue
			}
			if c.PID != pids[c.Name] {
				return f, fmt.Errorf("bench: hd: %s restarted in the fault-free window (%s)", c.Name, c.LastError)
			}
			f.margins[c.Name] = append(f.margins[c.Name], c.Margin)
		}
	}
	f.skewMax = st.Video.TwinSkewMaxFrames
	f.cleanRestarts = st.Video.HealthRestarts - st0.Video.HealthRestarts

	kinds := fault.Kinds
	if os.Geteuid() != 0 {
		kinds = []fault.Kind{fault.Kill, fault.Stop}
		fmt.Fprintln(os.Stderr, "bench: hd: not root: no CPU starvation (it needs a cgroup)")
	}
	for _, k := range kinds {
		injectFaults(b, k, 2) // once on each encoder
		f.faults += 2
	}
	time.Sleep(2 * time.Second)
	stop(cmd)
	time.Sleep(500 * time.Millisecond)
	stop(rx)
	rep, err := ingest.AnalyzeFile(out, ingest.Options{FPS: fps})
	if err != nil {
		return f, fmt.Errorf("bench: hd: %w", err)
	}
	f.rep = rep.Video
	return f, nil
}
