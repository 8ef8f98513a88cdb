package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"onair/web/api"
)

// writeThermalZone writes a fake /sys/class/thermal zone: type and temp in
// millidegrees, each replaced atomically (the watch may read at any time).
func writeThermalZone(t *testing.T, root string, c float64) {
	t.Helper()
	d := filepath.Join(root, "thermal_zone0")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"type": "cpu-thermal\n", "temp": strconv.Itoa(int(c*1000)) + "\n"} {
		tmp := filepath.Join(d, "."+name)
		if err := os.WriteFile(tmp, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(d, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// Twin encoders double the heat. A zone rising past thermal.warn_c lowers
// the bitrate cap of both twins at one frame index (they stay locked, the
// receiver loses nothing); cooling below warn_c minus the hysteresis brings
// the bitrate back. The stream never stops for heat.
func TestHotBoxShedsBitrateWithTwinsLockedAndCoolingRestoresIt(t *testing.T) {
	port, out, rx := independentReceiver(t)
	root := t.TempDir()
	writeThermalZone(t, root, 55)
	extra := fmt.Sprintf("thermal:\n  root: %q\n  warn_c: 80\n  hysteresis_c: 5\n  poll: 200ms\n  shed_kbps: 1500\n", root)
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, gop: 30, extra: extra})
	st := b.waitFor(t, 20*time.Second, "locked with a thermal zone", func(st api.Status) bool {
		return connected(st) && locked(st) && st.Thermal != nil
	})
	if st.Thermal.MaxC != 55 || st.Thermal.Hot || st.Video.BitrateKbps != 4000 {
		t.Fatalf("cool: thermal %+v bitrate %d", st.Thermal, st.Video.BitrateKbps)
	}
	hotAt := time.Now()
	writeThermalZone(t, root, 86)
	st = b.waitFor(t, 5*time.Second, "shedding for heat", func(st api.Status) bool {
		return st.Thermal.Hot && st.Thermal.Shedding && st.Video.BitrateKbps == 1500
	})
	t.Logf("hot → cap %d kbps in %s", st.Video.BitrateKbps, time.Since(hotAt))
	time.Sleep(2 * time.Second)
	writeThermalZone(t, root, 77) // below warn_c, above warn_c - hysteresis: still shedding
	time.Sleep(time.Second)
	if st, _ = b.status(t); !st.Thermal.Hot || st.Video.BitrateKbps != 1500 {
		t.Errorf("at 77 °C (hysteresis): hot %v bitrate %d, want still shed", st.Thermal.Hot, st.Video.BitrateKbps)
	}
	writeThermalZone(t, root, 70)
	st = b.waitFor(t, 5*time.Second, "bitrate restored", func(st api.Status) bool {
		return !st.Thermal.Hot && !st.Thermal.Shedding && st.Video.BitrateKbps == 4000
	})
	time.Sleep(2 * time.Second)
	st = b.waitFor(t, 5*time.Second, "still locked", locked)
	if st.Video.Switch.Mismatches != 0 || st.Video.Switch.Switches != 0 || st.OnAir.Phase != api.OnAirLive || st.Output.Connects != 1 {
		t.Errorf("after heat: mismatches %d switches %d phase %s connects %d", st.Video.Switch.Mismatches,
			st.Video.Switch.Switches, st.OnAir.Phase, st.Output.Connects)
	}
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)
	noGap(t, out)
}
