package web

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

type fakeBox struct{ failovers int }

func (b *fakeBox) Status() any { return map[string]any{"state": "on_air", "failovers": b.failovers} }
func (b *fakeBox) FailoverVideo() (string, bool, error) {
	if b.failovers >= 2 {
		return "", false, errors.New("encoder: failover: encoder-b is not running")
	}
	b.failovers++
	return "encoder-b", b.failovers == 2, nil
}

func (b *fakeBox) SetVideoBitrate(kbps int) (uint64, error) {
	if kbps < 100 {
		return 0, errors.New("bitrate 5 kbps: must be 100..100000")
	}
	return 90, nil
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

// onairctl talks to the unix socket; the web page to TCP: both must serve the same API.
func TestStatusOnTCPAndUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	box := &fakeBox{}
	s, err := New(Config{Listen: addr, Socket: sock}, box, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	get := func(c *http.Client, url string) map[string]any {
		t.Helper()
		var resp *http.Response
		var err error
		for range 100 {
			if resp, err = c.Get(url); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("content type %q", ct)
		}
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := get(http.DefaultClient, "http://"+addr+"/api/status"); m["state"] != "on_air" {
		t.Fatalf("tcp: %v", m)
	}
	uc := unixClient(sock)
	if m := get(uc, "http://onaird/api/status"); m["state"] != "on_air" {
		t.Fatalf("unix: %v", m)
	}
	resp, err := uc.Post("http://onaird/api/failover/video", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("failover: %v %v", err, resp)
	}
	resp.Body.Close()
	// Unlocked twins: the failover is accepted but waits for a seamless point.
	resp, err = uc.Post("http://onaird/api/failover/video", "", nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("pending failover must be 202: %v %v", err, resp)
	}
	var pend map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&pend); err != nil || pend["result"] != "pending" || pend["target"] != "encoder-b" {
		t.Fatalf("pending failover answer %v %v", pend, err)
	}
	resp.Body.Close()
	resp, err = uc.Post("http://onaird/api/failover/video", "", nil)
	if err != nil || resp.StatusCode != http.StatusConflict {
		t.Fatalf("refused failover must be 409: %v %v", err, resp)
	}
	resp.Body.Close()
	resp, err = uc.Post("http://onaird/api/video/bitrate", "application/json", strings.NewReader(`{"kbps": 2500}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("bitrate: %v %v", err, resp)
	}
	resp.Body.Close()
	for _, body := range []string{`{"kbps": 5}`, `nonsense`} {
		resp, err = uc.Post("http://onaird/api/video/bitrate", "application/json", strings.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("bad bitrate %s: %v %v", body, err, resp)
		}
		resp.Body.Close()
	}
	if resp, _ := http.Get("http://" + addr + "/api/failover/video"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET on a command: %d", resp.StatusCode)
	}
}

func TestNoListenerIsAConfigError(t *testing.T) {
	if _, err := New(Config{}, &fakeBox{}, zaptest.NewLogger(t)); err == nil {
		t.Fatal("accepted")
	}
}
