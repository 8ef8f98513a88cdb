package netlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"onair/internal/testutil"
)

// startForwarder runs a Forwarder from the test's namespace to dial inside
// ns; it is stopped in t.Cleanup and must return nil.
func startForwarder(t *testing.T, ns, dial string) *Forwarder {
	t.Helper()
	f, err := NewForwarder(ForwardConfig{Listen: "127.0.0.1:0", Namespace: ns, Dial: dial}, testutil.NilLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("forwarder Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("forwarder Run did not return after the cancel")
		}
	})
	return f
}

// get fetches path through the forwarder with a fresh connection.
func get(t *testing.T, f *Forwarder, path string) (string, error) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + f.Addr().String() + path)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// The demo's status page: onaird listens on 127.0.0.1 inside the box
// namespace, where the host cannot reach it; through the forwarder the
// host's loopback gets the box's answer, and the box sees a loopback peer.
func TestForwarderReachesALoopbackListenerInsideTheNamespace(t *testing.T) {
	l := ForTest(t, Options{Uplinks: []string{"wired"}})
	var ln net.Listener
	must(t, l.Do(l.Box, func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}))
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "box %s from %s", r.URL.Path, r.RemoteAddr)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	// The same address in the test's own namespace has nothing behind it.
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		_ = c.Close()
		t.Skipf("something listens on %s outside the lab too; cannot tell the namespaces apart", ln.Addr())
	}
	f := startForwarder(t, l.Box, ln.Addr().String())
	for i := range 3 {
		body, err := get(t, f, fmt.Sprintf("/api/status/%d", i))
		if err != nil {
			t.Fatalf("request %d through the forwarder: %v", i, err)
		}
		want := fmt.Sprintf("box /api/status/%d from 127.0.0.1:", i)
		if len(body) < len(want) || body[:len(want)] != want {
			t.Errorf("request %d answered %q, want %q…", i, body, want)
		}
	}
}

// Nothing listening inside the namespace (onaird not up yet, or
// restarting) closes that one connection; the forwarder goes on and the
// next connection, once the listener is there, gets through.
func TestForwarderSurvivesARefusedDial(t *testing.T) {
	l := ForTest(t, Options{Uplinks: []string{"wired"}})
	var ln net.Listener
	must(t, l.Do(l.Box, func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}))
	addr := ln.Addr().String()
	must(t, ln.Close())
	f := startForwarder(t, l.Box, addr)
	if body, err := get(t, f, "/"); err == nil {
		t.Fatalf("nothing listens in the box, yet the request was answered %q", body)
	}
	must(t, l.Do(l.Box, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}))
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "up")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	if body, err := get(t, f, "/"); err != nil || body != "up" {
		t.Fatalf("after the listener came: %q, %v; want \"up\"", body, err)
	}
}

// Stopping the forwarder closes the connections it holds open (a browser's
// keep-alive, a long poll), so Run returns instead of waiting on them.
func TestForwarderStopClosesOpenConnections(t *testing.T) {
	l := ForTest(t, Options{Uplinks: []string{"wired"}})
	var ln net.Listener
	must(t, l.Do(l.Box, func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}))
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c // held open, never answered
		}
	}()
	f, err := NewForwarder(ForwardConfig{Listen: "127.0.0.1:0", Namespace: l.Box, Dial: ln.Addr().String()}, testutil.NilLogger(t))
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	c, err := net.Dial("tcp", f.Addr().String())
	must(t, err)
	defer func() { _ = c.Close() }()
	var inner net.Conn
	select {
	case inner = <-accepted:
		defer func() { _ = inner.Close() }()
	case <-time.After(10 * time.Second):
		t.Fatal("the forwarder never dialled inside the box")
	}
	// A byte across proves the join is made, not just the dial under way.
	_, err = c.Write([]byte("x"))
	must(t, err)
	must(t, inner.SetReadDeadline(time.Now().Add(5*time.Second)))
	if b := make([]byte, 1); func() error { _, err := io.ReadFull(inner, b); return err }() != nil || b[0] != 'x' {
		t.Fatalf("the byte did not cross the forwarder: %q", b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return with a connection open")
	}
	must(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("client side after the stop: %v, want EOF or reset", err)
	}
}

// An unknown namespace is refused by NewForwarder, before it listens.
func TestForwarderRefusesAnUnknownNamespace(t *testing.T) {
	_, err := NewForwarder(ForwardConfig{Listen: "127.0.0.1:0", Namespace: "onair-no-such-ns", Dial: "127.0.0.1:1"}, nil)
	if !errors.Is(err, ErrUnknownNamespace) {
		t.Fatalf("got %v, want ErrUnknownNamespace", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}
