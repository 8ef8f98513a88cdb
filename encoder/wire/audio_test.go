package wire

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestAudioPayloadRoundTripsLevelsAndFrame(t *testing.T) {
	adts := []byte{0xff, 0xf1, 1, 2, 3}
	p := AppendAudio(nil, AudioLevels{Peak: 0.5, RMS: 0.25}, adts)
	if len(p) != AudioLevelsSize+len(adts) {
		t.Fatalf("payload %d bytes", len(p))
	}
	l, f, err := SplitAudio(p)
	if err != nil || l.Peak != 0.5 || l.RMS != 0.25 || !bytes.Equal(f, adts) {
		t.Fatalf("SplitAudio = %+v %x %v", l, f, err)
	}
	if d := l.PeakDBFS(); math.Abs(d-(-6.0206)) > 0.001 {
		t.Fatalf("peak %v dBFS", d)
	}
}

// A child that sends an old-style payload (no levels) or garbage levels is
// refused, not read as a loud or silent frame.
func TestSplitAudioRefusesShortPayloadsAndNonFiniteLevels(t *testing.T) {
	nan := AppendAudio(nil, AudioLevels{Peak: float32(math.NaN())}, []byte{1})
	neg := AppendAudio(nil, AudioLevels{RMS: -1}, []byte{1})
	inf := AppendAudio(nil, AudioLevels{Peak: float32(math.Inf(1))}, []byte{1})
	for name, p := range map[string][]byte{"empty": nil, "levels only": make([]byte, AudioLevelsSize), "nan": nan, "negative": neg, "inf": inf} {
		if _, _, err := SplitAudio(p); !errors.Is(err, ErrAudioPayload) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

func TestDBFSFloorsSilence(t *testing.T) {
	if DBFS(0) != MinDBFS || DBFS(1) != 0 || DBFS(1e-9) != MinDBFS {
		t.Fatalf("DBFS: %v %v %v", DBFS(0), DBFS(1), DBFS(1e-9))
	}
}
