package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"onair/web/api"
)

// canaryWorker writes an executable worker into dir: a copy of onair-av
// (identical), a wrapper that encodes with another x264 preset (the twins
// cannot lock with the old build), or one whose encoder dies after 3 s.
func canaryWorker(t *testing.T, dir, kind string) string {
	t.Helper()
	av := bin("onair-av")
	path := filepath.Join(dir, "onair-av-"+kind)
	var body []byte
	switch kind {
	case "identical":
		b, err := os.ReadFile(av)
		if err != nil {
			t.Fatal(err)
		}
		body = b
	case "preset":
		body = []byte(`#!/bin/bash
# onair-av built with other encoder settings: x264 preset ultrafast.
args=(); prev=""
for a in "$@"; do
  if [ "$prev" = "-preset" ]; then a=ultrafast; fi
  args+=("$a"); prev="$a"
done
exec ` + av + ` "${args[@]}"
`)
	case "crash":
		body = []byte(`#!/bin/bash
# onair-av that dies after 3 s (a build with a crash).
` + av + ` "$@" &
pid=$!
sleep 3
kill -9 "$pid"
wait "$pid"
exit 137
`)
	default:
		t.Fatalf("no such worker %q", kind)
	}
	if err := os.WriteFile(path, body, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// canaryBox is twins streaming to an independent receiver, locked, with
// update.canary_after short enough for a test.
func canaryBox(t *testing.T) (*box, string, *proc) {
	t.Helper()
	port, out, rx := independentReceiver(t)
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, gop: 30,
		extra: "update:\n  canary_after: 6s\n"})
	b.waitFor(t, 20*time.Second, "locked", func(st api.Status) bool { return connected(st) && locked(st) })
	return b, out, rx
}

func canaryEnds(t *testing.T, b *box, w string) api.CanaryStatus {
	t.Helper()
	res, err := onairctl(t, b, "", "canary", w)
	if err != nil || !strings.Contains(res, "canary starting") {
		t.Fatalf("onairctl canary: %v %s", err, res)
	}
	st := b.waitFor(t, 90*time.Second, "the canary ended", func(st api.Status) bool {
		c := st.Canary
		return c != nil && (c.State == api.CanaryPromoted || c.State == api.CanaryRolledBack || c.State == api.CanaryFailed)
	})
	t.Logf("canary: %+v", *st.Canary)
	return *st.Canary
}

func workerOf(st api.Status, name string) string {
	for _, c := range st.Children {
		if c.Name == name {
			return c.Binary
		}
	}
	return ""
}

// A worker that encodes bit for bit like the old one: the standby runs it
// first, locks with the active encoder, takes over at once, and the other
// encoder follows; the twins are locked after, and the receiver lost
// nothing.
func TestCanaryOfAnIdenticalWorkerIsPromotedWithNoFrameLost(t *testing.T) {
	b, out, rx := canaryBox(t)
	w := canaryWorker(t, t.TempDir(), "identical")
	c := canaryEnds(t, b, w)
	if c.State != api.CanaryPromoted || !c.Identical {
		t.Fatalf("canary %+v; want promoted, identical", c)
	}
	st := b.waitFor(t, 20*time.Second, "relocked on the new worker", locked)
	if workerOf(st, "encoder-a") != w || workerOf(st, "encoder-b") != w || st.Video.Switch.Active != c.Encoder {
		t.Errorf("workers a %s b %s, active %s; want both %s, active %s", workerOf(st, "encoder-a"), workerOf(st, "encoder-b"), st.Video.Switch.Active, w, c.Encoder)
	}
	if res, err := onairctl(t, b, "", "events"); err != nil || !strings.Contains(res, "canary") || !strings.Contains(res, "now runs "+w) {
		t.Errorf("events: %v\n%s", err, res)
	}
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)
	noGap(t, out)
}

// A worker built with other encoder settings cannot lock with the old one:
// it is judged healthy alone and takes over at a seamless IDR; then both
// run it and lock with each other.
func TestCanaryOfAWorkerWithOtherSettingsSwitchesAtASeamlessIDR(t *testing.T) {
	b, out, rx := canaryBox(t)
	w := canaryWorker(t, t.TempDir(), "preset")
	c := canaryEnds(t, b, w)
	if c.State != api.CanaryPromoted || c.Identical {
		t.Fatalf("canary %+v; want promoted, not identical", c)
	}
	st := b.waitFor(t, 20*time.Second, "both on the new worker, locked", locked)
	if workerOf(st, "encoder-a") != w || workerOf(st, "encoder-b") != w {
		t.Errorf("workers a %s b %s; want both %s", workerOf(st, "encoder-a"), workerOf(st, "encoder-b"), w)
	}
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)
	noGap(t, out)
}

// A worker that crashes after 3 s never carries the stream: the standby is
// rolled back to the old worker and the event says why.
func TestCanaryOfACrashingWorkerIsRolledBackWithNoFrameLost(t *testing.T) {
	b, out, rx := canaryBox(t)
	before, _ := b.status(t)
	old := workerOf(before, "encoder-a")
	w := canaryWorker(t, t.TempDir(), "crash")
	c := canaryEnds(t, b, w)
	if c.State != api.CanaryRolledBack || !strings.Contains(c.Reason, "crashed") {
		t.Fatalf("canary %+v; want rolled back, crashed", c)
	}
	st := b.waitFor(t, 20*time.Second, "relocked on the old worker", locked)
	if workerOf(st, "encoder-a") != old || workerOf(st, "encoder-b") != old || st.Video.Switch.Active != before.Video.Switch.Active {
		t.Errorf("workers a %s b %s, active %s; want both %s, active %s", workerOf(st, "encoder-a"), workerOf(st, "encoder-b"), st.Video.Switch.Active, old, before.Video.Switch.Active)
	}
	if res, err := onairctl(t, b, "", "events"); err != nil || !strings.Contains(res, "rolled_back") {
		t.Errorf("events: %v\n%s", err, res)
	}
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)
	noGap(t, out)
}
