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

	"onair/encoder/margin"
	"onair/encoder/ring"
	"onair/encoder/wire"
)

// RunEncoder encodes the ring's pictures in index order with libx264 and
// sends every access unit over rw until ctx is cancelled (nil), a stop
// command arrives (nil, after flushing), or the wire closes (ErrWireClosed).
//
// Determinism contract (what makes twins bit-identical): threads=1 with VBV,
// no B-frames, no scene-cut IDRs, IDRs only where index % GOP == 0 or a
// command asks, frame pts = index, and every command applied at the frame
// index it names. Two instances that opened their codec session at the same
// index with the same settings produce the same bytes.
func RunEncoder(ctx context.Context, cfg EncoderConfig, rw io.ReadWriter, log *zap.Logger) error {
	if cfg.Preset == "" {
		cfg.Preset = "veryfast"
	}
	if cfg.BitrateKbps == 0 {
		cfg.BitrateKbps = 4000
	}
	if cfg.GOP <= 0 || cfg.BitrateKbps <= 0 {
		return fmt.Errorf("av: encoder: gop %d and bitrate %d kbps must be positive", cfg.GOP, cfg.BitrateKbps)
	}
	r, err := ring.Open(cfg.RingPath)
	if err != nil {
		return fmt.Errorf("av: encoder: %w", err)
	}
	defer func() {
		if cerr := r.Close(); cerr != nil {
			log.Warn("close ring", zap.Error(cerr))
		}
	}()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lk := startLink(ctx, rw, cancel, log)

	e, err := newX264(cfg, r.Geometry())
	if err != nil {
		return err
	}
	defer e.close()
	err = e.run(ctx, r, lk, log)
	return runErr(ctx, err)
}

// x264 is one encoder instance: settings that survive a reset plus the
// current codec session.
type x264 struct {
	cfg   EncoderConfig
	geo   ring.Geometry
	kbps  int
	cc    *astiav.CodecContext
	frame *astiav.Frame
	pkt   *astiav.Packet
	// meta of pictures sent to the codec and not yet out as packets.
	pending map[uint64]ring.Meta
}

func newX264(cfg EncoderConfig, g ring.Geometry) (*x264, error) {
	e := &x264{cfg: cfg, geo: g, kbps: cfg.BitrateKbps, pending: map[uint64]ring.Meta{}}
	// The frame owns no pixels: encode points it at the ring slot.
	e.frame = astiav.AllocFrame()
	e.pkt = astiav.AllocPacket()
	if err := e.open(); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// open starts a fresh codec session with the current settings.
func (e *x264) open() error {
	codec := astiav.FindEncoderByName("libx264")
	if codec == nil {
		return errors.New("av: encoder: libx264 not available")
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return errors.New("av: encoder: alloc codec context failed")
	}
	cc.SetWidth(e.geo.Width)
	cc.SetHeight(e.geo.Height)
	cc.SetPixelFormat(astiav.PixelFormatYuv420P)
	cc.SetTimeBase(astiav.NewRational(e.geo.FPSDen, e.geo.FPSNum))
	cc.SetFramerate(astiav.NewRational(e.geo.FPSNum, e.geo.FPSDen))
	cc.SetSampleAspectRatio(astiav.NewRational(1, 1))
	// Explicit, never auto: auto depends on the core count, and with VBV
	// only threads=1 is deterministic (FACTS.md §2).
	cc.SetThreadCount(1)
	setRate(cc, e.kbps)
	// No GLOBAL_HEADER flag: libx264 then repeats SPS/PPS in-band before
	// every IDR, so the stream is decodable from any IDR.
	d := astiav.NewDictionary()
	defer d.Free()
	for _, kv := range [][2]string{
		{"preset", e.cfg.Preset},
		{"tune", "zerolatency"},
		{"bf", "0"},
		{"sc_threshold", "0"},
		{"forced-idr", "1"},
		// We place every IDR ourselves (index % gop), so x264's own GOP
		// must never fire.
		{"x264-params", "keyint=infinite:scenecut=0"},
	} {
		if err := d.Set(kv[0], kv[1], 0); err != nil {
			cc.Free()
			return fmt.Errorf("av: encoder: option %s: %w", kv[0], err)
		}
	}
	if err := cc.Open(codec, d); err != nil {
		cc.Free()
		return fmt.Errorf("av: encoder: open libx264: %w", err)
	}
	e.cc = cc
	return nil
}

func (e *x264) close() {
	if e.cc != nil {
		e.cc.Free()
		e.cc = nil
	}
	if e.frame != nil {
		e.frame.Free()
		e.frame = nil
	}
	if e.pkt != nil {
		e.pkt.Free()
		e.pkt = nil
	}
}

// reset drains the current session and opens a fresh one (next frame: IDR).
func (e *x264) reset(lk *link) error {
	if err := e.flush(lk); err != nil {
		return err
	}
	e.cc.Free()
	e.cc = nil
	return e.open()
}

// discard drops the current session and what it still holds, unsent, and
// opens a fresh one (next frame: IDR): its last picture was torn.
func (e *x264) discard() error {
	e.cc.Free()
	e.cc = nil
	clear(e.pending)
	return e.open()
}

// flush drains the codec (end of stream) and sends what it still holds.
func (e *x264) flush(lk *link) error {
	if err := e.cc.SendFrame(nil); err != nil {
		return fmt.Errorf("av: encoder: flush: %w", err)
	}
	return e.drain(lk)
}

// errTorn says the ring lapped the encoder while libx264 copied a picture
// out of its slot: the session was given a torn picture and was discarded.
var errTorn = errors.New("av: encoder: picture overwritten while the codec read it")

// encode hands libx264 the picture of m.Index where it lies in the ring
// (pic, from r.View), without copying it first: libx264 copies every input
// picture into its own frame inside avcodec_send_frame, so that copy is the
// only one (the ring → Go buffer → AVFrame copies before it cost ~3 MB of
// memory traffic per 720p frame). The slot is checked after the codec read
// it: when the ring overwrote it meanwhile (a reader stopped long enough to
// be lapped), the session is discarded with what it made of the torn
// picture, nothing of it is sent, and encode returns errTorn. Otherwise the
// packets go to lk.
func (e *x264) encode(lk *link, r *ring.Ring, m ring.Meta, pic []byte, idr bool) error {
	if err := wrapYUV420(e.frame, pic, e.geo.Width, e.geo.Height); err != nil {
		return fmt.Errorf("av: encoder: frame %d: %w", m.Index, err)
	}
	if idr {
		e.frame.SetPictureType(astiav.PictureTypeI)
	} else {
		// Reset on every frame: an I here would make x264 emit an IDR.
		e.frame.SetPictureType(astiav.PictureTypeNone)
	}
	e.frame.SetKeyFrame(false)
	e.frame.SetPts(int64(m.Index))
	e.pending[m.Index] = m
	err := e.cc.SendFrame(e.frame)
	// libavcodec encodes at once (no packet was waiting: drain took them
	// all), so libx264 has copied the planes and dropped its reference.
	refs := frameRefs(e.frame)
	e.frame.Unref() // nothing points at the ring between frames
	if err != nil {
		return fmt.Errorf("av: encoder: send frame %d: %w", m.Index, err)
	}
	if refs != 1 {
		return fmt.Errorf("[unexpected] av: encoder: the codec still holds frame %d (%d references): it would read the ring after its check", m.Index, refs)
	}
	if !r.Intact(m.Index) {
		if err := e.discard(); err != nil {
			return err
		}
		return errTorn
	}
	return e.drain(lk)
}

func (e *x264) drain(lk *link) error {
	for {
		err := e.cc.ReceivePacket(e.pkt)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("av: encoder: receive packet: %w", err)
		}
		idx := uint64(e.pkt.Pts())
		m := e.pending[idx]
		delete(e.pending, idx)
		h := wire.Header{
			Kind:      wire.KindVideo,
			Index:     idx,
			PTS:       wire.VideoPTS(idx, e.geo.FPSNum, e.geo.FPSDen),
			DTS:       wire.VideoPTS(uint64(e.pkt.Dts()), e.geo.FPSNum, e.geo.FPSDen),
			CaptureNs: m.CaptureNs,
		}
		if e.pkt.Flags().Has(astiav.PacketFlagKey) {
			h.Flags |= wire.FlagKey
		}
		if m.Flags&ring.FlagRepeat != 0 {
			h.Flags |= wire.FlagRepeat
		}
		if m.Flags&ring.FlagSlate != 0 {
			h.Flags |= wire.FlagSlate
		}
		err = lk.Write(h, e.pkt.Data())
		e.pkt.Unref()
		if err != nil {
			return fmt.Errorf("av: encoder: %w", err)
		}
	}
}

// errStop ends run after a stop command.
var errStop = errors.New("av: stop requested")

// apply runs the commands due at index i. It reports whether i must be an IDR.
func (e *x264) apply(lk *link, i uint64, log *zap.Logger) (idr bool, err error) {
	for _, c := range lk.cmds.due(i) {
		l := log.With(zap.String("op", string(c.Op)), zap.Uint64("at_index", c.AtIndex), zap.Uint64("index", i))
		if c.AtIndex < i {
			l.Warn("command arrived late, applied at this frame instead")
		}
		switch c.Op {
		case wire.OpBitrate:
			if c.BitrateKbps <= 0 {
				l.Warn("ignoring bitrate command without a positive rate")
				continue
			}
			e.kbps = c.BitrateKbps
			setRate(e.cc, e.kbps)
			l.Info("bitrate changed", zap.Int("kbps", e.kbps))
		case wire.OpIDR:
			idr = true
			l.Info("idr forced")
		case wire.OpReset:
			if err := e.reset(lk); err != nil {
				return false, err
			}
			idr = true
			l.Info("codec session reset")
		case wire.OpStop:
			l.Info("stop")
			return false, errStop
		default:
			l.Warn("unknown command")
		}
	}
	return idr, nil
}

func (e *x264) run(ctx context.Context, r *ring.Ring, lk *link, log *zap.Logger) error {
	g := r.Geometry()
	i := r.Head()
	if i == 0 { // nothing published yet: the next index due
		i = r.IndexAt(ring.MonotonicNs()) + 1
	}
	if e.cfg.StartIndex >= 0 {
		i = uint64(e.cfg.StartIndex)
	}
	if err := lk.hello(wire.Hello{
		Role: "encode", Name: e.cfg.Name, Codec: "h264",
		Width: g.Width, Height: g.Height, FPSNum: g.FPSNum, FPSDen: g.FPSDen, StartIndex: i,
	}); err != nil {
		return fmt.Errorf("av: encoder: %w", err)
	}
	log.Info("encoding", zap.Uint64("start_index", i), zap.Int("kbps", e.kbps), zap.Int("gop", e.cfg.GOP),
		zap.String("preset", e.cfg.Preset), zap.Bool("reset_every_gop", e.cfg.ResetEveryGOP))

	var frames, lapped uint64
	last := i
	// The real-time margin: each frame's wall time from its picture being
	// ready in the ring to its packets on the wire, one window per heartbeat.
	meter := margin.New(g.FrameDuration(), wire.MarginWindows)
	nextProgress := time.Now().Add(time.Second)
	progress := func(lastErr string) error {
		nextProgress = time.Now().Add(time.Second)
		p := wire.Progress{Index: last, Frames: frames, LagFrames: int64(r.Head()) - int64(i), LastError: lastErr}
		if x, minX, _, ok := meter.Window(); ok {
			p.Margin, p.MarginMin = x, minX
		}
		return lk.progress(p)
	}
	lap := func() {
		lapped++
		head := r.Head()
		log.Warn("lapped by the ring, jumping to the newest picture", zap.Uint64("index", i), zap.Uint64("head", head), zap.Uint64("lapped", lapped))
		if head > 0 && head-1 > i {
			i = head - 1
		} else {
			i++
		}
	}
	for first := true; ; {
		if lk.cmds.stopDue(i) {
			log.Info("stop")
			return e.flush(lk)
		}
		err := r.Wait(ctx, i, 250*time.Millisecond)
		switch {
		case errors.Is(err, ring.ErrOverwritten):
			lap()
			continue
		case errors.Is(err, ring.ErrNotYet):
			// The cadence keeper decides substitutes; never skip on our own
			// timeout or the twins would diverge (DESIGN.md).
			if time.Now().After(nextProgress) {
				if err = progress("waiting for frame " + strconv.FormatUint(i, 10)); err != nil {
					return fmt.Errorf("av: encoder: %w", err)
				}
			}
			continue
		case err != nil:
			return err
		}
		began := time.Now()
		m, pic, err := r.View(i)
		if errors.Is(err, ring.ErrOverwritten) {
			lap()
			continue
		}
		if err != nil {
			return fmt.Errorf("av: encoder: read %d: %w", i, err)
		}
		idr, err := e.apply(lk, i, log)
		if errors.Is(err, errStop) {
			return e.flush(lk)
		}
		if err != nil {
			return err
		}
		if i%uint64(e.cfg.GOP) == 0 {
			if e.cfg.ResetEveryGOP && !first {
				if err = e.reset(lk); err != nil {
					return err
				}
			}
			idr = true
		}
		err = e.encode(lk, r, m, pic, idr || first)
		if errors.Is(err, errTorn) {
			first = true // a fresh session: its first frame is an IDR
			lap()
			continue
		}
		if err != nil {
			return err
		}
		meter.Frame(time.Since(began))
		first = false
		frames++
		last = i
		i++
		if time.Now().After(nextProgress) {
			if err := progress(""); err != nil {
				return fmt.Errorf("av: encoder: %w", err)
			}
		}
	}
}
