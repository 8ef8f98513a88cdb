package api

import "time"

// PathEvents answers GET with an EventsResponse: the events kept in the
// ring, oldest first. Query: since=DURATION (e.g. 2h, the newest part) or
// since=RFC3339 time, and after=SEQ (only events with a larger Seq: what a
// client that saw SEQ is missing). Both are optional.
const PathEvents = "/api/events"

// PathStream is the Server-Sent Events stream of the web page: an event
// "status" with the whole Status as JSON at once and whenever it changes
// (at most every StreamInterval), and an event "event" (id: its Seq) for
// each new Event. A client that reconnects with Last-Event-ID is sent the
// events it missed that the ring still holds.
const PathStream = "/api/stream"

// EventKind says what an Event is about.
type EventKind string

// The kinds of event.
const (
	EventVideoFailover EventKind = "video_failover" // the active encoder changed
	EventAudioFailover EventKind = "audio_failover" // the programme's audio changed chain
	EventRestart       EventKind = "restart"        // a child or a component started again
	EventUplink        EventKind = "uplink"         // an uplink changed state, or was enabled/disabled
	EventOutput        EventKind = "output"         // the output connected or lost its connection
	EventOnAir         EventKind = "on_air"         // went live, stopped
	EventPower         EventKind = "power"          // the power policy changed state
	EventThermal       EventKind = "thermal"        // hot, cool again
	EventConfig        EventKind = "config"         // a config was applied or refused
	EventLogin         EventKind = "login"          // a login, a failed login, a logout, a password change
	EventRecording     EventKind = "recording"      // the recording started or stopped
	EventTunnel        EventKind = "tunnel"         // the maintenance tunnel came up or went down
	EventTwins         EventKind = "twins"          // the twins locked or unlocked
	EventCanary        EventKind = "canary"         // a new encoder worker tried, promoted or rolled back
	EventUpdate        EventKind = "update"         // a bundle installed or refused; a trial slot made good or abandoned
)

// Event is one entry of the post-event report.
type Event struct {
	Seq     uint64    `json:"seq"` // 1, 2, …: order of the events since onaird started
	Time    time.Time `json:"time"`
	Kind    EventKind `json:"kind"`
	Subject string    `json:"subject,omitempty"` // what it happened to: an encoder, a chain, an uplink…
	// Frame is the programme's frame index where it applies (a video
	// failover: the frames after it come from the new encoder; an audio
	// failover: its audio frame index).
	Frame  *uint64 `json:"frame,omitempty"`
	Reason string  `json:"reason"`
}

// EventsResponse answers GET /api/events.
type EventsResponse struct {
	Events []Event `json:"events"`
	// Lost counts events older than the oldest kept one (the ring is
	// bounded): a report that starts at Seq > 1 is not the whole story.
	Lost uint64 `json:"lost"`
}
