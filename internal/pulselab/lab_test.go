package pulselab

// The tests that start a lab run a real PulseAudio server, parec and ffmpeg
// in real time (a few seconds each). On the shared machine run them under
// the lock, one package at a time:
//
//	flock /tmp/onair-live.lock go test -p 1 -count=1 -v ./internal/pulselab/
//
// They measure what the package comment reports (first byte of a capture,
// what silence, mute and removal look like) and log the figures with -v.

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"onair/encoder/wire"
	"onair/internal/testutil"
)

// bytesPerSecond of the captures: s16le, 48 kHz, stereo.
const bytesPerSecond = SampleRate * Channels * 2

// capture is an ffmpeg reading one of the lab's devices and writing s16le
// 48 kHz stereo to a pipe the test collects.
type capture struct {
	name string
	t0   time.Time

	mu     sync.Mutex
	pcm    []byte
	first  time.Duration // when the first byte arrived
	grew   chan struct{} // signalled (non-blocking) on each read
	done   chan struct{} // closed when ffmpeg exited and was reaped
	err    error         // ffmpeg's exit, valid after done
	ended  time.Time     // when its output ended
	stderr bytes.Buffer
}

// startCapture starts ffmpeg -f format -i dev with the lab's environment;
// it is killed in t.Cleanup if still running.
func startCapture(t *testing.T, l *Lab, format, dev string) *capture {
	t.Helper()
	c := &capture{name: format + ":" + dev, grew: make(chan struct{}, 1), done: make(chan struct{})}
	cmd := l.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
		"-f", format, "-i", dev, "-f", "s16le", "-ac", "2", "-ar", strconv.Itoa(SampleRate), "-")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{mu: &c.mu, w: &c.stderr}
	c.t0 = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, rerr := out.Read(buf)
			c.mu.Lock()
			if n > 0 && len(c.pcm) == 0 {
				c.first = time.Since(c.t0)
			}
			c.pcm = append(c.pcm, buf[:n]...)
			if rerr != nil {
				c.ended = time.Now()
			}
			c.mu.Unlock()
			select {
			case c.grew <- struct{}{}:
			default:
			}
			if rerr != nil {
				break
			}
		}
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		killCmd(cmd)
		<-c.done
	})
	return c
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// len is how many bytes have arrived so far.
func (c *capture) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pcm)
}

// await waits (bounded by d) until the capture holds n bytes and returns
// pcm[from:n]; it fails t if the capture ends or the time runs out first.
func (c *capture) await(t *testing.T, from, n int, d time.Duration) []byte {
	t.Helper()
	deadline := time.After(d)
	for {
		c.mu.Lock()
		if len(c.pcm) >= n {
			p := bytes.Clone(c.pcm[from:n])
			c.mu.Unlock()
			return p
		}
		got := len(c.pcm)
		c.mu.Unlock()
		select {
		case <-c.grew:
		case <-c.done:
			if c.len() < n {
				t.Fatalf("%s ended after %.2f s of audio, waiting for %.2f s: %v: %s", c.name,
					float64(got)/bytesPerSecond, float64(n)/bytesPerSecond, c.err, c.errText())
			}
		case <-deadline:
			t.Fatalf("%s: %.2f s of audio after %v, want %.2f s", c.name, float64(got)/bytesPerSecond, d, float64(n)/bytesPerSecond)
		}
	}
}

// waitEnd waits (bounded by d) until ffmpeg exits; false if it did not.
func (c *capture) waitEnd(d time.Duration) bool {
	select {
	case <-c.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (c *capture) errText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.TrimSpace(c.stderr.String())
}

// sec is a whole number of seconds of capture, in bytes, frame-aligned.
func sec(s float64) int { return int(s*SampleRate) * Channels * 2 }

func addFed(t *testing.T, l *Lab, name string, hz int) *Sink {
	t.Helper()
	s, err := l.AddSink(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Feed(hz); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkTone fails t unless pcm is the lab's tone at hz: within 1 % (zero
// crossings over 1 s or more are exact to 1 Hz), no dropout (not even
// 1 ms of digital silence; a tone has single zero frames where it crosses
// zero exactly) and at -24 dBFS RMS (-21 dBFS peak) within 2 dB.
func checkTone(t *testing.T, what string, pcm []byte, hz float64) Tone {
	t.Helper()
	a := Analyze(pcm, Channels, SampleRate)
	if d := a.FreqHz - hz; d > hz/100 || d < -hz/100 || a.LongestSilent >= SampleRate/1000 || a.RMSDBFS() < -26 || a.RMSDBFS() > -22 || a.PeakDBFS() < -23 || a.PeakDBFS() > -19 {
		t.Errorf("%s: %.1f Hz (want %.0f), peak %.1f dBFS, RMS %.1f dBFS, %d of %d frames silent, longest run %d",
			what, a.FreqHz, hz, a.PeakDBFS(), a.RMSDBFS(), a.Silent, a.Frames, a.LongestSilent)
	}
	return a
}

// checkSilent fails t unless pcm is below -60 dBFS peak and returns how
// much of it is digital silence.
func checkSilent(t *testing.T, what string, pcm []byte) Tone {
	t.Helper()
	a := Analyze(pcm, Channels, SampleRate)
	if a.PeakDBFS() > -60 {
		t.Errorf("%s: peak %.1f dBFS (%.0f Hz), want below -60 dBFS", what, a.PeakDBFS(), a.FreqHz)
	}
	return a
}

// The backup audio chain reads two devices at once: each must carry its
// own tone, as ALSA and as pulse, on the server's clock.
func TestTwoSinksCarryTheirOwnToneToALSAAndPulse(t *testing.T) {
	l := Start(t)
	t.Logf("pulseaudio answered after %v", l.StartupTime)
	t0 := time.Now()
	main := addFed(t, l, "main", 1000)
	backup := addFed(t, l, "backup", 440)
	t.Logf("two sinks added and fed in %v", time.Since(t0))
	if main.ALSADevice() != "main" || main.Source() != "main.monitor" {
		t.Fatalf("device names %q %q", main.ALSADevice(), main.Source())
	}
	caps := []struct {
		c  *capture
		hz float64
	}{
		{startCapture(t, l, "alsa", main.ALSADevice()), 1000},
		{startCapture(t, l, "alsa", backup.ALSADevice()), 440},
		{startCapture(t, l, "pulse", main.Source()), 1000},
		{startCapture(t, l, "pulse", backup.Source()), 440},
	}
	for _, k := range caps {
		pcm := k.c.await(t, 0, sec(2), 10*time.Second)
		a := checkTone(t, k.c.name, pcm, k.hz)
		t.Logf("%s: first byte after %v; 2 s: %.0f Hz, peak %.1f dBFS, RMS %.1f dBFS",
			k.c.name, k.c.first.Round(time.Millisecond), a.FreqHz, a.PeakDBFS(), a.RMSDBFS())
	}
}

// issue 10: a muted input must read as digital silence, so the programme
// switches to the backup on level alone.
func TestMutedSinkDeliversDigitalSilence(t *testing.T) {
	l := Start(t)
	s := addFed(t, l, "main", 1000)
	caps := []*capture{startCapture(t, l, "alsa", s.ALSADevice()), startCapture(t, l, "pulse", s.Source())}
	for _, c := range caps {
		checkTone(t, c.name+" before mute", c.await(t, 0, sec(0.5), 10*time.Second), 1000)
	}
	at := make([]int, len(caps))
	if err := s.Mute(true); err != nil {
		t.Fatal(err)
	}
	for i, c := range caps {
		at[i] = c.len()
	}
	for i, c := range caps {
		// What arrives after Mute returned, minus 0.3 s still in flight.
		p := c.await(t, at[i], at[i]+sec(1.3), 5*time.Second)
		a := checkSilent(t, c.name+" muted", p[sec(0.3):])
		t.Logf("%s muted: peak %.1f dBFS, %d of %d frames digital zero; the tone stopped %v of audio after Mute returned",
			c.name, a.PeakDBFS(), a.Silent, a.Frames, toneEnd(p))
	}
	if err := s.Mute(false); err != nil {
		t.Fatal(err)
	}
	for i, c := range caps {
		at[i] = c.len()
	}
	for i, c := range caps {
		checkTone(t, c.name+" unmuted", c.await(t, at[i], at[i]+sec(1.5), 5*time.Second)[sec(0.5):], 1000)
	}
}

// toneEnd is how much audio (from the start of pcm) precedes its first
// run of 10 ms of digital silence.
func toneEnd(pcm []byte) time.Duration {
	const frame = Channels * 2
	run := 0
	for i := 0; i+frame <= len(pcm); i += frame {
		if bytes.Equal(pcm[i:i+frame], make([]byte, frame)) {
			run++
			if run == SampleRate/100 {
				start := i/frame - run + 1
				return time.Duration(start) * time.Second / SampleRate
			}
		} else {
			run = 0
		}
	}
	return -1
}

// A feeder that dies (nobody plays into the card) must not stall or end
// the capture: the sink keeps its clock and the monitor delivers silence.
func TestStoppedFeederLeavesClockedSilence(t *testing.T) {
	l := Start(t)
	s := addFed(t, l, "main", 1000)
	caps := []*capture{startCapture(t, l, "alsa", s.ALSADevice()), startCapture(t, l, "pulse", s.Source())}
	for _, c := range caps {
		checkTone(t, c.name+" fed", c.await(t, 0, sec(0.5), 10*time.Second), 1000)
	}
	if err := s.StopFeed(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	at := make([]int, len(caps))
	for i, c := range caps {
		at[i] = c.len()
	}
	for i, c := range caps {
		p := c.await(t, at[i], at[i]+sec(1.3), 5*time.Second)
		a := checkSilent(t, c.name+" feeder stopped", p[sec(0.3):])
		t.Logf("%s feeder stopped: 1.3 s of audio by %v, peak %.1f dBFS, %d of %d frames digital zero; tone ended %v into it",
			c.name, time.Since(stopped).Round(time.Millisecond), a.PeakDBFS(), a.Silent, a.Frames, toneEnd(p))
	}
	if err := s.Feed(1000); err != nil {
		t.Fatal(err)
	}
	for i, c := range caps {
		at[i] = c.len()
	}
	for i, c := range caps {
		checkTone(t, c.name+" fed again", c.await(t, at[i], at[i]+sec(1.5), 5*time.Second)[sec(0.5):], 1000)
	}
}

// issue 10: removing the main card must end its chain's capture (the
// box's "device gone"), never leave it reading the backup's device, which
// is what PulseAudio's stream rescue would do.
func TestRemoveEndsTheCaptureAndReopenFails(t *testing.T) {
	l := Start(t)
	main := addFed(t, l, "main", 1000)
	addFed(t, l, "backup", 440)
	caps := []*capture{startCapture(t, l, "alsa", main.ALSADevice()), startCapture(t, l, "pulse", main.Source())}
	for _, c := range caps {
		checkTone(t, c.name+" before removal", c.await(t, 0, sec(1), 10*time.Second), 1000)
	}
	at := make([]int, len(caps))
	for i, c := range caps {
		at[i] = c.len()
	}
	removed := time.Now()
	if err := main.Remove(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Remove took %v", time.Since(removed).Round(time.Millisecond))
	for i, c := range caps {
		if !c.waitEnd(5 * time.Second) {
			t.Errorf("%s still running 5 s after Remove (%.2f s of audio since)", c.name, float64(c.len()-at[i])/bytesPerSecond)
			continue
		}
		c.mu.Lock()
		after := bytes.Clone(c.pcm[at[i]:])
		took := c.ended.Sub(removed)
		c.mu.Unlock()
		a := Analyze(after, Channels, SampleRate)
		t.Logf("%s: output ended %v after Remove began, exit %v, %.3f s of audio after (%.0f Hz, peak %.1f dBFS); stderr: %s",
			c.name, took.Round(time.Millisecond), c.err, float64(len(after))/bytesPerSecond, a.FreqHz, a.PeakDBFS(), c.errText())
		if len(after) >= sec(0.1) && a.FreqHz > 400 && a.FreqHz < 480 {
			t.Errorf("%s: heard the backup's 440 Hz after the main sink was removed", c.name)
		}
	}
	if err := main.Feed(1000); !errors.Is(err, ErrRemoved) {
		t.Errorf("Feed after Remove: %v, want ErrRemoved", err)
	}
	for _, in := range [][2]string{{"alsa", main.ALSADevice()}, {"pulse", main.Source()}} {
		t0 := time.Now()
		c := startCapture(t, l, in[0], in[1])
		if !c.waitEnd(5 * time.Second) {
			t.Errorf("reopening %s: still running after 5 s", c.name)
			continue
		}
		t.Logf("reopening %s after Remove: ended after %v, exit %v, %d bytes; stderr: %s",
			c.name, time.Since(t0).Round(time.Millisecond), c.err, c.len(), c.errText())
		if c.len() > 0 || c.err == nil {
			t.Errorf("reopening %s after Remove delivered %d bytes, exit %v", c.name, c.len(), c.err)
		}
	}
	// Plugged back in: the same name works again.
	again := addFed(t, l, "main", 1000)
	c := startCapture(t, l, "alsa", again.ALSADevice())
	checkTone(t, "alsa:main added again", c.await(t, 0, sec(1), 10*time.Second), 1000)
}

// Why Remove kills streams: on its own, unloading a sink makes PulseAudio
// move the streams attached to it to the default source. With the lab's
// void as the default they hear silence and go on; without it, they would
// hear the other sink.
func TestUnloadAloneMovesTheCaptureToTheVoid(t *testing.T) {
	l := Start(t)
	main := addFed(t, l, "main", 1000)
	addFed(t, l, "backup", 440)
	caps := []*capture{startCapture(t, l, "alsa", main.ALSADevice()), startCapture(t, l, "pulse", main.Source())}
	for _, c := range caps {
		c.await(t, 0, sec(1), 10*time.Second)
	}
	l.mu.Lock()
	err := errors.Join(main.stopFeeder(), main.stopKeeper(), main.unload())
	l.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	at := make([]int, len(caps))
	for i, c := range caps {
		at[i] = c.len()
	}
	for i, c := range caps {
		p := c.await(t, at[i], at[i]+sec(1.3), 5*time.Second)
		a := checkSilent(t, c.name+" rescued", p[sec(0.3):])
		t.Logf("%s after the unload alone: goes on, %.1f dBFS peak, %d of %d frames digital zero", c.name, a.PeakDBFS(), a.Silent, a.Frames)
	}
	ss, err := l.streams("source-outputs")
	if err != nil {
		t.Fatal(err)
	}
	onVoid := 0
	for _, s := range ss {
		if s.Device == l.voidMon {
			onVoid++
		}
	}
	if onVoid != len(caps) {
		t.Errorf("%d streams on the void's monitor, want %d: %+v", onVoid, len(caps), ss)
	}
	l.mu.Lock()
	err = l.killRescued()
	l.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range caps {
		if !c.waitEnd(5 * time.Second) {
			t.Errorf("%s still running 5 s after its rescued stream was killed", c.name)
		}
	}
}

// Every process the lab starts must be gone after Close, and its
// directory with them: no pulseaudio, parec or ffmpeg outlives a test.
func TestCloseLeavesNoProcessOrDirectory(t *testing.T) {
	need(t)
	l, err := New(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	for _, n := range []string{"main", "backup"} {
		addFed(t, l, n, 1000)
	}
	sleeper := l.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { _ = sleeper.Wait(); close(reaped) }()
	pids := append(l.PIDs(), sleeper.Process.Pid)
	if len(pids) != 1+2*2+1 {
		t.Fatalf("pids %v: want the server, a keeper and a feeder per sink, and the command", pids)
	}
	dir := l.Dir
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	<-reaped
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d still there after Close: %v", pid, err)
		}
	}
	if left := processesWithHome(dir); len(left) > 0 {
		t.Errorf("processes with the lab's HOME after Close: %v", left)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after Close: %v", dir, err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.AddSink("late"); !errors.Is(err, ErrClosed) {
		t.Errorf("AddSink after Close: %v", err)
	}
}

// processesWithHome lists the processes whose environment holds HOME=dir.
func processesWithHome(dir string) []string {
	want := []byte("HOME=" + dir + "\x00")
	ents, _ := filepath.Glob("/proc/[0-9]*/environ")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(e)
		if err == nil && bytes.Contains(b, want) {
			cmd, _ := os.ReadFile(filepath.Join(filepath.Dir(e), "cmdline"))
			out = append(out, filepath.Base(filepath.Dir(e))+" "+string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
		}
	}
	return out
}

func TestAddSinkRejectsBadNames(t *testing.T) {
	l := Start(t)
	for _, n := range []string{"", "1card", "has space", `q"uote`, "default", "null", "pulse", voidSink, strings.Repeat("x", 33)} {
		if _, err := l.AddSink(n); !errors.Is(err, ErrBadName) {
			t.Errorf("AddSink(%q): %v, want ErrBadName", n, err)
		}
	}
	if _, err := l.AddSink("main"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddSink("main"); !errors.Is(err, ErrBadName) {
		t.Errorf("second AddSink(main): %v, want ErrBadName", err)
	}
	rc, err := os.ReadFile(filepath.Join(l.Dir, ".asoundrc"))
	if err != nil || !bytes.Contains(rc, []byte(`device "main.monitor"`)) || !bytes.Contains(rc, []byte("unix:"+l.Socket)) {
		t.Errorf(".asoundrc: %v\n%s", err, rc)
	}
	env := strings.Join(l.Env(), "\n")
	for _, v := range l.Vars() {
		if !strings.Contains(env, v) {
			t.Errorf("Env lacks %s", v)
		}
	}
}

func TestParsePactlJSON(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Captured from PulseAudio 16.1 with sinks void, s1, s2, a feeder on
	// s1 and s2, and two captures (ALSA plugin, ffmpeg -f pulse) of s1.monitor.
	sinks, err := parseDevices(read("pactl-list-sinks.json"))
	if err != nil || len(sinks) != 3 || sinks[1].Name != "s1" || sinks[1].Index != 1 || sinks[1].State != "RUNNING" {
		t.Errorf("sinks: %+v %v", sinks, err)
	}
	sources, err := parseDevices(read("pactl-list-sources.json"))
	if err != nil || len(sources) != 3 || sources[2].Name != "s2.monitor" || sources[2].Index != 2 {
		t.Errorf("sources: %+v %v", sources, err)
	}
	in, err := parseStreams(read("pactl-list-sink-inputs.json"))
	if err != nil || len(in) != 2 || in[0] != (stream{Index: 0, Device: 1, PID: 9700}) || in[1] != (stream{Index: 1, Device: 2, PID: 9701}) {
		t.Errorf("sink inputs: %+v %v", in, err)
	}
	out, err := parseStreams(read("pactl-list-source-outputs.json"))
	if err != nil || len(out) != 2 || out[0] != (stream{Index: 0, Device: 1, PID: 9721}) || out[1] != (stream{Index: 1, Device: 1, PID: 9720}) {
		t.Errorf("source outputs: %+v %v", out, err)
	}
	if _, err := parseStreams([]byte(`[{"index":3}]`)); !errors.Is(err, errPactlOutput) {
		t.Errorf("stream without a device: %v", err)
	}
	if n, err := parseModuleIndex([]byte("17\n")); n != 17 || err != nil {
		t.Errorf("module index: %d %v", n, err)
	}
	if _, err := parseModuleIndex([]byte("Failure: Module initialization failed\n")); !errors.Is(err, errPactlOutput) {
		t.Errorf("bad module index: %v", err)
	}
}

func TestAnalyzeFindsToneAndLevel(t *testing.T) {
	// 1 s of ffmpeg's lavfi sine at 1000 Hz, stereo s16le, made by ffmpeg
	// itself so the estimator is checked on the samples the lab plays.
	testutil.Need(t, "ffmpeg")
	pcm, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=1",
		"-ac", "2", "-f", "s16le", "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	a := Analyze(pcm, 2, 48000)
	if a.Frames != 48000 || a.FreqHz < 998 || a.FreqHz > 1001 || a.LongestSilent > 1 || a.PeakDBFS() < -21.5 || a.PeakDBFS() > -20.5 || a.RMSDBFS() < -24.5 || a.RMSDBFS() > -23.5 {
		t.Errorf("1000 Hz sine: %+v, peak %.2f RMS %.2f", a, a.PeakDBFS(), a.RMSDBFS())
	}
	z := Analyze(make([]byte, 4*4800), 2, 48000)
	if z.FreqHz != 0 || z.Silent != 4800 || z.LongestSilent != 4800 || z.PeakDBFS() != wire.MinDBFS {
		t.Errorf("silence: %+v", z)
	}
	if Analyze(nil, 2, 48000).Frames != 0 || Analyze(pcm, 0, 48000).Frames != 0 {
		t.Error("empty input")
	}
}
