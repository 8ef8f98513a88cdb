//go:build cgo

package av

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/asticode/go-astiav"
	"go.uber.org/zap"

	"onair/encoder/ring"
	"onair/encoder/wire"
)

// RunCapture publishes the source's pictures into the ring at cfg.RingPath
// until ctx is cancelled (nil), the wire closes (ErrWireClosed) or the source
// fails. It sends Hello, then a Progress after every published picture, and
// a heartbeat Progress whenever it published nothing for heartbeatEvery, with
// Source saying whether the source has signal (wire.SourceLive,
// wire.SourceNoSignal). A live source that goes silent is not a failure:
// capture waits for it (reopening it if its read fails), the keeper shows
// repeat and slate meanwhile, and the first frame back is written at once.
//
// Index rules. A lavfi source generates as fast as it can, so it is paced:
// index k is published no earlier than ring.TimeOf(k), starting at
// IndexAt(now)+1, which lets a restarted capture continue the timeline. A
// live source (a device, a url: stream) is read by its own goroutine and
// stamped by arrival: index = IndexAt(arrival), or the next index for a
// second picture within one index (liveIndex); the writer only ever gets
// the newest two frames (older ones not yet written are dropped: no backlog
// after a burst). An index
// someone else already claimed (onaird's cadence keeper filled it because we
// were late) is skipped.
func RunCapture(ctx context.Context, cfg CaptureConfig, rw io.ReadWriter, log *zap.Logger) error {
	if cfg.Name == "" {
		cfg.Name = "capture"
	}
	r, err := ring.Open(cfg.RingPath)
	if err != nil {
		return fmt.Errorf("av: capture: %w", err)
	}
	defer func() { _ = r.Close() }() // an unmap at exit: nothing left to save

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lk := startLink(ctx, rw, cancel, log)

	in, err := openVideo(ctx, cfg)
	if err != nil {
		return runErr(ctx, fmt.Errorf("av: capture: %w", err))
	}
	c := &capture{r: r, in: in, lk: lk, log: log}
	defer c.free()
	return runErr(ctx, c.run(ctx, cfg))
}

type capture struct {
	r      *ring.Ring
	in     *input // owned by the reader goroutine while it runs (live sources)
	lk     *link
	log    *zap.Logger
	live   *liveness
	src    *astiav.Frame
	scaled *astiav.Frame
	sws    *astiav.SoftwareScaleContext
	swsKey [3]int
	frames []*astiav.Frame // the live reader's and the mailbox's frames
	leaked bool            // the reader is stuck in a read: free nothing it may touch
}

func (c *capture) free() {
	if c.leaked {
		return // the process is about to exit; freeing under a blocked read would crash it
	}
	for _, f := range append([]*astiav.Frame{c.src, c.scaled}, c.frames...) {
		if f != nil {
			f.Free()
		}
	}
	if c.sws != nil {
		c.sws.Free()
	}
	if c.in != nil {
		c.in.close()
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
	g := r.Geometry()
	if err := c.lk.hello(wire.Hello{Role: "capture", Name: cfg.Name, Width: g.Width, Height: g.Height,
		FPSNum: g.FPSNum, FPSDen: g.FPSDen, StartIndex: next}); err != nil {
		return fmt.Errorf("av: capture: %w", err)
	}
	c.live = newLiveness(g.FrameDuration(), ring.MonotonicNs())
	hbCtx, stopHB := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); c.heartbeats(hbCtx) }()
	defer func() { stopHB(); <-hbDone }()
	live := c.in.live
	if !live {
		if err := c.alignLavfi(ctx, next); err != nil {
			return err
		}
	}
	c.log.Info("capturing", zap.String("source", cfg.Source), zap.Bool("live", live), zap.Uint64("start_index", next))
	if live {
		return c.runLive(ctx, cfg)
	}
	return c.runPaced(ctx, next)
}

// heartbeats sends a Progress whenever capture said nothing for
// heartbeatEvery, from its own goroutine: a read blocked on a silent source
// must not look like a hung child to onaird.
func (c *capture) heartbeats(ctx context.Context) {
	t := time.NewTicker(heartbeatEvery / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p, due, lost := c.live.heartbeat(ring.MonotonicNs())
		if lost {
			c.log.Warn("no signal from the source", zap.Uint64("last_index", p.Index))
		}
		if !due {
			continue
		}
		if err := c.lk.progress(p); err != nil {
			return // the wire is gone: the link cancels the role
		}
	}
}

// sent reports a published picture to onaird.
func (c *capture) sent(p wire.Progress) error {
	if err := c.lk.progress(p); err != nil {
		return fmt.Errorf("av: capture: %w", err)
	}
	c.live.sent(p, ring.MonotonicNs())
	return nil
}

// publish converts src and writes it at idx, which the caller claimed (buf).
func (c *capture) publish(idx uint64, buf []byte, pic *astiav.Frame, capNs int64) error {
	if _, err := pic.ImageCopyToBuffer(buf, 1); err != nil {
		// The slot is ours: publish something rather than leave it claimed.
		clear(buf)
		c.r.Publish(idx, ring.MonotonicNs(), ring.FlagBlack)
		return fmt.Errorf("av: capture: copy picture %d: %w", idx, err)
	}
	c.r.Publish(idx, capNs, 0)
	return nil
}

// runPaced publishes a lavfi source, paced to the wall clock.
func (c *capture) runPaced(ctx context.Context, next uint64) error {
	r := c.r
	var frames, skipped uint64
	for {
		c.src.Unref()
		if err := c.in.next(ctx, c.src); err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			_ = c.lk.progress(wire.Progress{Index: next, Frames: frames, Source: "eof", LastError: err.Error()})
			return fmt.Errorf("av: capture: %w", err)
		}
		c.live.frame(ring.MonotonicNs())
		pic, err := c.picture(c.src)
		if err != nil {
			return err
		}
		// Far behind (stalled source): rejoin the present instead of
		// replaying a past the keeper has already filled.
		if now := r.IndexAt(ring.MonotonicNs()); now > next+uint64(r.Slots())/2 {
			next = now
		}
		if err = ring.SleepUntil(ctx, r.TimeOf(next)); err != nil {
			return err
		}
		buf, err := r.Claim(next)
		if errors.Is(err, ring.ErrClaimed) {
			// The keeper filled this index: drop the picture with it, so
			// lavfi frame n stays at index n (see alignLavfi).
			skipped++
			c.log.Debug("index already claimed, skipping it", zap.Uint64("index", next))
			next++
			continue
		}
		if err != nil {
			return fmt.Errorf("av: capture: claim %d: %w", next, err)
		}
		idx := next
		next++
		if err := c.publish(idx, buf, pic, ring.MonotonicNs()); err != nil {
			return err
		}
		frames++
		p := wire.Progress{Index: idx, Frames: frames, Source: wire.SourceLive}
		if skipped > 0 {
			p.LastError = fmt.Sprintf("%d indexes were already claimed", skipped)
		}
		if err := c.sent(p); err != nil {
			return err
		}
	}
}

// readerExitWait bounds how long capture waits, when it stops, for a reader
// stuck in a read nothing can interrupt (a FIFO): the process exits anyway.
const readerExitWait = time.Second

// reopenEvery paces the attempts to reopen a live source whose read failed
// (a USB camera that rebooted: its device node comes back).
const reopenEvery = 500 * time.Millisecond

// runLive publishes a live source: a reader goroutine blocks in the source's
// read and hands the frames over in a mailbox that keeps the newest two;
// this loop writes each at the index of its arrival (liveIndex).
func (c *capture) runLive(ctx context.Context, cfg CaptureConfig) error {
	r := c.r
	for range mailboxDepth + 1 {
		c.frames = append(c.frames, astiav.AllocFrame())
	}
	mb := newMailbox(c.frames[1:]...)
	rctx, stopReader := context.WithCancel(ctx)
	readerDone := make(chan error, 1)
	go func() { readerDone <- c.read(rctx, cfg, mb, c.frames[0]) }()
	defer func() {
		stopReader()
		select {
		case err := <-readerDone:
			_ = err // only the exit is awaited here; the loop dealt with a read error
		case <-time.After(readerExitWait):
			c.leaked = true
			c.log.Warn("source read does not return: leaving it to the exit")
		}
	}()
	cur := c.src
	var last uint64 // last published index + 1
	var frames, skipped uint64
	more := false
	for {
		if !more {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case err := <-readerDone:
				readerDone <- err // for the deferred wait
				return err
			case <-mb.notify:
			}
		}
		f, arrival, ok, m := mb.take(cur)
		cur, more = f, m
		if !ok {
			continue
		}
		if back, gap := c.live.frame(arrival); back {
			c.log.Info("signal back", zap.Duration("silent", gap), zap.Uint64("index", r.IndexAt(arrival)))
		}
		idx, ok := liveIndex(r.IndexAt(arrival), last)
		if !ok {
			continue // two indexes ahead of arrival: drop it
		}
		pic, err := c.picture(cur)
		if err != nil {
			return err
		}
		buf, err := r.Claim(idx)
		if errors.Is(err, ring.ErrClaimed) {
			skipped++
			continue
		}
		if err != nil {
			return fmt.Errorf("av: capture: claim %d: %w", idx, err)
		}
		if err := c.publish(idx, buf, pic, arrival); err != nil {
			return err
		}
		last = idx + 1
		frames++
		p := wire.Progress{Index: idx, Frames: frames, Source: wire.SourceLive}
		if skipped > 0 {
			p.LastError = fmt.Sprintf("%d indexes were already claimed", skipped)
		}
		if d := mb.droppedFrames(); d > 0 && p.LastError == "" {
			p.LastError = fmt.Sprintf("%d source frames replaced by newer ones before they were written", d)
		}
		if err := c.sent(p); err != nil {
			return err
		}
	}
}

// read decodes the live source into the mailbox until ctx is done. A read
// that fails (device gone, peer closed) is not the end: the source is
// reopened every reopenEvery, while the heartbeats say there is no signal.
func (c *capture) read(ctx context.Context, cfg CaptureConfig, mb *mailbox[*astiav.Frame], work *astiav.Frame) error {
	failed := false
	for {
		if c.in == nil {
			t := time.NewTimer(reopenEvery)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			in, err := openVideo(ctx, cfg)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				c.log.Debug("reopen source", zap.Error(err))
				continue
			}
			c.log.Info("source reopened", zap.String("source", cfg.Source))
			c.in, failed = in, false
		}
		work.Unref()
		if err := c.in.next(ctx, work); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !failed {
				c.log.Warn("source read failed: reopening it", zap.Error(err))
			}
			failed = true
			c.in.close()
			c.in = nil
			continue
		}
		work = mb.put(work, ring.MonotonicNs())
	}
}
