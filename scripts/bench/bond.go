package main

// The bonding part of the bench (issue 9, "Benchmarks"): onaird runs in the
// box namespace of a netlab lab (internal/netlab) with an srtla:// output
// over the lab's uplinks, onair-ingest -srtla in the studio namespace, every
// run in a lab of its own that is closed before the next starts. It needs
// root, ip, tc and nft; without them it prints why and measures nothing.
//
// Figures, in the order they are measured:
//
//   - bond_abr_clean_*: the bitrate the ABR settles at by itself over two
//     links shaped 5 and 2 Mbit/s with 5 % random loss each, averaged over
//     a 15 s window after a warm-up, and what the receiver lost and could
//     not decode over that window ("clean": 0 and 0, bond_abr_clean_ok 1);
//   - bond_cut_lost_frames_{duplicate,bond}_{20x20,5x2}: frames missing at
//     the receiver when the first link (the 20 or the 5 Mbit/s one) is cut
//     mid-stream, at a fixed 1500 kbps with the ABR off, which fits in the
//     2 Mbit/s left after the 5 is cut (stream ≈ 1.7 Mbit/s with TS and
//     audio): the loss is the bonding layer's, not a stream that no longer
//     fits;
//   - bond_abr_fall_s / bond_abr_climb_s: two links shaped 4 + 4 Mbit/s,
//     maximum 5000 kbps; both halved to 2 + 2 with tbf: time until the video
//     bitrate is below the new total (4000 kbps); after 10 s at half
//     (bond_abr_halved_{mean,max}_kbps: what the ABR asked for meanwhile;
//     above 4000 it sends more than the links carry) and once the bitrate
//     is below the maximum, restored: time until it is back at the maximum
//     (0 when it never left the maximum at half capacity); status polled
//     every 100 ms; bond_abr_step_lost_frames over the whole run;
//   - onaird_{bond,plain}_cpu_s, {bond,plain}_cpu_per_mbit: onaird's own
//     CPU (its process, not the encoders, which are the same in both runs)
//     over a 20 s window at a fixed 4000 kbps over unshaped links, srtla://
//     over two links against srt:// over the main route, per Mbit of stream
//     the output sent (status output.bytes_sent), and their ratio.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"onair/ingest"
	"onair/internal/netlab"
	"onair/web/api"
)

const (
	bondLatencyMs = 1500
	bondPass      = "bench-passphrase-0123"
	studioHost    = "studio.lab" // resolves to both studio service addresses inside the box
	studioPort    = 5000
)

// openLabs are the labs not closed yet: a SIGINT or SIGTERM closes them
// before the bench exits, so no namespace outlives it.
var openLabs struct {
	sync.Mutex
	m map[*bondLab]struct{}
}

// runBond measures every bonding figure and emits them.
func runBond(work string) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: bond: skipped: needs root (network namespaces, tc, nft)")
		return
	}
	for _, tool := range []string{"ip", "tc", "nft", "ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "bench: bond: skipped: %s not found\n", tool)
			return
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	stopSigs := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "bench: bond: %s: closing the labs\n", s)
			closeAllLabs()
			os.Exit(1)
		case <-stopSigs:
		}
	}()
	defer func() { signal.Stop(sigs); close(stopSigs) }()

	dir := filepath.Join(work, "bond")
	bondPart("abr_clean", func() error { return benchABRClean(dir) })
	for _, pair := range []struct {
		name       string
		wired, cel int
	}{{"20x20", 20000, 20000}, {"5x2", 5000, 2000}} {
		for _, policy := range []string{"duplicate", "bond"} {
			name := "cut_" + policy + "_" + pair.name
			bondPart(name, func() error { return benchCut(dir, name, policy, pair.wired, pair.cel) })
		}
	}
	bondPart("abr_step", func() error { return benchABRStep(dir) })
	bondPart("cpu", func() error { return benchBondCPU(dir) })
}

// bondPart runs one measurement; a failure is printed and the bench goes
// on with the next one (its figures are missing from the output).
func bondPart(name string, fn func() error) {
	if !strings.HasPrefix(name, *part) {
		return
	}
	if err := fn(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: bond %s: %v\n", name, err)
	}
}

func closeAllLabs() {
	openLabs.Lock()
	defer openLabs.Unlock()
	for l := range openLabs.m {
		l.closeLocked()
	}
}

// bondLab is one lab with the studio name resolvable in its box, and the
// processes of one run.
type bondLab struct {
	*netlab.Lab
	dir      string
	hostsDir string
	closed   bool
}

func newBondLab(dir string, uplinks ...string) (*bondLab, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	lab, err := netlab.Up(context.Background(), netlab.Options{Uplinks: uplinks})
	if err != nil {
		return nil, err
	}
	l := &bondLab{Lab: lab, dir: dir, hostsDir: filepath.Join("/etc/netns", lab.Box)}
	openLabs.Lock()
	if openLabs.m == nil {
		openLabs.m = map[*bondLab]struct{}{}
	}
	openLabs.m[l] = struct{}{}
	openLabs.Unlock()
	// ip netns exec bind-mounts /etc/netns/BOX/hosts over /etc/hosts.
	hosts := fmt.Sprintf("127.0.0.1 localhost\n::1 localhost\n%s %s\n%s %s\n", netlab.ServiceV4, studioHost, netlab.ServiceV6, studioHost)
	if err := os.MkdirAll(l.hostsDir, 0o755); err != nil {
		l.close()
		return nil, fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(filepath.Join(l.hostsDir, "hosts"), []byte(hosts), 0o644); err != nil {
		l.close()
		return nil, fmt.Errorf("bench: %w", err)
	}
	return l, nil
}

// close kills what still runs in the lab, removes it and the hosts file.
func (l *bondLab) close() {
	openLabs.Lock()
	defer openLabs.Unlock()
	l.closeLocked()
	delete(openLabs.m, l)
}

func (l *bondLab) closeLocked() {
	if l.closed {
		return
	}
	l.closed = true
	if err := l.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: bond: close lab:", err)
	}
	if err := os.RemoveAll(l.hostsDir); err != nil {
		fmt.Fprintln(os.Stderr, "bench: bond: remove hosts:", err)
	}
}

// bondCfg is what changes between the bonding runs.
type bondCfg struct {
	url      string // output.url; empty: srtla:// to the studio
	uplinks  string // the uplinks: section (srtla:// only)
	kbps     int    // video.bitrate_kbps (the ABR's maximum)
	minKbps  int    // video.bitrate_min_kbps (0: the default)
	abr      bool   // video.abr
	receiver string // onair-ingest mode: "srtla" or "srt"
}

const twoBondLinks = "  - {name: wired, interface: wired}\n  - {name: cell1, interface: cell1}\n"

// bondRun is onaird in the box and onair-ingest in the studio.
type bondRun struct {
	lab      *bondLab
	rx, box  *exec.Cmd
	client   *api.Client
	out, rep string
	onairLog string
}

func (l *bondLab) start(c bondCfg) (*bondRun, error) {
	r := &bondRun{lab: l, out: filepath.Join(l.dir, "received.ts"), rep: filepath.Join(l.dir, "report.json"), onairLog: filepath.Join(l.dir, "onaird.log")}
	args := []string{"-out", r.out, "-report", r.rep, "-fps", strconv.Itoa(fps), "-hashes",
		"-passphrase", bondPass, "-streamid", "cam1", "-latency", fmt.Sprintf("%dms", bondLatencyMs), "-peer-idle-timeout", "30s"}
	if c.receiver == "srt" {
		args = append([]string{"-listen", fmt.Sprintf("%s:%d", netlab.ServiceV4, studioPort)}, args...)
	} else {
		args = append([]string{"-srtla", fmt.Sprintf(":%d", studioPort)}, args...)
	}
	r.rx = l.Command(l.Studio, filepath.Join(*binDir, "onair-ingest"), args...)
	if err := r.rx.Start(); err != nil {
		return nil, fmt.Errorf("bench: start onair-ingest: %w", err)
	}
	if c.url == "" {
		c.url = fmt.Sprintf("srtla://%s:%d?latency=%d&passphrase=%s&streamid=cam1", studioHost, studioPort, bondLatencyMs, bondPass)
	}
	uplinks := ""
	if c.uplinks != "" {
		uplinks = "uplinks:\n" + c.uplinks
	}
	minKbps := ""
	if c.minKbps > 0 {
		minKbps = fmt.Sprintf("  bitrate_min_kbps: %d\n", c.minKbps)
	}
	sock := filepath.Join(l.dir, "onaird.sock")
	cfg := fmt.Sprintf(`version: 1
video:
  source: "lavfi:testsrc2=size=1280x720:rate=%d"
  width: 1280
  height: 720
  fps: %d
  bitrate_kbps: %d
%s  abr: %v
  gop: 60
  twins: true
audio:
  main:
    source: "lavfi:sine=frequency=1000:sample_rate=48000"
output:
  url: %q
%sapi:
  socket: %q
runtime_dir: %q
log_level: info
supervisor:
  grace: 2s
`, fps, fps, c.kbps, minKbps, c.abr, c.url, uplinks, sock, filepath.Join(l.dir, "run"))
	path := filepath.Join(l.dir, "onair.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	logf, err := os.Create(r.onairLog)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer func() { _ = logf.Close() }() // the child holds its own descriptor
	r.box = l.Command(l.Box, filepath.Join(*binDir, "onaird"), "-config", path)
	r.box.Stderr = logf
	r.box.Stdout = logf
	if err := r.box.Start(); err != nil {
		return nil, fmt.Errorf("bench: start onaird: %w", err)
	}
	r.client = api.NewUnixClient(sock)
	return r, nil
}

func (r *bondRun) status() (api.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return r.client.Status(ctx)
}

// errTimeout is returned by poll when the condition was not met in time.
var errTimeout = errors.New("bench: condition not met in time")

// poll reads the status every `every` until cond holds or limit passes; it
// returns the last status read and how long it took.
func (r *bondRun) poll(limit, every time.Duration, what string, cond func(api.Status) bool) (api.Status, time.Duration, error) {
	t0 := time.Now()
	var last api.Status
	for time.Since(t0) < limit {
		st, err := r.status()
		if err == nil {
			last = st
			if cond(st) {
				return st, time.Since(t0), nil
			}
		}
		time.Sleep(every)
	}
	return last, time.Since(t0), fmt.Errorf("%w: %s within %s (last: %s)", errTimeout, what, limit, describe(last))
}

// describe is the part of a status that explains a bonding run.
func describe(st api.Status) string {
	var b strings.Builder
	srt := st.Output.SRT
	fmt.Fprintf(&b, "output %s (srt sent %d retrans %d loss %d dropped %d, send buffer %d ms)",
		st.Output.State, srt.PktSent, srt.PktRetrans, srt.PktLoss, srt.PktDropped, srt.SendBufMs)
	if st.Bond != nil {
		fmt.Fprintf(&b, ", group %s, bitrate %d kbps (%q)", st.Bond.Group, st.Bond.Bitrate.Kbps, st.Bond.Bitrate.Reason)
		for _, u := range st.Bond.Uplinks {
			fmt.Fprintf(&b, ", %s %s %.0f kbps loss %.1f%% rtt %.0f ms", u.Name, u.State, u.ThroughputKbps, u.LossPct, u.RTTms)
		}
	}
	return b.String()
}

func uplinkOf(st api.Status, name string) api.UplinkStatus {
	if st.Bond != nil {
		for _, u := range st.Bond.Uplinks {
			if u.Name == name {
				return u
			}
		}
	}
	return api.UplinkStatus{}
}

// streaming: connected, frames flowing, and every named uplink up.
func streaming(names ...string) func(api.Status) bool {
	return func(st api.Status) bool {
		if st.Output.State != "connected" || st.Video.Switch.Emitted == 0 {
			return false
		}
		for _, n := range names {
			if uplinkOf(st, n).State != api.UplinkUp {
				return false
			}
		}
		return true
	}
}

func kbpsOf(st api.Status) int {
	if st.Bond == nil {
		return st.Video.BitrateKbps
	}
	return st.Bond.Bitrate.Kbps
}

// received is what the receiver got: its live report and the analysis of
// the recording (with every frame's index).
type received struct {
	live ingest.Report
	rec  ingest.Report
}

// finish stops onaird, lets the receiver's latency buffer drain, stops the
// receiver and analyses the recording. It prints onaird's log tail on an
// unclean exit and anything onaird left in the kernel.
func (r *bondRun) finish() (received, error) {
	var got received
	ps := stop(r.box)
	if ps != nil && !ps.Success() {
		fmt.Fprintf(os.Stderr, "bench: bond: onaird exited with %s; log tail:\n%s\n", ps, logTail(r.onairLog, 20))
	}
	if left, err := r.lab.Leftovers(r.lab.Box); err == nil && len(left) > 0 {
		fmt.Fprintf(os.Stderr, "bench: bond: onaird left in the kernel:\n%s\n", strings.Join(left, "\n"))
	}
	time.Sleep(bondLatencyMs*time.Millisecond + 500*time.Millisecond)
	stop(r.rx)
	raw, err := os.ReadFile(r.rep)
	if err != nil {
		return got, fmt.Errorf("bench: receiver report: %w", err)
	}
	if err = json.Unmarshal(raw, &got.live); err != nil {
		return got, fmt.Errorf("bench: receiver report: %w", err)
	}
	got.rec, err = ingest.AnalyzeFile(r.out, ingest.Options{FPS: fps, FrameHashes: true})
	if err != nil {
		return got, fmt.Errorf("bench: analyze: %w", err)
	}
	return got, nil
}

func logTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// frameIndexAt is the receiver's frame index of what the box sent at t:
// index 0 arrived at FirstVideoAt, and SRT delivers each frame a fixed
// latency after it was sent.
func frameIndexAt(live ingest.Report, t time.Time) int64 {
	if live.FirstVideoAt == nil {
		return 0
	}
	d := t.Add(bondLatencyMs * time.Millisecond).Sub(*live.FirstVideoAt)
	return int64(math.Round(d.Seconds() * fps))
}

// missingIn counts the frame indexes in [from, to) the recording lacks.
func missingIn(rec ingest.Report, from, to int64) int64 {
	seen := make(map[int64]bool, len(rec.Video.FrameHashes))
	for _, h := range rec.Video.FrameHashes {
		seen[h.Index] = true
	}
	var n int64
	for i := from; i < to; i++ {
		if !seen[i] {
			n++
		}
	}
	return n
}

// decodeErrorsByFrame decodes the recording (video and audio, one thread,
// so messages come in decoding order) and returns how many error messages
// ffmpeg printed before each video frame it output, by frame index (pts
// relative to the first frame). Errors after the last frame go to the last.
func decodeErrorsByFrame(path string) (map[int64]int, error) {
	cmd := exec.Command("ffmpeg", "-nostdin", "-nostats", "-threads", "1", "-loglevel", "level+info",
		"-i", path, "-vf", "showinfo", "-f", "null", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("bench: ffmpeg decode: %w: %s", err, logTailOf(stderr.String(), 5))
	}
	errs := map[int64]int{}
	pending := 0
	first, last := math.NaN(), int64(0)
	sc := bufio.NewScanner(&stderr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "[error]") || strings.Contains(line, "[fatal]") {
			pending++
			continue
		}
		if !strings.Contains(line, "Parsed_showinfo") {
			continue
		}
		i := strings.Index(line, "pts_time:")
		if i < 0 {
			continue
		}
		f := strings.Fields(line[i+len("pts_time:"):])
		if len(f) == 0 {
			continue
		}
		pt, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		if math.IsNaN(first) {
			first = pt
		}
		last = int64(math.Round((pt - first) * fps))
		if pending > 0 {
			errs[last] += pending
			pending = 0
		}
	}
	if pending > 0 {
		errs[last] += pending
	}
	return errs, nil
}

func logTailOf(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// benchABRClean: 5 + 2 Mbit/s with 5 % loss each, ABR from 8000 kbps down
// to at least 1000; 20 s warm-up, then the 15 s window.
func benchABRClean(dir string) error {
	const warmup, window = 20 * time.Second, 15 * time.Second
	l, err := newBondLab(filepath.Join(dir, "abr-clean"), "wired", "cell1")
	if err != nil {
		return err
	}
	defer l.close()
	for _, s := range []struct {
		link string
		kbit int
	}{{"wired", 5000}, {"cell1", 2000}} {
		if err = errors.Join(l.Shape(s.link, s.kbit), l.Loss(s.link, 5)); err != nil {
			return err
		}
	}
	r, err := l.start(bondCfg{uplinks: twoBondLinks, kbps: 8000, minKbps: 1000, abr: true})
	if err != nil {
		return err
	}
	if _, _, err = r.poll(30*time.Second, 100*time.Millisecond, "both uplinks up, streaming", streaming("wired", "cell1")); err != nil {
		_, _ = r.finish()
		return err
	}
	time.Sleep(warmup)
	ws := time.Now()
	var sum, n, lo, hi int
	lo = math.MaxInt
	var last api.Status
	links := map[string]*linkMean{}
	for time.Since(ws) < window {
		if st, serr := r.status(); serr == nil && st.Bond != nil {
			traceBond(st)
			k := st.Bond.Bitrate.Kbps
			sum, n, lo, hi = sum+k, n+1, min(lo, k), max(hi, k)
			last = st
			for _, u := range st.Bond.Uplinks {
				m := links[u.Name]
				if m == nil {
					m = &linkMean{}
					links[u.Name] = m
				}
				m.kbps, m.loss, m.n = m.kbps+u.ThroughputKbps, m.loss+u.LossPct, m.n+1
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	we := time.Now()
	got, err := r.finish()
	if err != nil {
		return err
	}
	if n == 0 {
		return errors.New("bench: no bond status in the window")
	}
	from, to := frameIndexAt(got.live, ws), frameIndexAt(got.live, we)
	missing := missingIn(got.rec, from, to)
	byFrame, err := decodeErrorsByFrame(r.out)
	if err != nil {
		return err
	}
	decodeErrs := 0
	for i, c := range byFrame {
		if i >= from && i < to {
			decodeErrs += c
		}
	}
	ok := 0.0
	if missing == 0 && decodeErrs == 0 {
		ok = 1
	}
	var means []string
	for _, name := range []string{"wired", "cell1"} {
		if m := links[name]; m != nil {
			means = append(means, fmt.Sprintf("%s %.0f kbps loss %.1f%%", name, m.kbps/float64(m.n), m.loss/float64(m.n)))
		}
	}
	fmt.Fprintf(os.Stderr, "bench: bond abr_clean: window frames %d..%d, bitrate %d..%d kbps, links on average %s; at the end: %s; whole run: %d missing, %d connections\n",
		from, to, lo, hi, strings.Join(means, ", "), describe(last), got.rec.Video.Missing, got.live.Connections)
	emit("bond_abr_clean_kbps", float64(sum)/float64(n), "kbps")
	emit("bond_abr_clean_missing_frames", float64(missing), "frames")
	emit("bond_abr_clean_decode_errors", float64(decodeErrs), "errors")
	emit("bond_abr_clean_ok", ok, "bool")
	return nil
}

// traceBond prints one line of the bond's state when ONAIR_BENCH_TRACE=1:
// what a tuning session reads to see the scheduler and the ABR at work.
func traceBond(st api.Status) {
	if os.Getenv("ONAIR_BENCH_TRACE") != "1" || st.Bond == nil {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "trace %s %5d kbps", time.Now().Format("15:04:05.0"), st.Bond.Bitrate.Kbps)
	fmt.Fprintf(&b, " sb %4dms rtt %3.0f retr %5d", st.Output.SRT.SendBufMs, st.Output.SRT.RTTms, st.Output.SRT.PktRetrans)
	for _, u := range st.Bond.Uplinks {
		fmt.Fprintf(&b, " | %s w%5d f%3d %5.0fk l%4.1f%% r%3.0f", u.Name, u.Window, u.InFlight, u.ThroughputKbps, u.LossPct, u.RTTms)
	}
	fmt.Fprintf(&b, " | %s", st.Bond.Bitrate.Reason)
	fmt.Fprintln(os.Stderr, b.String())
}

// linkMean sums one uplink's status over a window.
type linkMean struct {
	kbps, loss float64
	n          int
}

// benchCut: two links shaped wiredKbit and cellKbit, cell1 on policy (wired
// always bond), 1500 kbps fixed; wired is cut once both carry.
func benchCut(dir, name, policy string, wiredKbit, cellKbit int) error {
	l, err := newBondLab(filepath.Join(dir, name), "wired", "cell1")
	if err != nil {
		return err
	}
	defer l.close()
	if err = errors.Join(l.Shape("wired", wiredKbit), l.Shape("cell1", cellKbit)); err != nil {
		return err
	}
	uplinks := fmt.Sprintf("  - {name: wired, interface: wired}\n  - {name: cell1, interface: cell1, policy: %s}\n", policy)
	r, err := l.start(bondCfg{uplinks: uplinks, kbps: 1500, abr: false})
	if err != nil {
		return err
	}
	if _, _, err = r.poll(30*time.Second, 100*time.Millisecond, "both uplinks up, streaming", streaming("wired", "cell1")); err != nil {
		_, _ = r.finish()
		return err
	}
	time.Sleep(4 * time.Second)
	if err = l.Cut("wired", true); err != nil {
		_, _ = r.finish()
		return err
	}
	_, dead, err := r.poll(15*time.Second, 100*time.Millisecond, "wired seen dead", func(st api.Status) bool { return uplinkOf(st, "wired").State != api.UplinkUp })
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: bond", name+":", err)
	}
	time.Sleep(5 * time.Second)
	st, _ := r.status()
	got, err := r.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: bond %s: wired seen dead after %.1f s; missing %v; %d connections, %d connects; at the end: %s\n",
		name, dead.Seconds(), got.rec.Video.MissingIndexes, got.live.Connections, st.Output.Connects, describe(st))
	emit("bond_cut_lost_frames_"+policy+"_"+strings.TrimPrefix(name, "cut_"+policy+"_"), float64(got.rec.Video.Missing), "frames")
	return nil
}

// benchABRStep: 4 + 4 Mbit/s, maximum 5000 kbps; halved to 2 + 2, then
// restored.
func benchABRStep(dir string) error {
	const maxKbps, full, half = 5000, 4000, 2000
	l, err := newBondLab(filepath.Join(dir, "abr-step"), "wired", "cell1")
	if err != nil {
		return err
	}
	defer l.close()
	shape := func(kbit int) error { return errors.Join(l.Shape("wired", kbit), l.Shape("cell1", kbit)) }
	if err = shape(full); err != nil {
		return err
	}
	r, err := l.start(bondCfg{uplinks: twoBondLinks, kbps: maxKbps, minKbps: 1000, abr: true})
	if err != nil {
		return err
	}
	fail := func(err error) error { _, _ = r.finish(); return err }
	if _, _, err = r.poll(30*time.Second, 100*time.Millisecond, "both uplinks up, streaming", streaming("wired", "cell1")); err != nil {
		return fail(err)
	}
	// At the maximum for 3 s in a row before the step.
	var atMaxSince time.Time
	if _, _, err = r.poll(40*time.Second, 100*time.Millisecond, "3 s at the maximum", func(st api.Status) bool {
		if kbpsOf(st) < maxKbps {
			atMaxSince = time.Time{}
			return false
		}
		if atMaxSince.IsZero() {
			atMaxSince = time.Now()
		}
		return time.Since(atMaxSince) >= 3*time.Second
	}); err != nil {
		return fail(err)
	}
	if err = shape(half); err != nil {
		return fail(err)
	}
	stFall, fall, err := r.poll(20*time.Second, 100*time.Millisecond, "bitrate below the halved total", func(st api.Status) bool {
		return st.Bond != nil && kbpsOf(st) < 2*half
	})
	if err != nil {
		return fail(err)
	}
	// Hold the halved capacity for 10 s, watching what the ABR does there.
	hold := time.Now()
	var sum, n, hi int
	for time.Since(hold) < 10*time.Second {
		if st, serr := r.status(); serr == nil && st.Bond != nil {
			sum, n, hi = sum+kbpsOf(st), n+1, max(hi, kbpsOf(st))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Restore while below the maximum: restoring while the ABR is already
	// there (it can be, above the halved capacity) would measure nothing.
	stLow, _, lowErr := r.poll(10*time.Second, 100*time.Millisecond, "bitrate below the maximum at half capacity", func(st api.Status) bool {
		return kbpsOf(st) < maxKbps
	})
	if err = shape(full); err != nil {
		return fail(err)
	}
	stClimb, climb, climbErr := r.poll(60*time.Second, 100*time.Millisecond, "bitrate back at the maximum", func(st api.Status) bool {
		return kbpsOf(st) >= maxKbps
	})
	got, err := r.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: bond abr_step: fell to %d kbps (%q); restored at: %s; climbed: %s; %d frames missing over the run %v\n",
		kbpsOf(stFall), stFall.Bond.Bitrate.Reason, describe(stLow), describe(stClimb), got.rec.Video.Missing, got.rec.Video.MissingIndexes)
	emit("bond_abr_fall_s", fall.Seconds(), "s")
	if n > 0 {
		// Above 4000 means the ABR sent more than the halved links carry.
		emit("bond_abr_halved_mean_kbps", float64(sum)/float64(n), "kbps")
		emit("bond_abr_halved_max_kbps", float64(hi), "kbps")
	}
	switch {
	case lowErr != nil:
		fmt.Fprintln(os.Stderr, "bench: bond abr_step: restored while at the maximum:", lowErr)
		emit("bond_abr_climb_s", 0, "s") // nothing to climb: already at the maximum over half the capacity
	case climbErr != nil:
		fmt.Fprintln(os.Stderr, "bench: bond abr_step:", climbErr)
		emit("bond_abr_climb_s", -1, "s") // did not reach the maximum in 60 s
	default:
		emit("bond_abr_climb_s", climb.Seconds(), "s")
	}
	emit("bond_abr_step_lost_frames", float64(got.rec.Video.Missing), "frames")
	return nil
}

// benchBondCPU: the same 4000 kbps stream for the same window over srtla://
// (two links) and plain srt:// (the main route), unshaped.
func benchBondCPU(dir string) error {
	const window = 20 * time.Second
	type cpuRun struct {
		cpu  time.Duration
		mbit float64
	}
	run := func(name string, c bondCfg, up ...string) (cpuRun, error) {
		l, err := newBondLab(filepath.Join(dir, name), "wired", "cell1")
		if err != nil {
			return cpuRun{}, err
		}
		defer l.close()
		r, err := l.start(c)
		if err != nil {
			return cpuRun{}, err
		}
		fail := func(err error) (cpuRun, error) { _, _ = r.finish(); return cpuRun{}, err }
		if _, _, err = r.poll(30*time.Second, 100*time.Millisecond, "streaming", streaming(up...)); err != nil {
			return fail(err)
		}
		time.Sleep(3 * time.Second) // past the start
		pid := r.box.Process.Pid
		st0, err := r.status()
		if err != nil {
			return fail(err)
		}
		c0, err := procCPU(pid, "onaird")
		if err != nil {
			return fail(err)
		}
		time.Sleep(window)
		c1, err := procCPU(pid, "onaird")
		if err != nil {
			return fail(err)
		}
		st1, err := r.status()
		if err != nil {
			return fail(err)
		}
		if _, err := r.finish(); err != nil {
			return cpuRun{}, err
		}
		return cpuRun{cpu: c1 - c0, mbit: float64(st1.Output.BytesSent-st0.Output.BytesSent) * 8 / 1e6}, nil
	}
	bond, err := run("cpu-bond", bondCfg{uplinks: twoBondLinks, kbps: 4000, abr: false}, "wired", "cell1")
	if err != nil {
		return err
	}
	plain, err := run("cpu-plain", bondCfg{
		url:  fmt.Sprintf("srt://%s:%d?latency=%d&passphrase=%s&streamid=cam1", netlab.ServiceV4, studioPort, bondLatencyMs, bondPass),
		kbps: 4000, abr: false, receiver: "srt",
	})
	if err != nil {
		return err
	}
	if bond.mbit <= 0 || plain.mbit <= 0 {
		return fmt.Errorf("bench: nothing sent (bond %.1f Mbit, plain %.1f Mbit)", bond.mbit, plain.mbit)
	}
	fmt.Fprintf(os.Stderr, "bench: bond cpu: %.1f Mbit over srtla, %.1f Mbit over srt in %s\n", bond.mbit, plain.mbit, window)
	emit("onaird_bond_cpu_s", bond.cpu.Seconds(), "s")
	emit("onaird_plain_cpu_s", plain.cpu.Seconds(), "s")
	emit("bond_cpu_per_mbit", bond.cpu.Seconds()/bond.mbit, "s/Mbit")
	emit("plain_cpu_per_mbit", plain.cpu.Seconds()/plain.mbit, "s/Mbit")
	emit("cpu_ratio_bond_vs_plain_per_mbit", (bond.cpu.Seconds()/bond.mbit)/(plain.cpu.Seconds()/plain.mbit), "x")
	return nil
}

// procCPU is the user+system CPU of the process pid itself (not its
// children), from /proc/pid/stat; comm, unless empty, is the program it
// must be.
func procCPU(pid int, comm string) (time.Duration, error) {
	if comm != "" {
		// ip netns exec execs the command: the PID is onaird's own.
		got, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
		if err != nil {
			return 0, fmt.Errorf("bench: %w", err)
		}
		if c := strings.TrimSpace(string(got)); c != comm {
			return 0, fmt.Errorf("bench: pid %d is %q, not %s", pid, c, comm)
		}
	}
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: /proc/%d/stat: short", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("bench: /proc/%d/stat: %w", pid, err)
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clkTck, nil
}
