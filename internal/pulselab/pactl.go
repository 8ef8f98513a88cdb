package pulselab

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// errPactlOutput reports pactl output the lab cannot read.
var errPactlOutput = errors.New("pulselab: unexpected pactl output")

// device is a sink or a source as `pactl -f json list sinks|sources` shows
// it (PulseAudio 16).
type device struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	Mute  bool   `json:"mute"`
	State string `json:"state"`
}

// stream is a sink input or a source output as `pactl -f json list
// sink-inputs|source-outputs` shows it: Device is the index of the sink
// (or source) it is attached to, PID the client's process when it said.
type stream struct {
	Index  int
	Device int
	PID    int
}

// parseDevices reads `pactl -f json list sinks` or `… sources`.
func parseDevices(b []byte) ([]device, error) {
	var ds []device
	if err := json.Unmarshal(b, &ds); err != nil {
		return nil, fmt.Errorf("%w: devices: %w", errPactlOutput, err)
	}
	return ds, nil
}

// parseStreams reads `pactl -f json list sink-inputs` or `… source-outputs`.
func parseStreams(b []byte) ([]stream, error) {
	var raw []struct {
		Index      int               `json:"index"`
		Sink       *int              `json:"sink"`
		Source     *int              `json:"source"`
		Properties map[string]string `json:"properties"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: streams: %w", errPactlOutput, err)
	}
	out := make([]stream, 0, len(raw))
	for _, r := range raw {
		s := stream{Index: r.Index}
		switch {
		case r.Sink != nil:
			s.Device = *r.Sink
		case r.Source != nil:
			s.Device = *r.Source
		default:
			return nil, fmt.Errorf("%w: stream #%d has neither sink nor source", errPactlOutput, r.Index)
		}
		if p, err := strconv.Atoi(r.Properties["application.process.id"]); err == nil {
			s.PID = p
		}
		out = append(out, s)
	}
	return out, nil
}

// parseModuleIndex reads what `pactl load-module` prints: the new module's index.
func parseModuleIndex(b []byte) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: load-module printed %q", errPactlOutput, b)
	}
	return n, nil
}
