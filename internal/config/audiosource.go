package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// AudioSourceKind is the kind of audio input; it is the libavformat input
// format onair-av opens.
type AudioSourceKind string

// Audio source kinds.
const (
	AudioLavfi AudioSourceKind = "lavfi" // a libavfilter graph (test tones)
	AudioALSA  AudioSourceKind = "alsa"  // an ALSA device, e.g. hw:1,0
	AudioPulse AudioSourceKind = "pulse" // a PulseAudio/PipeWire source
)

// AudioSourceKinds lists the allowed kinds.
var AudioSourceKinds = []AudioSourceKind{AudioLavfi, AudioALSA, AudioPulse}

// AudioSource is an audio chain's source: "lavfi:<graph>", "alsa:<device>"
// or "pulse:<source>". The zero value disables the chain.
type AudioSource struct {
	Kind AudioSourceKind
	Spec string // the graph, device or source name
}

// ParseAudioSource parses the written form.
func ParseAudioSource(s string) (AudioSource, error) {
	k, spec, ok := strings.Cut(s, ":")
	kind := AudioSourceKind(k)
	if !ok || (kind != AudioLavfi && kind != AudioALSA && kind != AudioPulse) {
		return AudioSource{}, fmt.Errorf("%q: must be lavfi:<graph>, alsa:<device> or pulse:<source>", s)
	}
	if strings.TrimSpace(spec) == "" {
		return AudioSource{}, fmt.Errorf("%q: empty %s name", s, kind)
	}
	return AudioSource{Kind: kind, Spec: spec}, nil
}

// Enabled reports whether a source is set.
func (s AudioSource) Enabled() bool { return s != AudioSource{} }

// String is the written form, as onair-av's -source takes it ("" if unset).
func (s AudioSource) String() string {
	if !s.Enabled() {
		return ""
	}
	return string(s.Kind) + ":" + s.Spec
}

// UnmarshalYAML parses with ParseAudioSource; an empty string disables the chain.
func (s *AudioSource) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "must be a string: lavfi:<graph>, alsa:<device> or pulse:<source>")
	}
	if n.Value == "" {
		*s = AudioSource{}
		return nil
	}
	v, err := ParseAudioSource(n.Value)
	if err != nil {
		return typeError(n, "%v", err)
	}
	*s = v
	return nil
}

// MarshalYAML writes the written form.
func (s AudioSource) MarshalYAML() (any, error) { return s.String(), nil }
