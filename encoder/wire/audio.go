package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// AudioLevelsSize is the length of the levels that open every KindAudio
// payload; the ADTS frame follows them.
const AudioLevelsSize = 8

// ErrAudioPayload reports a KindAudio payload that is too short for its
// levels and a frame, or whose levels are not finite non-negative numbers.
var ErrAudioPayload = errors.New("wire: bad audio payload")

// AudioLevels are the signal levels of one AAC frame's 1024 samples,
// measured by the chain on the samples it encodes (after resampling, before
// the encoder), so silence is judged on the real signal and not on the
// bitstream. Both are linear full-scale amplitudes (1 = 0 dBFS) of the
// loudest channel: Peak is the largest absolute sample, RMS the root mean
// square over the frame.
type AudioLevels struct {
	Peak float32
	RMS  float32
}

// MinDBFS is the floor of DBFS: digital silence (a zero level) reads as it.
const MinDBFS = -120.0

// DBFS converts a linear full-scale level to dBFS, floored at MinDBFS.
func DBFS(level float32) float64 {
	if level <= 0 || math.IsNaN(float64(level)) {
		return MinDBFS
	}
	return max(20*math.Log10(float64(level)), MinDBFS)
}

// PeakDBFS is the frame's peak in dBFS.
func (l AudioLevels) PeakDBFS() float64 { return DBFS(l.Peak) }

// RMSDBFS is the frame's RMS level in dBFS.
func (l AudioLevels) RMSDBFS() float64 { return DBFS(l.RMS) }

// AppendAudio appends a KindAudio payload (levels, then the ADTS frame) to b.
func AppendAudio(b []byte, l AudioLevels, adts []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(l.Peak))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(l.RMS))
	return append(b, adts...)
}

// SplitAudio splits a KindAudio payload into its levels and its ADTS frame
// (a slice of p, not a copy).
func SplitAudio(p []byte) (AudioLevels, []byte, error) {
	if len(p) <= AudioLevelsSize {
		return AudioLevels{}, nil, fmt.Errorf("%w: %d bytes, want levels (%d) and a frame", ErrAudioPayload, len(p), AudioLevelsSize)
	}
	l := AudioLevels{
		Peak: math.Float32frombits(binary.LittleEndian.Uint32(p)),
		RMS:  math.Float32frombits(binary.LittleEndian.Uint32(p[4:])),
	}
	for _, v := range []float32{l.Peak, l.RMS} {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || v < 0 {
			return AudioLevels{}, nil, fmt.Errorf("%w: level %v", ErrAudioPayload, v)
		}
	}
	return l, p[AudioLevelsSize:], nil
}
