package api

import "time"

// TunnelState is where the reverse SSH maintenance tunnel (package
// maintenance/tunnel) is.
//
//	connecting dialling the maintenance host, the SSH handshake, the remote forward request
//	up         the remote forward is open: the maintenance host's loopback port reaches the box
//	backoff    the last attempt failed (network, keepalive, forward refused); waiting until RetryAt
//	refused    like backoff, but the last failure was a refusal that waiting will not fix: the
//	           host key is not in known_hosts or differs, or the user/key was not accepted
type TunnelState string

// Tunnel states.
const (
	TunnelConnecting TunnelState = "connecting"
	TunnelUp         TunnelState = "up"
	TunnelBackoff    TunnelState = "backoff"
	TunnelRefused    TunnelState = "refused"
)

// TunnelStatus is the maintenance tunnel as it is now.
type TunnelStatus struct {
	State TunnelState `json:"state"`
	// Target is the maintenance host, "user@host:port".
	Target string `json:"target"`
	// RemotePort is the port opened on the maintenance host's loopback.
	RemotePort int `json:"remote_port"`
	// Since is when State was entered.
	Since time.Time `json:"since"`
	// Connects counts the tunnels that came up (the remote forward opened).
	Connects int `json:"connects"`
	// LastError is the last failure, empty before the first one.
	LastError string `json:"last_error,omitempty"`
	// RetryAt is when the next attempt starts, in backoff and refused.
	RetryAt time.Time `json:"retry_at,omitzero"`
	// Sessions are the forwarded connections open now.
	Sessions int `json:"sessions"`
	// BytesIn went from the maintenance host to the box (into Local),
	// BytesOut the other way, over all forwarded connections since start.
	BytesIn  uint64 `json:"bytes_in"`
	BytesOut uint64 `json:"bytes_out"`
}
