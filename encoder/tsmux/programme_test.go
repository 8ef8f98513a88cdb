package tsmux

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
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

// audioPTS demuxes b and returns the PTS of every audio PES.
func audioPTS(t *testing.T, b []byte) []int64 {
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
		if d.PES != nil && d.PID != 0x100 && d.PES.Header.OptionalHeader != nil {
			pts = append(pts, d.PES.Header.OptionalHeader.PTS.Base)
		}
	}
}

// A stop mid-GOP must not leave the receiver with half a GOP whose tail it
// cannot show, nor audio running past the picture: the programme ends at the
// next key frame (not muxed) and audio at the same instant.
func TestEndStopsAtTheGOPBoundaryWithAudioUpToTheSameInstant(t *testing.T) {
	out := &fakeOutput{session: 1}
	p := newProg(t, out)
	// 30000/1001 fps, GOP 10; audio 1024 samples at 48 kHz (~21.3 ms, ~1.56 per frame).
	a := uint64(0)
	feed := func(from, to uint64) {
		for i := from; i < to; i++ {
			p.WriteVideo(i, i%10 == 0, 0, au(i%10 == 0))
			for wire.AudioPTS(a, AudioRate) < wire.VideoPTS(i+1, 30000, 1001) {
				p.WriteAudio(a, adts)
				a++
			}
		}
	}
	feed(0, 15)
	done := make(chan EndInfo, 1)
	go func() { done <- p.End(context.Background()) }()
	// End registers before more frames come: wait for it.
	for p.endPending() == false {
		runtime.Gosched()
	}
	feed(15, 40) // frames 15..19 muxed, 20 is the key frame that is not
	info := <-done
	if !info.AtGOPEnd || !info.HaveVideo || info.LastIndex != 19 {
		t.Fatalf("End = %+v, want at the GOP end, last index 19", info)
	}
	v := videoPTS(t, out.buf[1].Bytes())
	if len(v) != 20 || v[19] != wire.VideoPTS(19, 30000, 1001)+PTSOffset {
		t.Fatalf("muxed %d video frames (last PTS %v), want 0..19", len(v), v[len(v)-1:])
	}
	endPTS := wire.VideoPTS(20, 30000, 1001) + PTSOffset
	ap := audioPTS(t, out.buf[1].Bytes())
	last := ap[len(ap)-1]
	if last >= endPTS || last+int64(wire.AudioPTS(1, AudioRate)) < endPTS {
		t.Errorf("last audio PTS %d, want the frame that covers the video end %d", last, endPTS)
	}
	if st := p.Status(); !st.Ended {
		t.Errorf("status %+v, want ended", st)
	}
	// While ended nothing is muxed; Resume starts afresh in the next session.
	n := out.buf[1].Len()
	feed(40, 45)
	if out.buf[1].Len() != n {
		t.Errorf("%d bytes muxed while ended", out.buf[1].Len()-n)
	}
	p.Resume()
	out.session = 2
	feed(45, 61)
	if got := videoPTS(t, out.buf[2].Bytes()); len(got) != 11 || got[0] != wire.VideoPTS(50, 30000, 1001)+PTSOffset {
		t.Errorf("after Resume: %d video frames, want 50..60 (from the first key frame)", len(got))
	}
	if st := p.Status(); st.AudioGaps != 0 || st.Ended {
		t.Errorf("after Resume: status %+v, want no audio gap counted for the time off air", st)
	}
}

// Audio is encoded faster than video, so at a stop the audio of the
// instant after the GOP's end was muxed before the key frame that ends the
// GOP arrived: the receiver's audio ran 35 ms past its last picture. Audio
// ahead of video is now held during an End until video says whether the
// GOP goes on.
func TestEndWithAudioAheadOfVideoMuxesNoAudioPastTheVideoEnd(t *testing.T) {
	out := &fakeOutput{session: 1}
	p := newProg(t, out)
	// Audio runs 4 frames (~85 ms) ahead of video.
	a := uint64(0)
	feed := func(from, to uint64) {
		for i := from; i < to; i++ {
			for wire.AudioPTS(a, AudioRate) < wire.VideoPTS(i+1, 30000, 1001)+4*wire.AudioPTS(1, AudioRate) {
				p.WriteAudio(a, adts)
				a++
			}
			p.WriteVideo(i, i%10 == 0, 0, au(i%10 == 0))
		}
	}
	feed(0, 15)
	done := make(chan EndInfo, 1)
	go func() { done <- p.End(context.Background()) }()
	for !p.endPending() {
		runtime.Gosched()
	}
	feed(15, 25)
	info := <-done
	if !info.AtGOPEnd || info.LastIndex != 19 {
		t.Fatalf("End = %+v, want at the GOP end, last index 19", info)
	}
	endPTS := wire.VideoPTS(20, 30000, 1001) + PTSOffset
	ap := audioPTS(t, out.buf[1].Bytes())
	last := ap[len(ap)-1]
	if last >= endPTS || last+int64(wire.AudioPTS(1, AudioRate)) < endPTS {
		t.Errorf("last audio PTS %d, want the frame that covers the video end %d (%d audio frames)", last, endPTS, len(ap))
	}
	for k := 1; k < len(ap); k++ {
		if ap[k]-ap[k-1] != int64(wire.AudioPTS(1, AudioRate)) {
			t.Fatalf("audio PTS %d then %d: a frame missing or repeated", ap[k-1], ap[k])
		}
	}
	if st := p.Status(); st.AudioGaps != 0 || st.AudioDups != 0 || st.AudioLast != info.AudioLast {
		t.Errorf("status %+v, end %+v: want no gap, no duplicate, the last audio muxed", st, info)
	}
}

// With no video at all (every encoder down) a stop must still end: the
// caller's deadline cuts the stream where it stands.
func TestEndWithoutVideoCutsAtTheDeadline(t *testing.T) {
	out := &fakeOutput{session: 1}
	p := newProg(t, out)
	for a := range uint64(20) {
		p.WriteAudio(a, adts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	info := p.End(ctx)
	if info.AtGOPEnd || info.HaveVideo || info.AudioLast != 19 {
		t.Fatalf("End = %+v, want cut, no video, audio last 19", info)
	}
	n := out.buf[1].Len()
	p.WriteAudio(20, adts)
	if out.buf[1].Len() != n {
		t.Error("audio muxed after the end")
	}
}

// Audio that lags far behind video must not hold the end forever: after half
// a second of video past the end the programme ends without it.
func TestEndDoesNotWaitForeverForLaggingAudio(t *testing.T) {
	out := &fakeOutput{session: 1}
	p := newProg(t, out)
	p.WriteAudio(0, adts)
	for i := range uint64(5) {
		p.WriteVideo(i, i == 0, 0, au(i == 0))
	}
	done := make(chan EndInfo, 1)
	go func() { done <- p.End(context.Background()) }()
	for !p.endPending() {
		runtime.Gosched()
	}
	for i := uint64(5); i < 10+audioWaitFrames+1; i++ {
		p.WriteVideo(i, i%10 == 0, 0, au(i%10 == 0))
	}
	if info := <-done; !info.AtGOPEnd || info.LastIndex != 9 || info.AudioLast != 0 {
		t.Fatalf("End = %+v, want the GOP end at 9 with audio left at 0", info)
	}
}

// endPending reports whether an End is under way (tests).
func (p *Programme) endPending() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.end != nil
}
