//go:build cgo

package av

import (
	"context"
	"io"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"onair/encoder/ring"
	"onair/encoder/wire"
)

// BenchmarkX264SessionPerGOP is the cost of the twins' re-lock strategy
// (video.relock: gop, a fresh x264 session at every GOP boundary) against
// the other one (video.relock: command, one session until a reset
// command), at the bench's 720p30 settings (4 Mbit/s, GOP 30) and at
// configs/1080p30.yaml's (6 Mbit/s, GOP 60), veryfast, threads=1, VBV: the
// encoder's own path (run's GOP reset, encode from a ring slot) over a
// one-GOP testsrc2 clip, looped, published into a ring frame by frame (the
// CPU of publishing is capture's and left out). One op is one frame; cpu-us/frame is the
// process's CPU (threads=1: the encoder's), which make bench reports
// (scripts/bench: x264_session_*).
func BenchmarkX264SessionPerGOP(b *testing.B) {
	for _, s := range []struct {
		name            string
		w, h, kbps, gop int
	}{{"720p30", 1280, 720, 4000, 30}, {"1080p30", 1920, 1080, 6000, 60}} {
		clip := testClip(b, s.w, s.h, s.gop)
		r, err := ring.Create(b.TempDir()+"/bench.ring", ring.Geometry{Width: s.w, Height: s.h, FPSNum: 30, FPSDen: 1}, 4, ring.MonotonicNs())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = r.Close() })
		var next uint64 // the ring's next index: runs follow on, a ring index is written once
		for _, relock := range []string{"gop", "command"} {
			b.Run(s.name+"/"+relock, func(b *testing.B) {
				e, err := newX264(EncoderConfig{Name: "bench", BitrateKbps: s.kbps, GOP: s.gop, Preset: "veryfast",
					ResetEveryGOP: relock == "gop"}, r.Geometry())
				if err != nil {
					b.Fatal(err)
				}
				defer e.close()
				lk := &link{Writer: wire.NewWriter(io.Discard)}
				var publishing time.Duration // capture's share: not the encoder's
				cpu0 := processCPU(b)
				b.ResetTimer()
				base := next
				next += uint64(b.N)
				for i := uint64(0); i < uint64(b.N); i++ {
					idr := i == 0
					if i%uint64(s.gop) == 0 {
						if e.cfg.ResetEveryGOP && i > 0 {
							if err := e.reset(lk); err != nil {
								b.Fatal(err)
							}
						}
						idr = true
					}
					p0 := processCPU(b)
					buf, err := r.Claim(base + i)
					if err != nil {
						b.Fatal(err)
					}
					copy(buf, clip[i%uint64(len(clip))])
					r.Publish(base+i, 0, 0)
					publishing += processCPU(b) - p0
					m, pic, err := r.View(base + i)
					if err != nil {
						b.Fatal(err)
					}
					if err := e.encode(lk, r, m, pic, idr); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64((processCPU(b)-cpu0-publishing).Microseconds())/float64(b.N), "cpu-us/frame")
			})
		}
	}
}

// testClip is n testsrc2 pictures of w×h, packed as the ring holds them.
func testClip(b *testing.B, w, h, n int) [][]byte {
	b.Helper()
	in, err := openVideo(context.Background(), CaptureConfig{Source: "lavfi:testsrc2=size=" + strconv.Itoa(w) + "x" + strconv.Itoa(h) + ":rate=30"})
	if err != nil {
		b.Fatal(err)
	}
	defer in.close()
	f := astiav.AllocFrame()
	defer f.Free()
	var clip [][]byte
	for range n {
		f.Unref()
		if err := in.next(context.Background(), f); err != nil {
			b.Fatal(err)
		}
		pic := make([]byte, ring.Geometry{Width: w, Height: h}.FrameSize())
		if _, err := f.ImageCopyToBuffer(pic, 1); err != nil {
			b.Fatal(err)
		}
		clip = append(clip, pic)
	}
	return clip
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
