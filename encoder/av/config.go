package av

import (
	"context"
	"errors"
	"fmt"
	"io"

	"go.uber.org/zap"

	"onair/encoder/wire"
)

// ErrWireClosed is returned by the Run functions when the peer closed the
// wire: onaird is gone, and a child without a parent must not keep running.
var ErrWireClosed = errors.New("av: wire closed (onaird gone)")

// CaptureConfig configures RunCapture.
type CaptureConfig struct {
	Name string // for Hello and logs; default "capture"
	// Source is "lavfi:<filtergraph>" (a test source, paced to the wall
	// clock) or a V4L2 device path such as /dev/video0.
	Source string
	// InputFormat, VideoSize and Framerate are passed to the video4linux2
	// demuxer as input_format, video_size and framerate (empty: device default).
	InputFormat, VideoSize, Framerate string
	RingPath                          string // ring created by onaird
}

// EncoderConfig configures RunEncoder.
type EncoderConfig struct {
	Name        string // "encoder-a", "encoder-b"
	RingPath    string
	BitrateKbps int    // initial target, default 4000 (also the VBV max rate; the buffer is half)
	GOP         int    // IDR exactly at index % GOP == 0
	Preset      string // x264 preset, default "veryfast"
	// StartIndex is the first ring index to encode; negative means the
	// ring head (the next picture to be published; on an empty ring, the
	// next index due). Zero means index 0, not "unset".
	StartIndex int64
	// ResetEveryGOP opens a fresh codec session at every GOP boundary, so
	// twins are locked from the first boundary they both encode, at the cost
	// of rate-control history (kept for comparison with reset commands).
	ResetEveryGOP bool
}

// AudioConfig configures RunAudio.
type AudioConfig struct {
	Name string // "audio-main", "audio-backup"
	// Source is "lavfi:<filtergraph>", "alsa:<device>" or "pulse:<source>".
	Source      string
	EpochNs     int64 // CLOCK_MONOTONIC ns of sample 0 (the session epoch)
	BitrateKbps int   // AAC bitrate, default 128
}

// AudioSampleRate and AudioChannels are what RunAudio always encodes: AAC-LC
// 48 kHz stereo, whatever the source delivers.
const (
	AudioSampleRate = 48000
	AudioChannels   = 2
)

// Run runs the role a names, configured from a (see wire.ChildArgs), over
// the wire rw, until ctx ends, the wire closes or the role fails.
func Run(ctx context.Context, a wire.ChildArgs, rw io.ReadWriter, log *zap.Logger) error {
	switch a.Role {
	case wire.RoleCapture:
		return RunCapture(ctx, CaptureConfigOf(a), rw, log)
	case wire.RoleEncode:
		return RunEncoder(ctx, EncoderConfigOf(a), rw, log)
	case wire.RoleAudio:
		return RunAudio(ctx, AudioConfigOf(a), rw, log)
	}
	return fmt.Errorf("av: unknown role %q", a.Role)
}

// CaptureConfigOf is the capture configuration a child's arguments describe.
func CaptureConfigOf(a wire.ChildArgs) CaptureConfig {
	return CaptureConfig{Name: a.Name, Source: a.Source, InputFormat: a.InputFormat,
		VideoSize: a.VideoSize, Framerate: a.Framerate, RingPath: a.Ring}
}

// EncoderConfigOf is the encoder configuration a child's arguments describe;
// no StartIndex is the ring head.
func EncoderConfigOf(a wire.ChildArgs) EncoderConfig {
	c := EncoderConfig{Name: a.Name, RingPath: a.Ring, BitrateKbps: a.BitrateKbps, GOP: a.GOP,
		Preset: a.Preset, StartIndex: -1, ResetEveryGOP: a.ResetEveryGOP}
	if a.StartIndex != nil {
		c.StartIndex = *a.StartIndex
	}
	return c
}

// AudioConfigOf is the audio configuration a child's arguments describe.
func AudioConfigOf(a wire.ChildArgs) AudioConfig {
	return AudioConfig{Name: a.Name, Source: a.Source, EpochNs: a.EpochNs, BitrateKbps: a.BitrateKbps}
}
