package api

import "time"

// UplinkPolicy is how an uplink carries the stream (config uplinks[].policy).
type UplinkPolicy string

// Uplink policies.
const (
	// PolicyBond shares the load with the other bond links.
	PolicyBond UplinkPolicy = "bond"
	// PolicyDuplicate also sends every packet on this link, so losing any one
	// path is hitless (SRT drops the copy).
	PolicyDuplicate UplinkPolicy = "duplicate"
	// PolicyBackup carries stream bytes only while the other links cannot
	// carry the current bitrate (metered links).
	PolicyBackup UplinkPolicy = "backup"
)

// UplinkState is where one uplink is, from the interface to the SRTLA link.
//
//	absent      no interface matches the uplink's name or glob
//	down        the interface exists but has no carrier or no usable address
//	registering the link has an address and is registering with the receiver
//	up          registered and alive: it may carry stream bytes
//	dead        registered once, but nothing received for the link timeout
//	disabled    switched off by the operator (POST /api/uplinks/{name})
//	capped      reached its cap_mb: keeps alive, carries no stream bytes
type UplinkState string

// Uplink states.
const (
	UplinkAbsent      UplinkState = "absent"
	UplinkDown        UplinkState = "down"
	UplinkRegistering UplinkState = "registering"
	UplinkUp          UplinkState = "up"
	UplinkDead        UplinkState = "dead"
	UplinkDisabled    UplinkState = "disabled"
	UplinkCapped      UplinkState = "capped"
)

// UplinkStatus is one configured uplink.
type UplinkStatus struct {
	Name      string       `json:"name"`
	Interface string       `json:"interface"` // the interface it matched, or the configured glob while absent
	Policy    UplinkPolicy `json:"policy"`
	State     UplinkState  `json:"state"`
	Enabled   bool         `json:"enabled"`
	// Carrying is true while the link carries stream bytes (a backup link
	// only while it is engaged).
	Carrying  bool     `json:"carrying"`
	Addresses []string `json:"addresses"` // source addresses the links are bound to
	// RTTms is the round-trip time measured with timestamped keepalives.
	RTTms float64 `json:"rtt_ms"`
	// LossPct is the share of packets sent on this link that SRT reported
	// lost, over the last few seconds.
	LossPct        float64 `json:"loss_pct"`
	ThroughputKbps float64 `json:"throughput_kbps"`
	BytesSent      uint64  `json:"bytes_sent"`
	CapBytes       uint64  `json:"cap_bytes,omitzero"` // 0: no cap
	Window         int     `json:"window"`             // SRTLA window, in packets x 1000
	InFlight       int     `json:"in_flight"`
	LastError      string  `json:"last_error,omitempty"`
}

// GroupState is the SRTLA group's registration with the receiver.
//
//	unregistered  no link has reached the receiver yet
//	registering   REG1 sent, waiting for REG2
//	registered    the group exists and at least one link is up
//	outage        registered once, no link alive now (held for output.outage_hold)
type GroupState string

// Group states.
const (
	GroupUnregistered GroupState = "unregistered"
	GroupRegistering  GroupState = "registering"
	GroupRegistered   GroupState = "registered"
	GroupOutage       GroupState = "outage"
)

// BitrateStatus is the video bitrate and who set it last.
type BitrateStatus struct {
	Kbps    int  `json:"kbps"`
	MinKbps int  `json:"min_kbps"`
	MaxKbps int  `json:"max_kbps"`
	ABR     bool `json:"abr"`
	// Reason says why the bitrate last changed ("start", "congestion: send
	// buffer 420 ms", "capacity back", "operator", …).
	Reason    string    `json:"reason"`
	ChangedAt time.Time `json:"changed_at,omitzero"`
}

// BondStatus is the bonding layer (present only for an srtla:// output).
type BondStatus struct {
	Group       GroupState `json:"group"`
	Receiver    string     `json:"receiver"`  // host:port of the SRTLA receiver
	Registers   int        `json:"registers"` // REG1 sent that got a group
	OutageSince time.Time  `json:"outage_since,omitzero"`
	// RetransSuppressed counts SRT retransmissions dropped because the same
	// packet went out less than one round trip before (a NAK storm).
	RetransSuppressed uint64         `json:"retrans_suppressed"`
	Bitrate           BitrateStatus  `json:"bitrate"`
	Uplinks           []UplinkStatus `json:"uplinks"`
}

// UplinkRequest is the body of POST /api/uplinks/{name}.
type UplinkRequest struct {
	Enabled bool `json:"enabled"`
}
