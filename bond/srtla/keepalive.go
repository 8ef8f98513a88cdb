package srtla

import "encoding/binary"

// Keepalive lengths (SRTLA.md §6): the BELABOX sender's bare type, the
// irlserver/CERALIVE timestamped one, and the one with link statistics.
const (
	KeepaliveLen      = 2
	KeepaliveTSLen    = 10
	KeepaliveStatsLen = 38
)

// keepaliveMagic and keepaliveVersion open the statistics extension.
const (
	keepaliveMagic   = 0xC01F
	keepaliveVersion = 0x0001
)

// Keepalive is an SRTLA KEEPALIVE. Receivers echo it byte for byte, so a
// sender that puts its clock in it measures the link's round trip from the
// echo. Trailing bytes beyond what a variant defines are ignored (CERALIVE
// pads replies to 32 bytes because some carrier NATs drop tiny frames).
type Keepalive struct {
	// HasTimestamp selects the 10-byte form (or the 38-byte one with Stats).
	HasTimestamp bool
	// TimestampMs is the sender's clock in milliseconds.
	TimestampMs uint64
	// Stats, when set with HasTimestamp, selects the 38-byte form.
	Stats *KeepaliveStats
}

// KeepaliveStats is the 38-byte extension: a sender's view of one link.
type KeepaliveStats struct {
	ConnID   uint32
	Window   int32
	InFlight int32
	RTTms    uint32
	NAKs     uint32
	BytesPS  uint32
}

// Type implements Packet.
func (k *Keepalive) Type() Type { return TypeKeepalive }

// MarshalSize implements Packet.
func (k *Keepalive) MarshalSize() int {
	switch {
	case k.HasTimestamp && k.Stats != nil:
		return KeepaliveStatsLen
	case k.HasTimestamp:
		return KeepaliveTSLen
	default:
		return KeepaliveLen
	}
}

// Marshal implements Packet.
func (k *Keepalive) Marshal() ([]byte, error) {
	b := make([]byte, k.MarshalSize())
	putType(b, TypeKeepalive)
	if k.HasTimestamp {
		binary.BigEndian.PutUint64(b[2:], k.TimestampMs)
	}
	if k.HasTimestamp && k.Stats != nil {
		s := k.Stats
		binary.BigEndian.PutUint16(b[10:], keepaliveMagic)
		binary.BigEndian.PutUint16(b[12:], keepaliveVersion)
		binary.BigEndian.PutUint32(b[14:], s.ConnID)
		binary.BigEndian.PutUint32(b[18:], uint32(s.Window))
		binary.BigEndian.PutUint32(b[22:], uint32(s.InFlight))
		binary.BigEndian.PutUint32(b[26:], s.RTTms)
		binary.BigEndian.PutUint32(b[30:], s.NAKs)
		binary.BigEndian.PutUint32(b[34:], s.BytesPS)
	}
	return b, nil
}

// Unmarshal implements Packet. Any length from 2 to MTU is a keepalive.
func (k *Keepalive) Unmarshal(b []byte) error {
	if err := checkType(b, TypeKeepalive); err != nil {
		return err
	}
	*k = Keepalive{}
	if len(b) < KeepaliveTSLen {
		return nil
	}
	k.HasTimestamp = true
	k.TimestampMs = binary.BigEndian.Uint64(b[2:])
	if len(b) < KeepaliveStatsLen ||
		binary.BigEndian.Uint16(b[10:]) != keepaliveMagic ||
		binary.BigEndian.Uint16(b[12:]) != keepaliveVersion {
		return nil
	}
	k.Stats = &KeepaliveStats{
		ConnID:   binary.BigEndian.Uint32(b[14:]),
		Window:   int32(binary.BigEndian.Uint32(b[18:])),
		InFlight: int32(binary.BigEndian.Uint32(b[22:])),
		RTTms:    binary.BigEndian.Uint32(b[26:]),
		NAKs:     binary.BigEndian.Uint32(b[30:]),
		BytesPS:  binary.BigEndian.Uint32(b[34:]),
	}
	return nil
}
