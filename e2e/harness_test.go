// Package e2e runs the real box end to end: onaird with its onair-av children,
// streaming over SRT on loopback to real receivers (onair-ingest,
// srt-live-transmit, ffmpeg), checked with ffprobe and onair-ingest's report.
// These tests run live encoders in real time: `make test-live` runs them one
// at a time (-p 1, no t.Parallel) so a slow machine cannot make them flaky.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"onair/ingest"
	"onair/internal/config"
	"onair/internal/testutil"
	"onair/web/api"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "onair-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// onaird is built with the race detector: every e2e run is also a race
	// test of the supervisor, switch, mux and output under real load.
	for _, args := range [][]string{
		{"build", "-race", "-o", dir + "/", "../cmd/onaird"},
		{"build", "-o", dir + "/", "../cmd/onair-av", "../cmd/onair-ingest", "../cmd/onairctl"},
	} {
		build := exec.Command("go", args...)
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: build:", err)
			removeBinDir(dir)
			os.Exit(1)
		}
	}
	binDir = dir
	code := m.Run()
	removeBinDir(dir)
	os.Exit(code)
}

// removeBinDir removes TestMain's build directory; a failure only leaves
// files in the temporary directory, so it is reported, not fatal.
func removeBinDir(dir string) {
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: remove build dir:", err)
	}
}

func bin(name string) string { return filepath.Join(binDir, name) }

// need skips the test when a tool is missing (fails in CI: testutil.Need).
func need(t *testing.T, tools ...string) {
	t.Helper()
	testutil.Need(t, tools...)
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }() // only asked for its port
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }() // only asked for its port
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a process a test started; Cleanup stops it by PID.
type proc struct {
	cmd    *exec.Cmd
	stderr *testutil.SyncBuffer
	done   chan struct{}
}

func start(t *testing.T, stdout *os.File, name string, args ...string) *proc {
	t.Helper()
	return startEnv(t, nil, stdout, name, args...)
}

// startEnv is start with extra environment variables.
func startEnv(t *testing.T, env []string, stdout *os.File, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{cmd: cmd, stderr: &testutil.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	// A non-zero exit is an error here; cmd.ProcessState tells it.
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t, 10*time.Second) })
	return p
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *proc) stop(t *testing.T, grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	pgid := p.cmd.Process.Pid
	killGroup(t, pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		t.Logf("%s ignored SIGTERM for %s: killing", p.cmd.Path, grace)
		killGroup(t, pgid, syscall.SIGKILL)
		<-p.done
	}
}

// killGroup signals process group pgid. ESRCH (the group has just exited)
// is what a stop hopes for; anything else is only noted, as a stop goes on.
func killGroup(t *testing.T, pgid int, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Logf("signal %v to process group %d: %v", sig, pgid, err)
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logs is everything onaird has printed so far.
func (b *box) logs() string { return b.stderr.String() }

// box is a running onaird.
type box struct {
	*proc
	socket string
	client *api.Client // over the unix socket, as onairctl
	listen string      // api.listen: the page's, behind its login
}

type boxOpts struct {
	url        string
	twins      bool
	gop        int
	relock     string
	stallAfter string
	extra      string
	env        []string
	// listen, if set, is api.listen (e.g. a port already taken); the test
	// then reads the status over the unix socket, as onairctl does.
	listen string
	// audio, if set, is the body of the audio: block (default: main only,
	// a 1 kHz tone).
	audio string
	// width, height and kbps are the picture (a testsrc2 of that size) and
	// its bitrate: 0 means 1280x720 at 4000 kbit/s. hangAfter and ringSlots,
	// if set, are video.hang_after and video.ring_slots. hdOpts fills them
	// from configs/1080p30.yaml.
	width, height, kbps int
	hangAfter           string
	ringSlots           int
}

// hdOpts is o with the video settings of the crews' 1080p30 configuration
// (configs/1080p30.yaml: size, bitrate, GOP, hang_after, ring slots), so the
// tests run the documented file's settings, not a copy of them.
func hdOpts(t *testing.T, o boxOpts) boxOpts {
	t.Helper()
	c, err := config.Load("../configs/1080p30.yaml")
	if err != nil {
		t.Fatal(err)
	}
	v := c.Video
	if v.FPS != (config.Rate{Num: 30, Den: 1}) {
		t.Fatalf("configs/1080p30.yaml: fps %s; these tests (absHashes, the receiver) assume 30", v.FPS)
	}
	o.width, o.height, o.kbps, o.gop = v.Width, v.Height, v.BitrateKbps, v.GOP
	o.hangAfter, o.ringSlots, o.relock, o.stallAfter = v.HangAfter.String(), v.RingSlots, string(v.Relock), v.StallAfter.String()
	return o
}

func startBox(t *testing.T, o boxOpts) *box {
	t.Helper()
	dir := t.TempDir()
	if o.gop == 0 {
		o.gop = 60
	}
	if o.relock == "" {
		o.relock = "gop"
	}
	if o.stallAfter == "" {
		o.stallAfter = "500ms"
	}
	audio := o.audio
	if audio == "" {
		audio = "  main:\n    source: \"lavfi:sine=frequency=1000:sample_rate=48000\"\n"
	}
	listen := o.listen
	if listen == "" {
		listen = fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	}
	if o.width == 0 {
		o.width, o.height = 1280, 720
	}
	if o.kbps == 0 {
		o.kbps = 4000
	}
	video := ""
	if o.hangAfter != "" {
		video += "  hang_after: " + o.hangAfter + "\n"
	}
	if o.ringSlots != 0 {
		video += fmt.Sprintf("  ring_slots: %d\n", o.ringSlots)
	}
	cfg := fmt.Sprintf(`version: 1
video:
  source: "lavfi:testsrc2=size=%[1]dx%[2]d:rate=30"
  width: %[1]d
  height: %[2]d
  fps: 30
  bitrate_kbps: %[3]d
%[4]s  gop: %[5]d
  twins: %[6]v
  relock: %[7]s
  stall_after: %[8]s
audio:
%[9]soutput:
  url: %q
api:
  listen: %q
  socket: %q
  auth_dir: %q
runtime_dir: %q
supervisor:
  grace: 2s
%[15]s`, o.width, o.height, o.kbps, video, o.gop, o.twins, o.relock, o.stallAfter, audio,
		o.url, listen, filepath.Join(dir, "onaird.sock"), filepath.Join(dir, "auth"), filepath.Join(dir, "run"), o.extra)
	// The test reads the status and sends commands over the unix socket, as
	// onairctl does: the TCP listener is the page's, behind its login.
	b := launchBox(t, dir, cfg, o.env, api.NewUnixClient(filepath.Join(dir, "onaird.sock")))
	b.listen = listen
	return b
}

// launchBox writes cfg into dir (whose onaird.sock is api.socket), starts
// onaird on it, fails the test on any race, panic or fatal error it prints,
// and returns once the API answers through client.
func launchBox(t *testing.T, dir, cfg string, env []string, client *api.Client) *box {
	t.Helper()
	return launchBoxIn(t, dir, cfg, env, client, nil)
}

// launchBoxIn is launchBox with onaird started through prefix (e.g. ip netns
// exec NS, which execs onaird itself: signals reach it).
func launchBoxIn(t *testing.T, dir, cfg string, env []string, client *api.Client, prefix []string) *box {
	t.Helper()
	path := filepath.Join(dir, "onair.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	argv := append(append(append([]string(nil), prefix...), bin("onaird")), "-config", path)
	p := startEnv(t, env, nil, argv[0], argv[1:]...)
	b := &box{proc: p, socket: filepath.Join(dir, "onaird.sock"), client: client}
	t.Cleanup(func() {
		p.stop(t, 10*time.Second)
		errs := p.stderr.String()
		for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
			if strings.Contains(errs, bad) {
				t.Errorf("onaird printed %q", bad)
			}
		}
		if t.Failed() {
			t.Logf("onaird stderr (tail):\n%s", tail(errs, 60))
		}
	})
	b.waitFor(t, 20*time.Second, "api up", func(api.Status) bool { return true })
	return b
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (b *box) status(t *testing.T) (api.Status, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return b.client.Status(ctx)
}

// failover asks for a video failover, as the web page does.
func (b *box) failover(t *testing.T) (api.FailoverResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return b.client.FailoverVideo(ctx)
}

// waitFor polls the status until cond holds (bounded by limit).
func (b *box) waitFor(t *testing.T, limit time.Duration, what string, cond func(api.Status) bool) api.Status {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last api.Status
	var lastErr error
	for time.Now().Before(deadline) {
		if b.exited() {
			t.Fatalf("onaird exited while waiting for %s: %v\n%s", what, b.cmd.ProcessState, tail(b.stderr.String(), 40))
		}
		st, err := b.status(t)
		if err == nil && cond(st) {
			return st
		}
		last, lastErr = st, err
		time.Sleep(100 * time.Millisecond)
	}
	js, _ := json.MarshalIndent(last, "", " ")
	t.Fatalf("timed out after %s waiting for %s (last error %v); last status:\n%s", limit, what, lastErr, js)
	return last
}

func (b *box) child(t *testing.T, name string) api.ChildStatus {
	t.Helper()
	st, err := b.status(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Children {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no child %s", name)
	return api.ChildStatus{}
}

// receiver is onair-ingest on loopback.
type receiver struct {
	*proc
	out    string // the recording
	report string // onair-ingest's live report (-report), written at exit
}

// explainLoss logs where a defect in a recording may have come from, for a
// failure that is not reproducible at will: the TS continuity the file shows,
// the receiver's SRT accounting of each session (from its live report, when
// there is one) and the box's SRT sender figures.
func explainLoss(t *testing.T, rx *receiver, rep ingest.Report, box api.OutputStatus) {
	t.Helper()
	tr := rep.Transport
	t.Logf("transport: %d packets, %d continuity errors, %d duplicates, %d sync losses, %d malformed",
		tr.Packets, tr.ContinuityErrors, tr.DuplicatePackets, tr.SyncLosses, tr.MalformedPackets)
	t.Logf("box srt: %+v, bytes dropped %d", box.SRT, box.BytesDropped)
	if rx == nil || rx.report == "" {
		return
	}
	b, err := os.ReadFile(rx.report)
	if err != nil {
		t.Logf("receiver report: %v", err)
		return
	}
	var live ingest.Report
	if err := json.Unmarshal(b, &live); err != nil {
		t.Logf("receiver report: %v", err)
		return
	}
	for _, s := range live.Sessions {
		if s.SRT != nil {
			t.Logf("receiver session %d: %d bytes, srt %+v", s.SocketID, s.Bytes, *s.SRT)
		}
	}
}

func startIngest(t *testing.T, port int, dir, passphrase string) *receiver {
	t.Helper()
	out, rep := filepath.Join(dir, "received.ts"), filepath.Join(dir, "report.json")
	args := []string{"-listen", fmt.Sprintf("127.0.0.1:%d", port), "-out", out, "-report", rep, "-fps", "30", "-hashes"}
	if passphrase != "" {
		args = append(args, "-passphrase", passphrase)
	}
	return &receiver{proc: start(t, nil, bin("onair-ingest"), args...), out: out, report: rep}
}

// analyze runs onair-ingest's offline analysis on a recorded file.
func analyze(t *testing.T, path string) ingest.Report {
	t.Helper()
	out, err := exec.Command(bin("onair-ingest"), "-analyze", path, "-fps", "30", "-hashes").Output()
	if err != nil {
		t.Fatalf("analyze %s: %v", path, err)
	}
	var r ingest.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("analyze %s: decode: %v\n%s", path, err, out)
	}
	return r
}

// decodeErrors decodes the whole file with ffmpeg; any output is a decode error.
func decodeErrors(t *testing.T, path string) string {
	t.Helper()
	out, _ := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if len(bytes.TrimSpace(out)) > 0 {
		keep(t, path)
	}
	return strings.TrimSpace(string(out))
}

// keep copies a recording that failed a check to $ONAIR_KEEP_DIR (default
// the system temp dir) so it can be examined after the test cleaned up.
func keep(t *testing.T, path string) {
	t.Helper()
	dir := os.Getenv("ONAIR_KEEP_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	dst := filepath.Join(dir, "onair-failed-"+strings.ReplaceAll(t.Name(), "/", "_")+"-"+filepath.Base(filepath.Dir(path))+".ts")
	if b, err := os.ReadFile(path); err == nil && os.WriteFile(dst, b, 0o644) == nil {
		t.Logf("kept %s as %s", path, dst)
	}
}

// decodeErrorsCut is decodeErrors for a recording whose receiver was killed
// mid-stream: its last access unit may be cut short, so the last frame is
// left out (every other frame must decode cleanly).
func decodeErrorsCut(t *testing.T, path string, frames int64) string {
	t.Helper()
	// Single-threaded decoding: frame threads would decode the cut frame ahead.
	out, _ := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-i", path, "-map", "0:v", "-frames:v", fmt.Sprint(frames-1), "-f", "null", "-").CombinedOutput()
	if len(bytes.TrimSpace(out)) > 0 {
		keep(t, path)
	}
	return strings.TrimSpace(string(out))
}

type probeStream struct {
	CodecType    string `json:"codec_type"`
	CodecName    string `json:"codec_name"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	AvgFrameRate string `json:"avg_frame_rate"`
	RFrameRate   string `json:"r_frame_rate"`
	NbReadFrames string `json:"nb_read_frames"`
	SampleRate   string `json:"sample_rate"`
}

func ffprobe(t *testing.T, path string) []probeStream {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p struct{ Streams []probeStream }
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p.Streams
}
