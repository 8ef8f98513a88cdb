//go:build cgo

package av

/*
#cgo pkg-config: libavcodec libavutil
#cgo LDFLAGS: -lm
#include <math.h>
#include <string.h>
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/samplefmt.h>

// go-astiav v0.16.0 has no setters for these: x264 only applies a bitrate
// change (x264_encoder_reconfig) when VBV is active (FACTS.md §1).
static void onair_set_rate(AVCodecContext *c, int64_t rate, int64_t maxrate, int bufsize) {
	c->bit_rate = rate;
	c->rc_max_rate = maxrate;
	c->rc_buffer_size = bufsize;
}

static void onair_nofree(void *opaque, uint8_t *data) { (void)opaque; (void)data; }

// Points f's planes at a packed YUV 4:2:0 picture (Y, U, V, no padding) at
// src, which f does not own: the buffer reference has no free (the ring's
// mapping outlives the frame) and is read-only. A frame without a buffer
// reference would be copied by avcodec_send_frame (av_frame_ref of a
// non-refcounted frame allocates and copies); this one is only referenced,
// and libx264 copies the planes into its own picture inside
// x264_encoder_encode. What f held before is unreferenced first.
static int onair_wrap_yuv420(AVFrame *f, uint8_t *src, int size, int w, int h) {
	int cw = (w + 1) / 2, ch = (h + 1) / 2;
	if (size < w * h + 2 * cw * ch) return AVERROR(EINVAL);
	av_frame_unref(f);
	f->buf[0] = av_buffer_create(src, size, onair_nofree, NULL, AV_BUFFER_FLAG_READONLY);
	if (!f->buf[0]) return AVERROR(ENOMEM);
	f->format = AV_PIX_FMT_YUV420P;
	f->width = w;
	f->height = h;
	f->data[0] = src;
	f->linesize[0] = w;
	f->data[1] = src + w * h;
	f->linesize[1] = cw;
	f->data[2] = src + w * h + cw * ch;
	f->linesize[2] = cw;
	return 0;
}

// The number of references to f's first buffer (0: none).
static int onair_frame_refs(const AVFrame *f) {
	return f->buf[0] ? av_buffer_get_ref_count(f->buf[0]) : 0;
}

// Peak and RMS of the loudest channel of a planar float frame (fltp): the
// chain's level meter, on the samples it is about to encode. go-astiav
// v0.16.0 gives no access to audio sample planes.
static int onair_fltp_levels(const AVFrame *f, float *peak, float *rms) {
	if (f->format != AV_SAMPLE_FMT_FLTP) return -1;
	int n = f->nb_samples, chs = f->ch_layout.nb_channels;
	float p = 0; double best = 0;
	for (int c = 0; c < chs; c++) {
		const float *s = (const float *)f->extended_data[c];
		double sum = 0;
		for (int i = 0; i < n; i++) {
			float v = fabsf(s[i]);
			if (v > p) p = v;
			sum += (double)s[i] * s[i];
		}
		if (n > 0 && sum / n > best) best = sum / n;
	}
	*peak = p;
	*rms = (float)sqrt(best);
	return 0;
}

// Copies n samples of every channel of the planar frame src, from sample
// soff, into the planar frame dst of the same format, from sample doff: the
// audio chain cuts 1024-sample frames this way (go-astiav v0.16.0 has no
// AudioFifo and no access to sample planes). When doff is 0 dst is made
// writable first: the encoder may still hold a reference to it.
static int onair_copy_planar(AVFrame *dst, int doff, const AVFrame *src, int soff, int n) {
	int chs = src->ch_layout.nb_channels;
	if (src->format != dst->format || !av_sample_fmt_is_planar(src->format) || chs != dst->ch_layout.nb_channels)
		return AVERROR(EINVAL);
	if (soff < 0 || doff < 0 || n < 0 || soff + n > src->nb_samples || doff + n > dst->nb_samples)
		return AVERROR(EINVAL);
	if (doff == 0) {
		int ret = av_frame_make_writable(dst);
		if (ret < 0) return ret;
	}
	return av_samples_copy(dst->extended_data, src->extended_data, doff, soff, n, chs, src->format);
}

// Copies channel ch of a planar float frame into dst (n floats at most);
// returns the number copied, or -1.
static int onair_fltp_plane(const AVFrame *f, int ch, float *dst, int n) {
	if (f->format != AV_SAMPLE_FMT_FLTP || ch < 0 || ch >= f->ch_layout.nb_channels) return -1;
	if (n > f->nb_samples) n = f->nb_samples;
	memcpy(dst, f->extended_data[ch], n * sizeof(float));
	return n;
}
*/
import "C"

import (
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/asticode/go-astiav"
	"go.uber.org/zap"

	"onair/encoder/wire"
)

// codecContextPtr returns the AVCodecContext behind cc. In go-astiav v0.16.0
// the first field of CodecContext is that pointer (FACTS.md §1); go.mod pins
// the version, and TestBitrateCommandChangesRate fails if this ever breaks.
func codecContextPtr(cc *astiav.CodecContext) *C.AVCodecContext {
	return *(**C.AVCodecContext)(unsafe.Pointer(cc))
}

// setRate sets the target, VBV max rate and VBV buffer in one go. Called
// before Open and between frames; libx264 reconfigures on the next frame.
func setRate(cc *astiav.CodecContext, kbps int) {
	bps := int64(kbps) * 1000
	C.onair_set_rate(codecContextPtr(cc), C.int64_t(bps), C.int64_t(bps), C.int(bps/2))
}

// wrapYUV420 points f at the packed ring picture pic (w×h) without copying
// it (see onair_wrap_yuv420); f must not be used once pic may change, and
// is unreferenced by the next wrap or by unwrap.
func wrapYUV420(f *astiav.Frame, pic []byte, w, h int) error {
	if len(pic) == 0 {
		return fmt.Errorf("av: empty picture for %dx%d", w, h)
	}
	ret := C.onair_wrap_yuv420((*C.AVFrame)(f.UnsafePointer()), (*C.uint8_t)(unsafe.Pointer(&pic[0])), C.int(len(pic)), C.int(w), C.int(h))
	if ret < 0 {
		return fmt.Errorf("av: wrap picture of %d bytes as %dx%d: %w", len(pic), w, h, astiav.Error(ret))
	}
	return nil
}

// frameRefs is the number of references to f's buffer: 1 when only f holds
// it, more while the codec still does.
func frameRefs(f *astiav.Frame) int {
	return int(C.onair_frame_refs((*C.AVFrame)(f.UnsafePointer())))
}

// fltpLevels measures the peak and RMS of f, a planar float audio frame.
// A sample that is not a finite number (a broken source) reads as full
// scale, so it is never taken for silence and never breaks the wire.
func fltpLevels(f *astiav.Frame) (wire.AudioLevels, error) {
	var peak, rms C.float
	if C.onair_fltp_levels((*C.AVFrame)(f.UnsafePointer()), &peak, &rms) < 0 {
		return wire.AudioLevels{}, fmt.Errorf("av: levels: frame is %s, want fltp", f.SampleFormat().Name())
	}
	l := wire.AudioLevels{Peak: float32(peak), RMS: float32(rms)}
	for _, v := range []*float32{&l.Peak, &l.RMS} {
		if f := float64(*v); math.IsNaN(f) || math.IsInf(f, 0) {
			*v = 1
		}
	}
	return l, nil
}

// copyPlanar copies n samples of every channel of src from sample soff into
// dst from sample doff (both planar, same format and channels), making dst
// writable first when doff is 0.
func copyPlanar(dst *astiav.Frame, doff int, src *astiav.Frame, soff, n int) error {
	if ret := C.onair_copy_planar((*C.AVFrame)(dst.UnsafePointer()), C.int(doff), (*C.AVFrame)(src.UnsafePointer()), C.int(soff), C.int(n)); ret < 0 {
		return fmt.Errorf("av: copy %d samples (%s, %d channels, %d+%d of %d into %d+%d of %d): %w", n, src.SampleFormat().Name(),
			src.ChannelLayout().NbChannels(), soff, n, src.NbSamples(), doff, n, dst.NbSamples(), astiav.Error(ret))
	}
	return nil
}

// fltpPlane returns channel ch of f, a planar float frame, appended to dst.
func fltpPlane(f *astiav.Frame, ch int, dst []float32) ([]float32, error) {
	n := f.NbSamples()
	if n <= 0 {
		return dst, nil
	}
	buf := make([]float32, n)
	if C.onair_fltp_plane((*C.AVFrame)(f.UnsafePointer()), C.int(ch), (*C.float)(unsafe.Pointer(&buf[0])), C.int(n)) < 0 {
		return dst, fmt.Errorf("av: frame is %s with %d channels, want fltp with channel %d", f.SampleFormat().Name(), f.ChannelLayout().NbChannels(), ch)
	}
	return append(dst, buf...), nil
}

var registerOnce sync.Once

func registerDevices() { registerOnce.Do(astiav.RegisterAllDevices) }

// SetFFmpegLogger routes FFmpeg's log messages at warning level and above to
// log. It changes process-wide FFmpeg state, so only main calls it.
func SetFFmpegLogger(log *zap.Logger) {
	astiav.SetLogLevel(astiav.LogLevelWarning)
	astiav.SetLogCallback(func(_ astiav.Classer, l astiav.LogLevel, _, msg string) {
		if l > astiav.LogLevelWarning {
			return
		}
		if l <= astiav.LogLevelError {
			log.Error("ffmpeg", zap.String("msg", msg))
			return
		}
		log.Warn("ffmpeg", zap.String("msg", msg))
	})
}
