package av

import (
	"errors"
	"fmt"
)

// ADTSHeaderSize is the size of an ADTS header without CRC.
const ADTSHeaderSize = 7

// adtsRates lists the sampling frequencies by ADTS sampling_frequency_index.
var adtsRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// ErrADTS reports a buffer that does not start with a valid ADTS header.
var ErrADTS = errors.New("av: bad adts header")

// ADTSHeader is the part of an ADTS header onair cares about.
type ADTSHeader struct {
	SampleRate int
	Channels   int // channel_configuration, 1..7
	FrameLen   int // header + payload, in bytes
}

// AppendADTS appends an ADTS header (MPEG-4, AAC-LC, no CRC, one raw data
// block) for a raw AAC frame of payloadLen bytes to dst and returns it.
// FFmpeg's aac encoder emits raw frames; MPEG-TS carries AAC as ADTS.
func AppendADTS(dst []byte, sampleRate, channels, payloadLen int) ([]byte, error) {
	sfi := -1
	for i, r := range adtsRates {
		if r == sampleRate {
			sfi = i
			break
		}
	}
	if sfi < 0 {
		return dst, fmt.Errorf("av: adts: unsupported sample rate %d", sampleRate)
	}
	if channels < 1 || channels > 7 {
		return dst, fmt.Errorf("av: adts: unsupported channel count %d", channels)
	}
	n := payloadLen + ADTSHeaderSize
	if n > 0x1fff {
		return dst, fmt.Errorf("av: adts: frame of %d bytes exceeds 8191", n)
	}
	const profileLC = 1 // audio object type 2 (AAC-LC) minus 1
	return append(dst,
		0xff,
		0xf1, // sync, MPEG-4, layer 0, protection_absent=1
		byte(profileLC<<6|sfi<<2|channels>>2),
		byte((channels&3)<<6|n>>11),
		byte(n>>3),
		byte((n&7)<<5|0x1f), // buffer fullness 0x7ff (VBR)
		0xfc,                // fullness low bits, 0 extra raw data blocks
	), nil
}

// ParseADTS parses the header at the start of b.
func ParseADTS(b []byte) (ADTSHeader, error) {
	if len(b) < ADTSHeaderSize {
		return ADTSHeader{}, fmt.Errorf("%w: %d bytes", ErrADTS, len(b))
	}
	if b[0] != 0xff || b[1]&0xf6 != 0xf0 {
		return ADTSHeader{}, fmt.Errorf("%w: no sync word", ErrADTS)
	}
	sfi := int(b[2]>>2) & 0xf
	if sfi >= len(adtsRates) {
		return ADTSHeader{}, fmt.Errorf("%w: sampling index %d", ErrADTS, sfi)
	}
	h := ADTSHeader{
		SampleRate: adtsRates[sfi],
		Channels:   int(b[2]&1)<<2 | int(b[3]>>6),
		FrameLen:   int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5]>>5),
	}
	if h.FrameLen < ADTSHeaderSize {
		return ADTSHeader{}, fmt.Errorf("%w: frame length %d", ErrADTS, h.FrameLen)
	}
	return h, nil
}
