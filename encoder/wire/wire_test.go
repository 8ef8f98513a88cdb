package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
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

// The margin travels in Progress as two optional JSON numbers: a worker that
// predates them sends neither (margin 0: not measured, and valid), and the
// names on the wire are the contract between worker and onaird builds.
func TestProgressMarginIsOptionalOnTheWire(t *testing.T) {
	b, err := json.Marshal(Progress{Index: 7, Frames: 30, Margin: 2.5, MarginMin: 1.75})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"index":7,"frames":30,"lag_frames":0,"margin":2.5,"margin_min":1.75}`; string(b) != want {
		t.Fatalf("progress on the wire:\n got %s\nwant %s", b, want)
	}
	var old Progress
	if err := json.Unmarshal([]byte(`{"index":7,"frames":30,"lag_frames":1}`), &old); err != nil {
		t.Fatal(err)
	}
	if old.Margin != 0 || old.MarginMin != 0 || old.CheckMargin() != nil {
		t.Fatalf("progress of an older worker: margin %v min %v check %v", old.Margin, old.MarginMin, old.CheckMargin())
	}
	if b, _ := json.Marshal(Progress{Index: 7}); bytes.Contains(b, []byte("margin")) {
		t.Fatalf("an unmeasured margin is sent: %s", b)
	}
}

func TestCheckMargin(t *testing.T) {
	for _, c := range []struct {
		x, min float64
		ok     bool
	}{
		{0, 0, true}, {2.5, 1.75, true}, {1, 1, true}, {MaxMargin, 0.01, true},
		{0.5, 0.5, true}, // below real time is a figure, not an error
		{-1, -2, false}, {2, 0, false}, {0, 1, false}, {1, 2, false},
		{MaxMargin + 1, 1, false}, {math.NaN(), 1, false}, {math.Inf(1), 1, false},
	} {
		err := Progress{Margin: c.x, MarginMin: c.min}.CheckMargin()
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrMargin)) {
			t.Errorf("margin %v min %v: %v, want ok %v", c.x, c.min, err, c.ok)
		}
	}
}
