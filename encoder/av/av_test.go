//go:build cgo

package av

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"onair/encoder/ring"
	"onair/encoder/wire"
	"onair/internal/testutil"
)

// These tests run real FFmpeg/libx264 in-process: keep them sequential.

const (
	testW, testH = 640, 360
	testSource   = "lavfi:testsrc2=size=640x360:rate=30"
)

func TestMain(m *testing.M) {
	// x264's statistics at close are info-level noise here.
	astiav.SetLogLevel(astiav.LogLevelError)
	os.Exit(m.Run())
}

func newTestRing(t *testing.T, w, h int) *ring.Ring {
	t.Helper()
	r, err := ring.Create(filepath.Join(t.TempDir(), "video.ring"), ring.Geometry{Width: w, Height: h, FPSNum: 30, FPSDen: 1}, 90, ring.MonotonicNs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

// onaird is the test's stand-in for onaird's end of one child's wire.
type onaird struct {
	t      *testing.T
	conn   net.Conn
	w      *wire.Writer
	cancel context.CancelFunc
	done   chan error

	mu       sync.Mutex
	hello    *wire.Hello
	video    map[uint64][]byte
	keys     map[uint64]bool
	audio    []wire.Header
	audioES  [][]byte
	levels   []wire.AudioLevels
	badAudio []error
	progress []wire.Progress
	changed  chan struct{}
}

// start runs role with one end of a pipe as its wire and collects what it sends.
func start(t *testing.T, name string, role func(ctx context.Context, rw *wireEnd, log *zap.Logger) error) *onaird {
	t.Helper()
	a, b := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	o := &onaird{t: t, conn: a, w: wire.NewWriter(a), cancel: cancel, done: make(chan error, 1),
		video: map[uint64][]byte{}, keys: map[uint64]bool{}, changed: make(chan struct{}, 1)}
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).Named(name)
	go func() { o.done <- role(ctx, &wireEnd{b}, log) }()
	go o.read()
	t.Cleanup(func() { _ = o.stop() }) // a test that cares checks stop's error itself
	return o
}

type wireEnd struct{ net.Conn }

func (o *onaird) read() {
	rd := wire.NewReader(o.conn)
	for {
		h, p, err := rd.Read()
		if err != nil {
			return
		}
		o.mu.Lock()
		switch h.Kind {
		case wire.KindHello:
			o.hello = new(wire.Hello)
			_ = json.Unmarshal(p, o.hello)
		case wire.KindVideo:
			o.video[h.Index] = p
			o.keys[h.Index] = h.Flags&wire.FlagKey != 0
		case wire.KindAudio:
			l, adts, err := wire.SplitAudio(p)
			if err != nil {
				o.badAudio = append(o.badAudio, err)
				break
			}
			o.audio = append(o.audio, h)
			o.audioES = append(o.audioES, adts)
			o.levels = append(o.levels, l)
		case wire.KindProgress:
			var pr wire.Progress
			_ = json.Unmarshal(p, &pr)
			o.progress = append(o.progress, pr)
		}
		o.mu.Unlock()
		select {
		case o.changed <- struct{}{}:
		default:
		}
	}
}

// waitFor polls cond (under the lock) each time a message arrives.
func (o *onaird) waitFor(what string, d time.Duration, cond func() bool) {
	o.t.Helper()
	deadline := time.After(d)
	for {
		o.mu.Lock()
		ok := cond()
		o.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-o.changed:
		case err := <-o.done:
			o.t.Fatalf("role ended while waiting for %s: %v", what, err)
		case <-deadline:
			o.t.Fatalf("timeout waiting for %s", what)
		}
	}
}

func (o *onaird) startIndex() uint64 {
	o.waitFor("hello", 5*time.Second, func() bool { return o.hello != nil })
	return o.hello.StartIndex
}

func (o *onaird) send(c wire.Command) {
	o.t.Helper()
	if err := o.w.WriteJSON(wire.Header{Kind: wire.KindCommand, Index: c.AtIndex}, c); err != nil {
		o.t.Fatal(err)
	}
}

// stop cancels the role and returns its result.
func (o *onaird) stop() error {
	o.cancel()
	var err error
	select {
	case err = <-o.done:
		o.done <- err
	case <-time.After(5 * time.Second):
		err = errors.New("role did not stop within 5 s")
	}
	if cerr := o.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

func (o *onaird) packets() (map[uint64][]byte, map[uint64]bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	v, k := map[uint64][]byte{}, map[uint64]bool{}
	for i, p := range o.video {
		v[i], k[i] = p, o.keys[i]
	}
	return v, k
}

func startCapture(t *testing.T, r *ring.Ring, source string) *onaird {
	return start(t, "capture", func(ctx context.Context, rw *wireEnd, log *zap.Logger) error {
		return RunCapture(ctx, CaptureConfig{Source: source, RingPath: r.Path()}, rw, log)
	})
}

func startEncoder(t *testing.T, r *ring.Ring, name string, cfg EncoderConfig) *onaird {
	cfg.Name, cfg.RingPath = name, r.Path()
	if cfg.BitrateKbps == 0 {
		cfg.BitrateKbps = 2000
	}
	if cfg.GOP == 0 {
		cfg.GOP = 60
	}
	return start(t, name, func(ctx context.Context, rw *wireEnd, log *zap.Logger) error {
		return RunEncoder(ctx, cfg, rw, log)
	})
}

func (o *onaird) waitIndex(i uint64, d time.Duration) {
	o.t.Helper()
	o.waitFor(fmt.Sprintf("video index %d", i), d, func() bool { _, ok := o.video[i]; return ok })
}

// nalTypes lists the H.264 NAL unit types of an Annex B access unit.
func nalTypes(au []byte) []int {
	var ts []int
	for i := 0; i+3 < len(au); i++ {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 {
			ts = append(ts, int(au[i+3]&0x1f))
			i += 3
		}
	}
	return ts
}

func hasNAL(au []byte, typ int) bool {
	for _, n := range nalTypes(au) {
		if n == typ {
			return true
		}
	}
	return false
}

// notMultiple is i, or i+1 when i is a multiple of m (a start index that
// is not a GOP boundary shows the instance's own first IDR).
func notMultiple(i, m uint64) uint64 {
	if i%m == 0 {
		return i + 1
	}
	return i
}

func TestTwinEncodersProduceIdenticalPackets(t *testing.T) {
	r := newTestRing(t, testW, testH)
	capt := startCapture(t, r, testSource)
	s := notMultiple(capt.startIndex()+3, 60)
	a := startEncoder(t, r, "encoder-a", EncoderConfig{StartIndex: int64(s)})
	b := startEncoder(t, r, "encoder-b", EncoderConfig{StartIndex: int64(s)})
	cmdAt := notMultiple(s+40, 60)
	for _, o := range []*onaird{a, b} {
		o.send(wire.Command{Op: wire.OpBitrate, AtIndex: cmdAt, BitrateKbps: 800})
		o.send(wire.Command{Op: wire.OpIDR, AtIndex: cmdAt})
	}
	end := s + 110
	a.waitIndex(end, 8*time.Second)
	b.waitIndex(end, 2*time.Second)
	va, ka := a.packets()
	vb, kb := b.packets()
	same := 0
	for i := s; i <= end; i++ {
		pa, okA := va[i]
		pb, okB := vb[i]
		if !okA || !okB {
			t.Fatalf("index %d missing (a %v, b %v)", i, okA, okB)
		}
		if !bytes.Equal(pa, pb) {
			t.Fatalf("index %d differs: %d vs %d bytes", i, len(pa), len(pb))
		}
		same++
		wantKey := i == s || i%60 == 0 || i == cmdAt
		if ka[i] != wantKey || kb[i] != wantKey {
			t.Errorf("index %d: key a=%v b=%v, want %v", i, ka[i], kb[i], wantKey)
		}
	}
	if !hasNAL(va[cmdAt], 5) {
		t.Errorf("forced IDR at %d has NAL types %v", cmdAt, nalTypes(va[cmdAt]))
	}
	t.Logf("indexes %d..%d identical in both encoders (%d packets), commands at %d", s, end, same, cmdAt)
	for _, o := range []*onaird{a, b, capt} {
		if err := o.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
}

func TestKeyframesOnlyAtGOPBoundary(t *testing.T) {
	r := newTestRing(t, testW, testH)
	capt := startCapture(t, r, testSource)
	s := notMultiple(capt.startIndex()+2, 30)
	e := startEncoder(t, r, "encoder-a", EncoderConfig{StartIndex: int64(s), GOP: 30})
	end := s + 75
	e.waitIndex(end, 6*time.Second)
	v, k := e.packets()
	var keys []uint64
	for i := s; i <= end; i++ {
		want := i == s || i%30 == 0
		if k[i] != want {
			t.Errorf("index %d: key=%v, want %v", i, k[i], want)
		}
		// Every IDR carries SPS (7) and PPS (8) in-band; no other picture is an IDR (5).
		if want && (!hasNAL(v[i], 7) || !hasNAL(v[i], 8) || !hasNAL(v[i], 5)) {
			t.Errorf("IDR %d has NAL types %v, want SPS, PPS and IDR", i, nalTypes(v[i]))
		}
		if !want && hasNAL(v[i], 5) {
			t.Errorf("index %d is an IDR slice outside the GOP boundary", i)
		}
		if k[i] {
			keys = append(keys, i)
		}
	}
	t.Logf("keyframes at %v (start %d, gop 30)", keys, s)
}

func TestResetRelocksTwins(t *testing.T) {
	r := newTestRing(t, testW, testH)
	capt := startCapture(t, r, testSource)
	s := capt.startIndex() + 2
	a := startEncoder(t, r, "encoder-a", EncoderConfig{StartIndex: int64(s), GOP: 30})
	a.waitIndex(s+30, 4*time.Second) // B starts about 1 s later, a restarted twin
	b := startEncoder(t, r, "encoder-b", EncoderConfig{StartIndex: -1, GOP: 30})
	bs := b.startIndex()
	reset := (bs/30 + 2) * 30 // a GOP boundary both will reach after the command
	for _, o := range []*onaird{a, b} {
		o.send(wire.Command{Op: wire.OpReset, AtIndex: reset})
	}
	end := reset + 30
	a.waitIndex(end, 6*time.Second)
	b.waitIndex(end, 2*time.Second)
	va, ka := a.packets()
	vb, kb := b.packets()
	before := 0
	for i := bs; i < reset; i++ {
		if !bytes.Equal(va[i], vb[i]) {
			before++
		}
	}
	if before == 0 {
		t.Errorf("twins identical before the reset: the test proves nothing")
	}
	for i := reset; i <= end; i++ {
		if !bytes.Equal(va[i], vb[i]) {
			t.Fatalf("index %d differs after the reset at %d", i, reset)
		}
	}
	if !ka[reset] || !kb[reset] {
		t.Errorf("reset index %d is not an IDR (a %v, b %v)", reset, ka[reset], kb[reset])
	}
	t.Logf("B started at %d: %d of %d packets differed before the reset at %d; %d identical after", bs, before, reset-bs, reset, end-reset+1)
}

func TestCapturePacesLavfiToWallClock(t *testing.T) {
	r := newTestRing(t, testW, testH)
	before := r.IndexAt(ring.MonotonicNs())
	capt := startCapture(t, r, "lavfi:testsrc2=size=320x240:rate=25") // other size and rate: swscale path
	s := capt.startIndex()
	if s < before+1 || s > before+3 {
		t.Fatalf("start index %d, want IndexAt(now)+1 = %d", s, before+1)
	}
	t0 := time.Now()
	capt.waitFor("60 frames", 4*time.Second, func() bool { return len(capt.progress) >= 60 })
	el := time.Since(t0)
	if el < 1700*time.Millisecond {
		t.Fatalf("60 frames in %v: not paced to 30 fps", el)
	}
	buf := make([]byte, r.FrameSize())
	capt.mu.Lock()
	prog := append([]wire.Progress(nil), capt.progress...)
	capt.mu.Unlock()
	for n, p := range prog[:60] {
		if p.Index != s+uint64(n) {
			t.Fatalf("progress %d is index %d, want %d", n, p.Index, s+uint64(n))
		}
		m, err := r.Read(p.Index, buf)
		if err != nil {
			t.Fatalf("read %d: %v", p.Index, err)
		}
		if m.CaptureNs < r.TimeOf(p.Index) {
			t.Fatalf("index %d published %v before it was due", p.Index, time.Duration(r.TimeOf(p.Index)-m.CaptureNs))
		}
	}
	t.Logf("60 frames from %d in %v", s, el)
}

func TestCaptureSkipsClaimedIndex(t *testing.T) {
	r := newTestRing(t, testW, testH)
	k := r.IndexAt(ring.MonotonicNs()) + 12 // the keeper substitutes k and k+1
	for _, i := range []uint64{k, k + 1} {
		buf, err := r.Claim(i)
		if err != nil {
			t.Fatal(err)
		}
		for j := range buf {
			buf[j] = 0x42
		}
		r.Publish(i, ring.MonotonicNs(), ring.FlagRepeat)
	}
	capt := startCapture(t, r, testSource)
	capt.waitFor("index past the claimed ones", 3*time.Second, func() bool {
		return len(capt.progress) > 0 && capt.progress[len(capt.progress)-1].Index >= k+3
	})
	seen := map[uint64]bool{}
	capt.mu.Lock()
	for _, p := range capt.progress {
		seen[p.Index] = true
	}
	capt.mu.Unlock()
	if seen[k] || seen[k+1] || !seen[k-1] || !seen[k+2] {
		t.Fatalf("published %v around claimed %d,%d", seen, k, k+1)
	}
	buf := make([]byte, r.FrameSize())
	m, err := r.Read(k, buf)
	if err != nil || m.Flags != ring.FlagRepeat || buf[0] != 0x42 || buf[len(buf)-1] != 0x42 {
		t.Fatalf("keeper's picture at %d was touched: %+v %v", k, m, err)
	}
}

func TestAudioFramesAreContinuousADTS(t *testing.T) {
	testutil.Need(t, "ffmpeg")
	epoch := ring.MonotonicNs() - int64(7*time.Second)
	au := start(t, "audio-main", func(ctx context.Context, rw *wireEnd, log *zap.Logger) error {
		return RunAudio(ctx, AudioConfig{Name: "audio-main", Source: "lavfi:sine=frequency=1000:sample_rate=48000", EpochNs: epoch}, rw, log)
	})
	s := au.startIndex()
	t0 := time.Now()
	au.waitFor("94 frames", 4*time.Second, func() bool { return len(au.audio) >= 94 }) // 2 s
	el := time.Since(t0)
	if el < 1800*time.Millisecond {
		t.Errorf("94 AAC frames (2 s) arrived in %v: not paced", el)
	}
	if err := au.stop(); err != nil {
		t.Fatal(err)
	}
	var es bytes.Buffer
	au.mu.Lock()
	defer au.mu.Unlock()
	if len(au.badAudio) > 0 {
		t.Fatalf("%d payloads without valid levels: %v", len(au.badAudio), au.badAudio[0])
	}
	if first := au.audio[0].Index; first+1 != s && first != s {
		t.Errorf("first frame index %d, start index %d", first, s)
	}
	// lavfi is paced to the box clock: its rate is the box's, measured by
	// construction, and its frames sit on the box timeline.
	if len(au.progress) == 0 {
		t.Errorf("no progress in 2 s")
	}
	for _, p := range au.progress {
		if !p.RateMeasured || p.RatePPM != 0 || math.Abs(p.OffsetMs) > 0.1 {
			t.Errorf("lavfi progress %+v: want rate measured at 0 ppm, offset 0", p)
		}
	}
	for n, h := range au.audio {
		if n > 0 && h.Index != au.audio[n-1].Index+1 {
			t.Fatalf("frame %d: index %d after %d", n, h.Index, au.audio[n-1].Index)
		}
		if h.PTS != wire.AudioPTS(h.Index, 48000) {
			t.Fatalf("frame %d: pts %d", n, h.PTS)
		}
		ah, err := ParseADTS(au.audioES[n])
		if err != nil || ah.FrameLen != len(au.audioES[n]) || ah.SampleRate != 48000 || ah.Channels != 2 {
			t.Fatalf("frame %d: adts %+v, %v, len %d", n, ah, err, len(au.audioES[n]))
		}
		es.Write(au.audioES[n])
	}
	cmd := exec.Command("ffmpeg", "-v", "error", "-f", "aac", "-i", "-", "-f", "null", "-")
	cmd.Stdin = &es
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg decode: %v: %s", err, stderr.String())
	}
	t.Logf("%d AAC frames %d..%d decoded cleanly", len(au.audio), au.audio[0].Index, au.audio[len(au.audio)-1].Index)
}

// The selector judges silence on the levels a chain sends with each frame:
// they must be those of the samples that frame encodes (same index), not of
// a neighbour, or a switch would come a frame late or early.
func TestAudioLevelsAreThoseOfTheFrameTheyCome(t *testing.T) {
	testutil.Need(t, "ffmpeg")
	epoch := ring.MonotonicNs() - int64(3*time.Second)
	// Half a second of a -6 dBFS tone, then half a second of digital
	// silence, from the source's first sample on.
	src := "lavfi:aevalsrc=exprs='if(lt(mod(t,1),0.5),0.5*sin(2*PI*1000*t),0)':s=48000:c=stereo"
	au := start(t, "audio-main", func(ctx context.Context, rw *wireEnd, log *zap.Logger) error {
		return RunAudio(ctx, AudioConfig{Name: "audio-main", Source: src, EpochNs: epoch}, rw, log)
	})
	s0 := au.startIndex() // the source's first sample opens this frame
	au.waitFor("100 frames", 5*time.Second, func() bool { return len(au.audio) >= 100 })
	if err := au.stop(); err != nil {
		t.Fatal(err)
	}
	au.mu.Lock()
	defer au.mu.Unlock()
	if len(au.badAudio) > 0 {
		t.Fatalf("%d payloads without valid levels: %v", len(au.badAudio), au.badAudio[0])
	}
	tone, silent := 0, 0
	for n, h := range au.audio {
		if h.Index < s0 {
			continue // the encoder's priming frame: no input of its own
		}
		// Samples of this frame relative to the source's start.
		a, b := int(h.Index-s0)*wire.AudioFrameSamples, int(h.Index-s0+1)*wire.AudioFrameSamples-1
		l := au.levels[n]
		switch {
		case a%48000 < 24000 && b%48000 < 24000 && b-a < 24000 && a/48000 == b/48000:
			tone++
			if p, r := l.PeakDBFS(), l.RMSDBFS(); p < -6.2 || p > -5.8 || r < -9.3 || r > -8.7 {
				t.Errorf("frame %d (samples %d..%d, tone): peak %.1f dBFS, rms %.1f dBFS; want -6, -9", h.Index, a, b, p, r)
			}
		case a%48000 >= 24000 && b%48000 >= 24000 && a/48000 == b/48000:
			silent++
			if l.Peak != 0 || l.RMS != 0 {
				t.Errorf("frame %d (samples %d..%d, silence): peak %.1f dBFS, rms %.1f dBFS", h.Index, a, b, l.PeakDBFS(), l.RMSDBFS())
			}
		}
	}
	if tone < 40 || silent < 40 {
		t.Fatalf("%d tone and %d silent frames of %d (start index %d)", tone, silent, len(au.audio), s0)
	}
	t.Logf("%d tone frames at -6 dBFS peak, %d silent frames, levels aligned", tone, silent)
}

func TestBitrateCommandChangesRate(t *testing.T) {
	r := newTestRing(t, testW, testH)
	capt := startCapture(t, r, testSource)
	s := capt.startIndex() + 2
	e := startEncoder(t, r, "encoder-a", EncoderConfig{StartIndex: int64(s), BitrateKbps: 4000, GOP: 60})
	cmdAt := s + 90
	e.send(wire.Command{Op: wire.OpBitrate, AtIndex: cmdAt, BitrateKbps: 1000})
	e.waitIndex(cmdAt+120, 9*time.Second)
	v, _ := e.packets()
	kbps := func(from, to uint64) float64 { // to exclusive; 30 fps
		n := 0
		for i := from; i < to; i++ {
			n += len(v[i])
		}
		return float64(n) * 8 / 1000 / (float64(to-from) / 30)
	}
	before, after := kbps(s+30, cmdAt), kbps(cmdAt+60, cmdAt+120)
	t.Logf("4000 kbps target: %.0f kbps; 1000 kbps target, 2 s after the command: %.0f kbps", before, after)
	if before < 2500 {
		t.Errorf("rate before the command %.0f kbps, want near 4000", before)
	}
	if after > 0.6*before || after > 1600 {
		t.Errorf("rate after the command %.0f kbps, want < 60 %% of %.0f and near 1000", after, before)
	}
}
