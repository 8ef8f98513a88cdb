package tsmux

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"onair/internal/testutil"
)

// media is ~10 s of real libx264 (AUD, SPS/PPS at each IDR, GOP 30, no
// B-frames) and AAC/ADTS, made once per test binary with the ffmpeg CLI.
type media struct {
	aus  [][]byte
	keys []bool
	aac  [][]byte
}

var (
	mediaOnce sync.Once
	mediaVal  media
	mediaErr  error
	mediaDir  string
)

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "tsmux-media")
	if err != nil {
		panic(err)
	}
	mediaDir = d
	code := m.Run()
	if err := os.RemoveAll(d); err != nil {
		fmt.Fprintln(os.Stderr, "tsmux: remove media dir:", err)
	}
	os.Exit(code)
}

func loadMedia(t *testing.T) media {
	t.Helper()
	testutil.Need(t, "ffmpeg")
	mediaOnce.Do(func() {
		v, a := filepath.Join(mediaDir, "v.h264"), filepath.Join(mediaDir, "a.aac")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-y",
			"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
			"-f", "lavfi", "-i", "sine=f=1000:sample_rate=48000",
			"-map", "0:v", "-t", "10", "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "30",
			"-x264-params", "aud=1:scenecut=0", "-f", "h264", v,
			"-map", "1:a", "-t", "10", "-c:a", "aac", "-f", "adts", a).CombinedOutput()
		if err != nil {
			mediaErr = errors.New("ffmpeg: " + err.Error() + ": " + string(out))
			return
		}
		vb, err := os.ReadFile(v)
		if err != nil {
			mediaErr = err
			return
		}
		ab, err := os.ReadFile(a)
		if err != nil {
			mediaErr = err
			return
		}
		mediaVal.aus, mediaVal.keys = splitAUs(vb)
		mediaVal.aac, mediaErr = splitADTS(ab)
	})
	if mediaErr != nil {
		t.Fatal(mediaErr)
	}
	return mediaVal
}

// splitAUs cuts an Annex-B stream at each access unit delimiter (NAL 9).
func splitAUs(b []byte) (aus [][]byte, keys []bool) {
	var starts []int
	for i := 0; i+4 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 0 && b[i+3] == 1 && b[i+4]&0x1f == 9 {
			starts = append(starts, i)
		}
	}
	for k, s := range starts {
		e := len(b)
		if k+1 < len(starts) {
			e = starts[k+1]
		}
		au := b[s:e]
		key := false
		for i := 0; i+3 < len(au); i++ {
			if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 && au[i+3]&0x1f == 5 {
				key = true
				break
			}
		}
		aus = append(aus, au)
		keys = append(keys, key)
	}
	return aus, keys
}

func splitADTS(b []byte) ([][]byte, error) {
	var frames [][]byte
	for len(b) > 0 {
		if len(b) < 7 || b[0] != 0xff || b[1]&0xf0 != 0xf0 {
			return nil, errors.New("bad adts sync")
		}
		n := int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5])>>5
		if n < 7 || n > len(b) {
			return nil, errors.New("bad adts length")
		}
		frames = append(frames, b[:n])
		b = b[n:]
	}
	return frames, nil
}

const epoch = 126000 // 1.4 s, like FFmpeg's default mux offset, > PCRLead

// muxAll writes the media interleaved by PTS. skipVideo drops video frames
// in [from, to) to simulate every video process being down.
func muxAll(t *testing.T, m *Muxer, md media, skipFrom, skipTo int) {
	t.Helper()
	muxAllFrom(t, m, md, epoch, skipFrom, skipTo)
}

// muxAllFrom is muxAll with the first PTS at start (90 kHz, unwrapped).
func muxAllFrom(t *testing.T, m *Muxer, md media, start int64, skipFrom, skipTo int) {
	t.Helper()
	type ev struct {
		pts   int64
		video bool
		i     int
	}
	var evs []ev
	for i := range md.aus {
		if i >= skipFrom && i < skipTo {
			continue
		}
		evs = append(evs, ev{start + int64(i)*3000, true, i})
	}
	for i := range md.aac {
		evs = append(evs, ev{start + int64(i)*1920, false, i})
	}
	sort.SliceStable(evs, func(a, b int) bool { return evs[a].pts < evs[b].pts })
	for _, e := range evs {
		var err error
		if e.video {
			err = m.WriteVideo(e.pts, md.keys[e.i], md.aus[e.i])
		} else {
			err = m.WriteAudio(e.pts, md.aac[e.i])
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// packetWriter asserts every Write is whole packets.
type packetWriter struct {
	t   *testing.T
	buf bytes.Buffer
}

func (w *packetWriter) Write(p []byte) (int, error) {
	if len(p)%packetSize != 0 || len(p) == 0 {
		w.t.Errorf("write of %d bytes is not whole packets", len(p))
	}
	return w.buf.Write(p)
}

func TestFFprobeCountsExactFrames(t *testing.T) {
	md := loadMedia(t)
	testutil.Need(t, "ffprobe")
	if len(md.aus) != 300 {
		t.Fatalf("split %d access units, want 300", len(md.aus))
	}
	pw := &packetWriter{t: t}
	m, err := New(Config{ServiceName: "Test Service", Provider: "onair test"}, pw)
	if err != nil {
		t.Fatal(err)
	}
	muxAll(t, m, md, -1, -1)
	out := filepath.Join(t.TempDir(), "out.ts")
	if err = os.WriteFile(out, pw.buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	j, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_programs", "-of", "json", out).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var probe struct {
		Streams []struct {
			CodecName    string `json:"codec_name"`
			ID           string `json:"id"`
			NbReadFrames string `json:"nb_read_frames"`
		} `json:"streams"`
		Programs []struct {
			Tags map[string]string `json:"tags"`
		} `json:"programs"`
	}
	if err := json.Unmarshal(j, &probe); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		id string
		n  int
	}{"h264": {"0x100", len(md.aus)}, "aac": {"0x101", len(md.aac)}}
	if len(probe.Streams) != 2 {
		t.Fatalf("ffprobe found %d streams: %s", len(probe.Streams), j)
	}
	for _, s := range probe.Streams {
		w, ok := want[s.CodecName]
		if !ok {
			t.Fatalf("unexpected stream %q", s.CodecName)
		}
		n, _ := strconv.Atoi(s.NbReadFrames)
		if n != w.n || s.ID != w.id {
			t.Errorf("%s: pid %s frames %d, want pid %s frames %d", s.CodecName, s.ID, n, w.id, w.n)
		}
		delete(want, s.CodecName)
	}
	if len(probe.Programs) != 1 || probe.Programs[0].Tags["service_name"] != "Test Service" || probe.Programs[0].Tags["service_provider"] != "onair test" {
		t.Errorf("SDT not seen by ffprobe: %+v", probe.Programs)
	}

	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", "-v", "error", "-i", out, "-f", "null", "-")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() != 0 {
		t.Errorf("ffmpeg decode: err=%v stderr=%q", err, stderr.String())
	}
}

// tsPacket is a parsed packet header.
type tsPacket struct {
	pid        uint16
	pusi       bool
	hasPayload bool
	cc         uint8
	pcr        int64 // -1 if none
	rai        bool
	discont    bool
}

func parsePackets(t *testing.T, b []byte) []tsPacket {
	t.Helper()
	if len(b)%packetSize != 0 {
		t.Fatalf("stream of %d bytes is not whole packets", len(b))
	}
	var ps []tsPacket
	for i := 0; i < len(b); i += packetSize {
		p := b[i : i+packetSize]
		if p[0] != syncByte {
			t.Fatalf("packet %d: sync byte %#x", i/packetSize, p[0])
		}
		tp := tsPacket{
			pid:        uint16(p[1]&0x1f)<<8 | uint16(p[2]),
			pusi:       p[1]&0x40 != 0,
			hasPayload: p[3]&0x10 != 0,
			cc:         p[3] & 0x0f,
			pcr:        -1,
		}
		if p[3]&0x20 != 0 && p[4] > 0 {
			flags := p[5]
			tp.discont = flags&0x80 != 0
			tp.rai = flags&0x40 != 0
			if flags&0x10 != 0 {
				tp.pcr = int64(p[6])<<25 | int64(p[7])<<17 | int64(p[8])<<9 | int64(p[9])<<1 | int64(p[10])>>7
			}
		}
		ps = append(ps, tp)
	}
	return ps
}

// checkStream asserts continuity counters, PCR spacing and table repetition.
func checkStream(t *testing.T, ps []tsPacket, cfg Config) {
	t.Helper()
	cfg.setDefaults()
	lastCC := map[uint16]int{}
	lastPCR := int64(-1)
	pcrs := 0
	lastPATPCR := int64(-1)
	maxPCRGap, maxPATGap := int64(0), int64(0)
	for i, p := range ps {
		if p.pid != pidPAT && p.pid != cfg.PMTPID && p.pid != pidSDT && p.pid != cfg.VideoPID && p.pid != cfg.AudioPID {
			t.Fatalf("packet %d: unexpected pid %#x", i, p.pid)
		}
		if prev, ok := lastCC[p.pid]; ok {
			want := uint8(prev)
			if p.hasPayload {
				want = uint8(prev+1) & 0x0f
			}
			if p.cc != want {
				t.Fatalf("packet %d pid %#x: cc %d, want %d", i, p.pid, p.cc, want)
			}
		}
		lastCC[p.pid] = int(p.cc)
		if p.discont {
			t.Errorf("packet %d: discontinuity indicator set", i)
		}
		if p.pcr >= 0 {
			if p.pid != cfg.VideoPID {
				t.Fatalf("packet %d: PCR on pid %#x", i, p.pid)
			}
			if lastPCR >= 0 {
				// 33-bit on the wire: a step modulo 2^33 past half the range is a step back.
				step := (p.pcr - lastPCR) & tsMask
				if step > tsMask/2 {
					t.Fatalf("packet %d: PCR went back %d -> %d", i, lastPCR, p.pcr)
				}
				maxPCRGap = max(maxPCRGap, step)
			}
			lastPCR = p.pcr
			pcrs++
		}
		if p.pid == cfg.VideoPID && p.rai && p.pcr < 0 {
			t.Errorf("packet %d: RAI without PCR", i)
		}
		if p.pid == pidPAT && lastPCR >= 0 {
			if lastPATPCR >= 0 {
				maxPATGap = max(maxPATGap, (lastPCR-lastPATPCR)&tsMask)
			}
			lastPATPCR = lastPCR
		}
	}
	if pcrs == 0 {
		t.Fatal("no PCR")
	}
	if maxPCRGap > 40*90 {
		t.Errorf("max PCR gap %.1f ms > 40 ms", float64(maxPCRGap)/90)
	}
	// tables every 100 ms of stream time; PCR granularity adds up to one PCR gap
	if maxPATGap > 140*90 {
		t.Errorf("max PAT gap %.1f ms", float64(maxPATGap)/90)
	}
	t.Logf("%d packets, %d PCRs, max PCR gap %.1f ms, max PAT gap %.1f ms", len(ps), pcrs, float64(maxPCRGap)/90, float64(maxPATGap)/90)
}

func TestContinuityAndPCRInterval(t *testing.T) {
	md := loadMedia(t)
	pw := &packetWriter{t: t}
	m, err := New(Config{}, pw)
	if err != nil {
		t.Fatal(err)
	}
	// frames 100..159 (2 s) missing: audio alone must keep the PCR going
	muxAll(t, m, md, 100, 160)
	ps := parsePackets(t, pw.buf.Bytes())
	if ps[0].pid != pidPAT || ps[1].pid != DefaultPMTPID {
		t.Fatalf("stream starts with pids %#x %#x, want PAT, PMT", ps[0].pid, ps[1].pid)
	}
	checkStream(t, ps, Config{})
}

func TestResetRepeatsTablesAndKeepsCounters(t *testing.T) {
	md := loadMedia(t)
	pw := &packetWriter{t: t}
	cfg := Config{VideoPID: 0x200, AudioPID: 0x201, PMTPID: 0x80}
	m, err := New(cfg, pw)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := m.WriteVideo(epoch+int64(i)*3000, md.keys[i], md.aus[i]); err != nil {
			t.Fatal(err)
		}
	}
	before := pw.buf.Len()
	m.Reset()
	if err := m.WriteAudio(epoch+10*3000, md.aac[0]); err != nil {
		t.Fatal(err)
	}
	all := parsePackets(t, pw.buf.Bytes())
	after := parsePackets(t, pw.buf.Bytes()[before:])
	if after[0].pid != pidPAT || after[1].pid != 0x80 || after[2].pid != pidSDT {
		t.Fatalf("after Reset: pids %#x %#x %#x, want PAT, PMT, SDT", after[0].pid, after[1].pid, after[2].pid)
	}
	checkStream(t, all, cfg) // CCs continue across Reset
}

func TestRejectsNonMonotonicDTS(t *testing.T) {
	md := loadMedia(t)
	var buf bytes.Buffer
	m, err := New(Config{}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WriteVideo(epoch, true, md.aus[0]); err != nil {
		t.Fatal(err)
	}
	n := buf.Len()
	for _, pts := range []int64{epoch, epoch - 3000} {
		if err := m.WriteVideo(pts, false, md.aus[1]); !errors.Is(err, ErrNonMonotonic) {
			t.Errorf("video pts %d: err %v, want ErrNonMonotonic", pts, err)
		}
	}
	if err := m.WriteAudio(epoch, md.aac[0]); err != nil {
		t.Fatal(err) // audio has its own DTS sequence
	}
	if err := m.WriteAudio(epoch-1, md.aac[1]); !errors.Is(err, ErrNonMonotonic) {
		t.Errorf("audio: err %v, want ErrNonMonotonic", err)
	}
	if err := m.WriteAudio(-5, md.aac[1]); !errors.Is(err, ErrNonMonotonic) {
		t.Errorf("negative: err %v, want ErrNonMonotonic", err)
	}
	if err := m.WriteVideo(epoch+3000, false, []byte{1, 2, 3}); !errors.Is(err, ErrInvalidPayload) {
		t.Errorf("garbage AU: err %v, want ErrInvalidPayload", err)
	}
	if err := m.WriteAudio(epoch+3000, []byte{1, 2, 3, 4, 5, 6, 7}); !errors.Is(err, ErrInvalidPayload) {
		t.Errorf("garbage audio: err %v, want ErrInvalidPayload", err)
	}
	// rejected video wrote nothing; the one audio frame did
	if got := parsePackets(t, buf.Bytes()[n:]); len(got) == 0 || got[len(got)-1].pid != DefaultAudioPID {
		t.Errorf("unexpected output after rejections")
	}
	// a valid write after rejections still works
	if err := m.WriteVideo(epoch+3000, false, md.aus[1]); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"custom", Config{VideoPID: 0x44, AudioPID: 0x45, PMTPID: 0x42, PCRLead: 50 * time.Millisecond}, true},
		{"dup pid", Config{VideoPID: 0x100, AudioPID: 0x100}, false},
		{"reserved pid", Config{VideoPID: 0x11}, false},
		{"astits pid", Config{VideoPID: 0x1000, PMTPID: 0x300}, false},
		{"lead", Config{PCRLead: 2 * time.Second}, false},
		{"name", Config{ServiceName: string(make([]byte, 65))}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, &bytes.Buffer{})
			if (err == nil) != tc.ok {
				t.Errorf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestCRC32MPEG(t *testing.T) {
	// check value of CRC-32/MPEG-2 for "123456789"
	if got := crc32MPEG([]byte("123456789")); got != 0x0376e6e7 {
		t.Fatalf("crc = %#x", got)
	}
}
