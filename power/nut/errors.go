package nut

import "errors"

// Errors of the parser, so callers count bad lines by kind.
var (
	// ErrMalformed is a line that is not one of the responses this client
	// understands (see ParseLine).
	ErrMalformed = errors.New("nut: malformed response line")
	// ErrLineTooLong is a line longer than MaxLineLen: it is rejected before
	// it is parsed, and the client drops the connection (it cannot find the
	// next line's start without reading an unbounded amount).
	ErrLineTooLong = errors.New("nut: response line too long")
)

// Errors of the client.
var (
	// ErrUnexpected is a well-formed line that does not answer the request
	// (an OK where a list should begin, a VAR of another UPS, …).
	ErrUnexpected = errors.New("nut: unexpected response")
	// ErrBackoff is a Read refused without dialing because the last attempt
	// failed and the next one is not due yet; the error also wraps the last
	// attempt's error.
	ErrBackoff = errors.New("nut: backing off")
	// ErrClosed is a Read after Close.
	ErrClosed = errors.New("nut: client closed")
	// ErrInvalidConfig is a Config that New refuses; the error names the field.
	ErrInvalidConfig = errors.New("nut: invalid config")
)

// Errors upsd answers with (ERR lines), matched by *ServerError.Is. Codes
// without a sentinel here are still *ServerError values with their Code.
var (
	// ErrAccessDenied is ERR ACCESS-DENIED: LOGIN with a wrong password, an
	// unknown user or a user without the upsmon role.
	ErrAccessDenied = errors.New("nut: upsd: access denied")
	// ErrUnknownUPS is ERR UNKNOWN-UPS: upsd serves no UPS of that name.
	ErrUnknownUPS = errors.New("nut: upsd: unknown ups")
	// ErrDriverNotConnected is ERR DRIVER-NOT-CONNECTED: upsd runs but the
	// UPS's driver does not (answered at once when the driver dies).
	ErrDriverNotConnected = errors.New("nut: upsd: driver not connected")
	// ErrDataStale is ERR DATA-STALE: the driver stopped refreshing the data.
	ErrDataStale = errors.New("nut: upsd: data stale")
	// ErrVarNotSupported is ERR VAR-NOT-SUPPORTED: the UPS has no such variable.
	ErrVarNotSupported = errors.New("nut: upsd: variable not supported")
)

// codeSentinels maps upsd's ERR codes to their sentinels.
var codeSentinels = map[string]error{
	"ACCESS-DENIED":        ErrAccessDenied,
	"UNKNOWN-UPS":          ErrUnknownUPS,
	"DRIVER-NOT-CONNECTED": ErrDriverNotConnected,
	"DATA-STALE":           ErrDataStale,
	"VAR-NOT-SUPPORTED":    ErrVarNotSupported,
}

// ServerError is an ERR line from upsd: `ERR CODE [extra]`. errors.Is
// matches it against the sentinel of its code (ErrAccessDenied, …).
type ServerError struct {
	Code  string // e.g. ACCESS-DENIED
	Extra string // the rest of the line, usually empty
}

// Error is the line as upsd sent it, prefixed: "nut: upsd: ERR ACCESS-DENIED".
func (e *ServerError) Error() string {
	s := "nut: upsd: ERR " + e.Code
	if e.Extra != "" {
		s += " " + e.Extra
	}
	return s
}

// Is reports whether target is the sentinel of e's code.
func (e *ServerError) Is(target error) bool {
	s, ok := codeSentinels[e.Code]
	return ok && s == target
}
