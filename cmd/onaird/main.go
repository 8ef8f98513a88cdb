// Command onaird is the supervisor of the onair field encoder: it runs the
// capture, twin encoders and audio chains as children, switches between the
// encoders without a gap, and streams MPEG-TS over SRT. See daemon.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"go.uber.org/zap"

	"onair/daemon"
	"onair/internal/config"
	"onair/internal/logging"
	"onair/internal/version"
	"onair/update"
)

func main() {
	path := flag.String("config", "/etc/onair/onair.yaml", "configuration file")
	check := flag.Bool("check", false, "validate the configuration and exit: 0 good, 2 bad")
	boot := flag.Bool("boot", false, "once per boot, before the daemon: take a trial slot's try (update.bootloader file; GRUB takes its own) and exit")
	showVersion := flag.Bool("version", false, "print the version and exit")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file (for `go tool pprof`; issue 14's figures)")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Version)
		return
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "onaird:", err)
		os.Exit(2)
	}
	if *check {
		fmt.Printf("%s: ok\n", *path)
		return
	}
	if *boot {
		msg, berr := update.AtBoot(cfg.Update.Config)
		if berr != nil {
			fmt.Fprintln(os.Stderr, "onaird:", berr)
			os.Exit(1)
		}
		fmt.Println(msg)
		return
	}
	log, err := logging.New("onaird", string(cfg.LogLevel))
	if err != nil {
		fmt.Fprintln(os.Stderr, "onaird:", err)
		os.Exit(2)
	}
	d, err := daemon.New(cfg, log)
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		os.Exit(2)
	}
	d.ConfigPath = *path
	if *cpuProfile != "" {
		stopProfile, err := startProfile(*cpuProfile)
		if err != nil {
			log.Error("cannot start", zap.Error(err))
			os.Exit(2)
		}
		defer stopProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := d.Run(ctx); err != nil {
		log.Error("stopped with error", zap.Error(err))
		os.Exit(1)
	}
}

// startProfile starts the CPU profile into path; the function it returns
// ends it and closes the file.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("onaird: cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close() // nothing written
		return nil, fmt.Errorf("onaird: cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "onaird: cpu profile:", err)
		}
	}, nil
}
