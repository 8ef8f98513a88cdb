package pulselab

import (
	"encoding/binary"
	"math"

	"onair/encoder/wire"
)

// Tone is what Analyze finds in a stretch of audio.
type Tone struct {
	// FreqHz is the dominant frequency estimated from the first channel's
	// upward zero crossings: exact to ±1 crossing for a pure tone, 0 for
	// silence, meaningless for noise or mixes.
	FreqHz float64
	// Levels are the peak and RMS of the loudest channel, as the audio
	// chains measure them (wire.AudioLevels: 1 = full scale).
	Levels wire.AudioLevels
	// Frames is the number of sample frames analysed; Silent how many of
	// them are all zero (digital silence: a tone has some too, where it
	// crosses zero exactly); LongestSilent the longest run of them (a
	// dropout, or silence).
	Frames, Silent, LongestSilent int
}

// PeakDBFS and RMSDBFS are the levels in dBFS (wire.MinDBFS for silence).
func (t Tone) PeakDBFS() float64 { return t.Levels.PeakDBFS() }

// RMSDBFS is the RMS level of the loudest channel in dBFS.
func (t Tone) RMSDBFS() float64 { return t.Levels.RMSDBFS() }

// Analyze (test-only; internal/tone names the tones of whole recordings)
// measures interleaved signed 16-bit little-endian PCM (what
// ffmpeg -f s16le writes) of channels channels at rate Hz. A trailing
// partial frame is ignored.
func Analyze(pcm []byte, channels, rate int) Tone {
	if channels <= 0 || rate <= 0 {
		return Tone{}
	}
	frameSize := 2 * channels
	n := len(pcm) / frameSize
	t := Tone{Frames: n}
	if n == 0 {
		return t
	}
	peak := make([]float64, channels)
	sq := make([]float64, channels)
	crossings, run := 0, 0
	prev := int16(0)
	for i := range n {
		silent := true
		for c := range channels {
			v := int16(binary.LittleEndian.Uint16(pcm[i*frameSize+2*c:]))
			if v != 0 {
				silent = false
			}
			f := float64(v) / 32768
			peak[c] = max(peak[c], math.Abs(f))
			sq[c] += f * f
			if c == 0 {
				if i > 0 && prev < 0 && v >= 0 {
					crossings++
				}
				prev = v
			}
		}
		if silent {
			t.Silent++
			run++
			t.LongestSilent = max(t.LongestSilent, run)
		} else {
			run = 0
		}
	}
	for c := range channels {
		t.Levels.Peak = max(t.Levels.Peak, float32(peak[c]))
		t.Levels.RMS = max(t.Levels.RMS, float32(math.Sqrt(sq[c]/float64(n))))
	}
	t.FreqHz = float64(crossings) * float64(rate) / float64(n)
	return t
}
