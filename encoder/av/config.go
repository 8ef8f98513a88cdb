package av

import "errors"

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
