// Package tone reads which test tone a recording carries over time: it
// decodes a file's audio with the ffmpeg CLI (an independent decoder) and
// names the dominant tone of every window by counting zero crossings, the
// way the demo and the tests tell the main chain (1 kHz) from the backup
// chain (440 Hz).
//
// Not for: the box itself (the chains measure their own levels), or any
// signal richer than one pure tone at a time.
package tone

import (
	"encoding/binary"
	"fmt"
	"math"
	"os/exec"
	"strings"
)

// Rate is the sample rate Decode delivers.
const Rate = 48000

// Symbols of Names.
const (
	Main    = 'M' // 1 kHz
	Backup  = 'B' // 440 Hz
	Silence = '.' // below -50 dBFS
	Other   = '?' // neither (a window that holds a switch, noise)
)

// Decode returns path's first audio stream as mono 48 kHz signed 16-bit
// little-endian samples.
func Decode(path string) ([]byte, error) {
	pcm, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:a:0",
		"-ac", "1", "-ar", fmt.Sprint(Rate), "-f", "s16le", "pipe:1").Output()
	if err != nil {
		return nil, fmt.Errorf("tone: decode audio of %s: %w", path, err)
	}
	return pcm, nil
}

// Names names every whole window of win samples of pcm (Decode's format):
// one symbol per window.
func Names(pcm []byte, win int) string {
	var b strings.Builder
	for off := 0; off+2*win <= len(pcm); off += 2 * win {
		var sum float64
		cross := 0
		prev := int16(binary.LittleEndian.Uint16(pcm[off:]))
		for i := range win {
			s := int16(binary.LittleEndian.Uint16(pcm[off+2*i:]))
			sum += float64(s) * float64(s)
			if (s >= 0) != (prev >= 0) {
				cross++
			}
			prev = s
		}
		rms := 20 * math.Log10(math.Sqrt(sum/float64(win))/32768+1e-12)
		f := float64(cross) / 2 / (float64(win) / Rate)
		// A window of 10 ms holds 4.4 periods of 440 Hz: ±1 crossing is
		// ±50 Hz there, so the tolerance scales with the window.
		tol := 2 * Rate / float64(win)
		switch {
		case rms < -50:
			b.WriteByte(Silence)
		case math.Abs(f-1000) < max(40, tol):
			b.WriteByte(Main)
		case math.Abs(f-440) < max(30, tol):
			b.WriteByte(Backup)
		default:
			b.WriteByte(Other)
		}
	}
	return b.String()
}

// Run is a stretch of one symbol: windows At to At+N-1.
type Run struct {
	Tone  byte
	At, N int
}

// Runs splits names into runs of one symbol at least minRun windows
// long, leaving out the windows between them (Other, and shorter runs: a
// window that holds part of a tone and part of silence can count like
// the other tone); longestOther is the longest stretch left out.
func Runs(names string, minRun int) (runs []Run, longestOther int) {
	other := 0
	for i := 0; i < len(names); {
		j := i
		for j < len(names) && names[j] == names[i] {
			j++
		}
		if names[i] == Other || j-i < minRun {
			other += j - i
			longestOther = max(longestOther, other)
		} else {
			if n := len(runs); n > 0 && runs[n-1].Tone == names[i] {
				runs[n-1].N = j - runs[n-1].At // the same tone again across a short blip
			} else {
				runs = append(runs, Run{Tone: names[i], At: i, N: j - i})
			}
			other = 0
		}
		i = j
	}
	return runs, longestOther
}

// Pattern is the symbols of runs in order: "MBM".
func Pattern(runs []Run) string {
	var b strings.Builder
	for _, r := range runs {
		b.WriteByte(r.Tone)
	}
	return b.String()
}
