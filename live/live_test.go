package live

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"onair/encoder/tsmux"
	"onair/internal/testutil"
	"onair/web/api"
)

// stream records the calls of the control in order.
type stream struct {
	mu      sync.Mutex
	calls   []string
	noKey   bool // End never sees a key frame: it waits for ctx
	gate    chan struct{}
	drained bool
}

func (s *stream) add(c string) {
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
}

func (s *stream) End(ctx context.Context) tsmux.EndInfo {
	s.add("programme.End")
	if s.gate != nil {
		<-s.gate
	}
	if s.noKey {
		<-ctx.Done()
		return tsmux.EndInfo{LastIndex: 7, HaveVideo: true}
	}
	return tsmux.EndInfo{LastIndex: 59, HaveVideo: true, AtGOPEnd: true}
}
func (s *stream) Resume() { s.add("programme.Resume") }
func (s *stream) Start()  { s.add("output.Start") }
func (s *stream) OutEnd(context.Context) (bool, bool, error) {
	s.add("output.End")
	return s.drained, true, nil
}

type outOf struct{ s *stream }

func (o outOf) End(ctx context.Context) (bool, bool, error) { return o.s.OutEnd(ctx) }
func (o outOf) Start()                                      { o.s.Start() }

func newControl(t *testing.T, s *stream, auto bool) *Control {
	t.Helper()
	c, err := New(Config{AutoStart: auto, GOPDuration: 50 * time.Millisecond}, s, outOf{s}, testutil.NilLogger(t), clockwork.NewRealClock())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The receiver must get the last GOP before the connection closes: the
// programme ends first, then the output drains and closes; a second stop is
// answered with the same end, not a second close.
func TestStopEndsTheProgrammeBeforeTheOutputAndOnlyOnce(t *testing.T) {
	s := &stream{drained: true}
	c := newControl(t, s, true)
	end, err := c.Stop(context.Background(), "operator")
	if err != nil || !end.Drained || end.LastIndex != 59 || end.Error != "" {
		t.Fatalf("Stop = %+v, %v", end, err)
	}
	again, err := c.Stop(context.Background(), "panel")
	if err != nil || again != end {
		t.Errorf("second Stop = %+v, %v, want the first end", again, err)
	}
	if want := []string{"programme.End", "output.End"}; !slices.Equal(s.calls, want) {
		t.Errorf("calls %v, want %v", s.calls, want)
	}
	st := c.Status()
	if st.Phase != api.OnAirStopped || st.Reason != "operator" || st.LastEnd == nil {
		t.Errorf("status %+v", st)
	}
}

// Going live must resume the programme before the output dials, or the
// first bytes of the new session could be muxed as part of the ended one.
func TestGoLiveResumesTheProgrammeThenStartsTheOutput(t *testing.T) {
	s := &stream{drained: true}
	c := newControl(t, s, true)
	if err := c.GoLive("operator"); err != nil || len(s.calls) != 0 {
		t.Fatalf("GoLive while live: %v, calls %v, want nothing done", err, s.calls)
	}
	if _, err := c.Stop(context.Background(), "operator"); err != nil {
		t.Fatal(err)
	}
	if err := c.GoLive("panel"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"programme.End", "output.End", "programme.Resume", "output.Start"}; !slices.Equal(s.calls, want) {
		t.Errorf("calls %v, want %v", s.calls, want)
	}
	if st := c.Status(); st.Phase != api.OnAirLive || st.Reason != "panel" {
		t.Errorf("status %+v", st)
	}
}

// With every encoder down no key frame comes: the stop must still end (cut
// where it stands after two GOPs) and say so.
func TestStopWithoutKeyFrameCutsAfterTwoGOPsAndSaysSo(t *testing.T) {
	s := &stream{noKey: true, drained: true}
	c := newControl(t, s, true)
	end, err := c.Stop(context.Background(), "power: low battery")
	if err != nil {
		t.Fatal(err)
	}
	if end.Error == "" || end.LastIndex != 7 {
		t.Errorf("end %+v, want the cut said in Error", end)
	}
}

// A go-live press during a stop must not interleave with it: it waits, then
// goes live.
func TestGoLiveDuringStopWaitsForTheEnd(t *testing.T) {
	s := &stream{drained: true, gate: make(chan struct{})}
	c := newControl(t, s, true)
	stopped := make(chan struct{})
	go func() { _, _ = c.Stop(context.Background(), "operator"); close(stopped) }()
	for c.Status().Phase != api.OnAirStopping {
		time.Sleep(time.Millisecond)
	}
	live := make(chan struct{})
	go func() { _ = c.GoLive("panel"); close(live) }()
	close(s.gate)
	<-stopped
	<-live
	if want := []string{"programme.End", "output.End", "programme.Resume", "output.Start"}; !slices.Equal(s.calls, want) {
		t.Errorf("calls %v, want %v", s.calls, want)
	}
}

// onair.autostart off: the box starts stopped, muxes nothing, and goes live
// on request.
func TestAutoStartOffStartsStopped(t *testing.T) {
	s := &stream{}
	c := newControl(t, s, false)
	if st := c.Status(); st.Phase != api.OnAirStopped {
		t.Fatalf("phase %q, want stopped", st.Phase)
	}
	if err := c.GoLive("operator"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"programme.End", "programme.Resume", "output.Start"}; !slices.Equal(s.calls, want) {
		t.Errorf("calls %v, want %v", s.calls, want)
	}
}
