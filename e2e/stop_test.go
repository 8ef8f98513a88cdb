package e2e

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"onair/web/api"
)

// A crew's stop must not cost the viewers the last seconds of the show: the
// receiver's recording ends at a GOP boundary, decodes to its last frame,
// has audio up to the same instant, and the SRT connection closed cleanly
// (drained). The encoders stay warm: going live again reconnects as a new
// session that starts decodable, within a connect and a GOP.
func TestStopEndsAtAGOPDecodableToTheLastFrameAndGoLiveResumes(t *testing.T) {
	need(t, "ffmpeg", "ffprobe")
	port := freePort(t, "udp")
	rx := startIngest(t, port, t.TempDir(), "")
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, gop: 30})
	b.waitFor(t, 20*time.Second, "streaming", func(st api.Status) bool { return connected(st) && st.Video.Switch.Emitted > 90 })
	time.Sleep(1500 * time.Millisecond) // stop mid-GOP, whatever the phase

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	asked := time.Now()
	on, err := b.client.SetOnAir(ctx, false)
	took := time.Since(asked)
	if err != nil {
		t.Fatal(err)
	}
	e := on.LastEnd
	if on.Phase != api.OnAirStopped || e == nil || !e.Drained || e.Error != "" {
		t.Fatalf("stop answered %+v (end %+v), want stopped and drained", on, e)
	}
	t.Logf("stop took %s (box: %.0f ms), last frame %d", took, e.TookMs, e.LastIndex)
	st, _ := b.status(t)
	boxAudioLast := st.Audio.LastIndex
	if st.State != api.BoxStopped || st.Output.State != "idle" {
		t.Errorf("after stop: box %s, output %s, want stopped and idle", st.State, st.Output.State)
	}
	// Warm: the encoders keep encoding while off air.
	emitted := st.Video.Switch.Emitted
	time.Sleep(time.Second)
	st, _ = b.status(t)
	for _, c := range st.Children {
		if c.State != "running" {
			t.Errorf("child %s %s while stopped, want running (warm)", c.Name, c.State)
		}
	}
	if st.Video.Switch.Emitted < emitted+20 {
		t.Errorf("encoders idle while stopped: %d frames in 1 s", st.Video.Switch.Emitted-emitted)
	}
	if st.Output.Connects != 1 {
		t.Errorf("the output dialled while stopped: %d connects", st.Output.Connects)
	}
	rx.stop(t, 5*time.Second)

	rep := analyze(t, rx.out)
	v, a := rep.Video, rep.Audio
	if v.Missing != 0 || v.Duplicates != 0 || v.Incomplete != 0 || a.Missing != 0 || a.TruncatedFrames != 0 {
		t.Errorf("recording: video missing %d dup %d incomplete %d, audio missing %d truncated %d",
			v.Missing, v.Duplicates, v.Incomplete, a.Missing, a.TruncatedFrames)
	}
	// The first GOP starts at the encoders' first IDR; the last one is whole.
	if (e.LastIndex+1)%30 != 0 || v.KeyFrames != (v.Frames+29)/30 {
		t.Errorf("recording ends at frame %d with %d frames, %d key frames: want the end at a GOP boundary (GOP 30)",
			e.LastIndex, v.Frames, v.KeyFrames)
	}
	const offset, frame90k, audio90k = 10 * 90000, 3000, 1920 // tsmux.PTSOffset; 30 fps; 1024 samples at 48 kHz
	if last := uint64((v.LastPTS - offset) / frame90k); last != e.LastIndex {
		t.Errorf("last frame at the receiver %d, the box says %d", last, e.LastIndex)
	}
	videoEnd := v.LastPTS + frame90k
	if a.LastPTS >= videoEnd || a.LastPTS+audio90k < videoEnd {
		explainLoss(t, rx, rep, st.Output)
		t.Errorf("audio ends at %d (+%d), video at %d: want audio up to the same instant (box muxed audio up to frame %d, PTS %d)",
			a.LastPTS, audio90k, videoEnd, boxAudioLast, offset+boxAudioLast*audio90k)
	}
	if errs := decodeErrors(t, rx.out); errs != "" {
		explainLoss(t, rx, rep, st.Output)
		t.Errorf("the recording does not decode to its last frame:\n%s", tail(errs, 10))
	}

	// Go live again: a new session, decodable from its first frame.
	rx2 := startIngest(t, port, t.TempDir(), "")
	waitUDPBound(t, port)
	live := time.Now()
	if on, err = b.client.SetOnAir(ctx, true); err != nil || on.Phase != api.OnAirLive {
		t.Fatalf("go live: %+v, %v", on, err)
	}
	st = b.waitFor(t, 20*time.Second, "live again", func(st api.Status) bool {
		return connected(st) && st.Output.Connects == 2 && st.State != api.BoxStopped
	})
	t.Logf("connected again %s after go live", time.Since(live))
	time.Sleep(3 * time.Second)
	b.stop(t, 10*time.Second)
	rx2.stop(t, 5*time.Second)
	rep = analyze(t, rx2.out)
	if rep.Video.Frames < 60 || rep.Video.Missing != 0 {
		t.Errorf("after go live: %d frames, %d missing", rep.Video.Frames, rep.Video.Missing)
	}
	if errs := decodeErrors(t, rx2.out); errs != "" {
		t.Errorf("after go live the recording does not decode:\n%s", tail(errs, 10))
	}
}

// waitUDPBound waits until something listens on the UDP port (a receiver
// started), so a dial does not race the receiver's start.
func waitUDPBound(t *testing.T, port int) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return // taken: the receiver listens
		}
		_ = c.Close() // a probe: still free
	}
	t.Fatalf("nothing listens on udp port %d after 5 s", port)
}
