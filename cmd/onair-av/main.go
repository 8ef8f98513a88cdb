// Command onair-av is the only cgo binary of onair: it runs one FFmpeg role
// (capture, encode or audio) as a child of onaird, talking to it over fd 3.
// Its arguments are a wire.ChildArgs (written by onaird); it logs JSON lines
// on stderr, which onaird re-logs as structured entries.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"onair/encoder/av"
	"onair/encoder/wire"
	"onair/internal/logging"
)

func main() {
	args, err := wire.ParseChildArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "onair-av:", err)
		os.Exit(2)
	}
	log, err := logging.NewChild(string(args.Role), args.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "onair-av:", err)
		os.Exit(2)
	}
	log = log.With(zap.String("name", args.Name))
	av.SetFFmpegLogger(log.Named("ffmpeg"))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	wireEnd := os.NewFile(3, "wire") // onaird's socketpair end (ExtraFiles[0]); EOF = onaird gone
	err = av.Run(ctx, args, wireEnd, log)
	stop()
	if err != nil {
		log.Error("exiting", zap.Error(err))
		_ = log.Sync()
		os.Exit(1)
	}
	_ = log.Sync()
}
