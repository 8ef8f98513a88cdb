package av

import (
	"testing"

	"onair/encoder/wire"
)

// Without -start-index an encoder starts at the ring head (-1), never at
// index 0 (an old picture, or one long overwritten).
func TestEncoderConfigOfArgsWithoutStartIndexStartsAtTheRingHead(t *testing.T) {
	a := wire.ChildArgs{Role: wire.RoleEncode, Name: "encoder-a", Ring: "/r", GOP: 60, BitrateKbps: 3000, Preset: "fast", ResetEveryGOP: true}
	got := EncoderConfigOf(a)
	want := EncoderConfig{Name: "encoder-a", RingPath: "/r", GOP: 60, BitrateKbps: 3000, Preset: "fast", ResetEveryGOP: true, StartIndex: -1}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	zero := int64(0)
	a.StartIndex = &zero
	if got := EncoderConfigOf(a).StartIndex; got != 0 {
		t.Fatalf("-start-index 0 gave StartIndex %d, want 0", got)
	}
}

func TestCaptureAndAudioConfigOfArgsCarryEveryField(t *testing.T) {
	c := CaptureConfigOf(wire.ChildArgs{Role: wire.RoleCapture, Name: "capture", Ring: "/r", Source: "/dev/video0",
		InputFormat: "mjpeg", VideoSize: "1920x1080", Framerate: "25"})
	if c != (CaptureConfig{Name: "capture", RingPath: "/r", Source: "/dev/video0", InputFormat: "mjpeg", VideoSize: "1920x1080", Framerate: "25"}) {
		t.Fatalf("capture config %+v", c)
	}
	a := AudioConfigOf(wire.ChildArgs{Role: wire.RoleAudio, Name: "audio-main", Source: "alsa:hw:0", EpochNs: 42, BitrateKbps: 96})
	if a != (AudioConfig{Name: "audio-main", Source: "alsa:hw:0", EpochNs: 42, BitrateKbps: 96}) {
		t.Fatalf("audio config %+v", a)
	}
}
