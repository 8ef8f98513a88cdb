package api

import "time"

// PathLogs answers GET with a LogsResponse: onaird's newest log lines (its
// own, not its children's raw output), oldest first. Query: after=SEQ (only
// newer lines), n=COUNT (at most this many, the newest; default 200; 0:
// all that are kept).
const PathLogs = "/api/logs"

// LogLine is one line of onaird's log as kept for the page and onairctl.
type LogLine struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Level  string    `json:"level"`  // debug, info, warn, error
	Logger string    `json:"logger"` // the component's name, e.g. "onaird.bond"
	Msg    string    `json:"msg"`
	// Fields are the structured fields, encoded as JSON (an object).
	Fields string `json:"fields,omitempty"`
}

// LogsResponse answers GET /api/logs.
type LogsResponse struct {
	Lines []LogLine `json:"lines"`
	Lost  uint64    `json:"lost"` // lines older than the oldest kept one
}
