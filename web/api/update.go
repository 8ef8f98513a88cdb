package api

import "time"

// UpdateState is where the A/B update of the running box is (package
// onair/update, its Marker).
//
// Transitions (a boot is the bootloader's, the rest the Marker's):
//
//	good        -> pending      an update was installed to the other slot
//	pending     -> trial        boot: the trial slot is booted (one try used)
//	trial       -> good         healthy for update.healthy_after: marked good
//	trial       -> abandoned    not healthy by update.trial_deadline: no
//	                            tries left, the next boot returns to the old slot
//	trial,
//	abandoned   -> rolled_back  boot with no tries left (or a trial slot that
//	                            never came up): the old slot is booted
//	rolled_back -> pending      another update was installed
//	any         -> error        the bootloader state cannot be read or written
type UpdateState string

// The states reported in UpdateStatus.
const (
	UpdateGood       UpdateState = "good"
	UpdatePending    UpdateState = "pending"
	UpdateTrial      UpdateState = "trial"
	UpdateAbandoned  UpdateState = "abandoned"
	UpdateRolledBack UpdateState = "rolled_back"
	UpdateError      UpdateState = "error"
)

// UpdateStatus is the A/B slots as the running box sees them, for the status
// page and onairctl.
type UpdateStatus struct {
	State UpdateState `json:"state"`
	// Slot is the slot running now ("a" or "b"), Good whether it is marked
	// good (false while on trial).
	Slot string `json:"slot"`
	Good bool   `json:"good"`
	// Trial is the slot on trial, empty when none; TriesLeft its boots
	// left (a trial boot takes its try before it starts).
	Trial     string `json:"trial,omitempty"`
	TriesLeft int    `json:"tries_left"`
	// Next is the slot the next boot picks.
	Next string `json:"next,omitempty"`
	// Version is the running build's version.
	Version string `json:"version"`
	// HealthySince is when the box last became healthy during a trial;
	// zero while it is not.
	HealthySince time.Time `json:"healthy_since,omitzero"`
	Since        time.Time `json:"since"` // when State was entered
	// LastError is the last problem (a bootloader write that failed, a
	// trial abandoned); it stays after the state moves on.
	LastError string `json:"last_error,omitempty"`
	// Install is the last install asked for (onairctl update), nil if none.
	Install *UpdateInstall `json:"install,omitempty"`
}

// PathUpdate installs a signed bundle into the inactive slot on POST with
// an UpdateRequest: 202 once the install has started (it runs on:
// Status().Update.Install follows it), 409 when refused (on air without
// Force, a bundle not newer than the running version without
// AllowDowngrade, one already running, updates not configured).
const PathUpdate = "/api/update"

// UpdateRequest is the body of POST /api/update.
type UpdateRequest struct {
	Bundle string `json:"bundle"` // an absolute path on the box
	// Force installs while on air (the write competes with the stream for
	// the disk and the CPU); AtStop waits until the crew next stops.
	Force  bool `json:"force,omitempty"`
	AtStop bool `json:"at_stop,omitempty"`
	// AllowDowngrade installs a bundle whose version is not newer than the
	// running one (older, the same, or unordered: update.CheckNewer);
	// without it that is refused: a replayed old release.
	AllowDowngrade bool `json:"allow_downgrade,omitempty"`
}

// UpdateInstall is the last install asked for: where it is and how it
// ended.
type UpdateInstall struct {
	Bundle string `json:"bundle"`
	// State is waiting (for the crew to stop), verify, write, read back,
	// done or failed.
	State   string    `json:"state"`
	Done    int64     `json:"done"`  // bytes of the current phase
	Total   int64     `json:"total"` // of the current phase
	Slot    string    `json:"slot,omitempty"`
	Version string    `json:"version,omitempty"` // the bundle's
	Error   string    `json:"error,omitempty"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
}
