package srturl

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// UnmarshalYAML parses a YAML string with Parse. An empty string leaves the
// zero URL (the config's validation reports it missing). Errors are
// *yaml.TypeError lines ("line N column C: …") so the decoder keeps going,
// reports every problem at once, and the config can name the key from the
// position; none quotes the value.
func (u *URL) UnmarshalYAML(n *yaml.Node) error {
	at := fmt.Sprintf("line %d column %d", n.Line, n.Column)
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{at + ": must be a string srt://host:port?…"}}
	}
	if n.Value == "" {
		*u = URL{}
		return nil
	}
	p, err := Parse(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{at + ": " + err.Error()}}
	}
	*u = p
	return nil
}
