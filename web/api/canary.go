package api

import "time"

// PathCanary starts the on-air canary of a new encoder worker on POST with
// a CanaryRequest: 202 with the CanaryStatus once it has started (it runs
// on; status and events follow it), 409 when refused (twins not locked, a
// canary already running, no such executable).
const PathCanary = "/api/canary"

// CanaryRequest is the body of POST /api/canary.
type CanaryRequest struct {
	// Worker is the new onair-av to try, an absolute path on the box.
	Worker string `json:"worker"`
}

// CanaryState is where the canary is.
//
//	idle        none has run
//	starting    the standby encoder restarts with the new worker
//	watching    it runs for update.canary_after: on time, no restart
//	promoting   the switch moves to it (at a seamless IDR), then the other
//	            encoder restarts with the new worker
//	promoted    both encoders run the new worker (the end)
//	rolled_back the new worker failed before it carried the stream: the
//	            standby runs the old one again (the end; Reason says why)
//	failed      promotion went wrong after the switch (Reason says what
//	            runs where)
type CanaryState string

// The canary states.
const (
	CanaryIdle       CanaryState = "idle"
	CanaryStarting   CanaryState = "starting"
	CanaryWatching   CanaryState = "watching"
	CanaryPromoting  CanaryState = "promoting"
	CanaryPromoted   CanaryState = "promoted"
	CanaryRolledBack CanaryState = "rolled_back"
	CanaryFailed     CanaryState = "failed"
)

// CanaryStatus is the on-air canary of a new encoder worker.
type CanaryStatus struct {
	State    CanaryState `json:"state"`
	Worker   string      `json:"worker,omitempty"`   // the new worker
	Previous string      `json:"previous,omitempty"` // the worker it replaces
	Encoder  string      `json:"encoder,omitempty"`  // the encoder tried first (the standby)
	// Identical is true once the new worker locked with the old one: it
	// encodes bit for bit the same, and the switch is hitless at any frame.
	Identical bool      `json:"identical"`
	Reason    string    `json:"reason,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	Started   time.Time `json:"started,omitzero"`
}
