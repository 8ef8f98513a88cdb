package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"onair/ingest"
	"onair/web/api"
)

// The power and panel figures of issue 11, each from one box with twins
// streaming to onair-ingest:
//
//   - power_lb_seen_ms: from the UPS's state file saying "OB LB" (NUT's
//     dummy-ups re-reads it within its 1 s pollinterval, upsd then answers
//     it, the box polls every power.poll, 500 ms here) to the box starting
//     the end; power_lb_to_end_ms to the end done (connection closed),
//     power_end_took_ms the end itself (GOP end, TS end, SRT drained);
//   - power_lb_to_last_byte_ms: to the last byte the receiver wrote;
//   - power_end_frames_lost: frame indexes missing in the recording (goal
//     0), power_end_decode_errors: ffmpeg's complaints decoding it (goal 0);
//   - panel_press_to_failover_ms: from POST /api/panel/press failover (the
//     virtual panel, the same logic as a GPIO button) to the status naming
//     the other encoder active, polled every 2 ms, the median and worst of
//     several presses; panel_failover_frames_lost over all of them.
func runPower(work string) {
	if err := benchPower(filepath.Join(work, "power")); err != nil {
		fmt.Fprintln(os.Stderr, "bench: power:", err)
	}
	if err := benchPanel(filepath.Join(work, "panel")); err != nil {
		fmt.Fprintln(os.Stderr, "bench: panel:", err)
	}
}

// powerBox starts onaird with twins and extra config streaming to a fresh
// receiver in dir.
func powerBox(dir, extra string) (*box, *exec.Cmd, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, "", err
	}
	port := freePort("udp")
	rx, out := startIngest(dir, port)
	path, _, err := writeBoxConfig(dir, port, true, "", extra)
	if err != nil {
		stop(rx)
		return nil, nil, "", err
	}
	cmd := exec.Command(filepath.Join(*binDir, "onaird"), "-config", path)
	if err := cmd.Start(); err != nil {
		stop(rx)
		return nil, nil, "", err
	}
	b := &box{cmd: cmd, client: api.NewUnixClient(filepath.Join(dir, "api.sock"))}
	return b, rx, out, nil
}

func benchPower(dir string) error {
	if _, err := os.Stat("/lib/nut/upsd"); err != nil {
		return errors.New("no NUT (scripts/deps.sh installs nut-server)")
	}
	upsPort := freePort("tcp")
	ups := func(args ...string) error {
		c := exec.Command("bash", append([]string{"scripts/ups.sh"}, args...)...)
		c.Env = append(os.Environ(), "UPS_DIR="+filepath.Join(dir, "ups"), "UPS_PORT="+strconv.Itoa(upsPort))
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("ups.sh %v: %w: %s", args, err, out)
		}
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := ups("up"); err != nil {
		return err
	}
	defer func() { _ = ups("down") }()
	extra := fmt.Sprintf("power:\n  nut:\n    host: 127.0.0.1\n    port: %d\n    ups: dummy\n  poll: 500ms\n  poweroff: false\n", upsPort)
	b, rx, out, err := powerBox(dir, extra)
	if err != nil {
		return err
	}
	defer stop(rx)
	defer stop(b.cmd)
	b.waitFor(30*time.Second, func(st api.Status) bool {
		return st.Output.State == "connected" && st.Video.Switch.Locked && st.Power != nil && st.Power.State == api.PowerOnline && st.Power.UPS.Reachable
	})
	time.Sleep(3 * time.Second)
	lb := time.Now()
	if err = ups("set", "OB LB", "8", "200"); err != nil {
		return err
	}
	st := b.waitForEvery(20*time.Second, 10*time.Millisecond, func(st api.Status) bool {
		return st.OnAir.Phase == api.OnAirStopped && st.OnAir.LastEnd != nil
	})
	e := st.OnAir.LastEnd
	size, mtime, err := settledFile(out, 2*time.Second)
	if err != nil {
		return err
	}
	stop(b.cmd)
	stop(rx)
	rep, err := ingest.AnalyzeFile(out, ingest.Options{FPS: fps})
	if err != nil {
		return err
	}
	errs, err := decodeErrorLines(out)
	if err != nil {
		return err
	}
	emit("power_lb_seen_ms", ms(e.At.Add(-time.Duration(e.TookMs*float64(time.Millisecond))).Sub(lb)), "ms")
	emit("power_lb_to_end_ms", ms(e.At.Sub(lb)), "ms")
	emit("power_end_took_ms", e.TookMs, "ms")
	emit("power_lb_to_last_byte_ms", ms(mtime.Sub(lb)), "ms")
	emit("power_end_frames_lost", float64(rep.Video.Missing), "frames")
	emit("power_end_decode_errors", float64(errs), "lines")
	emit("power_end_recording", float64(size)/(1<<20), "MiB")
	return nil
}

// settledFile waits until path stops growing for quiet and returns its size
// and the time of its last write.
func settledFile(path string, quiet time.Duration) (int64, time.Time, error) {
	var last int64 = -1
	since := time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		fi, err := os.Stat(path)
		if err != nil {
			return 0, time.Time{}, err
		}
		if fi.Size() != last {
			last, since = fi.Size(), time.Now()
			continue
		}
		if time.Since(since) >= quiet {
			return fi.Size(), fi.ModTime(), nil
		}
	}
	return 0, time.Time{}, fmt.Errorf("%s still growing after 30 s", path)
}

// decodeErrorLines counts the lines ffmpeg prints decoding path (errors only).
func decodeErrorLines(path string) (int, error) {
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil && len(out) == 0 {
		return 0, err
	}
	n := 0
	for _, c := range out {
		if c == '\n' {
			n++
		}
	}
	return n, nil
}

func benchPanel(dir string) error {
	b, rx, out, err := powerBox(dir, "")
	if err != nil {
		return err
	}
	defer stop(rx)
	defer stop(b.cmd)
	locked := func(st api.Status) bool { return st.Output.State == "connected" && st.Video.Switch.Locked }
	b.waitFor(30*time.Second, locked)
	const presses = 5
	var took []time.Duration
	for i := range presses {
		st := b.waitFor(20*time.Second, locked)
		was := st.Video.Switch.Active
		time.Sleep(time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t0 := time.Now()
		r, perr := b.client.PanelPress(ctx, "failover", false)
		cancel()
		if perr != nil {
			return fmt.Errorf("press %d: %w", i, perr)
		}
		b.waitForEvery(5*time.Second, 2*time.Millisecond, func(st api.Status) bool { return st.Video.Switch.Active != was })
		took = append(took, time.Since(t0))
		if i == 0 {
			fmt.Fprintf(os.Stderr, "bench: panel: %s\n", r.Action)
		}
	}
	time.Sleep(time.Second)
	stop(b.cmd)
	time.Sleep(500 * time.Millisecond)
	stop(rx)
	rep, err := ingest.AnalyzeFile(out, ingest.Options{FPS: fps})
	if err != nil {
		return err
	}
	sorted := slices.Sorted(slices.Values(took))
	emit("panel_press_to_failover_p50_ms", ms(sorted[len(sorted)/2]), "ms")
	emit("panel_press_to_failover_max_ms", ms(sorted[len(sorted)-1]), "ms")
	emit("panel_failover_presses", presses, "presses")
	emit("panel_failover_frames_lost", float64(rep.Video.Missing), "frames")
	emit("panel_failover_frames_duplicated", float64(rep.Video.Duplicates), "frames")
	return nil
}

func ms(d time.Duration) float64 { return d.Seconds() * 1000 }
