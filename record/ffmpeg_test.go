package record

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"onair/internal/testutil"
)

// ffmpegTS makes a TS as the ffmpeg CLI muxes it: 320x240 at 25 fps, an
// IDR every second, AAC audio. noise > 0 adds that much noise to the
// picture, for a bigger stream (12: about 3.3 MB for 8 s).
func ffmpegTS(t *testing.T, seconds, noise int) []byte {
	t.Helper()
	testutil.Need(t, "ffmpeg", "ffprobe")
	out := filepath.Join(t.TempDir(), "src.ts")
	args := []string{"-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000", "-t", fmt.Sprint(seconds)}
	if noise > 0 {
		args = append(args, "-vf", fmt.Sprintf("noise=alls=%d:allf=t", noise))
	}
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-f", "mpegts", out)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pesPTS is the PTS of a PES starting in pl.
func pesPTS(pl []byte) (int64, bool) {
	if len(pl) < 14 || !bytes.HasPrefix(pl, []byte{0, 0, 1}) || pl[7]&0x80 == 0 {
		return 0, false
	}
	b := pl[9:14]
	return int64(b[0]>>1&7)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1), true
}

// feedTS writes ts as a muxer would, one write per PES (each write runs
// from a payload start to the next), with the fake clock following the
// video PTS.
func feedTS(t *testing.T, w interface{ Write([]byte) (int, error) }, clock *clockwork.FakeClock, ts []byte) {
	t.Helper()
	pmt, video := -1, -1
	base, first := clock.Now(), int64(-1)
	start := 0
	for i := 0; i+packetSize <= len(ts); i += packetSize {
		p := ts[i : i+packetSize]
		if !pusi(p) {
			continue
		}
		if i > start {
			if _, err := w.Write(ts[start:i]); err != nil {
				t.Fatal(err)
			}
			start = i
		}
		switch int(pid(p)) {
		case pidPAT:
			if v, ok := parsePAT(section(p)); ok {
				pmt = int(v)
			}
		case pmt:
			if v, ok := parsePMT(section(p)); ok {
				video = int(v)
			}
		case video:
			if pts, ok := pesPTS(payload(p)); ok {
				if first < 0 {
					first = pts
				}
				at := base.Add(time.Duration(pts-first) * time.Second / 90000)
				if d := at.Sub(clock.Now()); d > 0 {
					clock.Advance(d)
				}
			}
		}
	}
	if _, err := w.Write(ts[start : len(ts)/packetSize*packetSize]); err != nil {
		t.Fatal(err)
	}
}

// probe decodes a segment with ffprobe (video frames) and ffmpeg (every
// stream), failing on any decode error, and returns its video frames and
// whether the first is a key frame.
func probe(t *testing.T, path string) (frames int, firstKey bool) {
	t.Helper()
	name := filepath.Base(path)
	var out, errs bytes.Buffer
	cmd := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=key_frame", "-of", "csv=p=0", path)
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil || errs.Len() > 0 {
		t.Errorf("ffprobe %s: %v\n%s", name, err, errs.String())
	}
	lines := strings.Fields(out.String())
	for _, l := range lines {
		if strings.HasPrefix(l, "1") || strings.HasPrefix(l, "0") {
			frames++
		}
	}
	if b, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(b) > 0 {
		t.Errorf("ffmpeg decode %s: %v\n%s", name, err, b)
	}
	return frames, len(lines) > 0 && strings.HasPrefix(lines[0], "1")
}

// The muxer is not the only source of a TS on the box: what ffmpeg muxes
// (random access indicators on audio too, its own table cadence) is cut
// into segments that each decode alone from a key frame, and together hold
// every frame.
func TestFFmpegTSRecordsInSegmentsThatEachDecodeFromAKeyFrame(t *testing.T) {
	ts := ffmpegTS(t, 6, 0)
	g := newRig(t, Config{Segment: 2 * time.Second}, Deps{})
	if err := g.r.Start("test"); err != nil {
		t.Fatal(err)
	}
	feedTS(t, g.r, g.clock, ts)
	g.stop()

	src := filepath.Join(t.TempDir(), "whole.ts")
	if err := os.WriteFile(src, ts, 0o644); err != nil {
		t.Fatal(err)
	}
	want, _ := probe(t, src)
	got := files(t, g.dir)
	if len(got) != 3 {
		t.Fatalf("segments %q, want 3 of 2 s from 6 s", got)
	}
	total := 0
	for _, f := range got {
		n, key := probe(t, f)
		if !key {
			t.Errorf("%s does not start with a key frame", filepath.Base(f))
		}
		if n != 50 {
			t.Errorf("%s has %d frames, want 50 (2 s)", filepath.Base(f), n)
		}
		total += n
	}
	if total != want || want != 150 {
		t.Fatalf("segments hold %d frames, the source %d (want 150)", total, want)
	}
}
