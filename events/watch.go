package events

import (
	"context"
	"time"

	"onair/web/api"
)

// WatchInterval is how often Watch compares snapshots: an event reaches the
// ring (and the page) at most this late.
const WatchInterval = 100 * time.Millisecond

// Watch adds to r the events Diff finds between successive snapshots of
// status, every interval (WatchInterval when <= 0), until ctx ends; it
// returns nil then. The first snapshot is the baseline: what was already
// so at start is not an event.
func (r *Ring) Watch(ctx context.Context, status func() api.Status, interval time.Duration) error {
	if interval <= 0 {
		interval = WatchInterval
	}
	prev := status()
	t := r.clock.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.Chan():
		}
		cur := status()
		for _, e := range Diff(&prev, &cur) {
			r.Add(e)
		}
		prev = cur
	}
}
