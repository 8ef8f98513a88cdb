// Package api is onaird's local API as data: the JSON types of every endpoint
// and one Client for them, over the unix socket (onairctl) or TCP (the web
// page, the e2e harness, the bench). The domain packages alias their status
// types to these (encoder.SwitchStatus = api.SwitchStatus …), so the server
// and every client share one definition and the JSON cannot drift.
//
// It imports only the standard library, so a client (onairctl) links none of
// SRT, MPEG-TS, systemd or the daemon.
//
// Not for: serving (that is package web), or logic of any kind: these are
// snapshots, filled by their owners.
package api

import "time"

// BoxState is the state of the whole box.
type BoxState string

// The states of the box.
const (
	BoxOnAir    BoxState = "on_air"   // output connected, nothing degraded
	BoxDegraded BoxState = "degraded" // on air, but twins unlocked or no live picture
	BoxOffAir   BoxState = "off_air"  // live is wanted, but the output is not connected
	BoxStopped  BoxState = "stopped"  // the crew (or power) stopped the stream: off air on purpose
)

// Status is the whole box as GET /api/status reports it.
type Status struct {
	Version  string        `json:"version"`
	State    BoxState      `json:"state"`
	Uptime   float64       `json:"uptime_s"`
	Children []ChildStatus `json:"children"`
	Video    VideoStatus   `json:"video"`
	Audio    AudioStatus   `json:"audio"`
	Output   OutputStatus  `json:"output"`
	// OnAir is the go live / stop control.
	OnAir OnAirStatus `json:"on_air"`
	// Bond is the bonding layer, present only for an srtla:// output.
	Bond *BondStatus `json:"bond,omitempty"`
	// Power is the UPS and the power signals, present only when configured.
	Power *PowerStatus `json:"power,omitempty"`
	// Thermal is the CPU temperature, present only when a zone was found.
	Thermal *ThermalStatus `json:"thermal,omitempty"`
	// Recording is the local recording, present only when recording.dir
	// is set.
	Recording *RecordingStatus `json:"recording,omitempty"`
	// Page is the web page's listeners and authentication, present when
	// a TCP listener is configured.
	Page *PageStatus `json:"page,omitempty"`
	// Tunnel is the reverse SSH maintenance tunnel, present only when
	// maintenance.tunnel is set.
	Tunnel *TunnelStatus `json:"tunnel,omitempty"`
	// Canary is the on-air canary of a new encoder worker, present with
	// twin encoders.
	Canary *CanaryStatus `json:"canary,omitempty"`
	// Update is the A/B update (slots, trial, the last install), present
	// when update.public_key is set.
	Update *UpdateStatus `json:"update,omitempty"`
	// Panel is the front panel (GPIO or virtual).
	Panel *PanelStatus `json:"panel,omitempty"`
	// Components are onaird's in-process parts under its supervisor
	// (output, API listeners, …).
	Components []Component `json:"components"`
}

// ChildStatus is one supervised child process and its progress.
type ChildStatus struct {
	ProcessStatus
	LastIndex uint64 `json:"last_index"`
	LagFrames int64  `json:"lag_frames"`
	Frames    uint64 `json:"frames"`
	// Source is capture's view of its input: "live" or "no_signal".
	Source string `json:"source,omitempty"`
	// Violations counts messages that broke the wire contract (each one
	// restarted the child); LastViolation says what the last one was.
	Violations    uint64 `json:"violations"`
	LastViolation string `json:"last_violation,omitempty"`
	// Margin is an encoder's real-time margin: how many times faster than
	// the frame cadence it works (the frame interval over its mean wall
	// time per frame over the last heartbeat, about 1 s; the other encoder
	// and capture share the cores). MarginMin is the lowest of the last
	// 10 s. Near 1 the box is at its limit; below 1 the encoder falls behind
	// and is restarted for lag. Absent (0) until measured, and for other
	// roles.
	Margin    float64 `json:"margin,omitempty"`
	MarginMin float64 `json:"margin_min,omitempty"`
	// MalformedMargins counts heartbeats whose margin was out of range and
	// was dropped (the child was not restarted for it).
	MalformedMargins uint64 `json:"malformed_margins,omitempty"`
}

// RunState is where a supervision loop (of a child process or an in-process
// component) is: see supervisor.State for the states and their transitions.
type RunState string

// ProcessStatus is the supervision state of a child process
// (supervisor.Status).
type ProcessStatus struct {
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	PID       int      `json:"pid"` // 0 when no instance is alive
	State     RunState `json:"state"`
	Restarts  int      `json:"restarts"`   // start attempts after the first
	LastError string   `json:"last_error"` // why the last instance ended, or the last start failure
	// Binary is the program the current (or last) instance runs: for an
	// encoder, its worker build (a canary changes it).
	Binary   string    `json:"binary,omitempty"`
	LastExit time.Time `json:"last_exit,omitzero"`
	Since    time.Time `json:"since"`             // when State was entered
	Instance int       `json:"instance"`          // number of the current or last instance
	RetryAt  time.Time `json:"retry_at,omitzero"` // next start, while State is backoff
}

// Component is the supervision state of one in-process component
// (supervisor.ComponentStatus).
type Component struct {
	Name  string   `json:"name"`
	State RunState `json:"state"`
	// Vital: the box cannot stay on air without it (only the frame cadence).
	Vital     bool      `json:"vital"`
	Restarts  int       `json:"restarts"`
	LastError string    `json:"last_error"`
	Since     time.Time `json:"since"` // when State was entered
}

// VideoStatus is the video path.
type VideoStatus struct {
	Switch       SwitchStatus `json:"switch"`
	Keeper       KeeperStatus `json:"cadence"`
	RingHead     uint64       `json:"ring_head"`
	BitrateKbps  int          `json:"bitrate_kbps"`
	LatencyP50Ms float64      `json:"latency_p50_ms"` // capture stamp → packet muxed
	LatencyP99Ms float64      `json:"latency_p99_ms"`
	MuxErrors    uint64       `json:"mux_errors"`
	// TwinSkewMaxFrames is the largest distance seen between the locked
	// twins (video.hang_after must stay above it, or healthy twins restart).
	TwinSkewMaxFrames uint64 `json:"twin_skew_max_frames"`
	// HealthRestarts counts twins restarted as hung or lagging.
	HealthRestarts uint64 `json:"health_restarts"`
}

// AudioStatus is the audio path: the programme's audio (what was muxed)
// and the selector that picks, per frame, which chain it comes from.
type AudioStatus struct {
	Frames    uint64 `json:"frames"`
	LastIndex uint64 `json:"last_index"`
	GapFrames uint64 `json:"gap_frames"`
	// Duplicates counts frames at or before the last one muxed (dropped).
	Duplicates uint64 `json:"duplicates"`

	// Mode is the operator's choice (auto unless forced).
	Mode AudioMode `json:"mode"`
	// Active is the chain the programme's audio comes from ("" before the
	// first frame) and Reason why.
	Active string `json:"active"`
	Reason string `json:"reason"`
	// Switches counts changes of Active (the first choice is not one);
	// LastSwitches holds the newest ones, oldest first.
	Switches     uint64        `json:"switches"`
	LastSwitches []AudioSwitch `json:"last_switches"`
	// Filled counts frames the inactive chain supplied because the active
	// one had none in time (without a switch, e.g. one late frame).
	Filled uint64 `json:"filled"`
	// Missing counts frame indexes no chain delivered in time (skipped).
	Missing uint64             `json:"missing"`
	Chains  []AudioChainStatus `json:"chains"`
}

// AudioMode is the operator's choice of audio source: auto (the selector
// decides), or a forced chain (which still falls back to the other chain
// while the forced one is missing, never to silence).
type AudioMode string

// The audio modes (POST /api/audio/source).
const (
	AudioAuto   AudioMode = "auto"
	AudioMain   AudioMode = "main"
	AudioBackup AudioMode = "backup"
)

// AudioChainState is what the selector sees of one chain.
type AudioChainState string

// The states of an audio chain, worst first.
const (
	AudioChainDown    AudioChainState = "down"    // no process instance
	AudioChainStalled AudioChainState = "stalled" // running, but its frames stopped coming in time
	AudioChainSilent  AudioChainState = "silent"  // frames come, below silence_dbfs for silence_after
	AudioChainOK      AudioChainState = "ok"
)

// AudioSwitch is one change of the active chain: from Index on, the
// programme's audio came from To.
type AudioSwitch struct {
	At     time.Time `json:"at"`
	Index  uint64    `json:"index"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
}

// AudioChainStatus is one audio chain as the selector sees it, with the
// device rate its process measured.
type AudioChainStatus struct {
	Name  string          `json:"name"` // "main" or "backup"
	State AudioChainState `json:"state"`
	// PeakDBFS and RMSDBFS are the last frame's levels (-120: silence).
	PeakDBFS float64 `json:"peak_dbfs"`
	RMSDBFS  float64 `json:"rms_dbfs"`
	// HealthyS is how long the chain has delivered every frame in time and
	// above the silence threshold (0 while it is not).
	HealthyS float64 `json:"healthy_s"`
	// RatePPM is the device's sample rate against the box clock, in parts
	// per million (the chain resamples to the box); RateMeasured is false
	// until enough of it was seen. OffsetMs is how far the chain's frames
	// sit from the box clock.
	RatePPM      float64 `json:"rate_ppm"`
	RateMeasured bool    `json:"rate_measured"`
	OffsetMs     float64 `json:"offset_ms"`
	// DelayMs is how long after its last sample was due the last frame
	// reached the selector.
	DelayMs   float64 `json:"delay_ms"`
	LastIndex uint64  `json:"last_index"`
	Frames    uint64  `json:"frames"` // received
	Played    uint64  `json:"played"` // went to the programme
	// Late counts frames that came after their deadline (late_after past
	// their last sample); Dropped those refused (duplicate, out of order or
	// too far ahead).
	Late    uint64 `json:"late"`
	Dropped uint64 `json:"dropped"`
}

// SwitchStatus is the hitless switch's state (encoder.SwitchStatus).
type SwitchStatus struct {
	Twins      bool     `json:"twins"`
	Locked     bool     `json:"locked"`
	Active     string   `json:"active"`
	RelockAt   *uint64  `json:"relock_at,omitempty"` // pending re-lock index
	Emitted    uint64   `json:"emitted"`
	LastIndex  uint64   `json:"last_index"`
	FramesFrom []uint64 `json:"frames_from"` // per encoder: copies that went to the mux
	Compared   uint64   `json:"compared"`    // indexes for which both copies were hashed
	Mismatches uint64   `json:"mismatches"`  // unexpected differences while locked
	// RelockFailures counts re-locks whose copies differed at or after the
	// common reset index: the twins stay unlocked and the next GOP boundary
	// is tried.
	RelockFailures uint64 `json:"relock_failures"`
	Switches       uint64 `json:"switches"`   // changes of active encoder
	GapFrames      uint64 `json:"gap_frames"` // indexes never emitted
	Relocks        uint64 `json:"relocks"`
	// FailoverPending names the encoder a manual failover asked for while
	// the twins were unlocked: it takes over at its first IDR that follows
	// the emitted stream without a gap, or as soon as the twins lock.
	FailoverPending string   `json:"failover_pending,omitempty"`
	LastRelockF     int64    `json:"last_relock_frames"` // frames from encoder start to verified lock
	Dropped         []uint64 `json:"dropped"`            // per encoder: later copies and unusable packets
	Names           []string `json:"names"`
	Alive           []bool   `json:"alive"`
	// LastSwitch is the newest change of active encoder (nil before the
	// first one).
	LastSwitch *VideoSwitch `json:"last_switch,omitempty"`
}

// VideoSwitch is one change of the active encoder: the frames after
// AfterIndex come from To (from its next IDR when AtNextIDR: the twins were
// unlocked).
type VideoSwitch struct {
	AfterIndex uint64 `json:"after_index"`
	From       string `json:"from,omitempty"` // "" for the first choice
	To         string `json:"to"`
	Reason     string `json:"reason"`
	AtNextIDR  bool   `json:"at_next_idr"`
}

// KeeperStatus is what the cadence keeper has done (encoder.KeeperStatus).
type KeeperStatus struct {
	Signal       string `json:"signal"` // "live", "frozen" (repeating), "slate"
	Repeats      uint64 `json:"repeats"`
	Slates       uint64 `json:"slates"`
	Blacks       uint64 `json:"blacks"`
	Live         uint64 `json:"live"` // indexes capture delivered in time
	LastLiveIdx  uint64 `json:"last_live_index"`
	KeeperIndex  uint64 `json:"index"` // last index the keeper checked
	BehindFrames uint64 `json:"skipped_late"`
	Reclaimed    uint64 `json:"reclaimed"` // claimed by capture, never published: filled by the keeper
}

// OutputState is the SRT caller's connection state: see output.State for the
// states and their transitions.
type OutputState string

// OutputStatus is the SRT output (output.Status).
type OutputStatus struct {
	State        OutputState `json:"state"`
	Peer         string      `json:"peer"`
	Target       string      `json:"target"` // URL, passphrase redacted
	Dial         string      `json:"dial"`   // host:port the UDP goes to (Target's, or a bonding layer's)
	LastError    string      `json:"last_error,omitempty"`
	Connects     int         `json:"connects"`
	BytesSent    uint64      `json:"bytes_sent"`
	BytesDropped uint64      `json:"bytes_dropped"`
	BytesQueued  int         `json:"bytes_queued"`
	InputKbps    float64     `json:"input_kbps"`
	SendRateKbps float64     `json:"send_rate_kbps"`
	PaceKbps     float64     `json:"pace_kbps"`
	SRT          SRTStats    `json:"srt"`
}

// SRTStats are the SRT statistics of the current (or last) connection
// (output.SRTStats).
type SRTStats struct {
	RTTms        float64 `json:"rtt_ms"`
	PktSent      uint64  `json:"pkt_sent"`
	PktRetrans   uint64  `json:"pkt_retrans"`
	PktDropped   uint64  `json:"pkt_dropped"`   // too late, dropped by the sender
	PktLoss      uint64  `json:"pkt_loss"`      // reported lost by the receiver
	LossRatePct  float64 `json:"loss_rate_pct"` // retransmitted vs sent, %
	SendBufMs    uint64  `json:"send_buf_ms"`   // span of unacknowledged packets
	SendBufPkts  uint64  `json:"send_buf_pkts"` // unacknowledged packets
	PeerLatencyM uint64  `json:"peer_latency_ms"`
}
