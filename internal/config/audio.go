package config

// Audio configures the audio chains (audio:).
type Audio struct {
	Main        AudioChain `yaml:"main"`
	BitrateKbps int        `yaml:"bitrate_kbps"`
}

// AudioChain is one audio input.
type AudioChain struct {
	Source AudioSource `yaml:"source"` // lavfi:<graph>, alsa:<device> or pulse:<source>; empty disables the chain
}

func defaultAudio() Audio { return Audio{BitrateKbps: 128} }

func (a Audio) validate(p *problems) {
	if s := a.Main.Source; s.Enabled() {
		if back, err := ParseAudioSource(s.String()); err != nil || back != s {
			p.add("audio.main.source", "%q: must be lavfi:<graph>, alsa:<device> or pulse:<source>", s.String())
		}
	}
	if a.BitrateKbps < 32 || a.BitrateKbps > 512 {
		p.add("audio.bitrate_kbps", "%d: must be 32..512", a.BitrateKbps)
	}
}
