package abr

import (
	"errors"
	"strings"
	"testing"
	"time"

	"onair/web/api"
)

var t0 = time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)

// steady feeds n ticks of a clean stream at kbps (stream rate = kbps·1.05)
// with a 60 ms span, starting at tick i; it returns the next tick index and
// the last decision.
type feeder struct {
	c     *Controller
	i     int
	acked float64
	last  Decision
}

func (f *feeder) at() time.Time { return t0.Add(time.Duration(f.i) * 100 * time.Millisecond) }

func (f *feeder) feed(n int, mk func(f *feeder) Sample) Decision {
	for range n {
		f.i++
		f.last = f.c.Update(f.at(), mk(f))
	}
	return f.last
}

// clean is a sample of a network that delivers everything offered.
func clean(f *feeder) Sample {
	f.acked += float64(f.c.Kbps()) * 1.05 * 0.1 / (DefaultPktBytes * 8 / 1000.0)
	buf := 20.0
	return Sample{Connected: true, RTTms: 40, SendBufMs: 60, SendBufPkts: uint64(buf), PktSent: uint64(f.acked + buf)}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	good := Config{MinKbps: 500, MaxKbps: 6000, Latency: 1500 * time.Millisecond}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string // "" = valid
	}{
		{"good", func(*Config) {}, ""},
		{"min too low", func(c *Config) { c.MinKbps = 50 }, "min_kbps"},
		{"max below min", func(c *Config) { c.MaxKbps = 400 }, "max_kbps"},
		{"start out of range", func(c *Config) { c.StartKbps = 7000 }, "start_kbps"},
		{"no latency", func(c *Config) { c.Latency = 0 }, "latency"},
		{"interval too long", func(c *Config) { c.Interval = 500 * time.Millisecond }, "interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want ErrConfig naming %q", err, tc.want)
			}
		})
	}
}

func TestStartsAtMaxUnlessStartKbpsSet(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start int
		want  int
	}{
		{"default is the maximum", 0, 6000},
		{"explicit start", 1500, 1500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewController(Config{MinKbps: 500, MaxKbps: 6000, StartKbps: tc.start, Latency: time.Second})
			d := c.Update(t0, Sample{})
			if !d.Changed || d.Kbps != tc.want || d.Reason != "start" {
				t.Fatalf("first decision %+v, want a change to %d (start)", d, tc.want)
			}
		})
	}
}

// An emergency is applied on the very tick it is seen, even right after
// another change (no rate limit), and not as a small step.
func TestEmergencyOnSendBufferIsImmediate(t *testing.T) {
	c := NewController(Config{MinKbps: 500, MaxKbps: 6000, Latency: 1500 * time.Millisecond})
	f := &feeder{c: c}
	c.Update(f.at(), Sample{})
	f.feed(30, clean)
	d := f.feed(1, func(f *feeder) Sample {
		s := clean(f)
		s.SendBufMs = 600 // > latency/3
		return s
	})
	if !d.Changed || !strings.HasPrefix(d.Reason, "emergency") || d.Kbps > 6000*8/10 {
		t.Fatalf("decision %+v, want an immediate emergency cut to at most 80%%", d)
	}
}

// No link alive: straight to the minimum.
func TestAllLinksDeadGoesToMinimum(t *testing.T) {
	c := NewController(Config{MinKbps: 500, MaxKbps: 6000, Latency: 1500 * time.Millisecond})
	f := &feeder{c: c}
	c.Update(f.at(), Sample{})
	f.feed(10, clean)
	d := f.feed(1, func(f *feeder) Sample {
		s := clean(f)
		s.Links = []LinkSample{{Name: "wired"}, {Name: "cell1"}}
		return s
	})
	if !d.Changed || d.Kbps != 500 {
		t.Fatalf("decision %+v, want the minimum 500", d)
	}
}

// The operator cap: a lower one is applied on the next tick, at once; one
// above Config.MaxKbps is clamped to it; removing it climbs back.
func TestSetMaxCapsAndNeverExceedsConfigMax(t *testing.T) {
	c := NewController(Config{MinKbps: 500, MaxKbps: 6000, Latency: 1500 * time.Millisecond})
	f := &feeder{c: c}
	c.Update(f.at(), Sample{})
	f.feed(10, clean)
	c.SetMax(3000)
	if d := f.feed(1, clean); !d.Changed || d.Kbps != 3000 || !strings.Contains(d.Reason, "operator") {
		t.Fatalf("after SetMax(3000): %+v, want an operator change to 3000", d)
	}
	f.feed(100, clean)
	if k := c.Kbps(); k != 3000 {
		t.Fatalf("10 s later at %d kbps, want to stay at the cap 3000", k)
	}
	c.SetMax(90000)
	if got := c.Ceiling(); got != 6000 {
		t.Fatalf("ceiling after SetMax(90000) = %d, want Config.MaxKbps 6000", got)
	}
	f.feed(300, clean)
	if k := c.Kbps(); k != 6000 {
		t.Fatalf("30 s after raising the cap: %d kbps, want 6000", k)
	}
}

// Not connected (SRT redialing): hold the bitrate, no change, whatever the
// stale stats say.
func TestDisconnectedHolds(t *testing.T) {
	c := NewController(Config{MinKbps: 500, MaxKbps: 6000, Latency: 1500 * time.Millisecond})
	f := &feeder{c: c}
	c.Update(f.at(), Sample{})
	d := f.feed(50, func(*feeder) Sample { return Sample{SendBufMs: 5000, SendBufPkts: 900} })
	if d.Changed || d.Kbps != 6000 {
		t.Fatalf("decision %+v, want a hold at 6000", d)
	}
}

// A new SRT session restarts the cumulative counters: the drop in PktSent
// must not read as a stall or a negative rate.
func TestNewSessionCountersDoNotTriggerCuts(t *testing.T) {
	c := NewController(Config{MinKbps: 500, MaxKbps: 6000, Latency: 1500 * time.Millisecond})
	f := &feeder{c: c}
	c.Update(f.at(), Sample{})
	f.feed(50, clean)
	f.acked = 0
	for range 50 {
		if d := f.feed(1, clean); d.Changed {
			t.Fatalf("change after a new session at tick %d: %+v", f.i, d)
		}
	}
}

// apply: the 100-kbps grid, the minimum step, and the change gap.
func TestApplyRoundsAndLimitsSteps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cur     int
		target  int
		urgent  bool
		sinceMs int
		want    int // 0: no change
	}{
		{"decrease rounds down", 6000, 4290, false, 1000, 4200},
		{"increase rounds up", 4000, 4210, false, 1000, 4300},
		{"step under 5% ignored", 6000, 5800, false, 1000, 0},
		{"step under 100 kbps ignored", 1000, 1090, false, 1000, 0},
		{"reaching the ceiling is allowed", 5800, 6000, false, 1000, 6000},
		{"reaching the floor is allowed", 550, 500, false, 1000, 500},
		{"too soon after a change", 6000, 3000, false, 200, 0},
		{"urgent ignores the gap", 6000, 3000, true, 200, 3000},
		{"clamped to the floor", 1000, 100, true, 1000, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewController(Config{MinKbps: 500, MaxKbps: 6000, Latency: time.Second})
			c.started, c.cur = true, tc.cur
			c.lastChange = t0
			d := c.apply(t0.Add(time.Duration(tc.sinceMs)*time.Millisecond), tc.target, "x", tc.urgent)
			switch {
			case tc.want == 0 && d.Changed:
				t.Fatalf("apply(%d) changed to %d, want no change", tc.target, d.Kbps)
			case tc.want != 0 && (!d.Changed || d.Kbps != tc.want):
				t.Fatalf("apply(%d) = %+v, want a change to %d", tc.target, d, tc.want)
			}
		})
	}
}

// A lost link takes its share at once (before the buffer says anything).
func TestLinkLostCutsItsShareAtOnce(t *testing.T) {
	c := NewController(Config{MinKbps: 500, MaxKbps: 6000, Latency: 1500 * time.Millisecond})
	f := &feeder{c: c}
	c.Update(f.at(), Sample{})
	links := func(cellAlive bool) []LinkSample {
		return []LinkSample{
			{Name: "wired", Alive: true, Carrying: true, ThroughputKbps: 4000},
			{Name: "cell1", Alive: cellAlive, Carrying: cellAlive, ThroughputKbps: 2000},
		}
	}
	f.feed(10, func(f *feeder) Sample { s := clean(f); s.Links = links(true); return s })
	d := f.feed(1, func(f *feeder) Sample { s := clean(f); s.Links = links(false); return s })
	if !d.Changed || d.Kbps != 4000 || !strings.Contains(d.Reason, "cell1") {
		t.Fatalf("decision %+v, want a cut by cell1's third to 4000", d)
	}
	if d := f.feed(1, func(f *feeder) Sample { s := clean(f); s.Links = links(false); return s }); d.Changed {
		t.Fatalf("the same dead link cut again: %+v", d)
	}
}

func TestLinksFromUplinksMapsStatus(t *testing.T) {
	got := LinksFromUplinks([]api.UplinkStatus{
		{Name: "wired", State: api.UplinkUp, Carrying: true, Window: 20000, InFlight: 7, ThroughputKbps: 4100, RTTms: 12, LossPct: 0.5},
		{Name: "cell2", State: api.UplinkDead, Window: 1000},
		{Name: "cell3", State: api.UplinkCapped},
	})
	want := []LinkSample{
		{Name: "wired", Alive: true, Carrying: true, WindowPkts: 20, InFlight: 7, ThroughputKbps: 4100, RTTms: 12, LossPct: 0.5},
		{Name: "cell2", WindowPkts: 1},
		{Name: "cell3", Alive: true},
	}
	if len(got) != len(want) {
		t.Fatalf("%d links, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("link %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
