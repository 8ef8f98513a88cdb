package srtla

import (
	"encoding/binary"
	"time"
)

// SRT control types an SRTLA proxy reads (type16 of an SRT control packet).
const (
	SRTHandshake Type = 0x8000
	SRTKeepalive Type = 0x8001
	SRTAck       Type = 0x8002
	SRTNak       Type = 0x8003
	SRTShutdown  Type = 0x8005
	SRTAckAck    Type = 0x8006
)

// srtCIF is where an SRT control packet's control information field starts.
const srtCIF = 16

// seqMask keeps the 31 bits of an SRT sequence number.
const seqMask = 0x7FFFFFFF

// DataSN is the sequence number of an SRT data packet.
func DataSN(b []byte) (uint32, error) {
	if len(b) < MinSRTLen {
		return 0, ErrPacketTooShort
	}
	if Classify(b) != KindSRTData {
		return 0, ErrNotSRTData
	}
	return binary.BigEndian.Uint32(b) & seqMask, nil
}

// DataRetransmitted reports the R flag of an SRT data packet (bit 26 of the
// second word): the packet is a retransmission. False for anything shorter
// than the SRT header.
func DataRetransmitted(b []byte) bool {
	return len(b) >= MinSRTLen && Classify(b) == KindSRTData && b[4]&0x04 != 0
}

// AckLastSN is the "last acknowledged" sequence number of an SRT ACK (full
// or light): every data packet before it has arrived. The reference reads it
// without a length check; this wants the 20 bytes it lives in.
func AckLastSN(b []byte) (uint32, error) {
	if len(b) < srtCIF+4 {
		return 0, ErrPacketTooShort
	}
	if TypeOf(b) != SRTAck {
		return 0, ErrNotSRTControl
	}
	return binary.BigEndian.Uint32(b[srtCIF:]) & seqMask, nil
}

// AckRTT is the round-trip time a full SRT ACK reports (the second CIF
// word, in microseconds); light ACKs (20 bytes) carry none.
func AckRTT(b []byte) (time.Duration, bool) {
	if len(b) < srtCIF+8 || TypeOf(b) != SRTAck {
		return 0, false
	}
	us := binary.BigEndian.Uint32(b[srtCIF+4:])
	return time.Duration(us) * time.Microsecond, us > 0
}

// LossRange is an inclusive range of lost sequence numbers; a single loss has
// From == To.
type LossRange struct {
	From, To uint32
}

// NakLoss decodes the loss list of an SRT NAK: a word with bit 31 set opens
// a range whose inclusive end is the next word; any other word is one lost
// number. A range without its end, a range that runs backwards by more than
// half the sequence space, or a list that is not whole words is
// ErrBadLossList.
func NakLoss(b []byte) ([]LossRange, error) {
	if len(b) < srtCIF+4 {
		return nil, ErrPacketTooShort
	}
	if TypeOf(b) != SRTNak {
		return nil, ErrNotSRTControl
	}
	if len(b) > MTU {
		return nil, ErrPacketTooLong
	}
	if (len(b)-srtCIF)%4 != 0 {
		return nil, ErrBadLossList
	}
	words := (len(b) - srtCIF) / 4
	out := make([]LossRange, 0, words)
	for i := 0; i < words; i++ {
		w := binary.BigEndian.Uint32(b[srtCIF+4*i:])
		if w&0x80000000 == 0 {
			out = append(out, LossRange{From: w, To: w})
			continue
		}
		if i+1 >= words {
			return nil, ErrBadLossList
		}
		i++
		from, to := w&seqMask, binary.BigEndian.Uint32(b[srtCIF+4*i:])&seqMask
		if SeqLess(to, from) {
			return nil, ErrBadLossList
		}
		out = append(out, LossRange{From: from, To: to})
	}
	return out, nil
}

// SeqLess reports whether SRT sequence number a comes before b, across the
// 31-bit wrap (the reference compares them as plain signed integers and gets
// it wrong at the wrap).
func SeqLess(a, b uint32) bool {
	d := (b - a) & seqMask
	return d != 0 && d < 1<<30
}

// SeqDiff is how far b is after a (negative when before), across the wrap.
func SeqDiff(a, b uint32) int32 {
	d := (b - a) & seqMask
	if d >= 1<<30 {
		return int32(int64(d) - 1<<31)
	}
	return int32(d)
}
