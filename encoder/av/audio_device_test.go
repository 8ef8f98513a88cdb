//go:build cgo

package av

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"onair/encoder/ring"
	"onair/internal/pulselab"
)

// issue 10: an audio chain reads a real, clocked device (a PulseAudio null
// sink, as ALSA through the pulse plugin and as a pulse source): its frames
// must come with consecutive indexes, and when the device goes away (the
// sink is removed: the card is unplugged) RunAudio must return an error, so
// that onaird sees the chain die and the selector switches to the backup,
// instead of hanging on a read that never ends.
//
// Real time (about 4 s per source): run it under the lock,
//
//	flock /tmp/onair-live.lock go test -p 1 -count=1 -run TestAudioFromADevice -v ./encoder/av/
func TestAudioFromADeviceIsContinuousAndEndsWhenTheDeviceGoes(t *testing.T) {
	for _, kind := range []string{"alsa", "pulse"} {
		t.Run(kind, func(t *testing.T) {
			lab := pulselab.Start(t)
			s, err := lab.AddSink("main")
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Feed(1000); err != nil {
				t.Fatal(err)
			}
			// RunAudio opens the device in this process: point alsa-lib and
			// libpulse at the lab.
			lab.Setenv(t)
			src := "alsa:" + s.ALSADevice()
			if kind == "pulse" {
				src = "pulse:" + s.Source()
			}
			epoch := ring.MonotonicNs()
			t0 := time.Now()
			au := start(t, "audio-main", func(ctx context.Context, rw *wireEnd, log *zap.Logger) error {
				return RunAudio(ctx, AudioConfig{Name: "audio-main", Source: src, EpochNs: epoch}, rw, log)
			})
			si := au.startIndex()
			au.waitFor("a first frame", 10*time.Second, func() bool { return len(au.audio) > 0 })
			firstAfter := time.Since(t0)
			const n = 141 // 3 s of 1024-sample frames at 48 kHz
			au.waitFor("3 s of frames", 10*time.Second, func() bool { return len(au.audio) >= n })

			au.mu.Lock()
			first := au.audio[0].Index
			for i := 1; i < len(au.audio); i++ {
				if au.audio[i].Index != au.audio[i-1].Index+1 {
					au.mu.Unlock()
					t.Fatalf("frame %d: index %d after %d", i, au.audio[i].Index, au.audio[i-1].Index)
				}
			}
			// The first frames may carry the encoder's ramp; judge the rest.
			var minPeak, maxPeak float64 = 0, -200
			for _, l := range au.levels[3:] {
				minPeak, maxPeak = min(minPeak, l.PeakDBFS()), max(maxPeak, l.PeakDBFS())
			}
			bad := len(au.badAudio)
			au.mu.Unlock()
			t.Logf("%s: hello start index %d, first frame %d (%+d) after %v; peaks %.1f..%.1f dBFS",
				src, si, first, int64(first)-int64(si), firstAfter.Round(time.Millisecond), minPeak, maxPeak)
			if bad > 0 || minPeak < -23 || maxPeak > -19 {
				t.Errorf("%s: %d bad payloads, frame peaks %.1f..%.1f dBFS, want the tone's -21 dBFS", src, bad, minPeak, maxPeak)
			}

			au.mu.Lock()
			before := len(au.audio)
			au.mu.Unlock()
			removed := time.Now()
			if err := s.Remove(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-au.done:
				au.done <- err // for the cleanup's stop
				au.mu.Lock()
				after := len(au.audio) - before
				au.mu.Unlock()
				t.Logf("%s removed: RunAudio returned after %v, %d frames after Remove began: %v",
					src, time.Since(removed).Round(time.Millisecond), after, err)
				if err == nil || errors.Is(err, context.Canceled) {
					t.Errorf("%s removed: RunAudio returned %v, want the device's error", src, err)
				}
			case <-time.After(10 * time.Second):
				au.mu.Lock()
				after := len(au.audio) - before
				au.mu.Unlock()
				t.Fatalf("%s removed: RunAudio still running 10 s later (%d frames since): it hangs on a device that is gone", src, after)
			}
		})
	}
}
