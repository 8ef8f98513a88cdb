package config

import "gopkg.in/yaml.v3"

// Relock is how a restarted twin encoder re-locks to the survivor (video.relock).
type Relock string

const (
	// RelockGOP (the default): every GOP is a fresh codec session in both
	// encoders, so a restarted encoder is identical from the next GOP boundary
	// and the survivor's bits never change.
	RelockGOP Relock = "gop"
	// RelockCommand means onaird tells both encoders to reset at one chosen GOP boundary.
	RelockCommand Relock = "command"
)

// Relocks lists the allowed values.
var Relocks = []Relock{RelockGOP, RelockCommand}

// ResetEveryGOP reports whether encoders open a fresh codec session per GOP.
func (r Relock) ResetEveryGOP() bool { return r == RelockGOP }

// UnmarshalYAML accepts gop or command.
func (r *Relock) UnmarshalYAML(n *yaml.Node) error { return unmarshalEnum(n, Relocks, r) }
