//go:build cgo

package av

import (
	"context"
	"errors"
	"fmt"
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"go.uber.org/zap"

	"onair/encoder/wire"
)

// driftChain is one audio chain reading a synthetic sound card through the
// real filter graph and AAC encoder, faster than real time.
type driftChain struct {
	name string
	dev  *syntheticDevice
	o    *onaird
}

// toneHz is the test tone, in true (box) time, that both cards record: low,
// so that its phase tells an offset apart up to ±250 ms (uncompensated, the
// cards drift 120 ms in 10 minutes).
const toneHz = 2.0

// sineFreq is the frequency the sine filter really generates when asked
// for f at 48 kHz (its phase step is a 32-bit fixed-point fraction).
func sineFreq(f float64) float64 {
	return math.Floor(math.Ldexp(f, 32)/48000+0.5) * 48000 / math.Ldexp(1, 32)
}

// toneFreq is the true-time frequency of what d records: the sine filter's
// tone played at the card's real rate.
func (d *syntheticDevice) toneFreq() float64 {
	return sineFreq(toneHz/(1+d.ppm*1e-6)) * (1 + d.ppm*1e-6)
}

// startDriftChain runs a chain on d: a lavfi tone (silent outside the
// windows the test measures, which keeps the AAC encoder cheap; silent is
// an enable expression on the card's time) read as a device whose buffers
// arrive at d's times.
func startDriftChain(t *testing.T, name string, d *syntheticDevice, epoch int64, silent string) *driftChain {
	// In true time the card records sin(2π·toneHz·(t − d.startNs)), the same
	// signal for both cards as d.startNs is a multiple of 100 ms: the filter
	// plays it at the card's own rate.
	src := fmt.Sprintf("lavfi:sine=frequency=%.12f:sample_rate=48000:samples_per_frame=%d,"+
		"volume=volume=0:enable='%s'", toneHz/(1+d.ppm*1e-6), d.buf, silent)
	now := func() int64 { at, _ := d.next(); return at }
	o := start(t, name, func(ctx context.Context, rw *wireEnd, log *zap.Logger) error {
		return runAudio(ctx, AudioConfig{Name: name, Source: src, EpochNs: epoch, BitrateKbps: 64}, rw, log,
			audioOptions{now: now, device: true})
	})
	return &driftChain{name: name, dev: d, o: o}
}

// Two sound cards drift ±200 ppm against the box clock (issue 10): chains
// that only counted samples were 240 ms apart after 10 minutes, and a switch
// from one to the other jumped by that much. Each chain must measure its
// card, resample to the box clock, and so keep frame k on the box's instant
// k: indexes continuous, the tone's phase within a frame of the box timeline
// after 10 minutes, the measured rate within ±20 ppm, and a switch from one
// chain to the other at a frame boundary continuous.
func TestChainsOnDriftingCardsStayAlignedAfterTenMinutes(t *testing.T) {
	cpu0 := cpuTime(t)
	const epoch = int64(1000e9)
	devA := newSyntheticDevice(+200, epoch+5e9, 1)
	devA.hiccups = []span{{300 * time.Second, 200 * time.Millisecond}}
	devB := newSyntheticDevice(-200, epoch+5_300_000_000, 2)
	devB.hiccups = []span{{400 * time.Second, 200 * time.Millisecond}}
	end := audioIndexAt(epoch, epoch+606e9) // 10 minutes after the later card starts

	const silent = "between(t\\,0\\,40)+between(t\\,70\\,560)" // the tone from 40 to 70 s and from 560 s
	chains := []*driftChain{startDriftChain(t, "audio-main", devA, epoch, silent), startDriftChain(t, "audio-backup", devB, epoch, silent)}
	for _, c := range chains {
		c.o.send(wire.Command{Op: wire.OpStop, AtIndex: end})
	}
	wall0 := time.Now()
	for _, c := range chains {
		c.waitEnd(t, end)
	}
	t.Logf("2 × 10 min of audio in %v wall, %v CPU", time.Since(wall0).Round(time.Millisecond), (cpuTime(t) - cpu0).Round(time.Millisecond))

	perSecond := uint64(AudioSampleRate/wire.AudioFrameSamples) + 1
	for _, c := range chains {
		o := c.o
		o.mu.Lock()
		if len(o.badAudio) > 0 {
			t.Fatalf("%s: %d payloads without valid levels: %v", c.name, len(o.badAudio), o.badAudio[0])
		}
		first := o.audio[0].Index
		if s := o.hello.StartIndex; first != s && first+1 != s {
			t.Errorf("%s: first frame %d, start index %d", c.name, first, s)
		}
		for n, h := range o.audio {
			if n > 0 && h.Index != o.audio[n-1].Index+1 {
				t.Fatalf("%s: frame %d: index %d after %d (gap or duplicate)", c.name, n, h.Index, o.audio[n-1].Index)
			}
		}
		last := o.audio[len(o.audio)-1].Index
		// The chain's own account, once converged (a minute in).
		worst, measured := 0.0, 0
		var lastP wire.Progress
		for _, p := range o.progress {
			if p.Index < first+60*perSecond {
				continue
			}
			worst = max(worst, math.Abs(p.OffsetMs))
			if p.RateMeasured {
				measured++
			}
			lastP = p
		}
		o.mu.Unlock()
		t.Logf("%s: frames %d..%d (%.1f min), card %+.0f ppm measured %+.2f ppm, offset at the end %+.3f ms, at most %.3f ms after the first minute (%d progress)",
			c.name, first, last, float64(last-first)*wire.AudioFrameSamples/AudioSampleRate/60, c.dev.ppm, lastP.RatePPM, lastP.OffsetMs, worst, len(o.progress))
		if last-first < 600*AudioSampleRate/wire.AudioFrameSamples {
			t.Errorf("%s: %d frames, want 10 minutes", c.name, last-first+1)
		}
		if !lastP.RateMeasured || math.Abs(lastP.RatePPM-c.dev.ppm) > 20 {
			t.Errorf("%s: rate %+.2f ppm (measured %v), card runs %+.0f ppm", c.name, lastP.RatePPM, lastP.RateMeasured, c.dev.ppm)
		}
		if measured < 500 {
			t.Errorf("%s: %d measured progress messages after the first minute", c.name, measured)
		}
		if worst >= 1000.0*wire.AudioFrameSamples/AudioSampleRate {
			t.Errorf("%s: reported offset up to %.3f ms after the first minute: a frame or more off the box", c.name, worst)
		}
		// The truth, from the tone's phase in what the frames decode to:
		// after a minute and at the end of the 10 minutes.
		for _, w := range [][2]float64{{50, 70}, {570, 600}} {
			from := audioIndexAt(epoch, epoch+int64(w[0]*1e9))
			to := audioIndexAt(epoch, epoch+int64(w[1]*1e9))
			pcm, pos := decodeFrames(t, frameSpan{o, from - 2, to})
			off, amp := toneOffset(pcm[2*wire.AudioFrameSamples:], pos+2*wire.AudioFrameSamples, c.dev, epoch)
			t.Logf("%s: %3.0f..%3.0f s: frames %+.3f ms off the box timeline, from the tone (amplitude %.3f)", c.name, w[0], w[1], off, amp)
			if amp < 0.05 {
				t.Fatalf("%s: no tone in %v s (amplitude %.3f): the test proves nothing", c.name, w, amp)
			}
			if math.Abs(off) >= 1000.0*wire.AudioFrameSamples/AudioSampleRate {
				t.Errorf("%s: %v s: frames %+.3f ms off the box timeline: a frame or more", c.name, w, off)
			}
		}
	}

	// The selector switches from main to backup at frame k+1.
	k := audioIndexAt(epoch, epoch+590e9)
	a, b := chains[0], chains[1]
	pcm, pos := decodeFrames(t, frameSpan{a.o, k - 96, k}, frameSpan{b.o, k + 1, k + 96})
	if want := 193 * wire.AudioFrameSamples; len(pcm) != want {
		t.Fatalf("switch: %d samples decoded, want %d", len(pcm), want)
	}
	seam := int(int64(k+1)*wire.AudioFrameSamples - pos)
	// Frames k-94..k-1 are main's alone, k+3..k+96 backup's alone (the AAC
	// overlap mixes k and k+1 around the seam), 2 s of the tone.
	before, _ := toneOffset(pcm[2*wire.AudioFrameSamples:seam-wire.AudioFrameSamples], pos+2*wire.AudioFrameSamples, a.dev, epoch)
	after, _ := toneOffset(pcm[seam+2*wire.AudioFrameSamples:], pos+int64(seam)+2*wire.AudioFrameSamples, b.dev, epoch)
	t.Logf("switch at frame %d (590 s): main %+.3f ms off the box before, backup %+.3f ms after: a jump of %+.3f ms", k+1, before, after, after-before)
	if math.Abs(after-before) > 2 {
		t.Errorf("switch at %d: the programme jumps by %.3f ms (main %+.3f, backup %+.3f)", k+1, after-before, before, after)
	}
}

// A card that starts with a burst (the demuxer's probe holds its first
// buffers back 150 ms) and later loses 50 ms of samples in an overrun: the
// first labels are 140 ms late and, after the overrun, every sample comes
// 50 ms earlier than its count says. The chain must realign at once (drop
// or pad, min_hard_comp) rather than drift back at 0.2 % for 25 s: indexes
// continuous, frames within 2 ms of the box 10 s after each event (the
// overrun shows on the card's timeline at 65 s of box time and is confirmed
// within 4 s).
func TestChainRealignsAfterStartupBurstAndLostSamples(t *testing.T) {
	const epoch = int64(1000e9)
	d := newSyntheticDevice(+300, epoch+5e9, 3)
	d.hiccups = []span{{0, 150 * time.Millisecond}}
	d.losses = []span{{60 * time.Second, 50 * time.Millisecond}}
	end := audioIndexAt(epoch, epoch+130e9)
	c := startDriftChain(t, "audio-main", d, epoch, "between(t\\,0\\,15)+between(t\\,35\\,65)") // the tone from 15 to 35 s and from 65 s of the card's time
	c.o.send(wire.Command{Op: wire.OpStop, AtIndex: end})
	c.waitEnd(t, end)
	c.o.mu.Lock()
	for n, h := range c.o.audio {
		if n > 0 && h.Index != c.o.audio[n-1].Index+1 {
			c.o.mu.Unlock()
			t.Fatalf("frame %d: index %d after %d (gap or duplicate)", n, h.Index, c.o.audio[n-1].Index)
		}
	}
	c.o.mu.Unlock()
	for _, w := range []struct {
		from, to float64
		before   bool // before the overrun: the card's timeline as it started
	}{{22, 32, true}, {72, 82, false}, {100, 125, false}} {
		from, to := audioIndexAt(epoch, epoch+int64(w.from*1e9)), audioIndexAt(epoch, epoch+int64(w.to*1e9))
		pcm, pos := decodeFrames(t, frameSpan{c.o, from - 2, to})
		dd := *d
		if w.before {
			dd.losses = nil
		}
		off, amp := toneOffset(pcm[2*wire.AudioFrameSamples:], pos+2*wire.AudioFrameSamples, &dd, epoch)
		t.Logf("%3.0f..%3.0f s: frames %+.3f ms off the box timeline, from the tone (amplitude %.3f)", w.from, w.to, off, amp)
		if amp < 0.05 {
			t.Fatalf("no tone in %v..%v s (amplitude %.3f): the test proves nothing", w.from, w.to, amp)
		}
		if math.Abs(off) > 2 {
			t.Errorf("%v..%v s: frames %+.3f ms off the box timeline", w.from, w.to, off)
		}
	}
}

// waitEnd waits until the chain stopped at index end and its frames up to
// end-1 are collected.
func (c *driftChain) waitEnd(t *testing.T, end uint64) {
	t.Helper()
	select {
	case err := <-c.o.done:
		c.o.done <- err
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("%s: no end within 3 min", c.name)
	}
	c.o.waitCollected(end - 1)
}

// waitCollected waits until the reader has taken in frame idx, after the
// role ended.
func (o *onaird) waitCollected(idx uint64) {
	o.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		o.mu.Lock()
		ok := len(o.audio) > 0 && o.audio[len(o.audio)-1].Index >= idx
		o.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-o.changed:
		case <-deadline:
			o.t.Fatalf("frame %d never arrived", idx)
		}
	}
}

// frameSpan is frames from..to (inclusive) of what o collected.
type frameSpan struct {
	o        *onaird
	from, to uint64
}

// decodeFrames decodes, with one AAC decoder in order, the frames of each
// span and returns the left channel and the box
// position (48 kHz, from the epoch) of its first sample. It fails unless
// every decoded frame is 1024 samples at the position its index says.
func decodeFrames(t *testing.T, spans ...frameSpan) ([]float32, int64) {
	t.Helper()
	codec := astiav.FindDecoder(astiav.CodecIDAac)
	dec := astiav.AllocCodecContext(codec)
	defer dec.Free()
	dec.SetSampleRate(AudioSampleRate)
	dec.SetChannelLayout(astiav.ChannelLayoutStereo)
	dec.SetTimeBase(astiav.NewRational(1, AudioSampleRate))
	if err := dec.Open(codec, nil); err != nil {
		t.Fatal(err)
	}
	pkt, f := astiav.AllocPacket(), astiav.AllocFrame()
	defer pkt.Free()
	defer f.Free()
	var pcm []float32
	var first, next int64 = -1, -1
	for _, sp := range spans {
		o := sp.o
		o.mu.Lock()
		base := o.audio[0].Index
		for i := sp.from; i <= sp.to; i++ {
			n := int(i - base)
			if n < 0 || n >= len(o.audio) || o.audio[n].Index != i {
				o.mu.Unlock()
				t.Fatalf("frame %d not collected", i)
			}
			if err := pkt.FromData(o.audioES[n]); err != nil {
				o.mu.Unlock()
				t.Fatal(err)
			}
			pkt.SetPts(int64(i) * wire.AudioFrameSamples)
			err := dec.SendPacket(pkt)
			pkt.Unref()
			if err != nil {
				o.mu.Unlock()
				t.Fatalf("decode frame %d: %v", i, err)
			}
			for {
				f.Unref()
				if rerr := dec.ReceiveFrame(f); errors.Is(rerr, astiav.ErrEagain) {
					break
				} else if rerr != nil {
					o.mu.Unlock()
					t.Fatalf("decode frame %d: %v", i, rerr)
				}
				if f.NbSamples() != wire.AudioFrameSamples || (next >= 0 && f.Pts() != next) {
					o.mu.Unlock()
					t.Fatalf("frame %d decoded to %d samples at %d, want %d at %d", i, f.NbSamples(), f.Pts(), wire.AudioFrameSamples, next)
				}
				if first < 0 {
					first = f.Pts()
				}
				next = f.Pts() + wire.AudioFrameSamples
				if pcm, err = fltpPlane(f, 0, pcm); err != nil {
					o.mu.Unlock()
					t.Fatal(err)
				}
			}
		}
		o.mu.Unlock()
	}
	return pcm, first
}

// toneOffset measures how far the box timeline position of samples (the
// first at box position pos) is from the instant d recorded them, from the
// tone's phase (ms, the sign of Progress.OffsetMs: + the labels run ahead,
// the sound in them was taken earlier), and the tone's amplitude.
func toneOffset(samples []float32, pos int64, d *syntheticDevice, epoch int64) (offsetMs, amp float64) {
	f := d.toneFreq()
	// When the tone's sample 0 would have been taken on the card's timeline
	// as it stands at the end (after the samples it lost).
	t0 := (d.captureNs(d.n) - float64(d.n)*1e9/d.rate() - float64(epoch)) / 1e9
	// Least squares of x on sin θ and cos θ (any window length, not only
	// whole periods): x ≈ α·sin θ + β·cos θ = A·sin(θ − φ), α = A·cos φ,
	// β = −A·sin φ.
	var ss, cc, sc, xs, xc float64
	for j, x := range samples {
		s, c := math.Sincos(2 * math.Pi * f * (float64(pos+int64(j))/AudioSampleRate - t0))
		ss, cc, sc = ss+s*s, cc+c*c, sc+s*c
		xs, xc = xs+float64(x)*s, xc+float64(x)*c
	}
	det := ss*cc - sc*sc
	alpha, beta := (xs*cc-xc*sc)/det, (xc*ss-xs*sc)/det
	return math.Atan2(-beta, alpha) / (2 * math.Pi * f) * 1000, math.Hypot(alpha, beta)
}

// cpuTime is the CPU time (user + system) the test process has used.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
