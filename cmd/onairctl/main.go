// Command onairctl maintains an onair box from an SSH session: it talks to
// onaird's local API over its unix socket.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"onair/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root := ctl.Root()
	root.SetArgs(ctl.NormalizeArgs(os.Args[1:]))
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "onairctl:", err)
		os.Exit(1)
	}
}
