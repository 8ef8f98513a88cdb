//go:build cgo

package av

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/asticode/go-astiav"
	"go.uber.org/zap"

	"onair/encoder/ring"
	"onair/encoder/wire"
)

// audioFilter converts whatever the source delivers to what the AAC
// encoder takes and cuts it into 1024-sample frames. asetnsamples is
// FFmpeg's own audio FIFO; go-astiav v0.16.0 has no AudioFifo binding.
const audioFilter = "aresample=48000,aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo,asetnsamples=n=1024:p=0"

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
// The index of an AAC frame is its first sample's position since the
// session epoch divided by 1024, so both chains (main and backup) agree on
// what an index means. The first frame is the one due when the source
// starts; after that the index advances with the samples, so the output is
// continuous. A lavfi source is paced to the wall clock (frame k is released
// when its last sample is due), as a sound card would deliver it.
func RunAudio(ctx context.Context, cfg AudioConfig, rw io.ReadWriter, log *zap.Logger) error {
	if cfg.BitrateKbps <= 0 {
		cfg.BitrateKbps = 128
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
	a := &aacChain{cfg: cfg, in: in, lk: lk, log: log}
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
	cfg       AudioConfig
	in        *input
	lk        *link
	log       *zap.Logger
	graph     *astiav.FilterGraph
	src, sink *astiav.FilterContext
	enc       *astiav.CodecContext
	dec, filt *astiav.Frame
	pkt       *astiav.Packet
	adts, msg []byte
	levels    [levelSlots]frameLevels // by index mod levelSlots, until its packet is out

	last, frames uint64
	nextProgress time.Time
}

func (a *aacChain) free() {
	for _, f := range []*astiav.Frame{a.dec, a.filt} {
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
	a.graph = astiav.AllocFilterGraph()
	if a.graph == nil {
		return errors.New("av: audio: alloc filter graph failed")
	}
	args := astiav.FilterArgs{
		"time_base":   astiav.NewRational(1, d.SampleRate()).String(),
		"sample_rate": strconv.Itoa(d.SampleRate()),
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

func (a *aacChain) run(ctx context.Context) error {
	epoch := a.cfg.EpochNs
	start := audioIndexAt(epoch, ring.MonotonicNs())
	if err := a.lk.hello(wire.Hello{Role: "audio", Name: a.cfg.Name, Codec: "aac",
		SampleRate: AudioSampleRate, Channels: AudioChannels, StartIndex: start}); err != nil {
		return fmt.Errorf("av: audio: %w", err)
	}
	a.log.Info("audio chain running", zap.String("source", a.cfg.Source), zap.Bool("live", a.in.live),
		zap.Uint64("start_index", start), zap.Int("kbps", a.cfg.BitrateKbps))
	a.nextProgress = time.Now().Add(time.Second)
	k := start // index of the next 1024-sample frame out of the filter
	for first := true; ; first = false {
		if a.lk.cmds.stopDue(k) {
			a.log.Info("stop")
			return a.encode(nil)
		}
		a.dec.Unref()
		if err := a.in.next(ctx, a.dec); err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			return fmt.Errorf("av: audio: %w", err)
		}
		if first && a.in.live {
			// A device's first buffer ends now; its samples started earlier.
			dur := int64(a.dec.NbSamples()) * int64(time.Second) / int64(max(a.dec.SampleRate(), 1))
			k = audioIndexAt(epoch, ring.MonotonicNs()-dur)
		}
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
			if !a.in.live {
				if err := ring.SleepUntil(ctx, audioTimeOf(epoch, k+1)); err != nil {
					return err
				}
			}
			a.filt.SetPts(int64(k) * wire.AudioFrameSamples)
			l, lerr := fltpLevels(a.filt)
			if lerr != nil {
				return fmt.Errorf("av: audio: %w", lerr)
			}
			a.levels[k%levelSlots] = frameLevels{idx: k, ok: true, l: l}
			k++
			if err := a.encode(a.filt); err != nil {
				return err
			}
		}
	}
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
		if time.Now().After(a.nextProgress) {
			a.nextProgress = time.Now().Add(time.Second)
			if err := a.lk.progress(wire.Progress{Index: a.last, Frames: a.frames, Source: "live"}); err != nil {
				return fmt.Errorf("av: audio: %w", err)
			}
		}
	}
}
