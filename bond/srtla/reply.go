package srtla

// ReplyLen is the length of the receiver's bare replies.
const ReplyLen = 2

// Reply is one of the receiver's bare replies to a registration: REG3 (link
// accepted), REG_ERR (temporary failure: back off and retry) or REG_NGP (no
// such group: register again with REG1). Trailing bytes are ignored, as every
// known sender does (a receiver may pad replies).
type Reply struct {
	// Kind is TypeReg3, TypeRegErr or TypeRegNGP.
	Kind Type
}

// Type implements Packet.
func (r *Reply) Type() Type { return r.Kind }

// MarshalSize implements Packet.
func (r *Reply) MarshalSize() int { return ReplyLen }

// Marshal implements Packet.
func (r *Reply) Marshal() ([]byte, error) {
	if !isReply(r.Kind) {
		return nil, ErrWrongType
	}
	b := make([]byte, ReplyLen)
	putType(b, r.Kind)
	return b, nil
}

// Unmarshal implements Packet.
func (r *Reply) Unmarshal(b []byte) error {
	if len(b) < 2 {
		return ErrPacketTooShort
	}
	t := TypeOf(b)
	if !isReply(t) {
		return ErrWrongType
	}
	if err := checkType(b, t); err != nil {
		return err
	}
	r.Kind = t
	return nil
}

func isReply(t Type) bool { return t == TypeReg3 || t == TypeRegErr || t == TypeRegNGP }
