package config

import (
	"path/filepath"
	"time"
)

// Recording configures the local recording of the programme TS
// (recording:): the ISO backup on the box.
type Recording struct {
	// Dir is where the segments go (a mounted disk); empty: no recording.
	Dir string `yaml:"dir"`
	// Segment is a segment's length: the first keyframe after it starts the
	// next file.
	Segment Duration `yaml:"segment"`
	// AutoStart records from the start (the default) when Dir is set.
	AutoStart bool `yaml:"autostart"`
}

func defaultRecording() Recording {
	return Recording{Segment: Duration(10 * time.Minute), AutoStart: true}
}

func (r Recording) validate(p *problems) {
	if r.Dir != "" && !filepath.IsAbs(r.Dir) {
		p.add("recording.dir", "%q: must be an absolute path", r.Dir)
	}
	if s := r.Segment.D(); s < time.Second || s > 24*time.Hour {
		p.add("recording.segment", "%s: want 1s..24h", s)
	}
}
