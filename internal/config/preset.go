package config

import "gopkg.in/yaml.v3"

// Preset is an x264 preset (video.preset). Only the presets that keep real
// time for twin encoders on the target board are allowed: slow and beyond
// make both encoders lag, and the lag restarts would be a loop.
type Preset string

// The allowed x264 presets, fastest first.
const (
	PresetUltrafast Preset = "ultrafast"
	PresetSuperfast Preset = "superfast"
	PresetVeryfast  Preset = "veryfast"
	PresetFaster    Preset = "faster"
	PresetFast      Preset = "fast"
	PresetMedium    Preset = "medium"
)

// Presets lists the allowed values.
var Presets = []Preset{PresetUltrafast, PresetSuperfast, PresetVeryfast, PresetFaster, PresetFast, PresetMedium}

// UnmarshalYAML accepts one of Presets.
func (p *Preset) UnmarshalYAML(n *yaml.Node) error { return unmarshalEnum(n, Presets, p) }
