package tone

import (
	"encoding/binary"
	"math"
	"testing"
)

func sine(f float64, n int, amp float64) []byte {
	b := make([]byte, 0, 2*n)
	for i := range n {
		b = binary.LittleEndian.AppendUint16(b, uint16(int16(amp*32767*math.Sin(2*math.Pi*f*float64(i)/Rate))))
	}
	return b
}

// The e2e tests read switches from these names: a 440 Hz window must never
// read as 1 kHz or silence, in 100 ms and in 10 ms windows.
func TestNamesTellMainBackupAndSilenceApart(t *testing.T) {
	pcm := append(append(sine(1000, 48000, 0.125), make([]byte, 2*48000)...), sine(440, 48000, 0.125)...)
	for _, win := range []int{4800, 480} {
		got := Names(pcm, win)
		n := 48000 / win
		runs, other := Runs(got, 2)
		if Pattern(runs) != "M.B" || other > 1 || runs[0].N < n-1 || runs[1].N < n-1 || runs[2].N < n-1 {
			t.Errorf("window %d: %s", win, got)
		}
	}
}

// A window that holds half a 1 kHz tone and half silence has the zero
// crossings of 440 Hz: such a lone window must not count as a switch.
func TestALoneWindowBetweenRunsIsNotARun(t *testing.T) {
	runs, other := Runs("MMMMB....BBBB?MMMM", 2)
	if Pattern(runs) != "M.BM" || other != 1 {
		t.Fatalf("runs %+v, other %d", runs, other)
	}
}
