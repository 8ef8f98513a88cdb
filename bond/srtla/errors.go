package srtla

import "errors"

// Errors of the parsers, one per kind of malformed packet, so callers count
// them by kind.
var (
	ErrNotSRTLA       = errors.New("srtla: not an srtla packet")
	ErrUnknownType    = errors.New("srtla: unknown srtla type")
	ErrWrongType      = errors.New("srtla: wrong packet type")
	ErrPacketTooShort = errors.New("srtla: packet too short")
	ErrPacketTooLong  = errors.New("srtla: packet too long")
	ErrBadLength      = errors.New("srtla: bad packet length")
	ErrNotSRTData     = errors.New("srtla: not an srt data packet")
	ErrNotSRTControl  = errors.New("srtla: not an srt control packet")
	ErrBadLossList    = errors.New("srtla: bad srt loss list")
)

func checkType(b []byte, want Type) error {
	if len(b) < 2 {
		return ErrPacketTooShort
	}
	if TypeOf(b) != want {
		return ErrWrongType
	}
	if len(b) > MTU {
		return ErrPacketTooLong
	}
	return nil
}
