//go:build cgo

package av

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/asticode/go-astiav"
	"go.uber.org/zap"

	"onair/encoder/ring"
	"onair/encoder/wire"
)

// RunCapture publishes the source's pictures into the ring at cfg.RingPath
// until ctx is cancelled (nil), the wire closes (ErrWireClosed) or the source
// fails. It sends Hello, then a Progress after every published picture.
//
// Index rules. A lavfi source generates as fast as it can, so it is paced:
// index k is published no earlier than ring.TimeOf(k), starting at
// IndexAt(now)+1, which lets a restarted capture continue the timeline. A
// live device is stamped by arrival: index = IndexAt(arrival), and a second
// picture in the same index is dropped. An index someone else already
// claimed (onaird's cadence keeper filled it because we were late) is
// skipped.
func RunCapture(ctx context.Context, cfg CaptureConfig, rw io.ReadWriter, log *zap.Logger) error {
	if cfg.Name == "" {
		cfg.Name = "capture"
	}
	r, err := ring.Open(cfg.RingPath)
	if err != nil {
		return fmt.Errorf("av: capture: %w", err)
	}
	defer r.Close()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lk := startLink(ctx, rw, cancel, log)

	var in *input
	if graph, ok := strings.CutPrefix(cfg.Source, "lavfi:"); ok {
		in, err = openInput(ctx, "lavfi", graph, nil, astiav.MediaTypeVideo)
	} else {
		in, err = openInput(ctx, "video4linux2", cfg.Source, map[string]string{
			"input_format": cfg.InputFormat, "video_size": cfg.VideoSize, "framerate": cfg.Framerate,
		}, astiav.MediaTypeVideo)
	}
	if err != nil {
		return runErr(ctx, fmt.Errorf("av: capture: %w", err))
	}
	defer in.close()
	c := &capture{r: r, in: in, lk: lk, log: log}
	defer c.free()
	return runErr(ctx, c.run(ctx, cfg))
}

type capture struct {
	r      *ring.Ring
	in     *input
	lk     *link
	log    *zap.Logger
	src    *astiav.Frame
	scaled *astiav.Frame
	sws    *astiav.SoftwareScaleContext
	swsKey [3]int
}

func (c *capture) free() {
	for _, f := range []*astiav.Frame{c.src, c.scaled} {
		if f != nil {
			f.Free()
		}
	}
	if c.sws != nil {
		c.sws.Free()
	}
}

// picture returns src converted to the ring geometry (src itself when it
// already matches).
func (c *capture) picture(src *astiav.Frame) (*astiav.Frame, error) {
	g := c.r.Geometry()
	if src.PixelFormat() == astiav.PixelFormatYuv420P && src.Width() == g.Width && src.Height() == g.Height {
		return src, nil
	}
	key := [3]int{src.Width(), src.Height(), int(src.PixelFormat())}
	if c.sws == nil || key != c.swsKey {
		if c.sws != nil {
			c.sws.Free()
		}
		var err error
		c.sws, err = astiav.CreateSoftwareScaleContext(src.Width(), src.Height(), src.PixelFormat(),
			g.Width, g.Height, astiav.PixelFormatYuv420P, astiav.NewSoftwareScaleContextFlags(astiav.SoftwareScaleContextFlagBilinear))
		if err != nil {
			c.sws = nil
			return nil, fmt.Errorf("av: capture: swscale %dx%d %s: %w", src.Width(), src.Height(), src.PixelFormat(), err)
		}
		c.swsKey = key
		c.log.Info("converting source", zap.Int("width", src.Width()), zap.Int("height", src.Height()),
			zap.Stringer("pix_fmt", src.PixelFormat()), zap.Int("ring_width", g.Width), zap.Int("ring_height", g.Height))
	}
	c.scaled.Unref()
	c.scaled.SetWidth(g.Width)
	c.scaled.SetHeight(g.Height)
	c.scaled.SetPixelFormat(astiav.PixelFormatYuv420P)
	if err := c.sws.ScaleFrame(src, c.scaled); err != nil {
		return nil, fmt.Errorf("av: capture: scale: %w", err)
	}
	return c.scaled, nil
}

// lavfiAlignMax bounds the frames alignLavfi may discard (10 s at 30 fps).
const lavfiAlignMax = 300

// alignLavfi makes a test source deterministic per frame index: it discards
// lavfi frames so that frame n of the filtergraph is published at index n.
// Two runs of the box then carry the same picture at the same index, which is
// what lets a test compare a fault run with a fault-free run bit for bit. It
// only applies when capture starts within the first lavfiAlignMax frames of
// the session (a restart later on would have to generate too many frames).
func (c *capture) alignLavfi(ctx context.Context, start uint64) error {
	if start > lavfiAlignMax {
		return nil
	}
	for n := uint64(0); n < start; n++ {
		c.src.Unref()
		if err := c.in.next(ctx, c.src); err != nil {
			return fmt.Errorf("av: capture: align lavfi: %w", err)
		}
	}
	return nil
}

func (c *capture) run(ctx context.Context, cfg CaptureConfig) error {
	r := c.r
	c.src = astiav.AllocFrame()
	c.scaled = astiav.AllocFrame()
	next := r.IndexAt(ring.MonotonicNs()) + 1 // lavfi: next index to publish
	var last uint64                           // live: last published index + 1
	g := r.Geometry()
	if err := c.lk.hello(wire.Hello{Role: "capture", Name: cfg.Name, Width: g.Width, Height: g.Height,
		FPSNum: g.FPSNum, FPSDen: g.FPSDen, StartIndex: next}); err != nil {
		return fmt.Errorf("av: capture: %w", err)
	}
	if !c.in.live {
		if err := c.alignLavfi(ctx, next); err != nil {
			return err
		}
	}
	c.log.Info("capturing", zap.String("source", cfg.Source), zap.Bool("live", c.in.live), zap.Uint64("start_index", next))
	var frames, skipped uint64
	for {
		c.src.Unref()
		if err := c.in.next(ctx, c.src); err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			_ = c.lk.progress(wire.Progress{Index: last, Frames: frames, Source: "eof", LastError: err.Error()})
			return fmt.Errorf("av: capture: %w", err)
		}
		arrival := ring.MonotonicNs()
		pic, err := c.picture(c.src)
		if err != nil {
			return err
		}
		var idx uint64
		var buf []byte
		if c.in.live {
			idx = r.IndexAt(arrival)
			if idx < last {
				continue // a second picture within one index: drop it
			}
			buf, err = r.Claim(idx)
			if errors.Is(err, ring.ErrClaimed) {
				skipped++
				continue
			}
		} else {
			// Far behind (stalled source): rejoin the present instead of
			// replaying a past the keeper has already filled.
			if now := r.IndexAt(arrival); now > next+uint64(r.Slots())/2 {
				next = now
			}
			if err := ring.SleepUntil(ctx, r.TimeOf(next)); err != nil {
				return err
			}
			buf, err = r.Claim(next)
			if errors.Is(err, ring.ErrClaimed) {
				// The keeper filled this index: drop the picture with it, so
				// lavfi frame n stays at index n (see alignLavfi).
				skipped++
				c.log.Debug("index already claimed, skipping it", zap.Uint64("index", next))
				next++
				continue
			}
			idx = next
			next++
		}
		if err != nil {
			return fmt.Errorf("av: capture: claim %d: %w", idx, err)
		}
		if _, err := pic.ImageCopyToBuffer(buf, 1); err != nil {
			// The slot is ours: publish something rather than leave it claimed.
			clear(buf)
			r.Publish(idx, ring.MonotonicNs(), ring.FlagBlack)
			return fmt.Errorf("av: capture: copy picture %d: %w", idx, err)
		}
		capNs := arrival
		if !c.in.live {
			capNs = ring.MonotonicNs()
		}
		r.Publish(idx, capNs, 0)
		last = idx + 1
		frames++
		p := wire.Progress{Index: idx, Frames: frames, Source: "live"}
		if skipped > 0 {
			p.LastError = fmt.Sprintf("%d indexes were already claimed", skipped)
		}
		if err := c.lk.progress(p); err != nil {
			return fmt.Errorf("av: capture: %w", err)
		}
	}
}
