package ingest

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"onair/ingest/relay"
	"onair/internal/testutil"
)

// runServer starts a Server on a kernel-chosen loopback port and returns it
// with the port and a stop function that cancels Run and returns its error.
// The latency is raised to 500 ms so that a loaded CI machine (-race, 2 cores)
// does not make SRT drop late packets and turn exact counts into flakes.
func runServer(t *testing.T, cfg Config) (*Server, int, func() error) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	if cfg.Latency == 0 {
		cfg.Latency = 500 * time.Millisecond
	}
	srv, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server not ready")
	}
	port := 0
	if a := srv.Addr(); a != nil { // nil with Forward
		port = a.(*net.UDPAddr).Port
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return srv, port, stop
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func TestServerReceivesFFmpegPublisher(t *testing.T) {
	testutil.Need(t, "ffmpeg")
	t.Parallel()
	dir := t.TempDir()
	out, rep := filepath.Join(dir, "rec.ts"), filepath.Join(dir, "rec.json")
	srv, port, stop := runServer(t, Config{OutFile: out, ReportFile: rep, ReportInterval: 200 * time.Millisecond,
		Analyzer: Options{FPS: 30, FrameHashes: true}})
	if err := publish(t, port, 5, ""); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	live := srv.Report()
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	conns := srv.Connections()
	if len(conns) != 1 || conns[0].SocketID == 0 || conns[0].Remote == "" || conns[0].Bytes != fileSize(t, out) {
		t.Fatalf("connections %+v, file %d bytes", conns, fileSize(t, out))
	}
	var r Report
	if err := json.Unmarshal(readFile(t, rep), &r); err != nil {
		t.Fatal(err)
	}
	if r.Connections != 1 || r.Sessions[0].SocketID != conns[0].SocketID {
		t.Errorf("report connections %d sessions %+v", r.Connections, r.Sessions)
	}
	// linger=10 delivers the whole stream, so the count is exact.
	if v := r.Video; v.Frames != 150 || v.Missing != 0 || v.Duplicates != 0 || v.PTSGaps != 0 || len(v.FrameHashes) != 150 {
		t.Errorf("video frames %d missing %d dup %d gaps %d hashes %d", v.Frames, v.Missing, v.Duplicates, v.PTSGaps, len(v.FrameHashes))
	}
	if r.Transport.ContinuityErrors != 0 || r.Transport.SkippedBytes != 0 || r.Audio.Missing != 0 || r.Audio.Frames < 230 {
		t.Errorf("transport %+v audio %+v", r.Transport, r.Audio)
	}
	if r.FirstVideoAt == nil || r.FirstVideoAt.Before(conns[0].Since) {
		t.Errorf("first video at %v, connected %v", r.FirstVideoAt, conns[0].Since)
	}
	if live.Video.Frames < 149 {
		t.Errorf("live report before stop: %d frames", live.Video.Frames)
	}
	// The recording analyzes to the same figures as the live tee.
	fr, err := AnalyzeFile(out, Options{FPS: 30})
	if err != nil {
		t.Fatal(err)
	}
	if fr.Video.Frames != r.Video.Frames || fr.Audio.Frames != r.Audio.Frames || fr.Transport.Packets != r.Transport.Packets {
		t.Errorf("file report %+v differs from live %+v", fr.Video, r.Video)
	}
}

func TestServerPassphrase(t *testing.T) {
	testutil.Need(t, "ffmpeg")
	t.Parallel()
	const secret = "onair-secret-42"
	t.Run("right", func(t *testing.T) {
		t.Parallel()
		out := filepath.Join(t.TempDir(), "rec.ts")
		srv, port, stop := runServer(t, Config{OutFile: out, Passphrase: secret})
		if err := publish(t, port, 3, "&passphrase="+secret+"&pbkeylen=16"); err != nil {
			t.Fatalf("publisher: %v", err)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		r := srv.Report()
		if r.Connections != 1 || r.Video.Frames != 90 || r.Video.Missing != 0 || fileSize(t, out) != r.Transport.Bytes {
			t.Errorf("connections %d frames %d missing %d, file %d of %d bytes", r.Connections, r.Video.Frames,
				r.Video.Missing, fileSize(t, out), r.Transport.Bytes)
		}
	})
	for _, tc := range []struct{ name, query string }{
		{"wrong", "&passphrase=not-the-secret&pbkeylen=16"},
		{"missing", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "rec.ts")
			srv, port, stop := runServer(t, Config{OutFile: out, Passphrase: secret})
			if err := publish(t, port, 1, tc.query); err == nil {
				t.Error("publisher with a wrong passphrase succeeded")
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if n := len(srv.Connections()); n != 0 {
				t.Errorf("%d connections accepted", n)
			}
			if n := fileSize(t, out); n != 0 {
				t.Errorf("file has %d bytes", n)
			}
		})
	}
}

func TestServerUnencryptedRejectsEncryptedCaller(t *testing.T) {
	testutil.Need(t, "ffmpeg")
	t.Parallel()
	srv, port, stop := runServer(t, Config{})
	if err := publish(t, port, 1, "&passphrase=some-passphrase&pbkeylen=16"); err == nil {
		t.Error("encrypted publisher accepted by a server without passphrase")
	}
	_ = stop()
	if n := len(srv.Connections()); n != 0 {
		t.Errorf("%d connections", n)
	}
}

// TestServerPublisherReconnects: onaird reconnects after a restart; the
// recording keeps growing and every SRT session is counted.
func TestServerPublisherReconnects(t *testing.T) {
	testutil.Need(t, "ffmpeg")
	t.Parallel()
	out := filepath.Join(t.TempDir(), "rec.ts")
	srv, port, stop := runServer(t, Config{OutFile: out})
	for i := range 2 {
		if err := publish(t, port, 3, ""); err != nil {
			t.Fatalf("publisher %d: %v", i, err)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	conns := srv.Connections()
	if len(conns) != 2 || conns[0].SocketID == conns[1].SocketID {
		t.Fatalf("connections %+v", conns)
	}
	if size := fileSize(t, out); size != conns[0].Bytes+conns[1].Bytes || conns[0].Bytes == 0 || conns[1].Bytes == 0 {
		t.Errorf("file %d bytes, sessions %d + %d", size, conns[0].Bytes, conns[1].Bytes)
	}
	fr, err := AnalyzeFile(out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Both runs start at the same PTS: the second run's frames are duplicates.
	if r := srv.Report(); r.Connections != 2 || r.Video.Frames != 180 || fr.Video.Frames != 180 || r.Video.Duplicates != 90 {
		t.Errorf("connections %d, frames live %d file %d, duplicates %d", r.Connections, r.Video.Frames, fr.Video.Frames, r.Video.Duplicates)
	}
}

// TestServerKeepsLivePublisher: one publisher at a time; a second caller
// while the first is live is rejected and the first session is undisturbed.
func TestServerKeepsLivePublisher(t *testing.T) {
	testutil.Need(t, "ffmpeg")
	t.Parallel()
	srv, port, stop := runServer(t, Config{StreamID: "studio"})
	first := make(chan error, 1)
	go func() { first <- publish(t, port, 4, "&streamid=studio") }()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Report().Video.Frames < 10 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := publish(t, port, 1, "&streamid=studio"); err == nil {
		t.Error("second publisher accepted while the first is live")
	}
	if err := publish(t, port, 1, "&streamid=other"); err == nil {
		t.Error("publisher with another stream id accepted")
	}
	if err := <-first; err != nil {
		t.Fatalf("first publisher: %v", err)
	}
	_ = stop()
	r := srv.Report()
	if r.Connections != 1 || r.Sessions[0].StreamID != "studio" || r.Video.Frames != 120 || r.Video.Missing != 0 {
		t.Errorf("connections %d sessions %+v frames %d missing %d", r.Connections, r.Sessions, r.Video.Frames, r.Video.Missing)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{{}, {Listen: "nope"}, {Listen: "127.0.0.1:1", Passphrase: "short"}, {Listen: "127.0.0.1:1", Latency: -1},
		{Listen: "127.0.0.1:1", Forward: "srt://127.0.0.1:9"}, // forward without srtla
		{SRTLA: "nope"}, // no port
		{SRTLA: ":0", Forward: "udp://127.0.0.1:9"},                  // not srt://
		{SRTLA: ":0", Forward: "srt://127.0.0.1:9?latency=200"},      // options belong to the ends
		{SRTLA: ":0", Forward: "srt://127.0.0.1:9", OutFile: "x.ts"}, // nothing to record
		{SRTLA: ":0", Relay: relay.Config{MaxGroups: -1}},            // relay settings checked by New
		{SRTLA: ":0", Passphrase: "short"},                           // the listener's own checks still apply
	} {
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
