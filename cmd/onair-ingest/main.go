// Command onair-ingest is the studio-side SRT receiver and stream analyzer of onair's end-to-end
// tests (package ingest). Live: -listen -out -report (rewritten every second and on SIGINT/SIGTERM).
// Bonded: -srtla ADDR receives SRTLA groups (package ingest/relay) and terminates them here with
// the same flags, or with -forward srt://HOST:PORT relays each group to that SRT listener.
// Offline: -analyze FILE.ts prints the report (or writes -report) and exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"onair/ingest"
)

func main() {
	var cfg ingest.Config
	flag.StringVar(&cfg.Listen, "listen", "127.0.0.1:9000", "SRT listen address (ignored with -srtla)")
	flag.StringVar(&cfg.SRTLA, "srtla", "", "listen for SRTLA senders here (e.g. :5000, IPv4 and IPv6)")
	flag.StringVar(&cfg.Forward, "forward", "", "with -srtla: relay each group to this srt://HOST:PORT listener")
	flag.DurationVar(&cfg.PeerIdleTimeout, "peer-idle-timeout", 0, "drop a silent SRT peer after this (0: 5s)")
	flag.StringVar(&cfg.Passphrase, "passphrase", "", "SRT passphrase (AES-128); empty: no encryption")
	flag.StringVar(&cfg.StreamID, "streamid", "", "accept only this SRT stream id")
	flag.StringVar(&cfg.OutFile, "out", "", "append the received stream to this file")
	flag.StringVar(&cfg.ReportFile, "report", "", "write the JSON report here (every second when live)")
	flag.DurationVar(&cfg.Latency, "latency", 0, "SRT receiver latency (0: 120ms)")
	flag.Float64Var(&cfg.Analyzer.FPS, "fps", 0, "expected video frame rate (0: infer from PTS)")
	flag.BoolVar(&cfg.Analyzer.FrameHashes, "hashes", false, "record an xxhash64 per video frame")
	analyze := flag.String("analyze", "", "analyze this TS file, print or write the report, and exit")
	flag.Parse()
	if err := run(cfg, *analyze); err != nil {
		fmt.Fprintln(os.Stderr, "onair-ingest:", err)
		os.Exit(1)
	}
}

func run(cfg ingest.Config, analyze string) error {
	if analyze != "" {
		r, err := ingest.AnalyzeFile(analyze, cfg.Analyzer)
		switch {
		case err != nil:
			return err
		case cfg.ReportFile != "":
			return ingest.WriteReportFile(cfg.ReportFile, r)
		}
		return ingest.WriteReport(os.Stdout, r)
	}
	log, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	srv, err := ingest.New(cfg, log.Named("ingest"))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return srv.Run(ctx)
}
