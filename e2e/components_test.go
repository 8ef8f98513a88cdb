package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"onair/web/api"
)

// The fault: every component ran bare in one errgroup, so a web
// listener that could not bind took the box off air. Now the API listener
// is an optional component: with its port already taken, the stream still
// reaches the receiver, onairctl's socket still answers, and the status
// says the TCP listener failed and is retrying.
func TestAPIPortTakenLeavesTheBoxOnAir(t *testing.T) {
	need(t, "ffmpeg", "ffprobe")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }() // only holds the port
	port := freePort(t, "udp")
	rx := startIngest(t, port, t.TempDir(), "")
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, listen: taken.Addr().String()})
	st := b.waitFor(t, 20*time.Second, "streaming with the API port taken", func(st api.Status) bool {
		return connected(st) && st.Video.Switch.Emitted > 90
	})
	var web *api.Component
	for i := range st.Components {
		if st.Components[i].Name == "api-tcp" {
			web = &st.Components[i]
		}
	}
	if web == nil {
		t.Fatalf("no api-tcp component in status: %+v", st.Components)
	}
	if web.State != "backoff" || web.Restarts < 1 || !strings.Contains(web.LastError, "address already in use") {
		t.Errorf("api-tcp component %+v: want backoff (retrying) with the bind error", *web)
	}
	for _, c := range st.Components {
		if c.Name == "cadence" && (c.State != "running" || !c.Vital) {
			t.Errorf("cadence %+v: want running and vital", c)
		}
	}
	if st.State != api.BoxDegraded {
		t.Errorf("box state %q with a component down, want degraded", st.State)
	}
	if !strings.Contains(b.logs(), "component failed: restarting after backoff") {
		t.Error("the failure is not in the log")
	}
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)
	if rep := analyze(t, rx.out); rep.Video.Frames < 90 || rep.Video.Missing != 0 || rep.Video.Duplicates != 0 {
		t.Errorf("receiver: %d frames, missing %d, duplicates %d", rep.Video.Frames, rep.Video.Missing, rep.Video.Duplicates)
	}
}
