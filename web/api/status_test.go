package api

import (
	"encoding/json"
	"flag"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/status-keys.txt from the types")

// full is a Status with every field set, so omitempty keys show.
func full() Status {
	at := uint64(7)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := ProcessStatus{Name: "encoder-a", Role: "encode", PID: 1, State: "running", Restarts: 1, LastError: "x", LastExit: now, Since: now, Instance: 2, RetryAt: now}
	return Status{
		Version: "v", State: BoxOnAir, Uptime: 1,
		Children: []ChildStatus{{ProcessStatus: p, LastIndex: 1, LagFrames: 1, Frames: 1, Margin: 2, MarginMin: 1, MalformedMargins: 1}},
		Video: VideoStatus{
			Switch: SwitchStatus{Twins: true, RelockAt: &at, FramesFrom: []uint64{1}, FailoverPending: "encoder-b", Dropped: []uint64{1}, Names: []string{"a"}, Alive: []bool{true}},
		},
		Audio:      AudioStatus{Mode: AudioAuto, LastSwitches: []AudioSwitch{{At: now}}, Chains: []AudioChainStatus{{Name: "main"}}},
		Output:     OutputStatus{State: "connected", LastError: "x"},
		Components: []Component{{Name: "api", State: "running", Since: now}},
		Bond: &BondStatus{Group: GroupRegistered, OutageSince: now,
			Bitrate: BitrateStatus{Kbps: 1, ChangedAt: now},
			Uplinks: []UplinkStatus{{Name: "wired", LastError: "x", CapBytes: 1}}},
	}
}

// keys lists every key path of a JSON value ("video.switch.relock_at").
func keys(prefix string, v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			*out = append(*out, prefix+k)
			keys(prefix+k+".", x, out)
		}
	case []any:
		for _, x := range v {
			keys(prefix+"[].", x, out)
		}
	}
}

// The e2e tests, the bench and the README read these keys: moving the
// types to this package must not change one (components is the one addition).
func TestStatusJSONKeysAreUnchanged(t *testing.T) {
	b, err := json.Marshal(full())
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err = json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var got []string
	keys("", v, &got)
	sort.Strings(got)
	got = slices.Compact(got)
	const golden = "testdata/status-keys.txt"
	if *update {
		if err = os.WriteFile(golden, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if g := strings.Join(got, "\n") + "\n"; g != string(want) {
		t.Fatalf("status JSON keys changed:\n got %q\nwant %q", g, want)
	}
}

// A ChildStatus is flat in JSON: the process fields sit beside the progress.
func TestChildStatusIsFlat(t *testing.T) {
	b, err := json.Marshal(ChildStatus{ProcessStatus: ProcessStatus{Name: "capture"}, Frames: 3})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["name"] != "capture" || m["frames"] != 3.0 {
		t.Fatalf("child status %s", b)
	}
}
