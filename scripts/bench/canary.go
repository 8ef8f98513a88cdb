package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"onair/ingest"
	"onair/web/api"
)

// The on-air canary of issue 13, on one box with twins streaming to
// onair-ingest: a copy of onair-av (an identical build) is tried on the
// standby encoder with update.canary_after 5s and promoted.
//
//   - canary_promote_frames_lost / _duplicated: at the receiver, over the
//     whole canary (goal 0);
//   - canary_start_to_promoted_s: from POST /api/canary to the state
//     promoted (canary_after plus two encoder starts and a relock).
func runCanary(work string) {
	if err := benchCanary(filepath.Join(work, "canary")); err != nil {
		fmt.Fprintln(os.Stderr, "bench: canary:", err)
	}
}

func benchCanary(dir string) error {
	b, rx, out, err := powerBox(dir, "update:\n  canary_after: 5s\n")
	if err != nil {
		return err
	}
	defer stop(rx)
	defer stop(b.cmd)
	b.waitFor(30*time.Second, func(st api.Status) bool { return st.Output.State == "connected" && st.Video.Switch.Locked })
	av, err := os.ReadFile(filepath.Join(*binDir, "onair-av"))
	if err != nil {
		return err
	}
	worker := filepath.Join(dir, "onair-av-next")
	if err = os.WriteFile(worker, av, 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	if _, err = b.client.StartCanary(ctx, worker); err != nil {
		return err
	}
	st := b.waitFor(90*time.Second, func(st api.Status) bool {
		c := st.Canary
		return c != nil && (c.State == api.CanaryPromoted || c.State == api.CanaryRolledBack || c.State == api.CanaryFailed)
	})
	took := time.Since(t0)
	if st.Canary.State != api.CanaryPromoted {
		return fmt.Errorf("canary %s: %s", st.Canary.State, st.Canary.Reason)
	}
	b.waitFor(20*time.Second, func(st api.Status) bool { return st.Video.Switch.Locked })
	time.Sleep(time.Second)
	stop(b.cmd)
	time.Sleep(500 * time.Millisecond)
	stop(rx)
	rep, err := ingest.AnalyzeFile(out, ingest.Options{FPS: fps})
	if err != nil {
		return err
	}
	emit("canary_start_to_promoted_s", took.Seconds(), "s")
	emit("canary_promote_frames_lost", float64(rep.Video.Missing), "frames")
	emit("canary_promote_frames_duplicated", float64(rep.Video.Duplicates), "frames")
	return nil
}
