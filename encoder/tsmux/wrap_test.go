package tsmux

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"onair/ingest"
	"onair/internal/testutil"
)

// PTS, DTS and PCR are 33-bit on the wire and wrap every 26.5 h. A show
// that runs past the wrap must go on: the muxer takes the unwrapped 64-bit
// PTS (so its monotonic-DTS check sees no step back), writes them modulo
// 2^33, and keeps the PCR flowing every 40 ms, also while only audio runs
// across the wrap (video down for frames 140..164, the wrap at frame 150).
// The receiver (the ingest analyser, and FFmpeg) sees every frame once.
func TestStreamAcrossThe33BitPTSWrap(t *testing.T) {
	md := loadMedia(t)
	const wrap = int64(1) << 33
	start := wrap - 150*3000 // video frame 150 (5 s in) is the first past the wrap
	pw := &packetWriter{t: t}
	m, err := New(Config{}, pw)
	if err != nil {
		t.Fatal(err)
	}
	muxAllFrom(t, m, md, start, 140, 165)
	ps := parsePackets(t, pw.buf.Bytes())
	checkStream(t, ps, Config{})

	a := ingest.NewAnalyzer(ingest.Options{})
	if _, err := a.Write(pw.buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	a.Flush()
	r := a.Report()
	v, au := r.Video, r.Audio
	if v.Frames != int64(len(md.aus)-25) || v.Missing != 25 || v.Duplicates != 0 || v.OutOfOrder != 0 || v.NonMonotonic != 0 || v.PTSJumps != 0 {
		t.Errorf("video at the receiver: %d frames, %d missing, %d dup, %d out of order, %d non-monotonic, %d jumps; want %d frames, 25 missing",
			v.Frames, v.Missing, v.Duplicates, v.OutOfOrder, v.NonMonotonic, v.PTSJumps, len(md.aus)-25)
	}
	if v.FrameIndexes.First != 0 || v.FrameIndexes.Last != int64(len(md.aus)-1) {
		t.Errorf("video indexes %+v, want 0..%d", v.FrameIndexes, len(md.aus)-1)
	}
	if au.Frames != int64(len(md.aac)) || au.Missing != 0 || au.Duplicates != 0 || au.NonMonotonic != 0 || au.PTSJumps != 0 || au.PTSGaps != 0 {
		t.Errorf("audio at the receiver: %+v", au.StreamReport)
	}

	testutil.Need(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), "wrap.ts")
	if err := os.WriteFile(out, pw.buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", "-v", "error", "-i", out, "-f", "null", "-")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() != 0 {
		t.Errorf("ffmpeg decode across the wrap: err=%v stderr=%q", err, stderr.String())
	}
}
