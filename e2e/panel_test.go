package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"onair/web/api"
)

// "One person empowered to call the switch to backup", fast: the panel's
// failover button (here the virtual panel, the same logic as a GPIO
// button) switches encoders with no gap at an independent receiver; the
// panel's LEDs in status follow (encoder B becomes the solid one), a short
// go_live press during the show does nothing, and onairctl prints the LEDs.
func TestVirtualPanelFailoverPressSwitchesWithNoGap(t *testing.T) {
	port, out, rx := independentReceiver(t)
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, gop: 30})
	st := b.waitFor(t, 20*time.Second, "locked, panel up", func(st api.Status) bool {
		return connected(st) && locked(st) && st.Panel != nil && len(st.Panel.LEDs) >= 5 && activeLED(st) == st.Video.Switch.Active
	})
	if !st.Panel.Virtual || strings.Join(st.Panel.Buttons, ",") != "go_live,failover,audio" {
		t.Errorf("panel %+v", st.Panel)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		st = b.waitFor(t, 20*time.Second, "locked before the press", locked)
		was := st.Video.Switch.Active
		pressed := time.Now()
		r, err := b.client.PanelPress(ctx, "failover", false)
		if err != nil || !strings.HasPrefix(r.Action, "failover video: switched to") {
			t.Fatalf("press %d: %+v, %v", i, r, err)
		}
		st = b.waitFor(t, 5*time.Second, "switched", func(st api.Status) bool { return st.Video.Switch.Active != was })
		t.Logf("press %d: %s → %s in %s (%s)", i, was, st.Video.Switch.Active, time.Since(pressed), r.Action)
		time.Sleep(2 * time.Second)
	}
	st = b.waitFor(t, 5*time.Second, "LEDs follow", func(st api.Status) bool {
		return activeLED(st) == st.Video.Switch.Active
	})
	if r, err := b.client.PanelPress(ctx, "go_live", false); err != nil || !strings.HasPrefix(r.Action, "ignored") {
		t.Errorf("short go_live during the show: %+v, %v", r, err)
	}
	if _, err := b.client.PanelPress(ctx, "eject", false); err == nil {
		t.Error("an unknown button was accepted")
	}
	res, err := exec.Command(bin("onairctl"), "--socket", b.socket, "panel").CombinedOutput()
	if err != nil || !strings.Contains(string(res), "tally") || !strings.Contains(string(res), "on air") {
		t.Errorf("onairctl panel: %v\n%s", err, res)
	}
	time.Sleep(time.Second)
	if st, _ = b.status(t); st.OnAir.Phase != api.OnAirLive || st.Video.Switch.Switches != 3 {
		t.Errorf("phase %s, %d switches", st.OnAir.Phase, st.Video.Switch.Switches)
	}
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)
	noGap(t, out)
}

// activeLED is the encoder LED lit solid "active, locked" ("" if none):
// whichever twin delivered first is active at start.
func activeLED(st api.Status) string {
	if st.Panel == nil {
		return ""
	}
	for _, l := range st.Panel.LEDs {
		if strings.HasPrefix(l.Name, "encoder-") && l.Pattern == api.LEDSolid && l.Meaning == "active, locked" {
			return l.Name
		}
	}
	return ""
}
