//go:build cgo

package av

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/asticode/go-astiav"
	"go.uber.org/zap"

	"onair/encoder/ring"
	"onair/encoder/wire"
)

// audioFilter converts whatever the source delivers to what the AAC
// encoder takes (fltp stereo 48 kHz) on the box clock. The chain gives every
// input frame the box time of its first sample as its PTS (time base
// 1/48000, samples since the session epoch: the rate estimator's smoothed
// time for a device, the sample count for lavfi), and aresample makes the
// output follow those PTS (swr_next_pts):
//
//   - an offset under min_comp (0.2 ms, 10 samples) is left alone;
//   - between that and min_hard_comp (20 ms, about a frame) it stretches or
//     squeezes (swr_set_compensation) by the offset over the next second,
//     re-judged with every input frame, by async=96 samples a second at
//     most: 2000 ppm, 0.2 %, a pitch change of 3.5 cents, inaudible, and
//     nearly seven times the 14.4 samples a second of a card 300 ppm off, so
//     a frame's worth of offset is worked off in about 10 s. The correction
//     is proportional (no integral term): locked on a drifting card, the
//     offset settles where the correction matches the drift, 0.2 ms at 200
//     ppm, 0.3 ms at 300 (a 1 ms min_comp left it wandering up to 1 ms);
//   - beyond 20 ms (samples lost in an overrun, the first seconds of a
//     device) it pads silence or drops samples at once: a frame late is
//     worse than a click where the device already glitched.
//
// flags=res runs the resampler from the start, even 48 kHz to 48 kHz:
// otherwise the first compensation would initialise it mid-stream
// (swr_set_compensation calls swr_init), which forgets swr's first PTS and
// moves its output timeline by the offset it was about to work off.
//
// The graph does not cut 1024-sample frames (asetnsamples did): the chain
// does (copyPlanar), so it knows where aresample's output stands on the box
// timeline, trims the first frame to an epoch boundary and can report its
// offset.
const audioFilter = "aresample=48000:async=96:min_comp=0.0002:min_hard_comp=0.02:flags=res," +
	"aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo"

// resamplerDelay is what swr holds back at 48 kHz with its default 32-tap
// filter (half the filter, swr_get_delay): the output lags the input it has
// been given by this much, which is not an offset against the box clock.
const resamplerDelay = 16

// audioClock is the AAC frame timeline: 1024 samples at 48 kHz per index,
// index 0 at the session epoch. ring.Cadence does the maths in 128 bits: the
// int64 product (ns-epoch)×48000 overflowed after 53 h of uptime.
func audioClock(epochNs int64) ring.Cadence {
	return ring.Cadence{EpochNs: epochNs, Num: AudioSampleRate, Den: wire.AudioFrameSamples}
}

// audioIndexAt is the AAC frame index (1024 samples at 48 kHz from the
// epoch) whose interval contains CLOCK_MONOTONIC time ns.
func audioIndexAt(epochNs, ns int64) uint64 { return audioClock(epochNs).IndexAt(ns) }

// audioTimeOf is the CLOCK_MONOTONIC time at which AAC frame k starts (its
// first nanosecond, so audioIndexAt(audioTimeOf(k)) == k).
func audioTimeOf(epochNs int64, k uint64) int64 { return audioClock(epochNs).TimeOf(k) }

// RunAudio encodes one audio chain to AAC-LC 48 kHz stereo and sends each
// frame over rw as its levels (peak and RMS measured on the samples before
// encoding, wire.AppendAudio) and its ADTS frame, until ctx is cancelled (nil), a stop
// command arrives (nil), the wire closes (ErrWireClosed) or the source fails.
//
// The index of an AAC frame is its first sample's position on the box's
// 48 kHz timeline since the session epoch divided by 1024, so both chains
// (main and backup) agree on what an index means, for hours: a device's
// rate is measured against the box clock (rateEstimator) and the chain
// resamples to the box (audioFilter), so after T seconds of box time it has
// emitted 48000×T samples whatever its sound card's crystal does. The first
// frame is the first whole one after the device's first sample (the samples
// before that epoch boundary are dropped); after that the indexes are
// continuous. A lavfi source is paced to the wall clock instead (frame k is
// released when its last sample is due), as a sound card would deliver it,
// and runs at the box rate by construction.
//
// Progress, once a second of box time, carries the device's measured rate
// and the chain's offset against the box clock.
func RunAudio(ctx context.Context, cfg AudioConfig, rw io.ReadWriter, log *zap.Logger) error {
	return runAudio(ctx, cfg, rw, log, audioOptions{})
}

// audioOptions are RunAudio's internal knobs, for tests.
type audioOptions struct {
	// now is the box clock (CLOCK_MONOTONIC ns; nil: ring.MonotonicNs).
	// For a device the chain reads it exactly once per buffer, right after
	// the buffer arrives (its arrival time), and nowhere else, so a test can
	// answer each call with the next buffer's arrival on a synthetic clock.
	// For lavfi it is read once, for the first index (pacing sleeps on the
	// real clock).
	now func() int64
	// device treats a lavfi source as a sound card: not paced, each buffer
	// stamped with now. Tests drive a synthetic device this way, faster
	// than real time.
	device bool
}

func runAudio(ctx context.Context, cfg AudioConfig, rw io.ReadWriter, log *zap.Logger, opts audioOptions) error {
	if cfg.BitrateKbps <= 0 {
		cfg.BitrateKbps = 128
	}
	if opts.now == nil {
		opts.now = ring.MonotonicNs
	}
	format, url, err := splitSource(cfg.Source, "lavfi", "alsa", "pulse")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lk := startLink(ctx, rw, cancel, log)

	in, err := openInput(ctx, format, url, nil, astiav.MediaTypeAudio)
	if err != nil {
		return runErr(ctx, fmt.Errorf("av: audio: %w", err))
	}
	defer in.close()
	a := &aacChain{cfg: cfg, in: in, lk: lk, log: log, now: opts.now, live: in.live || opts.device}
	defer a.free()
	if err := a.init(); err != nil {
		return err
	}
	return runErr(ctx, a.run(ctx))
}

// levelSlots is how many frames' levels wait for their AAC packet; the
// encoder holds back one frame (its priming delay), so 8 is ample.
const levelSlots = 8

// frameLevels are the levels measured on the input of frame idx.
type frameLevels struct {
	idx uint64
	ok  bool
	l   wire.AudioLevels
}

type aacChain struct {
	cfg            AudioConfig
	in             *input
	lk             *link
	log            *zap.Logger
	now            func() int64 // the box clock (audioOptions.now)
	live           bool         // a device: stamped by arrival, not paced
	graph          *astiav.FilterGraph
	src, sink      *astiav.FilterContext
	enc            *astiav.CodecContext
	dec, filt, out *astiav.Frame // out: the 1024-sample frame being filled
	pkt            *astiav.Packet
	adts, msg      []byte
	levels         [levelSlots]frameLevels // by index mod levelSlots, until its packet is out

	est       *rateEstimator // a device's rate against the box clock
	inRate    int            // the source's sample rate
	inSamples int64          // source samples given to the graph
	startPos  int64          // lavfi: box position (48 kHz) of its first sample
	started   bool           // the first buffer is in and Hello is sent
	first     uint64         // the first index this instance produces
	k         uint64         // index of the frame being filled
	fill      int            // samples in out
	outPos    int64          // box position (48 kHz) of the next sample out of the graph
	outOK     bool           // outPos is known (the graph has output)
	offsetMs  float64        // the chain against the box clock, after the last buffer
	steps     int            // estimator steps logged
	measured  bool           // the rate measurement has been logged
	gapLogged bool           // a non-contiguous graph output has been logged

	boxNs, nextProgress int64 // box time now (a device's last arrival; lavfi: the frame due) and of the next progress
	last, frames        uint64
}

func (a *aacChain) free() {
	for _, f := range []*astiav.Frame{a.dec, a.filt, a.out} {
		if f != nil {
			f.Free()
		}
	}
	if a.pkt != nil {
		a.pkt.Free()
	}
	if a.enc != nil {
		a.enc.Free()
	}
	if a.graph != nil {
		a.graph.Free()
	}
}

func (a *aacChain) init() error {
	a.dec, a.filt, a.pkt = astiav.AllocFrame(), astiav.AllocFrame(), astiav.AllocPacket()
	d := a.in.dec
	a.inRate = d.SampleRate()
	if a.inRate <= 0 {
		return fmt.Errorf("av: audio: source has sample rate %d", a.inRate)
	}
	a.est = newRateEstimator(a.inRate)
	a.graph = astiav.AllocFilterGraph()
	if a.graph == nil {
		return errors.New("av: audio: alloc filter graph failed")
	}
	args := astiav.FilterArgs{
		"time_base":   astiav.NewRational(1, AudioSampleRate).String(), // box samples since the epoch
		"sample_rate": strconv.Itoa(a.inRate),
		"sample_fmt":  d.SampleFormat().Name(),
	}
	if l := d.ChannelLayout(); l.Valid() {
		args["channel_layout"] = l.String()
	} else {
		args["channels"] = strconv.Itoa(d.Channels())
	}
	var err error
	if a.src, err = a.graph.NewFilterContext(astiav.FindFilterByName("abuffer"), "in", args); err != nil {
		return fmt.Errorf("av: audio: abuffer %s: %w", args, err)
	}
	if a.sink, err = a.graph.NewFilterContext(astiav.FindFilterByName("abuffersink"), "out", nil); err != nil {
		return fmt.Errorf("av: audio: abuffersink: %w", err)
	}
	outputs, inputs := astiav.AllocFilterInOut(), astiav.AllocFilterInOut()
	defer outputs.Free()
	defer inputs.Free()
	outputs.SetName("in")
	outputs.SetFilterContext(a.src)
	inputs.SetName("out")
	inputs.SetFilterContext(a.sink)
	if err := a.graph.Parse(audioFilter, inputs, outputs); err != nil {
		return fmt.Errorf("av: audio: parse filter: %w", err)
	}
	if err := a.graph.Configure(); err != nil {
		return fmt.Errorf("av: audio: configure filter: %w", err)
	}

	a.out = astiav.AllocFrame()
	a.out.SetNbSamples(wire.AudioFrameSamples)
	a.out.SetSampleFormat(astiav.SampleFormatFltp)
	a.out.SetChannelLayout(astiav.ChannelLayoutStereo)
	a.out.SetSampleRate(AudioSampleRate)
	if err := a.out.AllocBuffer(0); err != nil {
		return fmt.Errorf("av: audio: alloc frame: %w", err)
	}

	codec := astiav.FindEncoderByName("aac")
	if codec == nil {
		return errors.New("av: audio: aac encoder not available")
	}
	a.enc = astiav.AllocCodecContext(codec)
	a.enc.SetSampleRate(AudioSampleRate)
	a.enc.SetSampleFormat(astiav.SampleFormatFltp)
	a.enc.SetChannelLayout(astiav.ChannelLayoutStereo)
	a.enc.SetBitRate(int64(a.cfg.BitrateKbps) * 1000)
	a.enc.SetTimeBase(astiav.NewRational(1, AudioSampleRate))
	a.enc.SetProfile(astiav.ProfileAacLow)
	if err := a.enc.Open(codec, nil); err != nil {
		return fmt.Errorf("av: audio: open aac: %w", err)
	}
	if fs := a.enc.FrameSize(); fs != wire.AudioFrameSamples {
		return fmt.Errorf("av: audio: [unexpected] aac frame size %d", fs)
	}
	return nil
}

// boxPos is the position of box time ns on the 48 kHz timeline since the
// epoch, in samples (float64: exact to a fraction of a sample for years).
func (a *aacChain) boxPos(ns int64) float64 {
	return float64(ns-a.cfg.EpochNs) * AudioSampleRate / 1e9
}

// inputPos is the box position (48 kHz) of source sample n: the estimator's
// smoothed time for a device, the sample count from the first index for lavfi.
func (a *aacChain) inputPos(n int64) float64 {
	if a.live {
		return a.boxPos(a.est.TimeAt(n))
	}
	return float64(a.startPos) + float64(n)*AudioSampleRate/float64(a.inRate)
}

func (a *aacChain) run(ctx context.Context) error {
	if !a.live {
		a.first = audioIndexAt(a.cfg.EpochNs, a.now())
		a.startPos = int64(a.first) * wire.AudioFrameSamples
		if err := a.hello(); err != nil {
			return err
		}
	}
	for {
		if a.lk.cmds.stopDue(a.k) {
			a.log.Info("stop", zap.Uint64("index", a.k))
			return a.encode(nil)
		}
		a.dec.Unref()
		if err := a.in.next(ctx, a.dec); err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			return fmt.Errorf("av: audio: %w", err)
		}
		n := int64(a.dec.NbSamples())
		if a.live {
			// The buffer's last sample has just arrived: one point for the
			// estimator, whose line then dates the buffer's first sample.
			a.boxNs = a.now()
			a.est.Add(a.boxNs, a.inSamples+n)
			a.noteRate()
		}
		pts := int64(math.Round(a.inputPos(a.inSamples)))
		if !a.started && a.live {
			// aresample's output starts at the first PTS; the first frame
			// is the first whole one after it (the samples before that
			// boundary are trimmed in take).
			a.first = uint64(max(0, ceilDiv(pts, wire.AudioFrameSamples)))
			if err := a.hello(); err != nil {
				return err
			}
		}
		a.inSamples += n
		a.dec.SetPts(pts)
		if err := a.src.BuffersrcAddFrame(a.dec, astiav.NewBuffersrcFlags()); err != nil {
			return fmt.Errorf("av: audio: filter in: %w", err)
		}
		for {
			a.filt.Unref()
			err := a.sink.BuffersinkGetFrame(a.filt, astiav.NewBuffersinkFlags())
			if errors.Is(err, astiav.ErrEagain) {
				break
			}
			if err != nil {
				return fmt.Errorf("av: audio: filter out: %w", err)
			}
			if err := a.take(ctx, a.filt); err != nil {
				return err
			}
		}
		if a.outOK {
			a.offsetMs = (float64(a.outPos+resamplerDelay) - a.inputPos(a.inSamples)) * 1000 / AudioSampleRate
		}
		if err := a.progress(); err != nil {
			return err
		}
	}
}

// hello announces the first index, once the chain knows it.
func (a *aacChain) hello() error {
	a.started, a.k = true, a.first
	if err := a.lk.hello(wire.Hello{Role: "audio", Name: a.cfg.Name, Codec: "aac",
		SampleRate: AudioSampleRate, Channels: AudioChannels, StartIndex: a.first}); err != nil {
		return fmt.Errorf("av: audio: %w", err)
	}
	a.log.Info("audio chain running", zap.String("source", a.cfg.Source), zap.Bool("live", a.live),
		zap.Int("sample_rate", a.inRate), zap.Uint64("start_index", a.first), zap.Int("kbps", a.cfg.BitrateKbps))
	return nil
}

// noteRate logs what the estimator learnt: the first measurement, a step.
func (a *aacChain) noteRate() {
	if !a.measured && a.est.Measured() {
		a.measured = true
		ppm := a.est.PPM()
		a.log.Info("device rate measured", zap.Float64("ppm", ppm))
		if math.Abs(ppm) > 1000 {
			a.log.Warn("device rate far off nominal: the resampler compensates 2000 ppm at most", zap.Float64("ppm", ppm), zap.Int("nominal", a.inRate))
		}
	}
	if s := a.est.Steps(); s != a.steps {
		a.steps = s
		a.log.Warn("device timeline stepped (samples lost?): re-anchored on the box clock", zap.Int("steps", s), zap.Float64("ppm", a.est.PPM()))
	}
}

// take cuts f, a frame out of the graph (fltp stereo 48 kHz whose PTS is its
// box position), into 1024-sample frames on epoch boundaries, and encodes
// each as it fills.
func (a *aacChain) take(ctx context.Context, f *astiav.Frame) error {
	n := f.NbSamples()
	if !a.outOK {
		a.outPos, a.outOK = f.Pts(), true
	} else if f.Pts() != a.outPos && !a.gapLogged {
		// aresample's output is contiguous by construction (swr counts it);
		// the count, not the PTS, keeps the indexes continuous.
		a.gapLogged = true
		a.log.Warn("[unexpected] resampler output not contiguous (logged once)", zap.Int64("pts", f.Pts()), zap.Int64("want", a.outPos))
	}
	off := 0
	if start := int64(a.first) * wire.AudioFrameSamples; a.outPos < start {
		off = int(min(int64(n), start-a.outPos)) // before the first frame
	}
	a.outPos += int64(n)
	for off < n {
		m := min(n-off, wire.AudioFrameSamples-a.fill)
		if err := copyPlanar(a.out, a.fill, f, off, m); err != nil {
			return fmt.Errorf("av: audio: %w", err)
		}
		a.fill += m
		off += m
		if a.fill < wire.AudioFrameSamples {
			break
		}
		if err := a.emit(ctx); err != nil {
			return err
		}
	}
	return nil
}

// emit encodes the filled frame as index a.k (lavfi: when its last sample is
// due) and starts the next.
func (a *aacChain) emit(ctx context.Context) error {
	k := a.k
	if !a.live {
		due := audioTimeOf(a.cfg.EpochNs, k+1)
		if err := ring.SleepUntil(ctx, due); err != nil {
			return err
		}
		a.boxNs = due
	}
	a.out.SetPts(int64(k) * wire.AudioFrameSamples)
	l, err := fltpLevels(a.out)
	if err != nil {
		return fmt.Errorf("av: audio: %w", err)
	}
	a.levels[k%levelSlots] = frameLevels{idx: k, ok: true, l: l}
	a.k, a.fill = k+1, 0
	return a.encode(a.out)
}

// progress sends a heartbeat once a second of box time, with the device's
// rate and the chain's offset against the box clock.
func (a *aacChain) progress() error {
	if a.frames == 0 || a.boxNs < a.nextProgress {
		return nil
	}
	a.nextProgress = a.boxNs + int64(time.Second)
	p := wire.Progress{Index: a.last, Frames: a.frames, Source: "live", OffsetMs: a.offsetMs,
		RatePPM: a.est.PPM(), RateMeasured: a.est.Measured()}
	if !a.live {
		p.RatePPM, p.RateMeasured = 0, true // paced to the box clock by construction
	}
	if err := a.lk.progress(p); err != nil {
		return fmt.Errorf("av: audio: %w", err)
	}
	return nil
}

// ceilDiv is ⌈a/b⌉ for b > 0.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b > 0 {
		q++
	}
	return q
}

// encode sends f (nil: flush) to the AAC encoder and its packets to onaird.
func (a *aacChain) encode(f *astiav.Frame) error {
	if err := a.enc.SendFrame(f); err != nil {
		return fmt.Errorf("av: audio: encode: %w", err)
	}
	for {
		err := a.enc.ReceivePacket(a.pkt)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("av: audio: encode: %w", err)
		}
		pts := a.pkt.Pts()
		data := a.pkt.Data()
		a.pkt.Unref()
		if pts < 0 {
			continue // priming frame before the epoch: no index for it
		}
		// The encoder's pts already accounts for its 1024-sample priming delay.
		idx := uint64(pts) / wire.AudioFrameSamples
		a.adts, err = AppendADTS(a.adts[:0], AudioSampleRate, AudioChannels, len(data))
		if err != nil {
			return err
		}
		a.adts = append(a.adts, data...)
		// A packet's index is that of the input frame it decodes to (the
		// encoder's pts accounts for its delay), so its levels are that
		// frame's. The priming packet just before the first frame has no
		// input of its own: it carries full-scale levels, never mistaken
		// for silence.
		l := wire.AudioLevels{Peak: 1, RMS: 1}
		if s := a.levels[idx%levelSlots]; s.ok && s.idx == idx {
			l = s.l
		}
		a.msg = wire.AppendAudio(a.msg[:0], l, a.adts)
		if err := a.lk.Write(wire.Header{Kind: wire.KindAudio, Flags: wire.FlagKey, Index: idx,
			PTS: wire.AudioPTS(idx, AudioSampleRate), DTS: wire.AudioPTS(idx, AudioSampleRate),
			CaptureNs: audioTimeOf(a.cfg.EpochNs, idx)}, a.msg); err != nil {
			return fmt.Errorf("av: audio: %w", err)
		}
		a.last = idx
		a.frames++
	}
}
