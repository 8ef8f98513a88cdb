package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"time"

	"onair/internal/version"
	"onair/output"
	"onair/web/api"
)

// The API types, under their old names for the code and tests that use them.
type (
	// Status is the whole box as GET /api/status reports it.
	Status = api.Status
	// ChildStatus is one supervised process.
	ChildStatus = api.ChildStatus
	// VideoStatus is the video path.
	VideoStatus = api.VideoStatus
	// AudioStatus is the audio path.
	AudioStatus = api.AudioStatus
)

// Status returns a snapshot of the box (web.Box).
func (d *Daemon) Status() api.Status { return d.snapshot() }

func (d *Daemon) snapshot() api.Status {
	st := api.Status{Version: version.Version, Uptime: time.Since(d.started).Seconds(), Output: d.out.Status(),
		Components: []api.Component{}}
	for _, c := range d.children {
		cs := api.ChildStatus{ProcessStatus: c.sup.Status()}
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
	st.Audio = api.AudioStatus{Frames: d.audio.frames.Load(), LastIndex: d.audio.last.Load(), GapFrames: d.audio.gaps.Load()}

	st.State = api.BoxOnAir
	switch {
	case st.Output.State != output.StateConnected:
		st.State = api.BoxOffAir
	case !st.Video.Switch.Locked && st.Video.Switch.Twins, st.Video.Keeper.Signal != "live":
		st.State = api.BoxDegraded
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
