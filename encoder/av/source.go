//go:build cgo

package av

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/asticode/go-astiav"
)

// input is an opened demuxer plus the decoder of its one stream of interest.
type input struct {
	fc     *astiav.FormatContext
	st     *astiav.Stream
	dec    *astiav.CodecContext
	pkt    *astiav.Packet
	live   bool // a device with its own clock; false for lavfi (we pace it)
	stopIO func()
}

// pollInterval is how often a non-blocking device (V4L2) is asked again for
// a frame after it answered EAGAIN: a small fraction of a frame interval, so
// a frame is picked up at most this late, and a device without signal never
// blocks the reader beyond it (cancellation is seen within it).
const pollInterval = 2 * time.Millisecond

// openInput opens format (a libavdevice or libavformat name; empty: probe
// it) at url with opts and picks the first stream of type mt. Cancelling ctx
// interrupts a blocked read (devices and network protocols; a plain file or
// FIFO blocks in read(2), which nothing interrupts).
//
// A V4L2 device is opened non-blocking: a device without signal answers
// EAGAIN, which next turns into a short poll, instead of blocking in
// VIDIOC_DQBUF where neither a cancel nor the interrupt callback reaches it.
func openInput(ctx context.Context, format, url string, opts map[string]string, mt astiav.MediaType) (*input, error) {
	registerDevices()
	var ifmt *astiav.InputFormat
	if format != "" {
		if ifmt = astiav.FindInputFormat(format); ifmt == nil {
			return nil, fmt.Errorf("av: input format %q not available", format)
		}
	}
	in := &input{live: format != "lavfi", fc: astiav.AllocFormatContext()}
	if in.fc == nil {
		return nil, errors.New("av: alloc format context failed")
	}
	if format == "video4linux2" {
		in.fc.SetFlags(in.fc.Flags().Add(astiav.FormatContextFlagNonblock))
	}
	intr := in.fc.SetInterruptCallback()
	stop := context.AfterFunc(ctx, intr.Interrupt)
	in.stopIO = func() { stop() }
	d := astiav.NewDictionary()
	defer d.Free()
	for k, v := range opts {
		if v != "" {
			if err := d.Set(k, v, 0); err != nil {
				in.close()
				return nil, fmt.Errorf("av: option %s: %w", k, err)
			}
		}
	}
	if format == "" {
		format = "url"
	}
	if err := in.fc.OpenInput(url, ifmt, d); err != nil {
		in.fc.Free()
		in.fc = nil
		in.close()
		return nil, fmt.Errorf("av: open %s %q: %w", format, url, err)
	}
	if err := in.fc.FindStreamInfo(nil); err != nil {
		in.close()
		return nil, fmt.Errorf("av: probe %s %q: %w", format, url, err)
	}
	for _, s := range in.fc.Streams() {
		if s.CodecParameters().MediaType() == mt {
			in.st = s
			break
		}
	}
	if in.st == nil {
		in.close()
		return nil, fmt.Errorf("av: %s %q has no %s stream", format, url, mt)
	}
	codec := astiav.FindDecoder(in.st.CodecParameters().CodecID())
	if codec == nil {
		in.close()
		return nil, fmt.Errorf("av: no decoder for %s", in.st.CodecParameters().CodecID())
	}
	in.dec = astiav.AllocCodecContext(codec)
	if err := in.dec.FromCodecParameters(in.st.CodecParameters()); err != nil {
		in.close()
		return nil, fmt.Errorf("av: decoder parameters: %w", err)
	}
	in.dec.SetTimeBase(in.st.TimeBase())
	if err := in.dec.Open(codec, nil); err != nil {
		in.close()
		return nil, fmt.Errorf("av: open decoder %s: %w", codec.Name(), err)
	}
	in.pkt = astiav.AllocPacket()
	return in, nil
}

// next decodes the next frame of the stream into f.
func (in *input) next(ctx context.Context, f *astiav.Frame) error {
	for {
		err := in.dec.ReceiveFrame(f)
		if err == nil {
			return nil
		}
		if !errors.Is(err, astiav.ErrEagain) {
			return fmt.Errorf("av: decode: %w", err)
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if rerr := in.fc.ReadFrame(in.pkt); rerr != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(rerr, astiav.ErrEagain) {
				// A non-blocking device has no frame yet (or no signal).
				t := time.NewTimer(pollInterval)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
				continue
			}
			return fmt.Errorf("av: read: %w", rerr)
		}
		if in.pkt.StreamIndex() == in.st.Index() {
			err = in.dec.SendPacket(in.pkt)
		}
		in.pkt.Unref()
		if err != nil {
			return fmt.Errorf("av: decode: %w", err)
		}
	}
}

func (in *input) close() {
	if in.stopIO != nil {
		in.stopIO()
	}
	if in.pkt != nil {
		in.pkt.Free()
	}
	if in.dec != nil {
		in.dec.Free()
	}
	if in.fc != nil {
		in.fc.CloseInput()
		in.fc.Free()
	}
}

// splitSource splits "lavfi:graph" / "alsa:dev" / "pulse:src" into the
// libavdevice format and its URL.
func splitSource(src string, allowed ...string) (format, url string, err error) {
	for _, f := range allowed {
		if rest, ok := strings.CutPrefix(src, f+":"); ok && rest != "" {
			return f, rest, nil
		}
	}
	return "", "", fmt.Errorf("av: source %q: want one of %s followed by ':'", src, strings.Join(allowed, ", "))
}

// openVideo opens the capture source named by cfg.Source:
//
//   - "lavfi:<filtergraph>": a test source, paced to the wall clock;
//   - "url:<libavformat URL>": a stream read through libavformat, format
//     probed (e.g. url:tcp://127.0.0.1:5000 carrying nut or mpegts from an
//     ffmpeg peer); live, stamped by arrival like a device. Prefer a network
//     protocol: its read honours cancellation, a FIFO's read(2) does not;
//   - anything else: a V4L2 device path such as /dev/video0, with
//     cfg.InputFormat, VideoSize and Framerate.
func openVideo(ctx context.Context, cfg CaptureConfig) (*input, error) {
	if graph, ok := strings.CutPrefix(cfg.Source, "lavfi:"); ok {
		return openInput(ctx, "lavfi", graph, nil, astiav.MediaTypeVideo)
	}
	if url, ok := strings.CutPrefix(cfg.Source, "url:"); ok {
		return openInput(ctx, "", url, nil, astiav.MediaTypeVideo)
	}
	return openInput(ctx, "video4linux2", cfg.Source, map[string]string{
		"input_format": cfg.InputFormat, "video_size": cfg.VideoSize, "framerate": cfg.Framerate,
	}, astiav.MediaTypeVideo)
}
