package tsmux

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/asticode/go-astits"

	"onair/encoder/wire"
)

// fakeOutput is an output whose session the test changes; like output.SRT it
// refuses bytes muxed for another session.
type fakeOutput struct {
	session int
	buf     map[int]*bytes.Buffer
	refused int
}

func (o *fakeOutput) Session() int { return o.session }
func (o *fakeOutput) WriteSession(n int, p []byte) (int, error) {
	if n != o.session {
		o.refused++
		return 0, errors.New("stale session")
	}
	if o.buf == nil {
		o.buf = map[int]*bytes.Buffer{}
	}
	if o.buf[n] == nil {
		o.buf[n] = &bytes.Buffer{}
	}
	return o.buf[n].Write(p)
}

func au(key bool) []byte {
	nal := byte(0x41) // non-IDR slice
	if key {
		nal = 0x65
	}
	return []byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, nal, 0x88, 0x84, 0x21}
}

var adts = []byte{0xff, 0xf1, 0x50, 0x80, 0x01, 0x1f, 0xfc, 0x21, 0x00}

func newProg(t *testing.T, out SessionWriter) *Programme {
	t.Helper()
	p, err := NewProgramme(ProgrammeConfig{FPSNum: 30000, FPSDen: 1001}, out, nil, func() int64 { return 5e6 })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// videoPTS demuxes b and returns the PTS of every video PES.
func videoPTS(t *testing.T, b []byte) []int64 {
	t.Helper()
	dmx := astits.NewDemuxer(context.Background(), bytes.NewReader(b))
	var pts []int64
	for {
		d, err := dmx.NextData()
		if errors.Is(err, astits.ErrNoMorePackets) || errors.Is(err, io.EOF) {
			return pts
		}
		if err != nil {
			t.Fatal(err)
		}
		if d.PES != nil && d.PID == 0x100 {
			pts = append(pts, d.PES.Header.OptionalHeader.PTS.Base)
		}
	}
}

func TestProgrammeHoldsVideoUntilAKeyFrameInEverySession(t *testing.T) {
	out := &fakeOutput{session: 1}
	p := newProg(t, out)
	p.WriteVideo(0, false, 0, au(false)) // no key yet: held back
	p.WriteVideo(1, true, 0, au(true))
	p.WriteVideo(2, false, 0, au(false))
	out.session = 2 // the receiver reconnected
	p.WriteVideo(3, false, 0, au(false))
	p.WriteVideo(4, true, 0, au(true))
	if got := videoPTS(t, out.buf[1].Bytes()); len(got) != 2 || got[0] != wire.VideoPTS(1, 30000, 1001)+PTSOffset {
		t.Fatalf("session 1 video PTS %v, want indexes 1 and 2", got)
	}
	got := videoPTS(t, out.buf[2].Bytes())
	if len(got) != 1 || got[0] != wire.VideoPTS(4, 30000, 1001)+PTSOffset {
		t.Fatalf("session 2 video PTS %v, want only index 4 (its first IDR)", got)
	}
	if st := p.Status(); st.VideoFrames != 3 || st.Sessions != 2 || st.MuxErrors != 0 {
		t.Errorf("status %+v", st)
	}
	if out.refused != 0 {
		t.Errorf("%d writes for a stale session", out.refused)
	}
}

func TestProgrammeDropsRepeatedAudioAndCountsMissingFrames(t *testing.T) {
	out := &fakeOutput{session: 1}
	p := newProg(t, out)
	for _, i := range []uint64{10, 11, 11, 9, 14, 15} {
		p.WriteAudio(i, adts)
	}
	st := p.Status()
	if st.AudioFrames != 4 || st.AudioDups != 2 || st.AudioGaps != 2 || st.AudioLast != 15 {
		t.Fatalf("status %+v, want 4 frames, 2 duplicates, 2 missing, last 15", st)
	}
}

func TestProgrammeStampsLatencyFromTheCaptureTime(t *testing.T) {
	out := &fakeOutput{session: 1}
	p := newProg(t, out) // now() is 5 ms
	p.WriteVideo(0, true, 3e6, au(true))
	if st := p.Status(); st.LatencyP50Ms != 2 || st.LatencyP99Ms != 2 {
		t.Fatalf("latency %v/%v ms, want 2/2", st.LatencyP50Ms, st.LatencyP99Ms)
	}
}

func TestProgrammeCountsMuxErrorsAndGoesOn(t *testing.T) {
	out := &fakeOutput{session: 1}
	p := newProg(t, out)
	p.WriteVideo(0, true, 0, []byte("not annex b"))
	p.WriteAudio(0, []byte("no adts"))
	p.WriteVideo(1, true, 0, au(true))
	if st := p.Status(); st.MuxErrors != 2 || st.VideoFrames != 1 {
		t.Fatalf("status %+v", st)
	}
}
