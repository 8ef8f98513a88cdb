package srtla

import "encoding/binary"

// AckBatch is how many SRT data sequence numbers a receiver lists in one
// SRTLA ACK (RECV_ACK_INT; the BELABOX receiver always sends 10, so 44 bytes).
const AckBatch = 10

// ackHeaderLen is the type16 plus two zero bytes.
const ackHeaderLen = 4

// MaxAckSNs is the most sequence numbers one ACK can carry within the MTU.
const MaxAckSNs = (MTU - ackHeaderLen) / 4

// Ack is an SRTLA ACK: the SRT data sequence numbers a receiver got on the
// link the ACK arrives on, in arrival order. Senders accept any count.
type Ack struct {
	SNs []uint32
}

// Type implements Packet.
func (a *Ack) Type() Type { return TypeAck }

// MarshalSize implements Packet.
func (a *Ack) MarshalSize() int { return ackHeaderLen + 4*len(a.SNs) }

// Marshal implements Packet.
func (a *Ack) Marshal() ([]byte, error) {
	if len(a.SNs) > MaxAckSNs {
		return nil, ErrPacketTooLong
	}
	b := make([]byte, a.MarshalSize())
	putType(b, TypeAck)
	for i, sn := range a.SNs {
		binary.BigEndian.PutUint32(b[ackHeaderLen+4*i:], sn&0x7FFFFFFF)
	}
	return b, nil
}

// Unmarshal implements Packet: 4 bytes of header, then whole u32 words. It
// reuses the capacity of SNs, so a receive loop that keeps one Ack does not
// allocate per packet.
func (a *Ack) Unmarshal(b []byte) error {
	if err := checkType(b, TypeAck); err != nil {
		return err
	}
	if len(b) < ackHeaderLen {
		return ErrPacketTooShort
	}
	if (len(b)-ackHeaderLen)%4 != 0 {
		return ErrBadLength
	}
	n := (len(b) - ackHeaderLen) / 4
	if cap(a.SNs) < n {
		a.SNs = make([]uint32, n)
	}
	a.SNs = a.SNs[:n]
	for i := range n {
		a.SNs[i] = binary.BigEndian.Uint32(b[ackHeaderLen+4*i:]) & 0x7FFFFFFF
	}
	return nil
}
