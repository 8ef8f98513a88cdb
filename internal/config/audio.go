package config

import (
	"math"
	"time"
)

// Audio configures the audio chains (audio:): main, the desk feed, and
// backup, the crew's own input, each read by its own process, and the
// selector's rules for picking between them per frame.
type Audio struct {
	Main        AudioChain `yaml:"main"`
	Backup      AudioChain `yaml:"backup"`
	BitrateKbps int        `yaml:"bitrate_kbps"`
	// SilenceDBFS: a frame whose RMS is below this is silent.
	SilenceDBFS float64 `yaml:"silence_dbfs"`
	// SilenceAfter: main silent this long → backup (auto mode).
	SilenceAfter Duration `yaml:"silence_after"`
	// ReturnAfter: main healthy this long after a switch → main again.
	ReturnAfter Duration `yaml:"return_after"`
	// LateAfter: a chain whose frame is not there this long after its last
	// sample was due is stalled; the other chain's frame goes out.
	LateAfter Duration `yaml:"late_after"`
}

// AudioChain is one audio input.
type AudioChain struct {
	Source AudioSource `yaml:"source"` // lavfi:<graph>, alsa:<device> or pulse:<source>; empty disables the chain
}

func defaultAudio() Audio {
	return Audio{BitrateKbps: 128, SilenceDBFS: -60, SilenceAfter: Duration(3 * time.Second),
		ReturnAfter: Duration(10 * time.Second), LateAfter: Duration(250 * time.Millisecond)}
}

func (a Audio) validate(p *problems) {
	for _, c := range []struct {
		key string
		s   AudioSource
	}{{"audio.main.source", a.Main.Source}, {"audio.backup.source", a.Backup.Source}} {
		if c.s.Enabled() {
			if back, err := ParseAudioSource(c.s.String()); err != nil || back != c.s {
				p.add(c.key, "%q: must be lavfi:<graph>, alsa:<device> or pulse:<source>", c.s.String())
			}
		}
	}
	if a.Backup.Source.Enabled() && a.Backup.Source == a.Main.Source && a.Main.Source.Kind != AudioLavfi {
		p.add("audio.backup.source", "%q: the same device as audio.main.source: a backup must be independent", a.Backup.Source.String())
	}
	if a.BitrateKbps < 32 || a.BitrateKbps > 512 {
		p.add("audio.bitrate_kbps", "%d: must be 32..512", a.BitrateKbps)
	}
	if math.IsNaN(a.SilenceDBFS) || a.SilenceDBFS < -100 || a.SilenceDBFS > -20 {
		p.add("audio.silence_dbfs", "%v: must be -100..-20", a.SilenceDBFS)
	}
	if a.SilenceAfter.D() < 100*time.Millisecond || a.SilenceAfter.D() > time.Minute {
		p.add("audio.silence_after", "%s: must be 100ms..1m", a.SilenceAfter)
	}
	if a.ReturnAfter.D() < time.Second || a.ReturnAfter.D() > 10*time.Minute {
		p.add("audio.return_after", "%s: must be 1s..10m", a.ReturnAfter)
	}
	if a.LateAfter.D() < 50*time.Millisecond || a.LateAfter.D() > 2*time.Second {
		p.add("audio.late_after", "%s: must be 50ms..2s", a.LateAfter)
	}
}
