// Command nsforward is the demo's window into the lab (scripts/demo.sh):
// it accepts TCP on the host's loopback and joins each connection to one it
// dials inside a named network namespace (netlab.Forwarder), so onaird's
// loopback-only status page in the box namespace answers on the host's
// 127.0.0.1:8080. Not part of the product; needs root to enter the namespace.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"onair/internal/logging"
	"onair/internal/netlab"
)

func main() {
	var cfg netlab.ForwardConfig
	flag.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "TCP address to accept on, in this namespace")
	flag.StringVar(&cfg.Namespace, "netns", "", "named network namespace (ip netns) to dial in")
	flag.StringVar(&cfg.Dial, "dial", "127.0.0.1:8080", "TCP address to connect to inside -netns")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "nsforward:", err)
		os.Exit(1)
	}
}

func run(cfg netlab.ForwardConfig) error {
	log, err := logging.New("nsforward", "info")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	f, err := netlab.NewForwarder(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return f.Run(ctx)
}
