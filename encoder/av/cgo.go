//go:build cgo

package av

/*
#cgo pkg-config: libavcodec libavutil
#cgo LDFLAGS: -lm
#include <math.h>
#include <string.h>
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>

// go-astiav v0.16.0 has no setters for these: x264 only applies a bitrate
// change (x264_encoder_reconfig) when VBV is active (FACTS.md §1).
static void onair_set_rate(AVCodecContext *c, int64_t rate, int64_t maxrate, int bufsize) {
	c->bit_rate = rate;
	c->rc_max_rate = maxrate;
	c->rc_buffer_size = bufsize;
}

// Copies a packed YUV 4:2:0 picture (Y, U, V, no padding) into f's planes.
static int onair_fill_yuv420(AVFrame *f, const uint8_t *src, int w, int h) {
	int ret = av_frame_make_writable(f);
	if (ret < 0) return ret;
	int cw = (w + 1) / 2, ch = (h + 1) / 2;
	for (int y = 0; y < h; y++) memcpy(f->data[0] + y * f->linesize[0], src + y * w, w);
	src += w * h;
	for (int y = 0; y < ch; y++) memcpy(f->data[1] + y * f->linesize[1], src + y * cw, cw);
	src += cw * ch;
	for (int y = 0; y < ch; y++) memcpy(f->data[2] + y * f->linesize[2], src + y * cw, cw);
	return 0;
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

// fillYUV420 copies a packed ring picture into f (allocated yuv420p, w×h),
// making f writable first: the encoder may still hold a reference to it.
func fillYUV420(f *astiav.Frame, src []byte, w, h int) error {
	if len(src) < w*h*3/2 {
		return fmt.Errorf("av: picture of %d bytes is too small for %dx%d", len(src), w, h)
	}
	ret := C.onair_fill_yuv420((*C.AVFrame)(f.UnsafePointer()), (*C.uint8_t)(unsafe.Pointer(&src[0])), C.int(w), C.int(h))
	if ret < 0 {
		return fmt.Errorf("av: fill frame: %w", astiav.Error(ret))
	}
	return nil
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
