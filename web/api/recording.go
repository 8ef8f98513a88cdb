package api

import "time"

// PathRecording starts (POST {"recording": true}) or stops ({"recording":
// false}) the local recording: 200 with the RecordingStatus, 409 when it
// cannot start (the reason in the error), 404 when recording.dir is not
// configured.
const PathRecording = "/api/recording"

// RecordingRequest is the body of POST /api/recording.
type RecordingRequest struct {
	Recording bool `json:"recording"`
}

// RecordingState is where the recording is.
//
// Transitions:
//
//	stopped   -> recording  Start (the directory is there and writable)
//	stopped,
//	error     -> error      Start failed (directory missing, unwritable, full)
//	error     -> recording  Start
//	recording -> stopped    Stop; a write error (disk full: Reason says so);
//	                        Run's ctx done
//	error     -> stopped    Stop
//
// Start while recording and Stop while stopped do nothing.
type RecordingState string

// The states reported in Status.
const (
	RecordingRecording RecordingState = "recording"
	RecordingStopped   RecordingState = "stopped"
	RecordingError     RecordingState = "error"
)

// RecordingStatus is the recording for the status page, the panel and onairctl.
type RecordingStatus struct {
	State RecordingState `json:"state"`
	// Reason says why State was entered: "operator", "autostart", "disk
	// full: …", the Start error.
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"` // when State was entered
	Dir    string    `json:"dir"`
	// File is the segment being written; empty while none is open.
	// WaitingKeyframe: recording, but no segment is open until the next
	// video random access point (at the start, after a gap).
	File            string `json:"file,omitempty"`
	WaitingKeyframe bool   `json:"waiting_keyframe"`
	FileBytes       uint64 `json:"file_bytes"`
	// Bytes, Segments (closed), BytesDropped and Gaps count the recording
	// since the last Start.
	Bytes    uint64 `json:"bytes"`
	Segments int    `json:"segments"`
	// BytesDropped were refused by a full queue (the disk fell behind);
	// each run of drops is one gap, and a segment ends at each gap.
	BytesDropped uint64 `json:"bytes_dropped"`
	Gaps         int    `json:"gaps"`
	BytesQueued  int    `json:"bytes_queued"`
	// LastError is the last problem (a gap, a write error, a failed
	// Start); it outlives a new Start.
	LastError string `json:"last_error,omitempty"`
}

// PageStatus is the web page's side of the box: where it listens and
// whether it can be logged in to.
type PageStatus struct {
	Listen string `json:"listen,omitempty"` // plain HTTP, loopback
	HTTPS  string `json:"https,omitempty"`
	// Auth is "setup" (no password yet: onairctl setup-token), "ready",
	// "locked" (the password file is unusable: onairctl passwd) or
	// "unavailable" (the authentication could not start: AuthError).
	Auth      string `json:"auth"`
	AuthError string `json:"auth_error,omitempty"`
	// Fingerprint is the SHA-256 fingerprint of the HTTPS certificate: what
	// the crew compares with the browser's warning the first time.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Streams are the pages open now (their live streams).
	Streams int `json:"streams"`
}
