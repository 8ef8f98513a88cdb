package api

import "time"

// PowerState is where the power policy (package power) is.
//
//	online          on mains (UPS on line, power-good asserted), or no power source configured
//	on_battery      running on the UPS battery: warned, load shed if configured
//	low_battery     the UPS says LB, or battery.runtime is below power.min_runtime: ending
//	forced_shutdown the UPS says FSD, or the shutdown-request line is asserted: ending
//	power_lost      power-good lost: the grace (power.grace) is running, mains back cancels it
//	unreachable     the UPS cannot be read (upsd down, login refused, driver gone): a warning only
//	ending          a clean end is under way: the last GOP, the TS end, the SRT drain
//	ended           the stream ended for power; power-off follows (once)
type PowerState string

// Power states.
const (
	PowerOnline         PowerState = "online"
	PowerOnBattery      PowerState = "on_battery"
	PowerLowBattery     PowerState = "low_battery"
	PowerForcedShutdown PowerState = "forced_shutdown"
	PowerLost           PowerState = "power_lost"
	PowerUnreachable    PowerState = "unreachable"
	PowerEnding         PowerState = "ending"
	PowerEnded          PowerState = "ended"
)

// PowerSource is what the box runs on, as far as it can tell.
type PowerSource string

// Power sources.
const (
	SourceMains   PowerSource = "mains"
	SourceBattery PowerSource = "battery"
	SourceUnknown PowerSource = "unknown" // no UPS or power-good line configured, or none readable
)

// PowerStatus is the box's power: the UPS through NUT, the GPIO power
// signals and what the policy decided. Present in Status only when power
// is configured (power.nut or a power GPIO line).
type PowerStatus struct {
	State  PowerState  `json:"state"`
	Source PowerSource `json:"source"`
	// Reason says why the policy is in State ("UPS on battery", "battery.runtime 95 s < power.min_runtime 120 s", …).
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"` // when State was entered
	// UPS is the NUT view, nil when power.nut is not configured.
	UPS *UPSStatus `json:"ups,omitempty"`
	// Signals are the GPIO power inputs (power-good, shutdown-request).
	Signals []PowerSignal `json:"signals,omitempty"`
	// Shedding is true while load is shed (a lower bitrate cap) for power.
	Shedding bool `json:"shedding"`
	// Deadline is when the power-good grace ends, while State is power_lost.
	Deadline time.Time `json:"deadline,omitzero"`
	// EndedAt is when the stream was ended for power; PoweredOff says
	// whether the power-off request was made (it is made at most once).
	EndedAt    time.Time `json:"ended_at,omitzero"`
	PoweredOff bool      `json:"powered_off"`
	// PowerOffError is why the power-off request failed, if it did.
	PowerOffError string `json:"poweroff_error,omitempty"`
}

// UPSStatus is one UPS as upsd reports it.
type UPSStatus struct {
	Name      string `json:"name"` // ups@host:port
	Reachable bool   `json:"reachable"`
	// Status holds the ups.status tokens as upsd sent them (OL, OB, LB, FSD, CHRG, …).
	Status []string `json:"status"`
	// ChargePct is battery.charge, RuntimeS battery.runtime; -1 when the UPS does not report it.
	ChargePct float64 `json:"charge_pct"`
	RuntimeS  float64 `json:"runtime_s"`
	// LastError is why the last read or login failed ("upsd: ERR ACCESS-DENIED", "connection refused", …).
	LastError string    `json:"last_error,omitempty"`
	Updated   time.Time `json:"updated,omitzero"` // the last successful read
}

// PowerSignal is one GPIO power input.
type PowerSignal struct {
	Name   string    `json:"name"` // power_good, shutdown_request
	Line   string    `json:"line"` // the GPIO line name
	Active bool      `json:"active"`
	Since  time.Time `json:"since,omitzero"`
}

// ThermalStatus is the CPU temperature from the kernel's thermal zones.
// Present in Status only when a thermal zone was found.
type ThermalStatus struct {
	MaxC  float64       `json:"max_c"` // the hottest zone
	WarnC float64       `json:"warn_c"`
	Hot   bool          `json:"hot"` // above warn_c (until it falls below warn_c minus the hysteresis)
	Zones []ThermalZone `json:"zones"`
	// Shedding is true while the bitrate cap is lowered for heat.
	Shedding bool `json:"shedding"`
}

// ThermalZone is one /sys/class/thermal/thermal_zoneN.
type ThermalZone struct {
	Name  string  `json:"name"` // thermal_zone0
	Type  string  `json:"type"` // x86_pkg_temp, cpu-thermal, …
	TempC float64 `json:"temp_c"`
}

// LEDPattern is how one front-panel LED shows its state.
type LEDPattern string

// LED patterns.
const (
	LEDOff       LEDPattern = "off"
	LEDSolid     LEDPattern = "solid"
	LEDSlowBlink LEDPattern = "slow_blink" // 1 Hz
	LEDFastBlink LEDPattern = "fast_blink" // 4 Hz
)

// LEDStatus is one LED of the panel.
type LEDStatus struct {
	Name    string     `json:"name"` // power, encoder-a, encoder-b, audio, tally, uplink:NAME
	Pattern LEDPattern `json:"pattern"`
	// Meaning is the state the pattern shows ("battery", "active, locked", …).
	Meaning string `json:"meaning"`
}

// PanelStatus is the front panel: physical (GPIO) or virtual.
type PanelStatus struct {
	Virtual bool        `json:"virtual"` // no GPIO: the LEDs exist only here
	LEDs    []LEDStatus `json:"leds"`
	Buttons []string    `json:"buttons"` // names accepted by POST /api/panel/press
	// LastPress is the last press the panel acted on ("failover (short)").
	LastPress   string    `json:"last_press,omitempty"`
	LastPressAt time.Time `json:"last_press_at,omitzero"`
}

// PanelPressRequest is the body of POST /api/panel/press.
type PanelPressRequest struct {
	Button string `json:"button"`
	Long   bool   `json:"long"`
}

// PanelPressResult answers POST /api/panel/press: what the press did.
type PanelPressResult struct {
	Button string `json:"button"`
	Long   bool   `json:"long"`
	Action string `json:"action"` // "failover video", "stop (long press)", "ignored: go_live needs a long press to stop", …
}

// OnAirPhase is where the box's on-air control is.
//
//	live     the stream is wanted: the output dials and carries the programme
//	stopping a stop was asked: the last GOP is muxed, the TS ended, the SRT send buffer drains
//	stopped  no stream; the encoders stay warm so going live is immediate
type OnAirPhase string

// On-air phases.
const (
	OnAirLive     OnAirPhase = "live"
	OnAirStopping OnAirPhase = "stopping"
	OnAirStopped  OnAirPhase = "stopped"
)

// OnAirStatus is the explicit on-air control (go live / stop).
type OnAirStatus struct {
	Phase OnAirPhase `json:"phase"`
	// Reason says who or what set Phase ("auto-start", "operator", "panel", "power: low battery").
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	// LastEnd describes the last clean end of the stream, if any.
	LastEnd *StreamEnd `json:"last_end,omitempty"`
}

// StreamEnd is one clean end of the stream.
type StreamEnd struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// LastIndex is the last video frame muxed (the end of its GOP).
	LastIndex uint64 `json:"last_index"`
	// Drained is true when the SRT send buffer emptied before the close.
	Drained bool    `json:"drained"`
	TookMs  float64 `json:"took_ms"` // from the request to the connection closed
	Error   string  `json:"error,omitempty"`
}

// OnAirRequest is the body of POST /api/onair.
type OnAirRequest struct {
	Live bool `json:"live"`
}
