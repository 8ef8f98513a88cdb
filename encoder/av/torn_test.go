//go:build cgo

package av

import (
	"bytes"
	"errors"
	"testing"

	"onair/encoder/wire"
)

// The encoder gives libx264 the ring slot itself (no copy first), so a
// reader lapped while libx264 copied the slot would encode a torn picture.
// The slot is checked after the codec read it: a picture the ring no longer
// holds is never sent, the session that saw it is dropped, and the next
// frame starts a fresh session with an IDR.
func TestPictureOverwrittenWhileEncodedIsNeverSent(t *testing.T) {
	r := newTestRing(t, testW, testH)
	publish := func(i uint64, v byte) {
		buf, err := r.Claim(i)
		if err != nil {
			t.Fatal(err)
		}
		for k := range buf {
			buf[k] = v + byte(k)
		}
		r.Publish(i, int64(i), 0)
	}
	e, err := newX264(EncoderConfig{Name: "torn", BitrateKbps: 2000, GOP: 30, Preset: "veryfast"}, r.Geometry())
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	var out bytes.Buffer
	lk := &link{Writer: wire.NewWriter(&out)}
	for i := uint64(0); i < 3; i++ {
		publish(i, byte(i))
		m, pic, verr := r.View(i)
		if verr != nil {
			t.Fatal(verr)
		}
		if err = e.encode(lk, r, m, pic, i == 0); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	publish(3, 3)
	m, pic, err := r.View(3)
	if err != nil {
		t.Fatal(err)
	}
	// The ring laps the encoder between its View and the codec's read.
	publish(3+uint64(r.Slots()), 9)
	sent := out.Len()
	if err = e.encode(lk, r, m, pic, false); !errors.Is(err, errTorn) {
		t.Fatalf("encode of an overwritten picture: %v, want errTorn", err)
	}
	if out.Len() != sent {
		t.Fatalf("%d bytes sent for the overwritten picture", out.Len()-sent)
	}
	next := 4 + uint64(r.Slots())
	publish(next, 4)
	m, pic, err = r.View(next)
	if err != nil {
		t.Fatal(err)
	}
	// Not asked for an IDR: only a fresh session makes this one.
	if err := e.encode(lk, r, m, pic, false); err != nil {
		t.Fatal(err)
	}
	rd := wire.NewReader(&out)
	var got []uint64
	var lastKey bool
	for {
		h, au, err := rd.Read()
		if err != nil {
			break
		}
		got = append(got, h.Index)
		lastKey = h.Flags&wire.FlagKey != 0 && hasNAL(au, 5)
	}
	if len(got) != 4 || got[0] != 0 || got[1] != 1 || got[2] != 2 || got[3] != next {
		t.Fatalf("sent indexes %v, want 0 1 2 %d (never 3)", got, next)
	}
	if !lastKey {
		t.Fatalf("the first frame after the dropped session (index %d) is not an IDR", next)
	}
}
