// Package srtla is the SRTLA wire format (../shared/SRTLA.md): the packet
// types SRTLA adds in SRT's unused control-type space (keepalive, ACK, the
// registration handshake) and the few SRT header fields an SRTLA proxy reads
// (data sequence numbers, the ACK's last-acknowledged number, NAK loss lists).
// One packet type a file; each is a struct with Marshal, Unmarshal and
// MarshalSize; lengths are checked before any read; errors are sentinels so
// callers count malformed packets by kind.
//
// It is written by hand from the protocol description, not from the GPL/AGPL
// reference programs, and follows their wire format byte for byte: every
// multi-byte field is big-endian, REG1 and REG2 are exactly 258 bytes.
//
// Not for: sockets, timers or group state (the sender in package bond, the
// receiver in package ingest); SRT itself (gosrt and libsrt do that).
package srtla

import "encoding/binary"

// Type is the first 16 bits of an SRTLA control packet.
type Type uint16

// SRTLA packet types (SRTLA.md §3).
const (
	TypeKeepalive Type = 0x9000
	TypeAck       Type = 0x9100
	TypeReg1      Type = 0x9200
	TypeReg2      Type = 0x9201
	TypeReg3      Type = 0x9202
	TypeRegErr    Type = 0x9210
	TypeRegNGP    Type = 0x9211
	TypeRegNAK    Type = 0x9212
)

// Sizes and limits of the wire format.
const (
	// IDLen is the length of a group ID: the sender's 128 bytes followed by
	// the receiver's 128.
	IDLen = 256
	// HalfIDLen is the part of the ID each side chooses.
	HalfIDLen = IDLen / 2
	// RegLen is the exact length of REG1 and REG2.
	RegLen = 2 + IDLen
	// MTU is the receive buffer size both sides use; nothing longer is valid.
	MTU = 1500
	// MinSRTLen is the SRT header size: a receiver never forwards a shorter
	// datagram to SRT.
	MinSRTLen = 16
)

// Kind classifies a datagram (SRTLA.md §2).
type Kind int

// Kinds of datagram.
const (
	KindInvalid    Kind = iota // shorter than 2 bytes
	KindSRTData                // bit 31 of the first u32 clear
	KindSRTControl             // SRT control (handshake, ACK, NAK, shutdown, …)
	KindSRTLA                  // type16 in 0x9000–0x92FF: never forwarded to SRT
)

// Classify tells what b is. SRTLA types are checked before SRT control,
// because their bit 15 is set too.
func Classify(b []byte) Kind {
	if len(b) < 2 {
		return KindInvalid
	}
	t := binary.BigEndian.Uint16(b)
	switch {
	case t >= 0x9000 && t <= 0x92FF:
		return KindSRTLA
	case t&0x8000 != 0:
		return KindSRTControl
	default:
		return KindSRTData
	}
}

// TypeOf is the first 16 bits of b, or 0 when b is shorter than 2 bytes.
func TypeOf(b []byte) Type {
	if len(b) < 2 {
		return 0
	}
	return Type(binary.BigEndian.Uint16(b))
}

// Packet is one SRTLA control packet.
type Packet interface {
	// Type is the packet's type16.
	Type() Type
	// MarshalSize is the length Marshal returns.
	MarshalSize() int
	// Marshal encodes the packet.
	Marshal() ([]byte, error)
	// Unmarshal decodes b into the packet; b is not retained.
	Unmarshal(b []byte) error
}

// Parse decodes an SRTLA control packet of any type. A datagram that is not
// SRTLA gives ErrNotSRTLA; a known type with a bad length gives
// ErrPacketTooShort, ErrPacketTooLong or ErrBadLength; an SRTLA type this
// package does not know gives ErrUnknownType.
func Parse(b []byte) (Packet, error) {
	if Classify(b) != KindSRTLA {
		return nil, ErrNotSRTLA
	}
	var p Packet
	switch TypeOf(b) {
	case TypeKeepalive:
		p = &Keepalive{}
	case TypeAck:
		p = &Ack{}
	case TypeReg1:
		p = &Reg1{}
	case TypeReg2:
		p = &Reg2{}
	case TypeReg3, TypeRegErr, TypeRegNGP:
		p = &Reply{}
	case TypeRegNAK:
		p = &RegNAK{}
	default:
		return nil, ErrUnknownType
	}
	if err := p.Unmarshal(b); err != nil {
		return nil, err
	}
	return p, nil
}

func putType(b []byte, t Type) { binary.BigEndian.PutUint16(b, uint16(t)) }
