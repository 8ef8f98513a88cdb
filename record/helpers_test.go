package record

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"onair/encoder/tsmux"
	"onair/internal/testutil"
)

// epoch is the fake clock's start, in a zone other than UTC so that the
// names prove they are UTC.
var epoch = time.Date(2026, 12, 3, 11, 15, 0, 0, time.FixedZone("CET", 3600))

// rig is a recorder under Run with a fake clock, recording into a temp dir.
type rig struct {
	t     *testing.T
	r     *Recorder
	clock *clockwork.FakeClock
	dir   string
}

func newRig(t *testing.T, cfg Config, deps Deps) *rig {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	clock := clockwork.NewFakeClockAt(epoch)
	deps.Clock = clock
	if deps.Log == nil {
		deps.Log = testutil.NilLogger(t)
	}
	r, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	waitFor(t, r, "Run running", func(Status) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.running
	})
	return &rig{t: t, r: r, clock: clock, dir: cfg.Dir}
}

// stop stops the recording and waits for the segment to be closed.
func (g *rig) stop() {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.r.Stop(ctx, "test"); err != nil {
		g.t.Fatal(err)
	}
}

// waitFor waits, on the recorder's change channel, until ok(Status).
func waitFor(t *testing.T, r *Recorder, what string, ok func(Status) bool) Status {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if st := r.Status(); ok(st) {
			return st
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s: %+v", what, r.Status())
		}
	}
}

// files lists the segments in dir, sorted by name.
func files(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.ts"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func packets(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%packetSize != 0 {
		t.Fatalf("%s: %d bytes, not whole packets", filepath.Base(path), len(b))
	}
	var ps [][]byte
	for i := 0; i < len(b); i += packetSize {
		ps = append(ps, b[i:i+packetSize])
	}
	return ps
}

// The programme's PIDs as tsmux writes them.
const (
	videoPID = tsmux.DefaultVideoPID
	audioPID = tsmux.DefaultAudioPID
	pmtPID   = tsmux.DefaultPMTPID
)

// programme feeds a recorder (or any writer) with onaird's own muxer:
// 25 fps video, an IDR every gop frames, one AAC frame per video frame, and
// the fake clock advanced by one frame each.
type programme struct {
	t     *testing.T
	mux   *tsmux.Muxer
	clock *clockwork.FakeClock
	gop   int
	next  int
}

const frameDur = 40 * time.Millisecond

func newProgramme(t *testing.T, w interface{ Write([]byte) (int, error) }, clock *clockwork.FakeClock, gop int) *programme {
	t.Helper()
	m, err := tsmux.New(tsmux.Config{}, w)
	if err != nil {
		t.Fatal(err)
	}
	return &programme{t: t, mux: m, clock: clock, gop: gop}
}

// marker tags every access unit with its frame index, to find it in a segment.
var marker = []byte("onair#")

// frame muxes the next frame (key at every gop-th) and advances the clock.
func (p *programme) frame() {
	p.t.Helper()
	i := p.next
	p.next++
	key := i%p.gop == 0
	nal := byte(0x41)
	if key {
		nal = 0x65
	}
	au := append([]byte{0, 0, 0, 1, nal}, marker...)
	au = binary.BigEndian.AppendUint32(au, uint32(i))
	au = append(au, bytes.Repeat([]byte{0x5a}, 2000)...)
	pts := tsmux.PTSOffset + int64(i)*3600
	if err := p.mux.WriteVideo(pts, key, au); err != nil {
		p.t.Fatal(err)
	}
	adts := []byte{0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc} // AAC-LC 48 kHz stereo, 16 bytes
	if err := p.mux.WriteAudio(pts, append(adts, make([]byte, 9)...)); err != nil {
		p.t.Fatal(err)
	}
	p.clock.Advance(frameDur)
}

func (p *programme) frames(n int) {
	p.t.Helper()
	for range n {
		p.frame()
	}
}

// frameIndexes are the indexes of the video frames in a segment, in order.
func frameIndexes(ps [][]byte) []int {
	var idx []int
	for _, p := range ps {
		if pid(p) != videoPID || !pusi(p) {
			continue
		}
		pl := payload(p)
		if k := bytes.Index(pl, marker); k >= 0 && k+len(marker)+4 <= len(pl) {
			idx = append(idx, int(binary.BigEndian.Uint32(pl[k+len(marker):])))
		}
	}
	return idx
}

// checkStart fails unless a segment starts with PAT, PMT, then a video
// packet with the random access indicator.
func checkStart(t *testing.T, name string, ps [][]byte) {
	t.Helper()
	if len(ps) < 3 || pid(ps[0]) != pidPAT || pid(ps[1]) != pmtPID || pid(ps[2]) != videoPID || !randomAccess(ps[2]) {
		var got []uint16
		for _, p := range ps[:min(3, len(ps))] {
			got = append(got, pid(p))
		}
		t.Fatalf("%s starts with PIDs %#x (RAI %v), want PAT, PMT, video RAI", name, got, len(ps) > 2 && randomAccess(ps[2]))
	}
}

// Hand-built packets, for what tsmux never writes.

func tsPacket(pid uint16, start bool, cc uint8, af []byte, pl []byte) []byte {
	p := make([]byte, packetSize)
	p[0] = syncByte
	p[1] = byte(pid >> 8 & 0x1f)
	if start {
		p[1] |= 0x40
	}
	p[2] = byte(pid)
	i := 4
	afc := byte(0x10)
	if af != nil {
		afc = 0x30
		stuff := packetSize - 4 - 1 - len(af) - len(pl)
		p[4] = byte(len(af) + stuff)
		copy(p[5:], af)
		for j := 5 + len(af); j < 5+len(af)+stuff; j++ {
			p[j] = 0xff
		}
		i = 5 + len(af) + stuff
	} else {
		for j := 4 + len(pl); j < packetSize; j++ {
			p[j] = 0xff
		}
	}
	p[3] = afc | cc&0x0f
	copy(p[i:], pl)
	return p
}

// psi wraps a section body into a long-form section with a dummy CRC
// (the recorder does not check it) behind a pointer field.
func psi(tableID byte, ext uint16, body []byte) []byte {
	n := 5 + len(body) + 4
	s := []byte{0, tableID, 0xb0 | byte(n>>8), byte(n), byte(ext >> 8), byte(ext), 0xc1, 0, 0}
	s = append(s, body...)
	return append(s, 0, 0, 0, 0)
}

func patPacket(cc uint8, pmt uint16) []byte {
	return tsPacket(pidPAT, true, cc, nil, psi(tableIDPAT, 1, []byte{0, 1, 0xe0 | byte(pmt>>8), byte(pmt)}))
}

func pmtPacket(cc uint8, pmt, video, audio uint16) []byte {
	body := []byte{0xe0 | byte(video>>8), byte(video), 0xf0, 0,
		0x0f, 0xe0 | byte(audio>>8), byte(audio), 0xf0, 0, // AAC first: the video is not the first stream
		0x1b, 0xe0 | byte(video>>8), byte(video), 0xf0, 0}
	return tsPacket(pmt, true, cc, nil, psi(tableIDPMT, 1, body))
}

// esPacket is a PES start (start) or continuation packet, with the random
// access indicator when rai.
func esPacket(pid uint16, start, rai bool, cc uint8, tag byte) []byte {
	var af []byte
	if rai {
		af = []byte{0x40}
	}
	pl := []byte{tag, tag, tag}
	if start {
		pl = []byte{0, 0, 1, 0xe0, 0, 0, 0x80, 0, 0, tag}
	}
	return tsPacket(pid, start, cc, af, pl)
}
