// Command onair-av is the only cgo binary of onair: it runs one FFmpeg role
// (capture, encode or audio) as a child of onaird, talking to it over fd 3.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"onair/encoder/av"
)

func main() {
	var c av.CaptureConfig
	var e av.EncoderConfig
	var a av.AudioConfig
	role := flag.String("role", "", "capture | encode | audio")
	name := flag.String("name", "", "instance name (encoder-a, audio-main, …)")
	source := flag.String("source", "", "capture: lavfi:<graph> or /dev/videoN; audio: lavfi:, alsa: or pulse:<name>")
	flag.StringVar(&c.RingPath, "ring", "", "frame ring path (capture, encode)")
	kbps := flag.Int("bitrate-kbps", 0, "target bitrate (default: encode 4000, audio 128)")
	flag.StringVar(&c.InputFormat, "input-format", "", "V4L2 input_format")
	flag.StringVar(&c.VideoSize, "video-size", "", "V4L2 video_size")
	flag.StringVar(&c.Framerate, "framerate", "", "V4L2 framerate")
	flag.IntVar(&e.GOP, "gop", 60, "IDR at every index % gop == 0")
	flag.StringVar(&e.Preset, "preset", "veryfast", "x264 preset")
	flag.Int64Var(&e.StartIndex, "start-index", -1, "first ring index to encode (-1: ring head)")
	flag.BoolVar(&e.ResetEveryGOP, "reset-every-gop", false, "fresh codec session per GOP")
	flag.Int64Var(&a.EpochNs, "epoch-ns", 0, "session epoch, CLOCK_MONOTONIC ns (audio)")
	console := flag.Bool("console-log", false, "human-readable logs instead of JSON")
	flag.Parse()

	zcfg := zap.NewProductionConfig()
	if *console {
		zcfg = zap.NewDevelopmentConfig()
	}
	log, err := zcfg.Build() // both write to stderr
	if err != nil {
		fmt.Fprintln(os.Stderr, "onair-av:", err)
		os.Exit(2)
	}
	log = log.Named(*role).With(zap.String("name", *name))
	av.SetFFmpegLogger(log.Named("ffmpeg"))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	wire := os.NewFile(3, "wire") // onaird's socketpair end (ExtraFiles[0]); EOF = onaird gone
	e.Name, e.RingPath, e.BitrateKbps = *name, c.RingPath, *kbps
	c.Name, c.Source = *name, *source
	a.Name, a.Source, a.BitrateKbps = *name, *source, *kbps
	switch *role {
	case "capture":
		err = av.RunCapture(ctx, c, wire, log)
	case "encode":
		err = av.RunEncoder(ctx, e, wire, log)
	case "audio":
		err = av.RunAudio(ctx, a, wire, log)
	default:
		err = fmt.Errorf("unknown -role %q", *role)
	}
	stop()
	if err != nil {
		log.Error("exiting", zap.Error(err))
		_ = log.Sync()
		os.Exit(1)
	}
}
