package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"onair/ingest"
	"onair/internal/netlab"
	"onair/web/api"
)

// The bonding lab (../shared/FACTS.md §7, internal/netlab): onaird runs in
// the lab's box namespace and sets up its own per-uplink routing; onair-ingest
// -srtla runs in the studio namespace. Every test also checks that onaird left
// nothing in the kernel (rules, tables, routes) after it stopped.

const (
	bondPassphrase = "lab-passphrase-0123"
	bondLatencyMs  = 1500
	studioHost     = "studio.lab" // resolves to both service addresses in the box
)

type bondOpts struct {
	links   []string // lab uplinks (box interface names); default wired, cell1
	uplinks string   // the config's uplinks: section
	video   string   // extra video: keys
	extra   string   // extra top-level YAML
	// v6only are lab uplinks whose IPv4 address is removed before onaird starts.
	v6only []string
}

type bonded struct {
	lab    *netlab.Lab
	box    *box
	rx     *receiver
	report string
}

func startBonded(t *testing.T, o bondOpts) *bonded {
	t.Helper()
	need(t, "ffmpeg", "ip", "tc", "nft")
	if len(o.links) == 0 {
		o.links = []string{"wired", "cell1"}
	}
	lab := netlab.ForTest(t, netlab.Options{Uplinks: o.links})
	// ip netns exec bind-mounts /etc/netns/NAME/hosts over /etc/hosts: the
	// studio's name resolves to its IPv4 and IPv6 service addresses.
	hostsDir := filepath.Join("/etc/netns", lab.Box)
	if err := os.MkdirAll(hostsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(hostsDir) })
	hosts := fmt.Sprintf("127.0.0.1 localhost\n::1 localhost\n%s %s\n%s %s\n", netlab.ServiceV4, studioHost, netlab.ServiceV6, studioHost)
	if err := os.WriteFile(filepath.Join(hostsDir, "hosts"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range o.v6only {
		l, err := lab.Link(name)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("ip", "-n", lab.Box, "addr", "del", netip.PrefixFrom(l.BoxV4, l.PrefixV4.Bits()).String(), "dev", l.BoxIf).CombinedOutput(); err != nil {
			t.Fatalf("remove the IPv4 address of %s: %v %s", name, err, out)
		}
	}
	dir := t.TempDir()
	out, rep := filepath.Join(dir, "received.ts"), filepath.Join(dir, "report.json")
	rx := &receiver{out: out, proc: start(t, nil, "ip", "netns", "exec", lab.Studio, bin("onair-ingest"),
		"-srtla", ":5000", "-out", out, "-report", rep, "-fps", "30", "-hashes", "-passphrase", bondPassphrase,
		"-streamid", "cam1", "-latency", fmt.Sprintf("%dms", bondLatencyMs), "-peer-idle-timeout", "30s")}
	if o.uplinks == "" {
		o.uplinks = "  - {name: wired, interface: wired}\n  - {name: cell1, interface: cell1}\n"
	}
	cfg := fmt.Sprintf(`version: 1
video:
  source: "lavfi:testsrc2=size=1280x720:rate=30"
  width: 1280
  height: 720
  fps: 30
  bitrate_kbps: 3000
  gop: 60
  twins: true
%saudio:
  main:
    source: "lavfi:sine=frequency=1000:sample_rate=48000"
output:
  url: "srtla://%s:5000?latency=%d&passphrase=%s&streamid=cam1"
uplinks:
%sapi:
  socket: %q
runtime_dir: %q
supervisor:
  grace: 2s
%s`, o.video, studioHost, bondLatencyMs, bondPassphrase, o.uplinks, filepath.Join(dir, "onaird.sock"), filepath.Join(dir, "run"), o.extra)
	b := launchBoxIn(t, dir, cfg, nil, api.NewUnixClient(filepath.Join(dir, "onaird.sock")), []string{"ip", "netns", "exec", lab.Box})
	t.Cleanup(func() {
		// Registered after the box's own cleanup, so this runs first: stop
		// onaird, then look for anything it left in the kernel.
		b.stop(t, 10*time.Second)
		left, err := lab.Leftovers(lab.Box)
		if err != nil {
			t.Errorf("leftovers: %v", err)
		}
		if len(left) > 0 {
			t.Errorf("onaird left in the kernel after it stopped:\n%s", strings.Join(left, "\n"))
		}
	})
	return &bonded{lab: lab, box: b, rx: rx, report: rep}
}

// uplink is one uplink's status.
func uplinkOf(st api.Status, name string) api.UplinkStatus {
	if st.Bond != nil {
		for _, u := range st.Bond.Uplinks {
			if u.Name == name {
				return u
			}
		}
	}
	return api.UplinkStatus{}
}

func allUp(names ...string) func(api.Status) bool {
	return func(st api.Status) bool {
		if !connected(st) || st.Video.Switch.Emitted == 0 {
			return false
		}
		for _, n := range names {
			if uplinkOf(st, n).State != api.UplinkUp {
				return false
			}
		}
		return true
	}
}

// finish stops onaird, then the receiver, and returns the live report (SRT
// connections, the SRTLA groups) and the analysis of the recording.
func (l *bonded) finish(t *testing.T) (live ingest.Report, rec ingest.Report) {
	t.Helper()
	l.box.stop(t, 10*time.Second)
	time.Sleep(time.Duration(bondLatencyMs)*time.Millisecond + 500*time.Millisecond) // the receiver's latency buffer
	l.rx.stop(t, 5*time.Second)
	b, err := os.ReadFile(l.report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &live); err != nil {
		t.Fatal(err)
	}
	return live, analyze(t, l.rx.out)
}

// checkNoLoss is what every bonding test asks of the recording: no frame
// missing or doubled, one SRT session, no decode error.
func (l *bonded) checkNoLoss(t *testing.T, live, rec ingest.Report, minFrames int64) {
	t.Helper()
	if rec.Video.Missing != 0 || rec.Video.Duplicates != 0 {
		t.Errorf("video: %d frames missing %v, %d duplicated", rec.Video.Missing, rec.Video.MissingIndexes, rec.Video.Duplicates)
	}
	if rec.Video.Frames < minFrames {
		t.Errorf("only %d frames received, want at least %d", rec.Video.Frames, minFrames)
	}
	if live.Connections != 1 {
		t.Errorf("the receiver saw %d SRT connections, want 1 (the session must never restart)", live.Connections)
	}
	if e := decodeErrors(t, l.rx.out); e != "" {
		t.Errorf("decode errors:\n%s", tail(e, 10))
	}
}

// One link cut (nothing crosses) mid-stream loses no frame: with the other
// link on duplicate the cut is hitless by construction; with both on bond,
// SRT retransmits what was in flight on the dead link within its 1500 ms.
// The SRT session never restarts.
func TestOneLinkCutLosesNoFrame(t *testing.T) {
	for _, tc := range []struct{ name, uplinks string }{
		{"duplicate", "  - {name: wired, interface: wired}\n  - {name: cell1, interface: cell1, policy: duplicate}\n"},
		{"bond", "  - {name: wired, interface: wired}\n  - {name: cell1, interface: cell1}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := startBonded(t, bondOpts{uplinks: tc.uplinks})
			l.box.waitFor(t, 30*time.Second, "both uplinks up, streaming", allUp("wired", "cell1"))
			time.Sleep(4 * time.Second)
			if err := l.lab.Cut("wired", true); err != nil {
				t.Fatal(err)
			}
			l.box.waitFor(t, 15*time.Second, "wired seen dead", func(st api.Status) bool { return uplinkOf(st, "wired").State != api.UplinkUp })
			time.Sleep(5 * time.Second)
			st, _ := l.box.status(t)
			live, rec := l.finish(t)
			l.checkNoLoss(t, live, rec, 250)
			if st.Output.Connects != 1 {
				t.Errorf("onaird connected %d times, want 1", st.Output.Connects)
			}
		})
	}
}
