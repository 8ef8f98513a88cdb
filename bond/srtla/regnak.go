package srtla

// RegNAK is the receiver's final refusal of a registration, optionally with
// a reason in text. Defined by the protocol; the BELABOX receiver never sends
// it, ours does for a refusal that retrying cannot cure.
type RegNAK struct {
	Reason string
}

// Type implements Packet.
func (r *RegNAK) Type() Type { return TypeRegNAK }

// MarshalSize implements Packet.
func (r *RegNAK) MarshalSize() int { return 2 + len(r.Reason) }

// Marshal implements Packet.
func (r *RegNAK) Marshal() ([]byte, error) {
	if r.MarshalSize() > MTU {
		return nil, ErrPacketTooLong
	}
	b := make([]byte, r.MarshalSize())
	putType(b, TypeRegNAK)
	copy(b[2:], r.Reason)
	return b, nil
}

// Unmarshal implements Packet.
func (r *RegNAK) Unmarshal(b []byte) error {
	if err := checkType(b, TypeRegNAK); err != nil {
		return err
	}
	r.Reason = string(b[2:])
	return nil
}
