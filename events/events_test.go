package events

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"onair/internal/testutil"
	"onair/web/api"
)

func TestRingKeepsTheNewestAndCountsWhatFellOff(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	r := New(3, testutil.NilLogger(t), clock)
	for i := range 5 {
		r.Add(api.Event{Kind: api.EventRestart, Subject: string(rune('a' + i))})
		clock.Advance(time.Minute)
	}
	evs, lost := r.List(time.Time{}, 0)
	if len(evs) != 3 || lost != 2 {
		t.Fatalf("kept %d, lost %d; want 3 and 2", len(evs), lost)
	}
	for i, e := range evs {
		if e.Seq != uint64(i+3) || e.Subject != string(rune('c'+i)) {
			t.Errorf("event %d = seq %d %q; want seq %d %q (oldest first)", i, e.Seq, e.Subject, i+3, string(rune('c'+i)))
		}
	}
	// since: the last 2 minutes (events at 12:02, 12:03, 12:04; now 12:05).
	evs, _ = r.List(clock.Now().Add(-2*time.Minute), 0)
	if len(evs) != 2 || evs[0].Subject != "d" {
		t.Errorf("since 2m: %+v; want d, e", evs)
	}
	evs, _ = r.List(time.Time{}, 4)
	if len(evs) != 1 || evs[0].Seq != 5 {
		t.Errorf("after 4: %+v; want only seq 5", evs)
	}
	if r.Last() != 5 {
		t.Errorf("Last = %d; want 5", r.Last())
	}
}

func TestSlowSubscriberIsCutOffNotWaitedFor(t *testing.T) {
	r := New(0, testutil.NilLogger(t), clockwork.NewFakeClock())
	ch, cancel := r.Subscribe()
	defer cancel()
	fast, cancelFast := r.Subscribe()
	for i := range subBuffer + 10 { // never blocks although nobody reads ch
		r.Add(api.Event{Kind: api.EventConfig, Reason: "x"})
		if i < subBuffer {
			<-fast
		}
	}
	n := 0
	for range ch {
		n++
	}
	if n != subBuffer {
		t.Errorf("the slow subscriber got %d events before its channel closed; want %d", n, subBuffer)
	}
	cancelFast()
	cancelFast() // twice is harmless
	cancel()
}

func status() api.Status {
	return api.Status{
		Output: api.OutputStatus{State: "connected", Target: "srt://studio:9000"},
		OnAir:  api.OnAirStatus{Phase: api.OnAirLive, Reason: "auto-start"},
		Video: api.VideoStatus{Switch: api.SwitchStatus{Twins: true, Locked: true, Active: "A", Switches: 0,
			Names: []string{"A", "B"}}},
		Children:   []api.ChildStatus{{ProcessStatus: api.ProcessStatus{Name: "encoder-a", Instance: 1}}, {ProcessStatus: api.ProcessStatus{Name: "encoder-b", Instance: 1}}},
		Components: []api.Component{{Name: "output"}},
	}
}

func TestFailoverAfterAKilledEncoderIsOneEventWithTheFrame(t *testing.T) {
	prev, cur := status(), status()
	cur.Video.Switch.Switches = 1
	cur.Video.Switch.Active = "B"
	cur.Video.Switch.LastSwitch = &api.VideoSwitch{AfterIndex: 4711, From: "A", To: "B", Reason: "active encoder down"}
	cur.Children[0].Instance = 2
	cur.Children[0].LastError = "killed by signal 9"
	evs := Diff(&prev, &cur)
	if len(evs) != 2 {
		t.Fatalf("events %+v; want a failover and a restart", evs)
	}
	f := evs[0]
	if f.Kind != api.EventVideoFailover || f.Subject != "B" || f.Frame == nil || *f.Frame != 4712 || !strings.Contains(f.Reason, "A → B: active encoder down") {
		t.Errorf("failover event %+v", f)
	}
	r := evs[1]
	if r.Kind != api.EventRestart || r.Subject != "encoder-a" || !strings.Contains(r.Reason, "killed by signal 9") {
		t.Errorf("restart event %+v", r)
	}
	if again := Diff(&cur, &cur); len(again) != 0 {
		t.Errorf("an unchanged status gave events: %+v", again)
	}
}

func TestAudioSwitchesBetweenSnapshotsAreAllReported(t *testing.T) {
	prev, cur := status(), status()
	prev.Audio.Switches = 1
	prev.Audio.LastSwitches = []api.AudioSwitch{{Index: 10, From: "", To: "main"}}
	cur.Audio.Switches = 3
	cur.Audio.LastSwitches = []api.AudioSwitch{{Index: 10, To: "main"}, {Index: 500, From: "main", To: "backup", Reason: "main stalled"}, {Index: 900, From: "backup", To: "main", Reason: "main healthy"}}
	evs := Diff(&prev, &cur)
	if len(evs) != 2 || *evs[0].Frame != 500 || evs[0].Subject != "backup" || *evs[1].Frame != 900 || !strings.Contains(evs[1].Reason, "main healthy") {
		t.Errorf("audio events %+v; want 500 → backup and 900 → main", evs)
	}
	// More switches than the status keeps: the missing ones are counted.
	cur.Audio.Switches = 10
	evs = Diff(&prev, &cur)
	if len(evs) != 4 || !strings.Contains(evs[0].Reason, "6 audio switches not kept") {
		t.Errorf("events %+v; want a count of 6 not kept, then the 3 kept", evs)
	}
}

func TestUplinkOutputPowerAndOnAirChangesAreEvents(t *testing.T) {
	prev, cur := status(), status()
	prev.Bond = &api.BondStatus{Uplinks: []api.UplinkStatus{{Name: "wired", State: "up", Enabled: true}, {Name: "cell1", State: "up", Enabled: true}, {Name: "cell2", Policy: api.PolicyBackup, State: "up", Enabled: true}}}
	cur.Bond = &api.BondStatus{Uplinks: []api.UplinkStatus{{Name: "wired", State: "down", Enabled: true, LastError: "carrier lost"}, {Name: "cell1", State: "up", Enabled: false}, {Name: "cell2", Policy: api.PolicyBackup, State: "up", Enabled: true, Carrying: true}}}
	cur.Output.State = "reconnecting"
	cur.Output.LastError = "peer idle"
	cur.OnAir = api.OnAirStatus{Phase: api.OnAirStopped, Reason: "operator"}
	cur.Power = &api.PowerStatus{State: "on_battery", Source: "ups", Reason: "UPS on battery"}
	var got []string
	for _, e := range Diff(&prev, &cur) {
		got = append(got, string(e.Kind)+" "+e.Subject+" "+e.Reason)
	}
	want := []string{
		"output srt://studio:9000 connected → reconnecting: peer idle",
		"on_air  live → stopped (operator)",
		"uplink wired up → down: carrier lost",
		"uplink cell1 disabled by the operator",
		"uplink cell2 backup link engaged: the others cannot carry the bitrate",
		"power ups none → on_battery: UPS on battery",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestWatchTakesTheFirstSnapshotAsTheBaseline(t *testing.T) {
	clock := clockwork.NewFakeClock()
	r := New(0, testutil.NilLogger(t), clock)
	st := make(chan api.Status, 1)
	cur := status()
	cur.Components[0].Restarts = 3 // already so at start: not an event
	get := func() api.Status {
		select {
		case s := <-st:
			cur = s
		default:
		}
		return cur
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Watch(ctx, get, time.Second) }()
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	next := status()
	next.Components[0].Restarts = 4
	next.Components[0].LastError = "output: bind: address in use"
	st <- next
	sub, unsub := r.Subscribe()
	defer unsub()
	clock.Advance(time.Second)
	select {
	case e := <-sub:
		if e.Kind != api.EventRestart || e.Subject != "output" || !strings.Contains(e.Reason, "restart 4: output: bind") || e.Time != clock.Now() {
			t.Errorf("event %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event after the restart count moved")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch = %v at the end of ctx; want nil", err)
	}
	if evs, _ := r.List(time.Time{}, 0); len(evs) != 1 {
		t.Errorf("ring %+v; want exactly the one restart", evs)
	}
}

func TestRecordingStoppedByAFullDiskAndTunnelDownAreEvents(t *testing.T) {
	prev, cur := status(), status()
	prev.Recording = &api.RecordingStatus{State: api.RecordingRecording, Dir: "/rec"}
	cur.Recording = &api.RecordingStatus{State: api.RecordingStopped, Dir: "/rec", Reason: "disk full: write x: no space left on device"}
	prev.Tunnel = &api.TunnelStatus{State: api.TunnelUp, Target: "box@studio:22"}
	cur.Tunnel = &api.TunnelStatus{State: api.TunnelBackoff, Target: "box@studio:22", LastError: "keepalive: no reply"}
	evs := Diff(&prev, &cur)
	if len(evs) != 2 || evs[0].Kind != api.EventTunnel || !strings.Contains(evs[0].Reason, "up → backoff: keepalive: no reply") ||
		evs[1].Kind != api.EventRecording || !strings.Contains(evs[1].Reason, "recording → stopped: disk full") {
		t.Errorf("events %+v", evs)
	}
}

// An output that lost its connection and got it back between two
// snapshots (100 ms) is still in the report: the connect count moved.
func TestReconnectBetweenSnapshotsIsAnEvent(t *testing.T) {
	prev, cur := status(), status()
	prev.Output.Connects = 1
	cur.Output.Connects = 2
	cur.Output.LastError = "peer idle"
	evs := Diff(&prev, &cur)
	if len(evs) != 1 || evs[0].Kind != api.EventOutput || !strings.Contains(evs[0].Reason, "reconnected (2 connects") {
		t.Errorf("events %+v", evs)
	}
}
