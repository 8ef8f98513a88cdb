package board

import (
	"strings"

	"onair/web/api"
)

// Row is one line of the LED table: for LED, when the condition holds (the
// first matching row of that LED wins), the LED shows Pattern, meaning
// Meaning.
type Row struct {
	LED     string // power, encoder-a, encoder-b, audio, tally, recording, uplink (any uplink:NAME)
	When    string // the condition, as the crew's card says it
	Pattern api.LEDPattern
	Meaning string
	match   func(st api.Status, led string) bool
}

// Table is the one LED table. The reading a crew learns once, the same for every LED: solid is good
// (on mains, on air, active), slow blink is a warning or standby (battery,
// hot, backup audio, connecting), fast blink needs a hand now (ending,
// restarting, silent), off is absent or off air.
var Table = []Row{
	{"power", "low battery, forced shutdown, power lost, ending or ended", api.LEDFastBlink, "low: ending", func(st api.Status, _ string) bool {
		if st.Power == nil {
			return false
		}
		switch st.Power.State {
		case api.PowerLowBattery, api.PowerForcedShutdown, api.PowerLost, api.PowerEnding, api.PowerEnded:
			return true
		}
		return false
	}},
	{"power", "on battery", api.LEDSlowBlink, "battery", func(st api.Status, _ string) bool {
		return st.Power != nil && st.Power.State == api.PowerOnBattery
	}},
	{"power", "CPU above thermal.warn_c", api.LEDSlowBlink, "hot: load shed", func(st api.Status, _ string) bool {
		return st.Thermal != nil && st.Thermal.Hot
	}},
	{"power", "UPS unreachable", api.LEDSlowBlink, "UPS unreachable", func(st api.Status, _ string) bool {
		return st.Power != nil && st.Power.State == api.PowerUnreachable
	}},
	{"power", "otherwise (mains, or no power monitor)", api.LEDSolid, "mains", func(api.Status, string) bool { return true }},

	{"encoder", "no such encoder (single encoder)", api.LEDOff, "not fitted", func(st api.Status, led string) bool {
		return encoderSlot(st, led) < 0
	}},
	{"encoder", "its process is starting, stalled, stopping or backing off", api.LEDFastBlink, "restarting", func(st api.Status, led string) bool {
		switch childState(st, led) {
		case "starting", "stalled", "stopping", "backoff":
			return true
		}
		return false
	}},
	{"encoder", "its process is not running", api.LEDOff, "down", func(st api.Status, led string) bool {
		return childState(st, led) != "running"
	}},
	{"encoder", "running and on air, twins locked", api.LEDSolid, "active, locked", func(st api.Status, led string) bool {
		return active(st, led) && st.Video.Switch.Locked
	}},
	{"encoder", "running and on air, twins not locked", api.LEDSolid, "active", func(st api.Status, led string) bool {
		return active(st, led)
	}},
	{"encoder", "running, standby, locked: ready to take over", api.LEDSlowBlink, "standby, locked", func(st api.Status, _ string) bool {
		return st.Video.Switch.Locked
	}},
	{"encoder", "running, standby, not locked yet", api.LEDFastBlink, "standby, not locked", func(api.Status, string) bool { return true }},

	{"audio", "no audio chain configured", api.LEDOff, "no audio", func(st api.Status, _ string) bool {
		return len(st.Audio.Chains) == 0
	}},
	{"audio", "the chain on air is silent, stalled or down, or none is on air", api.LEDFastBlink, "silent", func(st api.Status, _ string) bool {
		for _, c := range st.Audio.Chains {
			if c.Name == st.Audio.Active {
				return c.State != api.AudioChainOK
			}
		}
		return true
	}},
	{"audio", "backup chain on air", api.LEDSlowBlink, "backup", func(st api.Status, _ string) bool {
		return st.Audio.Active == "backup"
	}},
	{"audio", "main chain on air", api.LEDSolid, "main", func(api.Status, string) bool { return true }},

	{"tally", "stopping (the clean end under way)", api.LEDFastBlink, "stopping", func(st api.Status, _ string) bool {
		return st.OnAir.Phase == api.OnAirStopping
	}},
	{"tally", "stopped", api.LEDOff, "off air", func(st api.Status, _ string) bool {
		return st.OnAir.Phase == api.OnAirStopped
	}},
	{"tally", "live and the output connected", api.LEDSolid, "on air", func(st api.Status, _ string) bool {
		return st.Output.State == "connected"
	}},
	{"tally", "live, the output not connected", api.LEDSlowBlink, "connecting", func(api.Status, string) bool { return true }},

	{"recording", "stopped by a full disk or a write error, or cannot start", api.LEDFastBlink, "recording failed", func(st api.Status, _ string) bool {
		r := st.Recording
		return r != nil && (r.State == api.RecordingError || (r.State == api.RecordingStopped && r.Reason != "" && r.Reason == r.LastError))
	}},
	{"recording", "recording, waiting for the next keyframe", api.LEDSlowBlink, "starting", func(st api.Status, _ string) bool {
		return st.Recording != nil && st.Recording.State == api.RecordingRecording && st.Recording.WaitingKeyframe
	}},
	{"recording", "recording", api.LEDSolid, "recording", func(st api.Status, _ string) bool {
		return st.Recording != nil && st.Recording.State == api.RecordingRecording
	}},
	{"recording", "stopped, or no recording configured", api.LEDOff, "not recording", func(api.Status, string) bool { return true }},

	{"uplink", "up, carrying", api.LEDSolid, "up", func(st api.Status, led string) bool {
		return uplinkState(st, led) == api.UplinkUp
	}},
	{"uplink", "registering, or at its data cap", api.LEDSlowBlink, "registering or capped", func(st api.Status, led string) bool {
		s := uplinkState(st, led)
		return s == api.UplinkRegistering || s == api.UplinkCapped
	}},
	{"uplink", "down or dead", api.LEDFastBlink, "down", func(st api.Status, led string) bool {
		s := uplinkState(st, led)
		return s == api.UplinkDown || s == api.UplinkDead
	}},
	{"uplink", "absent, disabled or not bonded", api.LEDOff, "absent", func(api.Status, string) bool { return true }},
}

// LEDNames are the panel's LEDs for these uplinks, in panel order.
func LEDNames(uplinks []string) []string {
	names := []string{"power", "encoder-a", "encoder-b", "audio", "tally", "recording"}
	for _, u := range uplinks {
		names = append(names, "uplink:"+u)
	}
	return names
}

// family is the table's LED column for an LED name.
func family(led string) string {
	switch {
	case led == "encoder-a" || led == "encoder-b":
		return "encoder"
	case strings.HasPrefix(led, "uplink:"):
		return "uplink"
	}
	return led
}

// LEDs applies the table to a status: one LEDStatus per LED, in panel order.
func LEDs(st api.Status, uplinks []string) []api.LEDStatus {
	names := LEDNames(uplinks)
	out := make([]api.LEDStatus, 0, len(names))
	for _, n := range names {
		r := rowFor(st, n)
		out = append(out, api.LEDStatus{Name: n, Pattern: r.Pattern, Meaning: r.Meaning})
	}
	return out
}

// rowFor is the first row of led's family that matches; every family ends
// with a row that always matches.
func rowFor(st api.Status, led string) *Row {
	f := family(led)
	for i := range Table {
		if Table[i].LED == f && Table[i].match(st, led) {
			return &Table[i]
		}
	}
	return &Row{LED: f, Pattern: api.LEDOff, Meaning: "unknown LED"}
}

// encoderSlot is the switch slot of an encoder LED (its name is the
// encoder's child name), -1 when the box has no such encoder.
func encoderSlot(st api.Status, led string) int {
	for i, n := range st.Video.Switch.Names {
		if n == led {
			return i
		}
	}
	return -1
}

func childState(st api.Status, led string) api.RunState {
	for _, c := range st.Children {
		if c.Name == led {
			return c.State
		}
	}
	return "stopped"
}

func active(st api.Status, led string) bool { return st.Video.Switch.Active == led }

func uplinkState(st api.Status, led string) api.UplinkState {
	if st.Bond == nil {
		return ""
	}
	name := strings.TrimPrefix(led, "uplink:")
	for _, u := range st.Bond.Uplinks {
		if u.Name == name {
			return u.State
		}
	}
	return ""
}
