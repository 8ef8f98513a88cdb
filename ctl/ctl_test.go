package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"onair/daemon"
	"onair/encoder"
	"onair/supervisor"
)

// Operators type `onairctl status -json` (single dash) out of habit; pflag
// would read it as -j -s -o -n.
func TestSingleDashLongFlagIsAccepted(t *testing.T) {
	got := NormalizeArgs([]string{"status", "-json", "--socket", "/x", "-h"})
	want := []string{"status", "--json", "--socket", "/x", "-h"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestStatusOverUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	st := daemon.Status{
		Version: "test", State: "degraded",
		Children: []daemon.ChildStatus{{Status: supervisor.Status{Name: "encoder-b", Role: "encode", PID: 42, State: "backoff", Restarts: 3, LastError: "stalled: no progress for 500ms"}}},
		Video:    daemon.VideoStatus{Switch: encoder.SwitchStatus{Twins: true, Locked: false, Active: "encoder-a"}},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, _ *http.Request) { json.NewEncoder(w).Encode(st) })
	failovers := 0
	mux.HandleFunc("POST /api/failover/video", func(w http.ResponseWriter, _ *http.Request) {
		failovers++
		if failovers == 1 {
			w.WriteHeader(http.StatusAccepted)
			w.Write([]byte(`{"result":"pending","target":"encoder-b","detail":"twins unlocked: encoder-b takes over later"}`))
			return
		}
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"error":"encoder: failover: encoder-b is not running"}`))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()

	run := func(args ...string) (string, error) {
		root := Root()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(NormalizeArgs(append([]string{"--socket", sock}, args...)))
		err := root.ExecuteContext(context.Background())
		return out.String(), err
	}
	out, err := run("status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DEGRADED", "UNLOCKED", "encoder-b", "backoff", "stalled: no progress"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	out, err = run("status", "-json")
	if err != nil || !strings.Contains(out, `"encoder-b"`) {
		t.Fatalf("status -json: %v\n%s", err, out)
	}
	if out, err := run("failover", "video"); err != nil || !strings.Contains(out, "pending: twins unlocked") {
		t.Fatalf("pending failover must say so: %v\n%s", err, out)
	}
	if _, err := run("failover", "video"); err == nil || !strings.Contains(err.Error(), "encoder-b is not running") {
		t.Fatalf("refused failover must say why: %v", err)
	}
	if _, err := run("failover", "audio"); err == nil {
		t.Fatal("failover audio accepted")
	}
}

func TestNoDaemonSaysSo(t *testing.T) {
	root := Root()
	root.SetArgs([]string{"--socket", filepath.Join(t.TempDir(), "none.sock"), "status"})
	err := root.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is onaird running?") {
		t.Fatalf("got %v", err)
	}
}
