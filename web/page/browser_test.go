package page

// The browser test drives Debian's chromium (scripts/deps.sh installs it)
// through the page as the crew does, against a fake box behind the real
// web/auth. It runs in real time for a few seconds: on the shared machine
// run it under the lock, never beside another real-time test:
//
//	flock /tmp/onair-live.lock go test -p 1 -count=1 -run TestPageInABrowser -v ./web/page/
//
// It writes the screenshot docs/page.png (412x915, a phone); not under CI.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jonboulle/clockwork"

	"onair/events"
	"onair/internal/testutil"
	"onair/web/api"
	"onair/web/auth"
)

// fakeBox is the box behind the page: a status the test and the commands
// change, and a real event ring the commands add to.
type fakeBox struct {
	start time.Time
	ring  *events.Ring

	mu sync.Mutex
	st api.Status
}

func newFakeBox(ring *events.Ring) *fakeBox {
	now := time.Now()
	idx := uint64(90210)
	return &fakeBox{start: now.Add(-3*time.Hour - 25*time.Minute), ring: ring, st: api.Status{
		Version: "v0.12.0-test",
		State:   api.BoxOnAir,
		Children: []api.ChildStatus{
			{ProcessStatus: api.ProcessStatus{Name: "capture", Role: "capture", PID: 101, State: "running"}, Frames: 369000, Source: "live"},
			{ProcessStatus: api.ProcessStatus{Name: "A", Role: "encode", PID: 102, State: "running"}, Frames: 369000, Margin: 2.44, MarginMin: 1.86},
			{ProcessStatus: api.ProcessStatus{Name: "B", Role: "encode", PID: 103, State: "running", Restarts: 1}, Frames: 368990},
			{ProcessStatus: api.ProcessStatus{Name: "audio-main", Role: "audio", PID: 104, State: "running"}},
			{ProcessStatus: api.ProcessStatus{Name: "audio-backup", Role: "audio", PID: 105, State: "running"}},
		},
		Video: api.VideoStatus{
			Switch: api.SwitchStatus{Twins: true, Locked: true, Active: "A", Names: []string{"A", "B"}, Alive: []bool{true, true},
				LastIndex: idx, Switches: 2},
			Keeper:       api.KeeperStatus{Signal: "live"},
			BitrateKbps:  4500,
			LatencyP50Ms: 41, LatencyP99Ms: 58,
		},
		Audio: api.AudioStatus{Mode: api.AudioAuto, Active: "main", Reason: "healthy", Chains: []api.AudioChainStatus{
			{Name: "main", State: api.AudioChainOK, PeakDBFS: -9.5, RMSDBFS: -21.2, DelayMs: 12},
			{Name: "backup", State: api.AudioChainOK, PeakDBFS: -14, RMSDBFS: -27.5, DelayMs: 15},
		}},
		Output: api.OutputStatus{State: "connected", Target: "srtla://studio.example:5000", SendRateKbps: 4700, BytesSent: 7_340_000_000,
			SRT: api.SRTStats{RTTms: 48, LossRatePct: 0.4}},
		OnAir: api.OnAirStatus{Phase: api.OnAirLive, Reason: "auto-start", Since: now.Add(-3 * time.Hour)},
		Power: &api.PowerStatus{State: api.PowerOnline, Source: api.SourceMains, Reason: "UPS on line",
			UPS: &api.UPSStatus{Name: "hat@localhost:3493", Reachable: true, Status: []string{"OL", "CHRG"}, ChargePct: 97, RuntimeS: 2520}},
		Thermal: &api.ThermalStatus{MaxC: 61.5, WarnC: 80, Zones: []api.ThermalZone{{Name: "thermal_zone0", Type: "cpu-thermal", TempC: 61.5}}},
		Panel: &api.PanelStatus{Virtual: true, Buttons: []string{"go_live", "failover"}, LEDs: []api.LEDStatus{
			{Name: "power", Pattern: api.LEDSolid, Meaning: "mains"},
			{Name: "tally", Pattern: api.LEDSolid, Meaning: "on air"},
			{Name: "encoder-a", Pattern: api.LEDSolid, Meaning: "active, locked"},
			{Name: "encoder-b", Pattern: api.LEDSlowBlink, Meaning: "standby"},
		}},
	}}
}

func (b *fakeBox) status() api.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.st
	st.Uptime = time.Since(b.start).Seconds()
	// The counters move as on a real box (30 fps), so fps shows.
	el := time.Since(b.start).Seconds()
	st.Children = append([]api.ChildStatus(nil), b.st.Children...)
	for i := range st.Children {
		if st.Children[i].Role == "encode" {
			st.Children[i].Frames = uint64(el * 30)
		}
	}
	return st
}

func (b *fakeBox) change(f func(*api.Status)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// register serves the fake box's part of the API (what package web serves
// on the real box).
func (b *fakeBox) register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+api.PathStatus, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, b.status()) })
	mux.HandleFunc("POST "+api.PathFailoverVideo, func(w http.ResponseWriter, _ *http.Request) {
		var target string
		var frame uint64
		b.change(func(s *api.Status) {
			sw := &s.Video.Switch
			target = sw.Names[0]
			if sw.Active == target {
				target = sw.Names[1]
			}
			sw.Active, sw.Switches, frame = target, sw.Switches+1, sw.LastIndex
		})
		b.ring.Add(api.Event{Kind: api.EventVideoFailover, Subject: target, Frame: &frame, Reason: "operator"})
		writeJSON(w, http.StatusOK, api.FailoverResult{Result: api.FailoverSwitched, Target: target})
	})
	mux.HandleFunc("POST "+api.PathOnAir, func(w http.ResponseWriter, r *http.Request) {
		var req api.OnAirRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, api.Error{Error: err.Error()})
			return
		}
		var oa api.OnAirStatus
		b.change(func(s *api.Status) {
			s.OnAir.Phase, s.OnAir.Reason, s.State = api.OnAirStopped, "operator", api.BoxStopped
			if req.Live {
				s.OnAir.Phase, s.State = api.OnAirLive, api.BoxOnAir
			}
			oa = s.OnAir
		})
		writeJSON(w, http.StatusOK, oa)
	})
	mux.HandleFunc("POST "+api.PathVideoBitrate, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusBadRequest, api.Error{Error: "video: bitrate 50000 kbps above video.max_kbps 8000"})
	})
}

// The page as the crew uses it: opened without a session it goes to setup;
// setup, log out and in; a degraded box shows within a bound (the figure
// is logged); failover with the twins unlocked asks first and then shows
// its event; an absent part is not shown, and shows once present; an API
// error shows in the message line. It writes docs/page.png.
func TestPageInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time: drives chromium for a few seconds (run under flock /tmp/onair-live.lock)")
	}
	testutil.Need(t, "/usr/bin/chromium")
	log := testutil.NilLogger(t)
	clock := clockwork.NewRealClock()
	a, err := auth.New(auth.Config{Dir: t.TempDir(), Public: Public(), Params: auth.Params{Time: 1, MemoryKiB: 64, Threads: 1}}, log.Named("auth"), clock)
	if err != nil {
		t.Fatal(err)
	}
	token, ok := a.SetupToken()
	if !ok {
		t.Fatal("no setup token on a first start")
	}
	ring := events.New(0, log.Named("events"), clock)
	box := newFakeBox(ring)
	ring.Add(api.Event{Kind: api.EventOnAir, Reason: "auto-start: live"})
	one := uint64(41)
	ring.Add(api.Event{Kind: api.EventVideoFailover, Subject: "A", Frame: &one, Reason: "B stalled (no frames for 2s)"})
	ring.Add(api.Event{Kind: api.EventRestart, Subject: "B", Reason: "exit status 1"})
	logs := &fakeLogs{}
	logs.add("onaird started")
	logs.add("output connected")
	p, err := New(Config{Status: box.status, Events: ring, Logs: logs}, log.Named("page"), clock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Register(mux)
	p.Register(mux)
	box.register(mux)
	srv := httptest.NewServer(a.Require(mux))
	t.Cleanup(srv.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("/usr/bin/chromium"), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(412, 915))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	poll := func(what, js string) time.Duration {
		t.Helper()
		// A bounded poll that survives a navigation (the page's own
		// redirects): an evaluation then fails, and is tried again.
		t0 := time.Now()
		var last error
		for time.Since(t0) < 5*time.Second {
			ok, evalErr := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
			if evalErr == nil && ok {
				return time.Since(t0)
			}
			last = evalErr
			time.Sleep(10 * time.Millisecond)
		}
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname + "\n" + document.body.innerText`))
		t.Fatalf("%s: not so within 5 s (last error %v)\npage %s", what, last, body)
		return 0
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if doErr := chromedp.Do(ctx, steps...); doErr != nil {
			t.Fatalf("%s: %v", what, doErr)
		}
	}

	do("open /", chromedp.EmulateViewport(412, 915), chromedp.Navigate(srv.URL+"/"))
	poll("redirected to setup", `location.pathname === "/login" && !document.getElementById("setup").hidden`)
	const password = "correct horse battery"
	do("setup", chromedp.SendKeys(chromedp.ID("setup-token"), token),
		chromedp.SendKeys(chromedp.ID("setup-password"), password),
		chromedp.SendKeys(chromedp.ID("setup-password2"), password),
		chromedp.Click(chromedp.ID("setup-submit")))
	poll("the page after setup", `location.pathname === "/" && document.getElementById("tally-state").textContent === "ON AIR"`)

	do("log out", chromedp.Click(chromedp.ID("logout")))
	poll("the login form", `location.pathname === "/login" && !document.getElementById("login").hidden`)
	do("log in", chromedp.SendKeys(chromedp.ID("login-password"), password), chromedp.Click(chromedp.ID("login-submit")))
	poll("the page after login", `location.pathname === "/" && document.getElementById("tally-state").textContent === "ON AIR"`)
	poll("the replayed events", `document.querySelectorAll("#event-list li").length === 3`)
	poll("the log tail", `document.getElementById("log-list").textContent.includes("output connected")`)

	// Absent parts are not shown; present ones are.
	poll("no uplinks without bond; power, thermal, panel, audio shown",
		`document.getElementById("uplinks").hidden && !document.getElementById("power").hidden &&
		 !document.getElementById("thermal").hidden && !document.getElementById("panel").hidden &&
		 document.querySelectorAll("#chain-list .chain").length === 2 && document.getElementById("rec-row").hidden`)

	// Each encoder's real-time margin; B has measured none yet: no row.
	poll("A's margin, none for B", `document.querySelector('#encoder-list [data-key="A"]').textContent.includes("margin2.4× (min 1.9×)") &&
		 !document.querySelector('#encoder-list [data-key="B"]').textContent.includes("margin")`)

	// A state change reaches the page.
	box.change(func(s *api.Status) {
		s.State = api.BoxDegraded
		s.Video.Switch.Alive[1] = false
		s.Children[2].State = "backoff"
	})
	took := poll("degraded with B not alive",
		`document.getElementById("tally-state").textContent === "DEGRADED" &&
		 document.querySelector('#encoder-list [data-key="B"]').textContent.includes("NOT ALIVE")`)
	t.Logf("status change → page: %s (bound 1 s with Interval %s)", took.Round(time.Millisecond), DefaultInterval)
	if took > 2*time.Second {
		t.Errorf("the change took %s to show; want about Interval", took)
	}

	// Failover with the twins unlocked asks first.
	box.change(func(s *api.Status) {
		s.State = api.BoxOnAir
		s.Video.Switch.Alive[1] = true
		s.Video.Switch.Locked = false
		s.Children[2].State = "running"
	})
	poll("the failover button warns", `document.getElementById("btn-failover").className.includes("warn")`)
	do("failover", chromedp.Click(chromedp.ID("btn-failover")))
	poll("the confirm step", `!document.getElementById("confirm").hidden &&
		document.getElementById("confirm-text").textContent.includes("unlocked")`)
	if n := len(mustList(ring)); n != 3 {
		t.Fatalf("the failover ran before the confirm: %d events", n)
	}
	do("confirm", chromedp.Click(chromedp.ID("confirm-yes")))
	poll("the failover event, newest first", `(() => {
		const li = document.querySelector("#event-list li");
		return li && li.textContent.includes("video failover") && li.textContent.includes("B") && li.textContent.includes("operator");
	})()`)
	poll("B active", `document.querySelector('#encoder-list [data-key="B"]').classList.contains("active")`)

	// An API error shows in the message line.
	do("bitrate", chromedp.SendKeys(chromedp.ID("bitrate"), "50000"), chromedp.Click(chromedp.ID("btn-bitrate")))
	poll("the bitrate confirm", `!document.getElementById("confirm").hidden`)
	do("confirm bitrate", chromedp.Click(chromedp.ID("confirm-yes")))
	poll("the error in the message line", `(() => { const m = document.getElementById("msg");
		return !m.hidden && m.className.includes("err") && m.textContent.includes("above video.max_kbps"); })()`)

	// Bonding appears: the uplinks show, with their figures.
	box.change(func(s *api.Status) {
		s.Video.Switch.Locked = true
		s.Bond = &api.BondStatus{Group: api.GroupRegistered, Receiver: "studio.example:5000",
			Bitrate: api.BitrateStatus{Kbps: 4500, MinKbps: 1500, MaxKbps: 6000, ABR: true},
			Uplinks: []api.UplinkStatus{
				{Name: "lte1", Interface: "wwan0", Policy: api.PolicyBond, State: api.UplinkUp, Enabled: true, Carrying: true,
					RTTms: 62, LossPct: 0.8, ThroughputKbps: 2600, BytesSent: 3_120_000_000},
				{Name: "lte2", Interface: "wwan1", Policy: api.PolicyBond, State: api.UplinkUp, Enabled: true, Carrying: true,
					RTTms: 85, LossPct: 2.1, ThroughputKbps: 1900, BytesSent: 2_480_000_000, CapBytes: 10_000_000_000},
				{Name: "wifi", Interface: "wlan0", Policy: api.PolicyBackup, State: api.UplinkDown, Enabled: true},
			}}
	})
	poll("the uplinks", `!document.getElementById("uplinks").hidden &&
		document.querySelectorAll("#uplink-list .uplink").length === 3 &&
		document.querySelector('#uplink-list [data-key="lte1"]').textContent.includes("62 ms")`)
	// Disabling one asks first; cancel leaves it be.
	do("disable lte2", chromedp.Click(chromedp.CSS(`#uplink-list [data-key="lte2"] button`)))
	poll("the disable confirm", `document.getElementById("confirm-text").textContent.includes("lte2")`)
	do("cancel", chromedp.Click(chromedp.ID("confirm-no")))
	poll("confirm gone", `document.getElementById("confirm").hidden`)
	// The pages left (logout) closed their streams: the server ends a
	// stream once it sees its connection closed.
	for t0 := time.Now(); p.Streams() != 1 && time.Since(t0) < 5*time.Second; {
		time.Sleep(10 * time.Millisecond)
	}
	if p.Streams() != 1 {
		t.Errorf("Streams = %d; want the page's 1", p.Streams())
	}

	// A phone's first screen, for docs/ and for a look.
	do("top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0); document.getElementById("msg").hidden = true;
		document.getElementById("bitrate").value = ""`))
	time.Sleep(300 * time.Millisecond) // the meters' width transition; not an assertion
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	writeShot(t, "page.png", png)
	// ONAIR_PAGE_SHOTS=DIR: the rest of the page, one phone screen a
	// file, for a look while working on it.
	if dir := os.Getenv("ONAIR_PAGE_SHOTS"); dir != "" {
		h, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollHeight`))
		for i := 0; err == nil && i*700 < h; i++ {
			var shot []byte
			err = chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`window.scrollTo(0, %d)`, i*700)))
			if err == nil {
				shot, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
			}
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, fmt.Sprintf("page-%d.png", i)), shot, 0o644)
			}
		}
		if err != nil {
			t.Error(err)
		}
	}
}

func mustList(r *events.Ring) []api.Event {
	evs, _ := r.List(time.Time{}, 0)
	return evs
}

// writeShot writes docs/NAME at the module's root; under CI (CI set) into
// the test's temp dir instead, so the tests leave the tree clean (the
// picture changes with every run: times, uptime).
func writeShot(t *testing.T, name string, png []byte) {
	t.Helper()
	if !strings.HasPrefix(string(png), "\x89PNG") {
		t.Errorf("%s is not a PNG", name)
	}
	// docs/page.png is the real box's picture (e2e/page_test.go); this
	// one, of a fake box, goes to a named dir only when asked for.
	dir := os.Getenv("ONAIR_PAGE_SHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", filepath.Join(dir, name))
}
