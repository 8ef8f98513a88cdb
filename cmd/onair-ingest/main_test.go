package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"onair/ingest"
	"onair/internal/testutil"
)

// ffmpegArgs encodes seconds of the lavfi test source to MPEG-TS at out.
func ffmpegArgs(seconds int, realtime bool, out string) []string {
	args := []string{"-v", "error", "-nostdin"}
	if realtime {
		args = append(args, "-re")
	}
	return append(args, "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=f=1000:sample_rate=48000",
		"-t", strconv.Itoa(seconds), "-c:v", "libx264", "-bf", "0", "-g", "30", "-c:a", "aac", "-f", "mpegts", out)
}

func build(t *testing.T) string {
	t.Helper()
	testutil.Need(t, "ffmpeg", "go")
	return testutil.Build(t, "onair/cmd/onair-ingest")
}

func wait(t *testing.T, ch <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		t.Fatalf("process still running after %s", d)
		return nil
	}
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

func TestAnalyzeFlag(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	ts := filepath.Join(dir, "in.ts")
	if out, err := exec.Command("ffmpeg", ffmpegArgs(2, false, ts)...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-analyze", ts, "-fps", "30", "-hashes").Output()
	if err != nil {
		t.Fatal(err)
	}
	var r ingest.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("stdout is not a report: %v\n%s", err, out)
	}
	if r.Video.Frames != 60 || r.Video.Missing != 0 || len(r.Video.FrameHashes) != 60 || r.Connections != 0 {
		t.Errorf("video %+v", r.Video.StreamReport)
	}
	rep := filepath.Join(dir, "r.json")
	if out, err := exec.Command(bin, "-analyze", ts, "-report", rep).CombinedOutput(); err != nil || len(out) != 0 {
		t.Fatalf("-report: %v, stdout %q", err, out)
	}
	var r2 ingest.Report
	if b, err := os.ReadFile(rep); err != nil || json.Unmarshal(b, &r2) != nil || r2.Video.Frames != 60 {
		t.Fatalf("report file: %v %+v", err, r2.Video.StreamReport)
	}
	if err := exec.Command(bin, "-analyze", filepath.Join(dir, "missing.ts")).Run(); err == nil {
		t.Error("missing file: exit 0")
	}
}

// TestLiveSIGINT: the report file is refreshed while the stream runs, and
// SIGINT ends with the final report and exit status 0.
func TestLiveSIGINT(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	out, rep := filepath.Join(dir, "rec.ts"), filepath.Join(dir, "rec.json")
	addr := "127.0.0.1:" + strconv.Itoa(freeUDPPort(t))
	srv := exec.Command(bin, "-listen", addr, "-out", out, "-report", rep, "-fps", "30")
	srvDone := testutil.StartProcess(t, srv)
	time.Sleep(200 * time.Millisecond) // the caller retries the handshake anyway
	pub := testutil.StartProcess(t, exec.Command("ffmpeg", ffmpegArgs(3, true, "srt://"+addr+"?mode=caller&linger=10")...))

	// While live, the report file shows a growing stream.
	deadline := time.Now().Add(10 * time.Second)
	var mid ingest.Report
	for mid.Video.Frames == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if b, err := os.ReadFile(rep); err == nil {
			if err := json.Unmarshal(b, &mid); err != nil {
				t.Fatalf("partial report file: %v", err)
			}
		}
	}
	if mid.Video.Frames == 0 || mid.Connections != 1 {
		t.Fatalf("live report: %d frames, %d connections", mid.Video.Frames, mid.Connections)
	}
	if err := wait(t, pub, 20*time.Second); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	if err := srv.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, srvDone, 10*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	var r ingest.Report
	b, err := os.ReadFile(rep)
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		t.Fatalf("final report: %v", err)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Video.Frames != 90 || r.Video.Missing != 0 || r.Connections != 1 || r.Sessions[0].SocketID == 0 ||
		r.Transport.Bytes != st.Size() || r.FirstVideoAt == nil {
		t.Errorf("final report: frames %d missing %d connections %d bytes %d (file %d)", r.Video.Frames,
			r.Video.Missing, r.Connections, r.Transport.Bytes, st.Size())
	}
}

// TestSRTLAFlags: -srtla answers an SRTLA REG1 on the given address and the
// final report has the srtla section; -forward needs -srtla and an srt:// URL.
func TestSRTLAFlags(t *testing.T) {
	bin := build(t)
	rep := filepath.Join(t.TempDir(), "r.json")
	port := freeUDPPort(t)
	srv := exec.Command(bin, "-srtla", "127.0.0.1:"+strconv.Itoa(port), "-report", rep)
	done := testutil.StartProcess(t, srv)

	// Unconnected: an ICMP port unreachable before the process listens is
	// not reported to it.
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	defer func() { _ = c.Close() }()
	reg1 := make([]byte, 258)
	reg1[0], reg1[1], reg1[2] = 0x92, 0x00, 0x42
	buf := make([]byte, 1500)
	n := 0
	for range 50 { // until the process listens (bounded)
		if _, werr := c.WriteTo(reg1, to); werr != nil {
			t.Fatal(werr)
		}
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, _, err = c.ReadFrom(buf); err == nil {
			break
		}
	}
	if n != 258 || buf[0] != 0x92 || buf[1] != 0x01 || buf[2] != 0x42 {
		t.Fatalf("REG1 answer % x (%d bytes)", buf[:min(n, 8)], n)
	}
	if err := srv.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, done, 10*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	var r ingest.Report
	if b, err := os.ReadFile(rep); err != nil || json.Unmarshal(b, &r) != nil || r.SRTLA == nil ||
		r.SRTLA.Counters.GroupsCreated != 1 || len(r.SRTLA.Groups) != 0 {
		t.Fatalf("report: %v %+v", err, r.SRTLA)
	}

	for _, args := range [][]string{
		{"-forward", "srt://127.0.0.1:9000"},
		{"-srtla", ":0", "-forward", "udp://127.0.0.1:9000"},
		{"-srtla", ":0", "-forward", "srt://127.0.0.1:9000?latency=200"},
		{"-srtla", ":0", "-forward", "srt://127.0.0.1:9000", "-out", "x.ts"},
	} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err == nil {
			t.Errorf("%v: exit 0 (%s)", args, out)
		}
	}
}
