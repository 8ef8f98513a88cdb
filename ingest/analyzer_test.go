package ingest

import (
	"bytes"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"onair/internal/testutil"
)

func analyzeBytes(b []byte, opts Options) Report {
	a := NewAnalyzer(opts)
	_, _ = a.Write(b)
	a.Flush()
	return a.Report()
}

// ffprobeCount returns nb_read_frames of the first stream of kind ("v" or "a").
func ffprobeCount(t *testing.T, path, kind string) int64 {
	t.Helper()
	testutil.Need(t, "ffprobe")
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", kind+":0", "-count_frames",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n") // stream lines come before program lines
	n, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		t.Fatalf("ffprobe output %q: %v", out, err)
	}
	return n
}

func TestAnalyzeFFmpegFile(t *testing.T) {
	path := sampleTS(t)
	r, err := AnalyzeFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, a, tr := r.Video, r.Audio, r.Transport
	if v.Codec != "h264" || v.Frames != 150 || v.Missing != 0 || v.Duplicates != 0 || v.OutOfOrder != 0 ||
		v.PTSGaps != 0 || v.NonMonotonic != 0 || v.MaxGapFrames != 1 || v.Incomplete != 0 {
		t.Errorf("video: %+v", v)
	}
	if v.FrameDuration90k != 3000 || v.FrameIndexes != (IndexRange{0, 149}) || v.KeyFrames != 5 {
		t.Errorf("video duration %v indexes %+v key frames %d, want 3000 [0,149] 5", v.FrameDuration90k, v.FrameIndexes, v.KeyFrames)
	}
	if want := ffprobeCount(t, path, "a"); a.Frames != want {
		t.Errorf("audio frames %d, ffprobe counts %d", a.Frames, want)
	}
	if a.Codec != "aac" || a.SampleRate != 48000 || a.FrameDuration90k != 1920 || a.Missing != 0 ||
		a.PTSGaps != 0 || a.Duplicates != 0 || a.ADTSErrors != 0 || a.TruncatedFrames != 0 {
		t.Errorf("audio: %+v", a)
	}
	if tr.Packets*packetSize != tr.Bytes || tr.ContinuityErrors != 0 || tr.SyncLosses != 0 || tr.SkippedBytes != 0 ||
		tr.MalformedPackets != 0 || tr.PSICRCErrors != 0 || tr.PESErrors != 0 || tr.UnknownPIDPackets != 0 {
		t.Errorf("transport: %+v", tr)
	}
	if tr.PCRCount == 0 || tr.MaxPCRIntervalMs <= 0 || tr.MaxPCRIntervalMs > 100 {
		t.Errorf("pcr count %d max interval %v ms", tr.PCRCount, tr.MaxPCRIntervalMs)
	}
	if r.FirstVideoAt != nil || r.FirstByteAt != nil {
		t.Error("wall times set for a file")
	}
}

// TestElementaryBytesMatchFFmpeg checks PES reassembly against ffmpeg's own
// demuxer: the ES bytes counted equal ffmpeg's stream copy to raw H.264/ADTS,
// and each frame hash is the xxhash64 of ffmpeg's packet of that frame.
func TestElementaryBytesMatchFFmpeg(t *testing.T) {
	path := sampleTS(t)
	dir := t.TempDir()
	h264, adts := filepath.Join(dir, "v.h264"), filepath.Join(dir, "a.aac")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-map", "0:v", "-c", "copy", "-f", "h264", h264,
		"-map", "0:a", "-c", "copy", "-f", "adts", adts).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	r, err := AnalyzeFile(path, Options{FrameHashes: true})
	if err != nil {
		t.Fatal(err)
	}
	es := readFile(t, h264)
	if r.Video.Bytes != int64(len(es)) || r.Audio.Bytes != int64(len(readFile(t, adts))) {
		t.Fatalf("ES bytes video %d audio %d, ffmpeg %d/%d", r.Video.Bytes, r.Audio.Bytes, len(es), len(readFile(t, adts)))
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=size,flags",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(out))
	if len(lines) != len(r.Video.FrameHashes) {
		t.Fatalf("%d ffprobe packets, %d hashes", len(lines), len(r.Video.FrameHashes))
	}
	off := 0
	for i, l := range lines {
		size, flags, _ := strings.Cut(l, ",")
		n, _ := strconv.Atoi(size)
		fh := r.Video.FrameHashes[i]
		if want := xxhash.Sum64(es[off : off+n]); fh.Hash != want || fh.Index != int64(i) || fh.Key != strings.HasPrefix(flags, "K") {
			t.Fatalf("frame %d: got %+v, want hash %x key %v", i, fh, want, strings.HasPrefix(flags, "K"))
		}
		off += n
	}
}

func TestAnalyzerInjectedFaults(t *testing.T) {
	orig := readFile(t, sampleTS(t))
	const videoPID, audioPID = 256, 257

	tests := []struct {
		name  string
		edit  func(t *testing.T, ps [][]byte) []byte
		check func(t *testing.T, r Report)
	}{{
		name: "drop one frame",
		edit: func(_ *testing.T, ps [][]byte) []byte {
			sp := pesSpans(ps, videoPID)[50]
			var out [][]byte
			for i, p := range ps {
				if i >= sp[0] && i < sp[1] && pktPID(p) == videoPID {
					continue
				}
				out = append(out, p)
			}
			restampCC(out)
			return joinPackets(out)
		},
		check: func(t *testing.T, r Report) {
			v := r.Video
			if v.Frames != 149 || v.Missing != 1 || !reflect.DeepEqual(v.MissingIndexes, []int64{50}) ||
				v.MaxGapFrames != 2 || v.PTSGaps != 1 || v.Duplicates != 0 || r.Transport.ContinuityErrors != 0 {
				t.Errorf("video %+v", v)
			}
		},
	}, {
		name: "duplicate one PES",
		edit: func(_ *testing.T, ps [][]byte) []byte {
			sp := pesSpans(ps, videoPID)[70]
			var dup, out [][]byte
			for i := sp[0]; i < sp[1]; i++ {
				if pktPID(ps[i]) == videoPID {
					dup = append(dup, bytes.Clone(ps[i]))
				}
			}
			out = append(out, ps[:sp[1]]...)
			out = append(out, dup...)
			out = append(out, ps[sp[1]:]...)
			restampCC(out)
			return joinPackets(out)
		},
		check: func(t *testing.T, r Report) {
			v := r.Video
			if v.Frames != 151 || v.Duplicates != 1 || v.Missing != 0 || v.NonMonotonic != 1 || v.PTSGaps != 1 ||
				v.OutOfOrder != 0 || r.Transport.ContinuityErrors != 0 {
				t.Errorf("video %+v", v)
			}
		},
	}, {
		name: "corrupt one continuity counter",
		edit: func(t *testing.T, ps [][]byte) []byte {
			sp := pesSpans(ps, videoPID)[20]
			p := ps[sp[0]+1]
			if pktPID(p) != videoPID {
				t.Fatal("second packet of the PES is not video")
			}
			p[3] = p[3]&0xf0 | (p[3]+5)&0x0f
			return joinPackets(ps)
		},
		check: func(t *testing.T, r Report) {
			tr := r.Transport
			// The bad counter and the next (correct) one both break the sequence.
			if tr.ContinuityErrors != 2 || tr.PIDs[videoPID].ContinuityErrors != 2 || tr.PIDs[audioPID].ContinuityErrors != 0 {
				t.Errorf("continuity errors %d, video pid %+v", tr.ContinuityErrors, tr.PIDs[videoPID])
			}
			if r.Video.Frames != 150 || r.Video.Incomplete != 1 || r.Video.Missing != 0 {
				t.Errorf("video %+v", r.Video)
			}
		},
	}, {
		name: "lose one packet mid-frame",
		edit: func(_ *testing.T, ps [][]byte) []byte {
			sp := pesSpans(ps, videoPID)[30] // a key frame: several packets
			return joinPackets(append(ps[:sp[0]+2:sp[0]+2], ps[sp[0]+3:]...))
		},
		check: func(t *testing.T, r Report) {
			if r.Transport.ContinuityErrors != 1 || r.Video.Incomplete != 1 || r.Video.Frames != 150 {
				t.Errorf("transport %+v video %+v", r.Transport, r.Video)
			}
		},
	}, {
		name: "garbage between packets",
		edit: func(_ *testing.T, ps [][]byte) []byte {
			g1 := bytes.Repeat([]byte{0x47, 0x00, 0xff, 0x12, 0x47}, 10) // 50 bytes, sync-like bytes included
			g2 := []byte{0x47}
			g3 := bytes.Repeat([]byte{0xab}, 187)
			var b []byte
			for i, p := range ps {
				switch i {
				case 100:
					b = append(b, g1...)
				case 500:
					b = append(b, g2...)
				case 900:
					b = append(b, g3...)
				}
				b = append(b, p...)
			}
			return b
		},
		check: func(t *testing.T, r Report) {
			tr := r.Transport
			if tr.SyncLosses != 3 || tr.SkippedBytes != 50+1+187 || tr.Packets != int64(len(orig)/packetSize) ||
				tr.ContinuityErrors != 0 || tr.Bytes != int64(len(orig)+238) {
				t.Errorf("transport %+v", tr)
			}
			if r.Video.Frames != 150 || r.Video.Missing != 0 || r.Audio.Missing != 0 {
				t.Errorf("video %+v", r.Video)
			}
		},
	}, {
		name: "transport error indicator",
		edit: func(_ *testing.T, ps [][]byte) []byte {
			sp := pesSpans(ps, audioPID)[3]
			ps[sp[0]+1][1] |= 0x80
			return joinPackets(ps)
		},
		check: func(t *testing.T, r Report) {
			if r.Transport.TransportErrors != 1 || r.Transport.PIDs[audioPID].TransportErrors != 1 || r.Video.Frames != 150 {
				t.Errorf("transport %+v", r.Transport)
			}
		},
	}, {
		name: "truncated tail",
		edit: func(_ *testing.T, ps [][]byte) []byte {
			b := joinPackets(ps)
			return b[:len(b)-100]
		},
		check: func(t *testing.T, r Report) {
			if r.Transport.SkippedBytes != 88 || r.Transport.Packets != int64(len(orig)/packetSize-1) {
				t.Errorf("transport %+v", r.Transport)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(t, splitPackets(t, orig))
			r := analyzeBytes(b, Options{})
			tc.check(t, r)
			// The same bytes in random chunks must give the same report.
			a := NewAnalyzer(Options{})
			rng := rand.New(rand.NewPCG(1, uint64(len(b))))
			for rest := b; len(rest) > 0; {
				n := min(len(rest), 1+rng.IntN(700))
				_, _ = a.Write(rest[:n])
				rest = rest[n:]
			}
			a.Flush()
			if got := a.Report(); !reflect.DeepEqual(got, r) {
				t.Errorf("chunked report differs:\n got %+v\nwant %+v", got, r)
			}
		})
	}
}

func TestAnalyzerLiveReport(t *testing.T) {
	b := readFile(t, sampleTS(t))
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := NewAnalyzer(Options{FPS: 30, Now: func() time.Time { return now }})
	_, _ = a.Write(b[:len(b)/2])
	mid := a.Report()
	if mid.Video.Frames == 0 || mid.Video.Frames >= 150 || mid.Video.Missing != 0 || mid.Video.FrameDuration90k != 3000 {
		t.Errorf("mid-stream video %+v", mid.Video)
	}
	if mid.FirstVideoAt == nil || !mid.FirstVideoAt.Equal(now) || mid.FirstByteAt == nil {
		t.Errorf("first video at %v", mid.FirstVideoAt)
	}
	_, _ = a.Write(b[len(b)/2:])
	if r := a.Report(); r.Video.Frames != 149 {
		t.Errorf("before Flush: %d frames, want 149 (the last one is still open)", r.Video.Frames)
	}
	a.Flush()
	if r := a.Report(); r.Video.Frames != 150 || r.Video.Missing != 0 {
		t.Errorf("after Flush: %+v", r.Video)
	}
}

func TestAnalyzerEarlyReportDoesNotFreezeDuration(t *testing.T) {
	tr := newTracker(0, 3000, false)
	tr.add(frameRec{pts: 0})
	tr.add(frameRec{pts: 6000}) // a lost frame among the first two
	var r StreamReport
	tr.snapshot().fill(&r)
	if r.FrameDuration90k != 6000 {
		t.Fatalf("snapshot duration %v", r.FrameDuration90k)
	}
	for i := int64(3); i < 40; i++ {
		tr.add(frameRec{pts: i * 3000, dts: i * 3000})
	}
	r = StreamReport{}
	tr.fill(&r)
	if r.FrameDuration90k != 3000 || r.Missing != 1 || r.MaxGapFrames != 2 || r.FrameIndexes.Last != 39 {
		t.Errorf("report %+v", r)
	}
}

func TestPTSWrapIsNotAGap(t *testing.T) {
	var u unwrapper
	tr := newTracker(3000, 3000, false)
	pts := ptsWrap - 3*3000
	for range 10 {
		v := u.unwrap(pts % ptsWrap)
		tr.add(frameRec{pts: v, dts: v})
		pts += 3000
	}
	var r StreamReport
	tr.fill(&r)
	if r.PTSGaps != 0 || r.NonMonotonic != 0 || r.Missing != 0 || r.FrameIndexes.Last != 9 {
		t.Errorf("report across wrap %+v", r)
	}
}

func TestOutOfOrderAndDuplicates(t *testing.T) {
	tr := newTracker(3000, 3000, false)
	for _, i := range []int64{0, 1, 3, 2, 4, 4, 5} {
		tr.add(frameRec{pts: i * 3000, dts: i * 3000})
	}
	var r StreamReport
	tr.fill(&r)
	if r.OutOfOrder != 1 || r.Duplicates != 1 || r.Missing != 0 || r.NonMonotonic != 2 || r.MaxGapFrames != 2 {
		t.Errorf("report %+v", r)
	}
}
