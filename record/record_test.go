package record

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"onair/internal/testutil"
)

func TestConfigValidateNamesTheYAMLKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"default", DefaultConfig(), nil},
		{"configured", Config{Dir: "/media/rec", Segment: 10 * time.Minute}, nil},
		{"relative dir", Config{Dir: "rec", Segment: time.Minute}, []string{`recording.dir: "rec": must be an absolute path`}},
		{"short segment", Config{Dir: "/r", Segment: 500 * time.Millisecond}, []string{"recording.segment: 500ms: want 1s..24h0m0s"}},
		{"zero segment", Config{Dir: "/r"}, []string{"recording.segment: 0s"}},
		{"both", Config{Dir: "r", Segment: 48 * time.Hour}, []string{"recording.dir:", "recording.segment: 48h0m0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestConfigReadsSegmentAsDurationFromYAML(t *testing.T) {
	cfg := DefaultConfig()
	if err := yaml.Unmarshal([]byte("dir: /media/rec\nsegment: 2m\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Dir != "/media/rec" || cfg.Segment != 2*time.Minute || !cfg.AutoStart {
		t.Fatalf("config %+v", cfg)
	}
	r, err := New(Config{Dir: "/x"}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if r.cfg.Segment != DefaultSegment {
		t.Fatalf("zero segment became %s, want %s", r.cfg.Segment, DefaultSegment)
	}
}

func TestSegmentNamesAreUTCAndSortInStartOrder(t *testing.T) {
	at := time.Date(2026, 12, 3, 11, 15, 0, 0, time.FixedZone("CET", 3600))
	names := []string{segmentName(at, 0), segmentName(at, 1), segmentName(at, 12), segmentName(at.Add(time.Second), 0)}
	want := []string{"onair-20261203T101500Z.ts", "onair-20261203T101500Z_01.ts", "onair-20261203T101500Z_12.ts", "onair-20261203T101501Z.ts"}
	if !slices.Equal(names, want) {
		t.Fatalf("names %q, want %q", names, want)
	}
	if !slices.IsSorted(names) {
		t.Fatalf("names %q do not sort in start order", names)
	}
}

// Cutting at the segment length itself would start a file in the middle of
// a GOP that no player can decode until the next IDR: the cut waits for the
// first random access point after it, measured on the (fake) clock.
func TestSegmentCutsAtFirstKeyFrameAfterSegmentLength(t *testing.T) {
	g := newRig(t, Config{Segment: 2 * time.Second}, Deps{})
	if err := g.r.Start("test"); err != nil {
		t.Fatal(err)
	}
	p := newProgramme(t, g.r, g.clock, 30) // an IDR every 1.2 s
	p.frames(250)                          // 10 s
	g.stop()

	got := files(t, g.dir)
	// IDRs at 0, 1.2, 2.4 … s: cuts at 2.4, 4.8, 7.2, 9.6.
	wantNames := []string{"onair-20261203T101500Z.ts", "onair-20261203T101502Z.ts", "onair-20261203T101504Z.ts",
		"onair-20261203T101507Z.ts", "onair-20261203T101509Z.ts"}
	wantFirst := []int{0, 60, 120, 180, 240}
	if len(got) != len(wantNames) {
		t.Fatalf("segments %q, want %q", got, wantNames)
	}
	next, total := 0, int64(0)
	for i, f := range got {
		if filepath.Base(f) != wantNames[i] {
			t.Errorf("segment %d is %s, want %s", i, filepath.Base(f), wantNames[i])
		}
		ps := packets(t, f)
		checkStart(t, f, ps)
		idx := frameIndexes(ps)
		if len(idx) == 0 || idx[0] != wantFirst[i] {
			t.Fatalf("%s starts at frame %v, want %d", filepath.Base(f), idx[:min(1, len(idx))], wantFirst[i])
		}
		for _, x := range idx {
			if x != next {
				t.Fatalf("%s: frame %d where %d was next", filepath.Base(f), x, next)
			}
			next++
		}
		total += int64(len(ps) * packetSize)
	}
	if next != 250 {
		t.Fatalf("%d frames recorded, want 250", next)
	}
	st := g.r.Status()
	if st.State != StateStopped || st.Segments != 5 || st.Bytes != uint64(total) || st.File != "" {
		t.Fatalf("status %+v, want stopped, 5 segments, %d bytes", st, total)
	}
}

// A recording started mid-GOP must not begin with frames that reference an
// IDR it does not have.
func TestFirstSegmentWaitsForTheFirstKeyFrame(t *testing.T) {
	g := newRig(t, Config{Segment: time.Minute}, Deps{})
	if err := g.r.Start("test"); err != nil {
		t.Fatal(err)
	}
	if st := g.r.Status(); !st.WaitingKeyframe || st.File != "" {
		t.Fatalf("status before any key frame %+v", st)
	}
	p := newProgramme(t, g.r, g.clock, 25)
	p.next = 7 // the muxer's first write has tables but no IDR
	p.frames(40)
	g.stop()
	got := files(t, g.dir)
	if len(got) != 1 {
		t.Fatalf("segments %q", got)
	}
	ps := packets(t, got[0])
	checkStart(t, got[0], ps)
	if idx := frameIndexes(ps); idx[0] != 25 || idx[len(idx)-1] != 46 {
		t.Fatalf("frames %d..%d recorded, want 25..46", idx[0], idx[len(idx)-1])
	}
}

// FFmpeg sets the random access indicator on audio packets too, and an
// adaptation field may be cut into a packet of its own before the PES
// starts: only the video PID's indicator cuts, and the new segment begins
// with the latest PAT and PMT, not the first ones.
func TestSegmentStartsWithLatestTablesAndCutsOnlyOnVideo(t *testing.T) {
	g := newRig(t, Config{Segment: 2 * time.Second}, Deps{})
	if err := g.r.Start("test"); err != nil {
		t.Fatal(err)
	}
	write := func(ps ...[]byte) {
		if _, err := g.r.Write(bytes.Join(ps, nil)); err != nil {
			t.Fatal(err)
		}
	}
	write(patPacket(0, pmtPID), pmtPacket(0, pmtPID, videoPID, audioPID),
		esPacket(videoPID, true, true, 0, 1), esPacket(videoPID, false, false, 1, 1))
	g.clock.Advance(3 * time.Second)
	latestPAT, latestPMT := patPacket(7, pmtPID), pmtPacket(7, pmtPID, videoPID, audioPID)
	write(latestPAT, latestPMT, esPacket(audioPID, true, true, 0, 2), esPacket(videoPID, true, false, 2, 2))
	// The random access indicator in an adaptation-field-only packet, the
	// PES start in the next one.
	raiOnly := tsPacket(videoPID, false, 3, []byte{0x40}, nil)
	raiOnly[3] = 0x20 | 3 // adaptation field only
	write(raiOnly, esPacket(videoPID, true, false, 3, 3))
	g.stop()

	got := files(t, g.dir)
	if len(got) != 2 {
		t.Fatalf("segments %q, want 2 (no cut at the audio RAI)", got)
	}
	first, second := packets(t, got[0]), packets(t, got[1])
	if len(first) != 8 {
		t.Fatalf("first segment has %d packets, want 8 (PAT, PMT, 2 video, then the whole second write)", len(first))
	}
	if len(second) != 4 || !bytes.Equal(second[0], latestPAT) || !bytes.Equal(second[1], latestPMT) || !bytes.Equal(second[2], raiOnly) {
		t.Fatalf("second segment does not start with the latest PAT, PMT, then the RAI packet")
	}
}

// A box restarted within the second of an old recording, or a recording
// stopped and started again at once, must never overwrite a file.
func TestSegmentNeverOverwritesAFileStartedInTheSameSecond(t *testing.T) {
	g := newRig(t, Config{Segment: time.Minute}, Deps{})
	old := filepath.Join(g.dir, "onair-20261203T101500Z.ts")
	if err := os.WriteFile(old, []byte("yesterday"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newProgramme(t, g.r, g.clock, 5)
	for range 2 {
		if err := g.r.Start("test"); err != nil {
			t.Fatal(err)
		}
		p.frames(5)
		g.stop()
	}
	got := files(t, g.dir)
	want := []string{"onair-20261203T101500Z.ts", "onair-20261203T101500Z_01.ts", "onair-20261203T101500Z_02.ts"}
	if len(got) != 3 {
		t.Fatalf("segments %q, want %q", got, want)
	}
	for i := range got {
		if filepath.Base(got[i]) != want[i] {
			t.Fatalf("segments %q, want %q", got, want)
		}
	}
	if b, _ := os.ReadFile(old); string(b) != "yesterday" {
		t.Fatalf("the old file was overwritten: %q", b)
	}
	if idx := frameIndexes(packets(t, got[2])); idx[0] != 5 {
		t.Fatalf("second recording starts at frame %d, want 5", idx[0])
	}
}

func TestStartAndStopAreIdempotentAndNameTheDirectory(t *testing.T) {
	g := newRig(t, Config{Segment: time.Minute}, Deps{})
	for range 2 {
		if err := g.r.Start("operator"); err != nil {
			t.Fatal(err)
		}
	}
	if st := g.r.Status(); st.State != StateRecording || st.Reason != "operator" {
		t.Fatalf("status %+v", st)
	}
	g.stop()
	g.stop()
	if st := g.r.Status(); st.State != StateStopped || st.Reason != "test" {
		t.Fatalf("status %+v", st)
	}

	missing := filepath.Join(t.TempDir(), "usb")
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		dir  string
		want error
		says string
	}{
		{"not configured", "", ErrNotConfigured, "recording.dir is empty"},
		{"missing", missing, ErrDirMissing, "recording.dir " + missing + " does not exist"},
		{"not a directory", notDir, ErrDirMissing, notDir + " is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(Config{Dir: tc.dir}, Deps{Log: testutil.NilLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			err = r.Start("operator")
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Start: %v, want %v saying %q", err, tc.want, tc.says)
			}
			st := r.Status()
			if st.State != StateError || st.Reason != err.Error() {
				t.Fatalf("status %+v", st)
			}
			if _, err := r.Write(patPacket(0, pmtPID)); err != nil || r.Status().BytesQueued != 0 {
				t.Fatalf("Write in state error queued %d bytes (%v)", r.Status().BytesQueued, err)
			}
			if err := r.Stop(context.Background(), "operator"); err != nil || r.Status().State != StateStopped {
				t.Fatalf("Stop from error: %v, %+v", err, r.Status())
			}
		})
	}
}

// A box switched on without its disk must keep streaming: the recording is
// in state error, Run goes on, and a later Start works once it is there.
func TestAutoStartWithoutDiskIsStateErrorNotFatal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "usb")
	g := newRig(t, Config{Dir: dir, Segment: time.Minute, AutoStart: true}, Deps{})
	st := waitFor(t, g.r, "state error", func(st Status) bool { return st.State == StateError })
	if !strings.Contains(st.Reason, dir) {
		t.Fatalf("reason %q does not name %s", st.Reason, dir)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := g.r.Start("operator"); err != nil {
		t.Fatal(err)
	}
	newProgramme(t, g.r, g.clock, 5).frames(5)
	g.stop()
	if got := files(t, dir); len(got) != 1 {
		t.Fatalf("segments %q", got)
	}
}

func TestWriteAfterStopIsANoOp(t *testing.T) {
	g := newRig(t, Config{Segment: time.Minute}, Deps{})
	if err := g.r.Start("test"); err != nil {
		t.Fatal(err)
	}
	p := newProgramme(t, g.r, g.clock, 5)
	p.frames(10)
	g.stop()
	before := g.r.Status()
	sizes := func() []int64 {
		var s []int64
		for _, f := range files(t, g.dir) {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			s = append(s, fi.Size())
		}
		return s
	}
	was := sizes()
	p.frames(10)
	after := g.r.Status()
	if after.Bytes != before.Bytes || after.BytesQueued != 0 || after.Segments != before.Segments {
		t.Fatalf("after stop: %+v, before %+v", after, before)
	}
	if now := sizes(); !slices.Equal(now, was) {
		t.Fatalf("segment sizes %v became %v", was, now)
	}
}

// fileFunc wraps the real segment file.
type fileFunc struct {
	File
	write func(f File, p []byte) (int, error)
	sync  func(f File) error
}

func (f *fileFunc) Write(p []byte) (int, error) {
	if f.write != nil {
		return f.write(f.File, p)
	}
	return f.File.Write(p)
}

func (f *fileFunc) Sync() error {
	if f.sync != nil {
		return f.sync(f.File)
	}
	return f.File.Sync()
}

// A closed segment is worthless if a power cut loses it from the page
// cache: every close, at a cut and at Stop, is synced, and Stop returns
// only after.
func TestEverySegmentIsSyncedAtCloseAndStopWaitsForIt(t *testing.T) {
	var syncs atomic.Int32
	deps := Deps{Create: func(path string) (File, error) {
		f, err := createFile(path)
		if err != nil {
			return nil, err
		}
		return &fileFunc{File: f, sync: func(f File) error { syncs.Add(1); return f.Sync() }}, nil
	}}
	g := newRig(t, Config{Segment: time.Second}, deps)
	if err := g.r.Start("test"); err != nil {
		t.Fatal(err)
	}
	newProgramme(t, g.r, g.clock, 25).frames(75) // 3 s: segments at 0, 1, 2 s
	g.stop()
	if n, segs := syncs.Load(), len(files(t, g.dir)); n != 3 || segs != 3 {
		t.Fatalf("%d syncs for %d segments, want 3 and 3", n, segs)
	}
}

// An I/O error in the middle of a segment must leave a file a player reads
// to its end: the file is cut back to the end of the last whole write (a
// whole PES from tsmux), not left with half a packet or half a frame.
func TestWriteErrorCutsSegmentBackToLastWholeWriteAndStops(t *testing.T) {
	const limit = 40_000
	var written int
	deps := Deps{Create: func(path string) (File, error) {
		f, err := createFile(path)
		if err != nil {
			return nil, err
		}
		return &fileFunc{File: f, write: func(f File, p []byte) (int, error) {
			if written+len(p) > limit {
				n, _ := f.Write(p[:(limit-written)/2]) // a short write, then the error
				written += n
				return n, &os.PathError{Op: "write", Path: "segment", Err: syscall.EIO}
			}
			n, err := f.Write(p)
			written += n
			return n, err
		}}, nil
	}}
	g := newRig(t, Config{Segment: time.Minute}, deps)
	if err := g.r.Start("test"); err != nil {
		t.Fatal(err)
	}
	var writes []int // the sizes of what tsmux wrote
	tee := writerFunc(func(p []byte) (int, error) { writes = append(writes, len(p)); return g.r.Write(p) })
	p := newProgramme(t, tee, g.clock, 25)
	p.frames(30)
	st := waitFor(t, g.r, "stopped", func(st Status) bool { return st.State == StateStopped })
	if !strings.HasPrefix(st.Reason, "disk i/o error: ") || st.LastError != st.Reason {
		t.Fatalf("status %+v, want stopped with reason disk i/o error", st)
	}
	got := files(t, g.dir)
	if len(got) != 1 {
		t.Fatalf("segments %q", got)
	}
	fi, err := os.Stat(got[0])
	if err != nil {
		t.Fatal(err)
	}
	// The segment is PAT and PMT, the first write from its RAI packet on
	// (tsmux's PAT, PMT and SDT before it skipped), then whole writes.
	boundaries := map[int64]bool{}
	size := int64(2*packetSize + writes[0] - 3*packetSize)
	for _, w := range writes[1:] {
		boundaries[size] = true
		size += int64(w)
	}
	if !boundaries[fi.Size()] || fi.Size() > limit {
		t.Fatalf("segment of %d bytes does not end at a whole write", fi.Size())
	}
	if st.Bytes != uint64(fi.Size()) || st.Segments != 1 {
		t.Fatalf("status %+v for a %d-byte segment", st, fi.Size())
	}
	p.frames(10)
	if now := g.r.Status(); now.Bytes != st.Bytes || now.BytesQueued != 0 {
		t.Fatalf("writes after the failure were queued: %+v", now)
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// timed measures how long each Write takes.
type timed struct {
	w   interface{ Write([]byte) (int, error) }
	mu  sync.Mutex
	max time.Duration
	n   int
}

func (t *timed) Write(p []byte) (int, error) {
	start := time.Now()
	n, err := t.w.Write(p)
	d := time.Since(start)
	t.mu.Lock()
	t.max = max(t.max, d)
	t.n++
	t.mu.Unlock()
	return n, err
}

// writeBound is how long a Write may take: a copy into memory, with room
// for a loaded CI machine (the disk stalls for seconds).
const writeBound = 100 * time.Millisecond

// An SD card that stalls for seconds must not stall the stream: Write
// keeps returning while the writer is stuck, the overflow is dropped and
// said, and the recording goes on in a new segment from the next IDR, so no
// file has a hole in it.
func TestQueueFullWhileDiskStalledDropsAndResumesAtNextKeyFrame(t *testing.T) {
	entered, release := make(chan string, 10), make(chan struct{})
	deps := Deps{QueueBytes: 64 << 10, Create: func(path string) (File, error) {
		entered <- path
		<-release
		return createFile(path)
	}}
	g := newRig(t, Config{Segment: time.Hour}, deps)
	var once sync.Once
	unstall := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unstall) // before Run is cancelled, should the test fail early
	if err := g.r.Start("test"); err != nil {
		t.Fatal(err)
	}
	tw := &timed{w: g.r}
	p := newProgramme(t, tw, g.clock, 25)
	p.frame()
	select {
	case <-entered: // the writer is stuck opening the first segment
	case <-time.After(10 * time.Second):
		t.Fatal("the writer never opened a segment")
	}
	p.frames(99) // ~240 KB into a 64 KiB queue
	st := g.r.Status()
	if st.State != StateRecording || st.Gaps != 1 || st.BytesDropped == 0 || !strings.Contains(st.LastError, "queue full") {
		t.Fatalf("status with the writer stuck: %+v", st)
	}
	if tw.max > writeBound {
		t.Fatalf("a Write took %s with the disk stalled", tw.max)
	}
	unstall()
	waitFor(t, g.r, "the queue drained", func(st Status) bool { return st.BytesQueued == 0 && st.File != "" })
	for range 60 { // frames 100..159: the first write after the gap is the IDR of frame 100
		p.frame()
		waitFor(t, g.r, "the frame written", func(st Status) bool { return st.BytesQueued == 0 }) // no second overflow
	}
	g.stop()

	got := files(t, g.dir)
	if len(got) != 2 {
		t.Fatalf("segments %q, want 2 (cut at the gap)", got)
	}
	first, second := frameIndexes(packets(t, got[0])), frameIndexes(packets(t, got[1]))
	for i, x := range first {
		if x != i {
			t.Fatalf("first segment has frame %d at %d: a hole", x, i)
		}
	}
	if len(first) >= 99 || len(first) < 10 {
		t.Fatalf("first segment holds %d frames", len(first))
	}
	checkStart(t, got[1], packets(t, got[1]))
	if second[0] != 100 || second[len(second)-1] != 159 || len(second) != 60 {
		t.Fatalf("second segment frames %d..%d (%d), want 100..159", second[0], second[len(second)-1], len(second))
	}
	if st := g.r.Status(); st.Segments != 2 || st.Gaps != 1 {
		t.Fatalf("status %+v", st)
	}
}

// A muxer bug writing half a packet must not shift every later packet of
// the segment off its 188-byte grid: such a write is dropped as a gap.
func TestWriteOfPartialPacketsIsDroppedAsAGap(t *testing.T) {
	g := newRig(t, Config{Segment: time.Hour}, Deps{})
	if err := g.r.Start("test"); err != nil {
		t.Fatal(err)
	}
	p := newProgramme(t, g.r, g.clock, 5)
	p.frames(5)
	if _, err := g.r.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	p.frames(10)
	g.stop()
	st := g.r.Status()
	if st.Gaps != 1 || st.BytesDropped != 100 || !strings.Contains(st.LastError, "not whole TS packets") {
		t.Fatalf("status %+v", st)
	}
	got := files(t, g.dir)
	if len(got) != 2 {
		t.Fatalf("segments %q, want 2 (cut at the gap)", got)
	}
	for _, f := range got {
		checkStart(t, f, packets(t, f))
	}
}

// The page's stop button must come back even when the disk hangs: Stop
// returns when its ctx is done, the recording is stopped, and the segment
// is closed once the disk answers.
func TestStopWithDiskHungReturnsAtCtxDone(t *testing.T) {
	entered, release := make(chan string, 10), make(chan struct{})
	deps := Deps{Create: func(path string) (File, error) {
		entered <- path
		<-release
		return createFile(path)
	}}
	g := newRig(t, Config{Segment: time.Hour}, deps)
	var once sync.Once
	unstall := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unstall)
	if err := g.r.Start("test"); err != nil {
		t.Fatal(err)
	}
	newProgramme(t, g.r, g.clock, 5).frame()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := g.r.Stop(ctx, "operator"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop with the disk hung: %v", err)
	}
	if st := g.r.Status(); st.State != StateStopped || st.Reason != "operator" {
		t.Fatalf("status %+v", st)
	}
	unstall()
	waitFor(t, g.r, "the segment closed", func(st Status) bool { return st.Segments == 1 })
	if got := files(t, g.dir); len(got) != 1 {
		t.Fatalf("segments %q", got)
	}
}

// One write bigger than the whole queue (an IDR of a misconfigured
// bitrate) used to leave the queue flagged full with nothing in it and no
// writer woken: every later write was dropped for good.
func TestWriteBiggerThanTheQueueIsOneGapNotTheEnd(t *testing.T) {
	g := newRig(t, Config{Segment: time.Hour}, Deps{QueueBytes: 8 << 10})
	if err := g.r.Start("test"); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat(patPacket(0, pmtPID), 100) // 18.8 KB
	if _, err := g.r.Write(big); err != nil {
		t.Fatal(err)
	}
	waitFor(t, g.r, "the overflow over", func(Status) bool {
		g.r.mu.Lock()
		defer g.r.mu.Unlock()
		return !g.r.overflow
	})
	p := newProgramme(t, g.r, g.clock, 5)
	for range 10 {
		p.frame()
		waitFor(t, g.r, "the frame written", func(st Status) bool { return st.BytesQueued == 0 })
	}
	g.stop()
	if st := g.r.Status(); st.Gaps != 1 || st.BytesDropped != uint64(len(big)) || st.Segments != 1 {
		t.Fatalf("status %+v", st)
	}
}
