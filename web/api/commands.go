package api

// The endpoints. Every POST takes a JSON body (Content-Type
// application/json, at most MaxBodyBytes) and every answer is JSON; a non-2xx
// answer is an Error.
const (
	// PathStatus answers GET with a Status.
	PathStatus = "/api/status"
	// PathFailoverVideo swaps the active encoder on POST (body {} or empty):
	// 200 with a FailoverResult "switched", 202 "pending" while the twins are
	// unlocked, 409 when the other encoder cannot take over.
	PathFailoverVideo = "/api/failover/video"
	// PathVideoBitrate changes both encoders' bitrate at one frame index on
	// POST with a BitrateRequest: 200 with a BitrateResult, 400 when refused.
	PathVideoBitrate = "/api/video/bitrate"
	// PathUplinks is the prefix of POST /api/uplinks/{name} with an
	// UplinkRequest: enables or disables one uplink without a gap; 200 with
	// its UplinkStatus, 404 for an unknown name or an output that is not
	// bonded.
	PathUplinks = "/api/uplinks/"
	// PathAudioSource sets the audio mode on POST with an AudioSourceRequest
	// (auto, or a forced chain): 200 with the AudioStatus, 400 for an
	// unknown mode.
	PathAudioSource = "/api/audio/source"
	// PathOnAir goes live or stops on POST with an OnAirRequest: 200 with
	// the OnAirStatus once the request is taken (a stop answers when the
	// stream has ended cleanly), 409 when refused.
	PathOnAir = "/api/onair"
	// PathPanelPress presses a front-panel button on POST with a
	// PanelPressRequest: 200 with a PanelPressResult, 404 for an unknown
	// button.
	PathPanelPress = "/api/panel/press"
)

// AudioSourceRequest is the body of POST /api/audio/source.
type AudioSourceRequest struct {
	Mode AudioMode `json:"mode"`
}

// MaxBodyBytes bounds the body of every POST; a longer one is answered 413.
const MaxBodyBytes = 4096

// FailoverOutcome says whether a failover happened now or waits.
type FailoverOutcome string

// The outcomes of a failover.
const (
	FailoverSwitched FailoverOutcome = "switched" // the target is active now, without a gap
	FailoverPending  FailoverOutcome = "pending"  // the target takes over at the next seamless point
)

// FailoverResult answers POST /api/failover/video.
type FailoverResult struct {
	Result FailoverOutcome `json:"result"`
	Target string          `json:"target"`           // the encoder that is (or will be) active
	Detail string          `json:"detail,omitempty"` // why it is pending
}

// BitrateRequest is the body of POST /api/video/bitrate.
type BitrateRequest struct {
	Kbps int `json:"kbps"`
}

// BitrateResult answers POST /api/video/bitrate.
type BitrateResult struct {
	// Result is BitrateSet (both encoders use Kbps from AtIndex) or
	// BitrateCeiling (the adaptive bitrate runs: Kbps is its new maximum,
	// and it moves the encoders within it itself).
	Result  string `json:"result"`
	AtIndex uint64 `json:"at_index,omitempty"` // the frame index from which both encoders use it
	Kbps    int    `json:"kbps"`
}

// Results of POST /api/video/bitrate.
const (
	BitrateSet     = "ok"
	BitrateCeiling = "ceiling"
)

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}

// PathRestart restarts one child process or in-process component on POST
// with a RestartRequest, the stream kept: 200 with a RestartResult, 404 for
// an unknown name, 409 when refused (the vital cadence; the output or the
// uplinks without Force: their restart reconnects the stream).
const PathRestart = "/api/restart"

// RestartRequest is the body of POST /api/restart.
type RestartRequest struct {
	Name string `json:"name"`
	// Force allows a restart that interrupts the stream (output, bond).
	Force bool `json:"force,omitempty"`
}

// RestartResult answers POST /api/restart.
type RestartResult struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // "child" or "component"
}

// PathConfig validates (DryRun) or applies a whole configuration on POST
// with a ConfigRequest (at most MaxConfigBytes): 200 with a ConfigResult;
// 400 with the bad key named when it does not validate, the running
// configuration unchanged.
const PathConfig = "/api/config"

// MaxConfigBytes bounds the body of POST /api/config.
const MaxConfigBytes = 256 << 10

// ConfigRequest is the body of POST /api/config.
type ConfigRequest struct {
	YAML   string `json:"yaml"`
	DryRun bool   `json:"dry_run,omitempty"` // validate and say what would change, change nothing
}

// ConfigResult answers POST /api/config.
type ConfigResult struct {
	DryRun bool `json:"dry_run"`
	// Live are the keys that changed and were (or, in a dry run, would be)
	// applied without a restart: the bitrate cap, the audio thresholds,
	// the recording.
	Live []string `json:"live"`
	// Restart are the keys that changed and take effect only when onaird
	// restarts (they are saved).
	Restart []string `json:"restart"`
	// Saved is the file the configuration was written to ("" in a dry run
	// or when onaird has no file).
	Saved string `json:"saved,omitempty"`
}
