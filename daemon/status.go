package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"time"

	"onair/encoder"
	"onair/internal/version"
	"onair/output"
	"onair/supervisor"
)

// Status is the whole box as GET /api/status reports it.
type Status struct {
	Version  string        `json:"version"`
	State    string        `json:"state"` // "on_air", "degraded", "off_air"
	Uptime   float64       `json:"uptime_s"`
	Children []ChildStatus `json:"children"`
	Video    VideoStatus   `json:"video"`
	Audio    AudioStatus   `json:"audio"`
	Output   output.Status `json:"output"`
}

// ChildStatus is one supervised process.
type ChildStatus struct {
	supervisor.Status
	LastIndex uint64 `json:"last_index"`
	LagFrames int64  `json:"lag_frames"`
	Frames    uint64 `json:"frames"`
}

// VideoStatus is the video path.
type VideoStatus struct {
	Switch       encoder.SwitchStatus `json:"switch"`
	Keeper       encoder.KeeperStatus `json:"cadence"`
	RingHead     uint64               `json:"ring_head"`
	BitrateKbps  int                  `json:"bitrate_kbps"`
	LatencyP50Ms float64              `json:"latency_p50_ms"` // capture stamp → packet muxed
	LatencyP99Ms float64              `json:"latency_p99_ms"`
	MuxErrors    uint64               `json:"mux_errors"`
	// TwinSkewMaxFrames is the largest distance seen between the locked
	// twins (video.hang_after must stay above it, or healthy twins restart).
	TwinSkewMaxFrames uint64 `json:"twin_skew_max_frames"`
}

// AudioStatus is the audio path.
type AudioStatus struct {
	Frames    uint64 `json:"frames"`
	LastIndex uint64 `json:"last_index"`
	GapFrames uint64 `json:"gap_frames"`
}

// Status returns a snapshot of the box (web.Box).
func (d *Daemon) Status() any { return d.snapshot() }

func (d *Daemon) snapshot() Status {
	st := Status{Version: version.Version, Uptime: time.Since(d.started).Seconds(), Output: d.out.Status()}
	for _, c := range d.children {
		cs := ChildStatus{Status: c.sup.Status()}
		c.mu.Lock()
		cs.LastIndex, cs.LagFrames, cs.Frames = c.prog.Index, c.prog.LagFrames, c.prog.Frames
		c.mu.Unlock()
		st.Children = append(st.Children, cs)
	}
	st.Video.Switch = d.sw.Status()
	if d.keeper != nil {
		st.Video.Keeper = d.keeper.Status()
	}
	if d.ring != nil {
		st.Video.RingHead = d.ring.Head()
	}
	p50, p99 := d.lat.percentiles()
	st.Video.LatencyP50Ms = float64(p50.Microseconds()) / 1000
	st.Video.LatencyP99Ms = float64(p99.Microseconds()) / 1000
	st.Video.MuxErrors = d.muxErrors.Load()
	st.Video.TwinSkewMaxFrames = d.skewMax.Load()
	st.Video.BitrateKbps = int(d.bitrate.Load())
	st.Audio = AudioStatus{Frames: d.audio.frames.Load(), LastIndex: d.audio.last.Load(), GapFrames: d.audio.gaps.Load()}

	st.State = "on_air"
	switch {
	case st.Output.State != "connected":
		st.State = "off_air"
	case !st.Video.Switch.Locked && st.Video.Switch.Twins, st.Video.Keeper.Signal != "live":
		st.State = "degraded"
	}
	return st
}

func unmarshal(p []byte, v any) error {
	if err := json.Unmarshal(p, v); err != nil {
		return fmt.Errorf("daemon: decode child message: %w", err)
	}
	return nil
}

// socketPair makes a connected unix stream pair; close-on-exec is set on both
// so only the ExtraFiles copy reaches the child.
func socketPair(name string) (parent, kid *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("daemon: socketpair for %s: %w", name, err)
	}
	return os.NewFile(uintptr(fds[0]), name+"-parent"), os.NewFile(uintptr(fds[1]), name+"-child"), nil
}
