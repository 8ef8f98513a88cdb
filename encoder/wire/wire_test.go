package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	h := Header{Kind: KindVideo, Flags: FlagKey | FlagRepeat, Index: 1 << 40, PTS: -5, DTS: 123456789, CaptureNs: 987654321}
	if err := w.Write(h, []byte("access unit")); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteJSON(Header{Kind: KindCommand, Index: 60}, Command{Op: OpReset, AtIndex: 60}); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(Header{Kind: KindProgress}, nil); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&buf)
	got, p, err := r.Read()
	h.Len = uint32(len("access unit"))
	if err != nil || got != h || string(p) != "access unit" {
		t.Fatalf("got %+v %q %v, want %+v", got, p, err, h)
	}
	got, p, err = r.Read()
	if err != nil || got.Kind != KindCommand || string(p) != `{"op":"reset","at_index":60}` {
		t.Fatalf("command: %+v %s %v", got, p, err)
	}
	if got, p, err = r.Read(); err != nil || got.Kind != KindProgress || len(p) != 0 {
		t.Fatalf("empty payload: %+v %v", got, err)
	}
	if _, _, err := r.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("clean end: %v", err)
	}
}

// A child that writes garbage (a libav bug scribbling on fd 3) must be
// recognised as a framing error, never read as a huge allocation or a packet.
func TestCorruptStreamIsFramingError(t *testing.T) {
	var buf bytes.Buffer
	if err := NewWriter(&buf).Write(Header{Kind: KindAudio}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	cases := map[string]func([]byte){
		"bad magic":    func(b []byte) { b[0] = 'X' },
		"bad version":  func(b []byte) { b[2] = 9 },
		"unknown kind": func(b []byte) { b[3] = 77 },
		"huge length":  func(b []byte) { b[40], b[41], b[42], b[43] = 0xff, 0xff, 0xff, 0x7f },
	}
	for name, corrupt := range cases {
		b := append([]byte(nil), good...)
		corrupt(b)
		if _, _, err := NewReader(bytes.NewReader(b)).Read(); !errors.Is(err, ErrFraming) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A clean end is io.EOF itself; a truncated payload wraps io.EOF, so
	// errors.Is cannot tell the two apart here.
	if _, _, err := NewReader(bytes.NewReader(good[:HeaderSize+0])).Read(); err == nil || err == io.EOF { //nolint:errorlint // see above
		t.Errorf("truncated payload: %v", err)
	}
	if _, _, err := NewReader(bytes.NewReader(good[:10])).Read(); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("truncated header: %v", err)
	}
	if err := NewWriter(io.Discard).Write(Header{Kind: KindVideo}, make([]byte, MaxPayload+1)); err == nil {
		t.Error("oversized payload written")
	}
}

func TestTimestamps(t *testing.T) {
	if VideoPTS(30, 30, 1) != 90000 || VideoPTS(1, 30000, 1001) != 3003 {
		t.Fatal("video pts")
	}
	if AudioPTS(1, 48000) != 1920 || AudioPTS(25, 48000) != 48000 {
		t.Fatal("audio pts")
	}
}
