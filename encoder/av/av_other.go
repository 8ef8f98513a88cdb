//go:build !cgo

package av

import (
	"context"
	"errors"
	"io"

	"go.uber.org/zap"
)

// ErrNoCgo is returned by every role when onair-av was built without cgo.
var ErrNoCgo = errors.New("av: built without cgo")

// RunCapture needs cgo (FFmpeg).
func RunCapture(context.Context, CaptureConfig, io.ReadWriter, *zap.Logger) error { return ErrNoCgo }

// RunEncoder needs cgo (FFmpeg).
func RunEncoder(context.Context, EncoderConfig, io.ReadWriter, *zap.Logger) error { return ErrNoCgo }

// RunAudio needs cgo (FFmpeg).
func RunAudio(context.Context, AudioConfig, io.ReadWriter, *zap.Logger) error { return ErrNoCgo }

// SetFFmpegLogger does nothing without cgo.
func SetFFmpegLogger(*zap.Logger) {}
