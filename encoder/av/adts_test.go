package av

import (
	"bytes"
	"errors"
	"testing"
)

func TestADTSRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		rate, ch, n int
	}{{48000, 2, 371}, {44100, 1, 0}, {8000, 7, 8184}} {
		b, err := AppendADTS(nil, tc.rate, tc.ch, tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != ADTSHeaderSize {
			t.Fatalf("header is %d bytes", len(b))
		}
		h, err := ParseADTS(b)
		if err != nil {
			t.Fatal(err)
		}
		if h != (ADTSHeader{SampleRate: tc.rate, Channels: tc.ch, FrameLen: tc.n + 7}) {
			t.Fatalf("%+v: parsed %+v", tc, h)
		}
	}
}

// The first header of `ffmpeg -f lavfi -i sine=…:sample_rate=48000 -ac 2
// -c:a aac -f adts` (FFmpeg 5.1): a 265-byte payload, 272-byte frame.
func TestADTSMatchesFFmpeg(t *testing.T) {
	want := []byte{0xff, 0xf1, 0x4c, 0x80, 0x22, 0x1f, 0xfc}
	got, _ := AppendADTS(nil, 48000, 2, 265)
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
}

func TestADTSRejects(t *testing.T) {
	if _, err := AppendADTS(nil, 47000, 2, 10); err == nil {
		t.Fatal("odd rate accepted")
	}
	if _, err := AppendADTS(nil, 48000, 2, 9000); err == nil {
		t.Fatal("oversized frame accepted")
	}
	if _, err := ParseADTS([]byte{0xff, 0x00, 0, 0, 0, 0, 0}); !errors.Is(err, ErrADTS) {
		t.Fatalf("bad sync: %v", err)
	}
}
