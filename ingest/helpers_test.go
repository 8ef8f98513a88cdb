package ingest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"onair/internal/testutil"
)

// ffmpegSource is the lavfi A/V source every test encodes (DESIGN.md: no
// B-frames, fixed GOP).
var ffmpegSource = []string{
	"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
	"-f", "lavfi", "-i", "sine=f=1000:sample_rate=48000",
}

func ffmpegEncode(seconds int) []string {
	return []string{"-t", strconv.Itoa(seconds), "-c:v", "libx264", "-bf", "0", "-g", "30", "-c:a", "aac", "-f", "mpegts"}
}

var (
	sampleOnce sync.Once
	sampleDir  string
	sampleErr  error
)

// sampleTS returns the path of a 5 s H.264 + AAC TS made by the ffmpeg CLI
// (150 video frames), made once per test binary.
func sampleTS(t testing.TB) string {
	t.Helper()
	testutil.Need(t, "ffmpeg")
	sampleOnce.Do(func() {
		sampleDir, sampleErr = os.MkdirTemp("", "ingest-test-")
		if sampleErr != nil {
			return
		}
		args := append([]string{"-v", "error", "-y"}, ffmpegSource...)
		args = append(args, ffmpegEncode(5)...)
		args = append(args, filepath.Join(sampleDir, "sample.ts"))
		out, err := exec.Command("ffmpeg", args...).CombinedOutput()
		if err != nil {
			sampleErr = err
			t.Logf("ffmpeg: %s", out)
		}
	})
	if sampleErr != nil {
		t.Fatalf("make sample TS: %v", sampleErr)
	}
	return filepath.Join(sampleDir, "sample.ts")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sampleDir != "" {
		if err := os.RemoveAll(sampleDir); err != nil {
			fmt.Fprintln(os.Stderr, "ingest: remove sample dir:", err)
		}
	}
	os.Exit(code)
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// splitPackets cuts an aligned TS into 188-byte packets (copies).
func splitPackets(t testing.TB, b []byte) [][]byte {
	t.Helper()
	if len(b)%packetSize != 0 {
		t.Fatalf("TS of %d bytes is not packet-aligned", len(b))
	}
	var ps [][]byte
	for i := 0; i < len(b); i += packetSize {
		ps = append(ps, bytes.Clone(b[i:i+packetSize]))
	}
	return ps
}

func joinPackets(ps [][]byte) []byte {
	var b []byte
	for _, p := range ps {
		b = append(b, p...)
	}
	return b
}

func pktPID(p []byte) uint16 { return uint16(p[1]&0x1f)<<8 | uint16(p[2]) }
func pktPUSI(p []byte) bool  { return p[1]&0x40 != 0 }

// restampCC renumbers the continuity counters of every payload packet so that
// an edited stream has no continuity fault other than the one a test injects.
func restampCC(ps [][]byte) {
	next := map[uint16]byte{}
	for _, p := range ps {
		if p[3]&0x10 == 0 {
			continue
		}
		pid := pktPID(p)
		p[3] = p[3]&0xf0 | next[pid]&0x0f
		next[pid]++
	}
}

// pesSpans returns, for pid, the packet index ranges [start, end) of each PES
// (end is the next PES start on that PID, or len(ps)).
func pesSpans(ps [][]byte, pid uint16) [][2]int {
	var spans [][2]int
	for i, p := range ps {
		if pktPID(p) == pid && pktPUSI(p) {
			if n := len(spans); n > 0 {
				spans[n-1][1] = i
			}
			spans = append(spans, [2]int{i, len(ps)})
		}
	}
	return spans
}

// publish runs an ffmpeg SRT caller for the given seconds of real-time A/V to
// 127.0.0.1:port, with linger=10 so the tail is delivered (FACTS.md §3), and
// returns its exit error.
func publish(t testing.TB, port, seconds int, query string) error {
	t.Helper()
	url := "srt://127.0.0.1:" + strconv.Itoa(port) + "?mode=caller&linger=10&connect_timeout=2000" + query
	args := append([]string{"-v", "error", "-nostdin", "-re"}, ffmpegSource...)
	args = append(args, ffmpegEncode(seconds)...)
	args = append(args, url)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+20)*time.Second)
	defer cancel()
	select {
	case err := <-testutil.StartProcess(t, exec.Command("ffmpeg", args...)):
		return err
	case <-ctx.Done():
		return fmt.Errorf("ffmpeg publisher did not finish in %d s", seconds+20)
	}
}
