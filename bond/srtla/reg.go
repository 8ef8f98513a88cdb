package srtla

// ID is an SRTLA group ID: the sender's HalfIDLen random bytes, then the
// receiver's.
type ID [IDLen]byte

// Reg1 opens a group: the sender's ID, of which the receiver keeps the first
// half. Exactly RegLen bytes.
type Reg1 struct {
	ID ID
}

// Reg2 carries a full group ID: the receiver's answer to REG1, and the
// sender's registration of each link with the group. Exactly RegLen bytes.
type Reg2 struct {
	ID ID
}

// Type implements Packet.
func (r *Reg1) Type() Type { return TypeReg1 }

// MarshalSize implements Packet.
func (r *Reg1) MarshalSize() int { return RegLen }

// Marshal implements Packet.
func (r *Reg1) Marshal() ([]byte, error) { return marshalReg(TypeReg1, &r.ID), nil }

// Unmarshal implements Packet.
func (r *Reg1) Unmarshal(b []byte) error { return unmarshalReg(b, TypeReg1, &r.ID) }

// Type implements Packet.
func (r *Reg2) Type() Type { return TypeReg2 }

// MarshalSize implements Packet.
func (r *Reg2) MarshalSize() int { return RegLen }

// Marshal implements Packet.
func (r *Reg2) Marshal() ([]byte, error) { return marshalReg(TypeReg2, &r.ID), nil }

// Unmarshal implements Packet.
func (r *Reg2) Unmarshal(b []byte) error { return unmarshalReg(b, TypeReg2, &r.ID) }

func marshalReg(t Type, id *ID) []byte {
	b := make([]byte, RegLen)
	putType(b, t)
	copy(b[2:], id[:])
	return b
}

// unmarshalReg insists on exactly RegLen bytes, as the reference receiver
// does: anything else is not a registration.
func unmarshalReg(b []byte, t Type, id *ID) error {
	if err := checkType(b, t); err != nil {
		return err
	}
	switch {
	case len(b) < RegLen:
		return ErrPacketTooShort
	case len(b) > RegLen:
		return ErrPacketTooLong
	}
	copy(id[:], b[2:])
	return nil
}
