package thermal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"onair/internal/testutil"
)

func TestParseMilliC(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"48686\n", 48.686, true},
		{"-5000\n", -5, true},
		{"0", 0, true},
		{"", 0, false},
		{"garbage\n", 0, false},
		{"48.6\n", 0, false},
		{"999999\n", 0, false}, // 999 °C: a broken sensor
	} {
		got, err := parseMilliC([]byte(c.in))
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("parseMilliC(%q) = %g, %v", c.in, got, err)
		}
		if err != nil && !errors.Is(err, errBadTemp) {
			t.Errorf("parseMilliC(%q): %v is not errBadTemp", c.in, err)
		}
	}
}

// testdata holds the layouts of a Raspberry Pi 4 and of an x86 laptop as the
// kernel's sysfs ABI has them (sysfs-class-thermal: type, temp in
// millidegrees); the VM the tests run in has no thermal zone to capture.

// TestReadSkipsZonesWithoutATemperature: on an x86 laptop some zones have
// no temp file or print garbage; they are left out, the others are read in
// zone order.
func TestReadSkipsZonesWithoutATemperature(t *testing.T) {
	zones, err := Read(os.DirFS("testdata/x86"))
	if err != nil {
		t.Fatal(err)
	}
	if len(zones) != 2 || zones[0].Type != "acpitz" || zones[0].TempC != 27.8 ||
		zones[1].Name != "thermal_zone2" || zones[1].Type != "x86_pkg_temp" || zones[1].TempC != 54 {
		t.Fatalf("zones %+v", zones)
	}
	zones, err = Read(os.DirFS("testdata/rpi4"))
	if err != nil || len(zones) != 1 || zones[0].Type != "cpu-thermal" || zones[0].TempC != 48.686 {
		t.Fatalf("rpi4: %+v, %v", zones, err)
	}
}

func TestNoZoneIsErrNoZones(t *testing.T) {
	_, err := New(Config{Root: "testdata/none", WarnC: 80, HysteresisC: 5, Poll: time.Second}, &shedRec{}, testutil.NilLogger(t), nil)
	if !errors.Is(err, ErrNoZones) {
		t.Fatalf("err = %v", err)
	}
}

type shedRec struct {
	mu   sync.Mutex
	asks []bool
	fail bool
}

func (s *shedRec) Shed(on bool, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("setter refused")
	}
	s.asks = append(s.asks, on)
	return nil
}

func (s *shedRec) got() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bool(nil), s.asks...)
}

func writeZone(t *testing.T, root string, n int, typ string, c float64) {
	t.Helper()
	d := filepath.Join(root, "thermal_zone"+strconv.Itoa(n))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "type"), []byte(typ+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "temp"), []byte(strconv.Itoa(int(c*1000))+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHotShedsOnceAndCoolingRestoresOnlyBelowTheHysteresis: the cap is
// asked for once when the hottest zone passes warn_c, kept while it hovers
// between warn_c - hysteresis and warn_c (no flapping at the threshold),
// and lifted once below it.
func TestHotShedsOnceAndCoolingRestoresOnlyBelowTheHysteresis(t *testing.T) {
	root := t.TempDir()
	writeZone(t, root, 0, "cpu-thermal", 60)
	writeZone(t, root, 1, "gpu-thermal", 50)
	s := &shedRec{}
	w, err := New(Config{Root: root, WarnC: 80, HysteresisC: 5, Poll: time.Second}, s, testutil.NilLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		c    float64
		hot  bool
		asks int
	}{
		{70, false, 0},
		{80, false, 0}, // at warn_c, not above
		{81, true, 1},
		{90, true, 1},
		{78, true, 1}, // between 75 and 80: still hot
		{75, true, 1}, // at the hysteresis edge: still hot
		{80.5, true, 1},
		{74.9, false, 2},
		{79, false, 2},
		{85, true, 3},
	}
	for i, st := range steps {
		writeZone(t, root, 0, "cpu-thermal", st.c)
		w.Poll()
		got := w.Status()
		if got.Hot != st.hot || got.Shedding != st.hot || got.MaxC != st.c || len(s.got()) != st.asks {
			t.Fatalf("step %d (%g °C): hot %v shedding %v max %g, asks %v", i, st.c, got.Hot, got.Shedding, got.MaxC, s.got())
		}
	}
	if a := s.got(); a[0] != true || a[1] != false || a[2] != true {
		t.Errorf("asks %v", a)
	}
	// The hottest zone wins whichever it is.
	writeZone(t, root, 0, "cpu-thermal", 40)
	writeZone(t, root, 1, "gpu-thermal", 95)
	w.Poll()
	if st := w.Status(); st.MaxC != 95 || !st.Hot || len(st.Zones) != 2 {
		t.Errorf("status %+v", st)
	}
}

// TestRefusedCapIsAskedAgainAtTheNextPoll: a cap the setter refused
// (encoders restarting) is not recorded as applied, so the next poll asks
// again instead of believing the box is shedding.
func TestRefusedCapIsAskedAgainAtTheNextPoll(t *testing.T) {
	root := t.TempDir()
	writeZone(t, root, 0, "cpu-thermal", 90)
	s := &shedRec{fail: true}
	w, err := New(Config{Root: root, WarnC: 80, HysteresisC: 5, Poll: time.Second}, s, testutil.NilLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := w.Status(); !st.Hot || st.Shedding {
		t.Fatalf("after a refusal: %+v", st)
	}
	s.mu.Lock()
	s.fail = false
	s.mu.Unlock()
	w.Poll()
	if st := w.Status(); !st.Shedding || len(s.got()) != 1 {
		t.Fatalf("after the retry: %+v, asks %v", st, s.got())
	}
}

// TestRunPollsOnTheClockAndStopsOnCancel: Run reads the zones at each tick
// of the injected clock and returns when its context ends.
func TestRunPollsOnTheClockAndStopsOnCancel(t *testing.T) {
	root := t.TempDir()
	writeZone(t, root, 0, "cpu-thermal", 50)
	s := &shedRec{}
	clk := clockwork.NewFakeClock()
	w, err := New(Config{Root: root, WarnC: 80, HysteresisC: 5, Poll: 2 * time.Second}, s, testutil.NilLogger(t), clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	writeZone(t, root, 0, "cpu-thermal", 88)
	for i := 0; i < 50 && !w.Status().Hot; i++ { // bounded: the tick is handled asynchronously
		clk.Advance(2 * time.Second)
		time.Sleep(2 * time.Millisecond)
	}
	if !w.Status().Hot {
		t.Fatal("Run never polled")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
