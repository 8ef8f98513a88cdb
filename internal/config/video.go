package config

import "time"

// Video configures capture and the encoders (video:).
type Video struct {
	Source      VideoSource `yaml:"source"` // lavfi:<graph> or a V4L2 device path
	Width       int         `yaml:"width"`
	Height      int         `yaml:"height"`
	FPS         Rate        `yaml:"fps"`
	BitrateKbps int         `yaml:"bitrate_kbps"` // the bitrate, and the maximum of the adaptive bitrate
	// BitrateMinKbps is the adaptive bitrate's floor; 0 means a quarter of
	// bitrate_kbps, at least 300.
	BitrateMinKbps int `yaml:"bitrate_min_kbps"`
	// ABR follows the network between bitrate_min_kbps and bitrate_kbps;
	// unset means on for an srtla:// output and off for srt://.
	ABR        *bool    `yaml:"abr"`
	GOP        int      `yaml:"gop"`
	Preset     Preset   `yaml:"preset"`
	Twins      *bool    `yaml:"twins"`       // run encoders A and B (default true)
	SlateAfter Duration `yaml:"slate_after"` // repeat the last picture this long, then show the slate
	StallAfter Duration `yaml:"stall_after"` // an encoder with no packet for this long is restarted
	// HangAfter: while the twins are locked, an encoder this far behind its
	// twin is hung and restarted (restarting it costs no frame then).
	HangAfter  Duration `yaml:"hang_after"`
	RingSlots  int      `yaml:"ring_slots"`  // pictures the capture ring holds
	LateFrames int      `yaml:"late_frames"` // frames capture may be late before the keeper substitutes
	Relock     Relock   `yaml:"relock"`      // how a restarted twin re-locks: gop (default) or command
}

// MinKbps is the adaptive bitrate's floor with its default applied.
func (v Video) MinKbps() int {
	if v.BitrateMinKbps > 0 {
		return v.BitrateMinKbps
	}
	return min(v.BitrateKbps, max(300, v.BitrateKbps/4))
}

// ABREnabled reports whether the adaptive bitrate runs for an output that is
// bonded (srtla) or not.
func (v Video) ABREnabled(bonded bool) bool {
	if v.ABR == nil {
		return bonded
	}
	return *v.ABR
}

// TwinsEnabled reports whether both encoders run.
func (v Video) TwinsEnabled() bool { return v.Twins == nil || *v.Twins }

func defaultVideo() Video {
	return Video{
		Width: 1280, Height: 720, FPS: Rate{30, 1}, BitrateKbps: 4000, GOP: 60,
		Preset: PresetVeryfast, SlateAfter: Duration(2 * time.Second),
		StallAfter: Duration(500 * time.Millisecond), HangAfter: Duration(200 * time.Millisecond),
		RingSlots: 12, LateFrames: 2, Relock: RelockGOP,
	}
}

func (v Video) validate(p *problems) {
	if v.Source.IsZero() {
		p.add("video.source", "missing: set lavfi:<filtergraph> or a V4L2 device path such as /dev/video0")
	} else if s, err := ParseVideoSource(v.Source.String()); err != nil || s != v.Source {
		p.add("video.source", "%q: must be lavfi:<filtergraph> or a V4L2 device path such as /dev/video0", v.Source.String())
	}
	if v.Width < 16 || v.Width > 7680 || v.Width%2 != 0 {
		p.add("video.width", "%d: must be even, 16..7680", v.Width)
	}
	if v.Height < 16 || v.Height > 4320 || v.Height%2 != 0 {
		p.add("video.height", "%d: must be even, 16..4320", v.Height)
	}
	fpsOK := v.FPS.valid()
	if !fpsOK {
		p.add("video.fps", "%s: must be 1..120 frames per second (e.g. 30, 29.97, 30000/1001)", v.FPS)
	}
	if v.BitrateKbps < 100 || v.BitrateKbps > 100000 {
		p.add("video.bitrate_kbps", "%d: must be 100..100000", v.BitrateKbps)
	}
	if v.BitrateMinKbps != 0 && (v.BitrateMinKbps < 100 || v.BitrateMinKbps > v.BitrateKbps) {
		p.add("video.bitrate_min_kbps", "%d: must be 100..video.bitrate_kbps (%d), or 0 for a quarter of it", v.BitrateMinKbps, v.BitrateKbps)
	}
	if v.GOP < 1 || v.GOP > 600 {
		p.add("video.gop", "%d: must be 1..600 frames", v.GOP)
	}
	checkEnum(p, "video.preset", v.Preset, Presets)
	if v.SlateAfter < 0 {
		p.add("video.slate_after", "must not be negative")
	}
	if v.StallAfter.D() < 50*time.Millisecond {
		p.add("video.stall_after", "%s: must be at least 50ms", v.StallAfter)
	}
	if fpsOK && (v.HangAfter.D().Seconds()*v.FPS.Float() < 3 || v.HangAfter > v.StallAfter) {
		p.add("video.hang_after", "%s: must be at least 3 frame intervals and at most video.stall_after", v.HangAfter)
	}
	if v.RingSlots < 4 || v.RingSlots > 120 {
		p.add("video.ring_slots", "%d: must be 4..120", v.RingSlots)
	}
	// The cadence keeper fills index i when capture is late_frames past it,
	// and treats itself as starved (and jumps ahead) once it is more than
	// ring_slots/2 behind the head: late_frames must stay under that, with at
	// least one frame of margin for a late wake-up, or every deadline is a jump.
	if v.LateFrames < 1 || v.LateFrames >= v.RingSlots/2 {
		p.add("video.late_frames", "%d: must be at least 1 and under half of video.ring_slots (%d)", v.LateFrames, v.RingSlots)
	}
	checkEnum(p, "video.relock", v.Relock, Relocks)
}
