package web

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"onair/web/api"
	"onair/web/metrics"
)

type fakeBox struct {
	mu        sync.Mutex
	failovers int
	kbps      []int
	uplinks   int
	audio     []api.AudioMode
	onair     []bool
	presses   []string
	recording []bool
}

func (b *fakeBox) Status() api.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return api.Status{State: api.BoxOnAir, Version: "test", Video: api.VideoStatus{Switch: api.SwitchStatus{Switches: uint64(b.failovers)}}}
}

func (b *fakeBox) FailoverVideo() (string, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failovers >= 2 {
		return "", false, errors.New("encoder: failover: encoder-b is not running")
	}
	b.failovers++
	return "encoder-b", b.failovers == 2, nil
}

func (b *fakeBox) SetVideoBitrate(kbps int) (api.BitrateResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if kbps < 100 {
		return api.BitrateResult{}, errors.New("bitrate 5 kbps: must be 100..100000")
	}
	b.kbps = append(b.kbps, kbps)
	return api.BitrateResult{Result: api.BitrateSet, AtIndex: 90, Kbps: kbps}, nil
}

func (b *fakeBox) SetUplink(name string, enabled bool) (api.UplinkStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if name != "cell1" {
		return api.UplinkStatus{}, fmt.Errorf("bond: uplink %q: %w", name, ErrNotFound)
	}
	b.uplinks++
	st := api.UplinkState(api.UplinkUp)
	if !enabled {
		st = api.UplinkDisabled
	}
	return api.UplinkStatus{Name: name, Enabled: enabled, State: st}, nil
}

func (b *fakeBox) SetAudioSource(m api.AudioMode) (api.AudioStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m != api.AudioAuto && m != api.AudioMain && m != api.AudioBackup {
		return api.AudioStatus{}, fmt.Errorf("audio: unknown mode %q", m)
	}
	b.audio = append(b.audio, m)
	return api.AudioStatus{Mode: m, Active: "backup"}, nil
}

func (b *fakeBox) SetOnAir(ctx context.Context, live bool) (api.OnAirStatus, error) {
	if ctx.Err() != nil {
		return api.OnAirStatus{}, ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onair = append(b.onair, live)
	if live {
		return api.OnAirStatus{Phase: api.OnAirLive, Reason: "operator"}, nil
	}
	return api.OnAirStatus{Phase: api.OnAirStopped, Reason: "operator"}, nil
}

func (b *fakeBox) PanelPress(button string, long bool) (api.PanelPressResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if button != "failover" {
		return api.PanelPressResult{}, fmt.Errorf("board: button %q: %w", button, ErrNotFound)
	}
	b.presses = append(b.presses, button)
	return api.PanelPressResult{Button: button, Long: long, Action: "failover video"}, nil
}

func (b *fakeBox) SetRecording(_ context.Context, on bool) (api.RecordingStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.recording = append(b.recording, on)
	if !on {
		return api.RecordingStatus{State: api.RecordingStopped, Reason: "operator"}, nil
	}
	if len(b.recording) > 2 {
		return api.RecordingStatus{State: api.RecordingError}, errors.New("record: disk full: 0 bytes free in /rec")
	}
	return api.RecordingStatus{State: api.RecordingRecording, Reason: "operator"}, nil
}

func (b *fakeBox) calls() (failovers, bitrates int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failovers, len(b.kbps)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// start runs s until the test ends and waits until it serves.
func start(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after stop: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run returned before ready: %v", err)
	}
}

// tcpServer is a server on a free loopback port.
func tcpServer(t *testing.T, box Box) (addr string) {
	t.Helper()
	addr = freeAddr(t)
	s, err := New(withAuth(t, Config{Listen: addr}), box, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	return addr
}

// send does one raw request and returns the status code, the Allow header
// and the body.
func send(t *testing.T, addr string, req *http.Request) (code int, allow, body string) {
	t.Helper()
	req.URL.Scheme, req.URL.Host = "http", addr
	if req.Host == "placeholder" {
		req.Host = addr
	}
	if req.Header.Get("X-Test-No-Session") == "" {
		sess := sessionOf(t, addr)
		req.Header.Add("Cookie", sess.cookie)
		req.Header.Set("X-CSRF-Token", sess.csrf)
	}
	req.Header.Del("X-Test-No-Session")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }() // only read from
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Allow"), string(b)
}

func newReq(t *testing.T, method, path, contentType, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "http://placeholder"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

// onairctl talks to the unix socket; the web page to TCP: both must serve the same API.
func TestStatusAndCommandsOnTCPAndUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	addr := freeAddr(t)
	box := &fakeBox{}
	s, err := New(withAuth(t, Config{Listen: addr, Socket: sock}), box, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	ctx := context.Background()
	tc, uc := tcpClient(t, addr), api.NewUnixClient(sock)
	for name, c := range map[string]*api.Client{"tcp": tc, "unix": uc} {
		st, serr := c.Status(ctx)
		if serr != nil || st.State != api.BoxOnAir || st.Version != "test" {
			t.Fatalf("%s status: %v %+v", name, serr, st)
		}
	}
	r, err := uc.FailoverVideo(ctx)
	if err != nil || r.Result != api.FailoverSwitched || r.Target != "encoder-b" {
		t.Fatalf("failover: %v %+v", err, r)
	}
	// Unlocked twins: the failover is accepted but waits for a seamless point.
	r, err = tc.FailoverVideo(ctx)
	if err != nil || r.Result != api.FailoverPending || r.Target != "encoder-b" || !strings.Contains(r.Detail, "twins unlocked") {
		t.Fatalf("pending failover: %v %+v", err, r)
	}
	var se *api.StatusError
	if _, err = uc.FailoverVideo(ctx); !errors.As(err, &se) || se.Code != http.StatusConflict || se.Message != "encoder: failover: encoder-b is not running" {
		t.Fatalf("refused failover must be 409 with the reason: %v", err)
	}
	b, err := uc.SetVideoBitrate(ctx, 2500)
	if err != nil || b.Result != "ok" || b.AtIndex != 90 || b.Kbps != 2500 {
		t.Fatalf("bitrate: %v %+v", err, b)
	}
	if _, err = tc.SetVideoBitrate(ctx, 5); !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Message, "must be 100..100000") {
		t.Fatalf("refused bitrate must be 400 with the reason: %v", err)
	}
	if f, n := box.calls(); f != 2 || n != 1 {
		t.Fatalf("box saw %d failovers, %d bitrates", f, n)
	}
}

func TestMalformedBodyIs400(t *testing.T) {
	box := &fakeBox{}
	addr := tcpServer(t, box)
	for _, c := range []struct{ path, body string }{
		{api.PathVideoBitrate, `nonsense`},
		{api.PathVideoBitrate, ``},
		{api.PathVideoBitrate, `{"kbps": 2500, "unknown": 1}`},
		{api.PathVideoBitrate, `{"kbps": 2500} {"kbps": 9000}`},
		{api.PathFailoverVideo, `[1]`},
		{api.PathFailoverVideo, `{"target": "encoder-a"}`},
	} {
		code, _, body := send(t, addr, newReq(t, http.MethodPost, c.path, "application/json", c.body))
		if code != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
			t.Errorf("POST %s %q: %d %s", c.path, c.body, code, body)
		}
	}
	if f, n := box.calls(); f != 0 || n != 0 {
		t.Fatalf("a malformed body reached the box: %d failovers, %d bitrates", f, n)
	}
	// An empty body and {} are both a failover without options.
	for _, body := range []string{``, `{}`} {
		if code, _, b := send(t, addr, newReq(t, http.MethodPost, api.PathFailoverVideo, "application/json", body)); code/100 != 2 {
			t.Errorf("failover with body %q: %d %s", body, code, b)
		}
	}
}

// A page on any site can make the operator's browser POST to 127.0.0.1:
// fetch() with mode no-cors, or a form. The browser says where it comes from.
func TestCrossOriginPOSTIsRefused(t *testing.T) {
	box := &fakeBox{}
	addr := tcpServer(t, box)
	for _, h := range []map[string]string{
		{"Origin": "http://evil.example"},
		{"Origin": "null"},
		{"Origin": "http://127.0.0.1:1"}, // another port is another origin
		{"Origin": "http://" + addr, "Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
	} {
		req := newReq(t, http.MethodPost, api.PathFailoverVideo, "application/json", `{}`)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		if code, _, body := send(t, addr, req); code != http.StatusForbidden || !strings.Contains(body, "cross-origin") {
			t.Errorf("POST with %v: %d %s", h, code, body)
		}
		req = newReq(t, http.MethodGet, api.PathStatus, "", "")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		if code, _, _ := send(t, addr, req); code != http.StatusForbidden {
			t.Errorf("GET status with %v: %d", h, code)
		}
	}
	if f, _ := box.calls(); f != 0 {
		t.Fatalf("a cross-origin request reached the box: %d failovers", f)
	}
	// The box's own page (same origin) may.
	req := newReq(t, http.MethodPost, api.PathFailoverVideo, "application/json", `{}`)
	req.Header.Set("Origin", "http://"+addr)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if code, _, body := send(t, addr, req); code != http.StatusOK {
		t.Fatalf("same-origin POST: %d %s", code, body)
	}
}

// A form POST or a "simple" fetch needs no CORS preflight only with
// text/plain, application/x-www-form-urlencoded or multipart/form-data.
func TestTextPlainPOSTIsRefused(t *testing.T) {
	box := &fakeBox{}
	addr := tcpServer(t, box)
	for _, ct := range []string{"", "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonp"} {
		for _, path := range []string{api.PathFailoverVideo, api.PathVideoBitrate} {
			code, _, body := send(t, addr, newReq(t, http.MethodPost, path, ct, `{"kbps": 2500}`))
			if code != http.StatusUnsupportedMediaType || !strings.Contains(body, "application/json") {
				t.Errorf("POST %s as %q: %d %s", path, ct, code, body)
			}
		}
	}
	if f, n := box.calls(); f != 0 || n != 0 {
		t.Fatalf("a non-JSON POST reached the box: %d failovers, %d bitrates", f, n)
	}
	if code, _, body := send(t, addr, newReq(t, http.MethodPost, api.PathVideoBitrate, "application/json; charset=utf-8", `{"kbps": 2500}`)); code != http.StatusOK {
		t.Fatalf("JSON with a charset: %d %s", code, body)
	}
}

// DNS rebinding: evil.example re-pointed to 127.0.0.1 makes the browser
// treat our API as same-origin with the attacker's page; only the Host
// header tells.
func TestDNSRebindingHostIsRefused(t *testing.T) {
	box := &fakeBox{}
	addr := tcpServer(t, box)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"evil.example:" + port, "evil.example", "127.0.0.1.evil.example:" + port, "10.0.0.1:" + port} {
		req := newReq(t, http.MethodPost, api.PathFailoverVideo, "application/json", `{}`)
		req.Host = host
		req.Header.Set("Origin", "http://"+host) // same origin as far as the browser knows
		if code, _, body := send(t, addr, req); code != http.StatusForbidden || !strings.Contains(body, "loopback names only") {
			t.Errorf("Host %q: %d %s", host, code, body)
		}
	}
	if f, _ := box.calls(); f != 0 {
		t.Fatalf("a rebound request reached the box: %d failovers", f)
	}
	for _, host := range []string{addr, "localhost:" + port, "[::1]:" + port, "127.0.0.2:" + port} {
		req := newReq(t, http.MethodGet, api.PathStatus, "", "")
		req.Host = host
		if code, _, body := send(t, addr, req); code != http.StatusOK {
			t.Errorf("Host %q: %d %s", host, code, body)
		}
	}
}

func TestWrongMethodIs405WithAllow(t *testing.T) {
	box := &fakeBox{}
	addr := tcpServer(t, box)
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodGet, api.PathFailoverVideo, "POST"},
		{http.MethodPut, api.PathVideoBitrate, "POST"},
		{http.MethodPost, api.PathStatus, "GET, HEAD"},
		{http.MethodDelete, "/", "GET, HEAD"},
	} {
		code, allow, body := send(t, addr, newReq(t, c.method, c.path, "application/json", `{}`))
		if code != http.StatusMethodNotAllowed || allow != c.allow || !strings.Contains(body, `"error"`) {
			t.Errorf("%s %s: %d Allow %q %s", c.method, c.path, code, allow, body)
		}
	}
	if f, _ := box.calls(); f != 0 {
		t.Fatalf("GET on a command ran it: %d failovers", f)
	}
	if code, _, _ := send(t, addr, newReq(t, http.MethodHead, api.PathStatus, "", "")); code != http.StatusOK {
		t.Fatalf("HEAD status: %d", code)
	}
	if code, _, body := send(t, addr, newReq(t, http.MethodGet, "/api/nothing", "", "")); code != http.StatusNotFound || !strings.Contains(body, `"error"`) {
		t.Fatalf("unknown path: %d %s", code, body)
	}
}

func TestBodyOverLimitIs413(t *testing.T) {
	box := &fakeBox{}
	addr := tcpServer(t, box)
	big := `{"kbps": 2500` + strings.Repeat(" ", api.MaxBodyBytes) + `}`
	for _, path := range []string{api.PathFailoverVideo, api.PathVideoBitrate} {
		code, _, body := send(t, addr, newReq(t, http.MethodPost, path, "application/json", big))
		if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "over the limit") {
			t.Errorf("POST %s with %d bytes: %d %s", path, len(big), code, body)
		}
	}
	if f, n := box.calls(); f != 0 || n != 0 {
		t.Fatalf("an oversized POST reached the box: %d failovers, %d bitrates", f, n)
	}
}

func TestHeaderOverLimitIs431(t *testing.T) {
	addr := tcpServer(t, &fakeBox{})
	req := newReq(t, http.MethodGet, api.PathStatus, "", "")
	req.Header.Set("X-Big", strings.Repeat("x", 2*maxHeaderBytes))
	if code, _, _ := send(t, addr, req); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a %d-byte header: %d", 2*maxHeaderBytes, code)
	}
}

func TestEveryListenerHasTimeouts(t *testing.T) {
	s, err := New(withAuth(t, Config{Listen: "127.0.0.1:0"}), &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := s.httpServer(context.Background(), s.tcp)
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Fatalf("unbounded server: header %v read %v write %v idle %v max header %d",
			srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
}

// Slowloris: a client that sends half a request and waits must not hold a
// connection (and a goroutine) for ever.
func TestSilentClientIsDisconnected(t *testing.T) {
	addr := freeAddr(t)
	s, err := New(withAuth(t, Config{Listen: addr}), &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.timeout.readHeader = 50 * time.Millisecond
	start(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }() // the server has hung up (or the test failed)
	if _, err = io.WriteString(c, "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"); err != nil {
		t.Fatal(err)
	}
	// Our own deadline only bounds the test; the server must hang up first.
	if err = c.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = bufio.NewReader(c).ReadString('\n')
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("the server kept a silent connection open: %v", err)
	}
}

func TestNonLoopbackListenIsRefused(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:8080", ":8080", "[::]:8080", "192.168.1.10:8080", "example.com:8080", "8080"} {
		_, err := New(withAuth(t, Config{Listen: listen}), &fakeBox{}, zaptest.NewLogger(t))
		if err == nil {
			t.Errorf("api.listen %q accepted", listen)
			continue
		}
		if listen != "8080" && !strings.Contains(err.Error(), "api.listen") || listen != "8080" && !strings.Contains(err.Error(), "plain HTTP is for loopback only") {
			t.Errorf("api.listen %q: unclear error %v", listen, err)
		}
	}
	for _, listen := range []string{"127.0.0.1:8080", "[::1]:8080", "localhost:8080", "LocalHost:8080"} {
		if _, err := New(withAuth(t, Config{Listen: listen}), &fakeBox{}, zaptest.NewLogger(t)); err != nil {
			t.Errorf("api.listen %q refused: %v", listen, err)
		}
	}
}

func TestNoListenerIsAConfigError(t *testing.T) {
	if _, err := New(Config{}, &fakeBox{}, zaptest.NewLogger(t)); err == nil {
		t.Fatal("accepted")
	}
}

// net.Listen("unix") binds and listens at once with the umask's mode; a
// chmod after it leaves a window in which anyone may connect. The socket
// must have its final mode before it can accept a connection.
func TestSocketIsNeverConnectableWithLooserMode(t *testing.T) {
	old := syscall.Umask(0) // the loosest: a socket bound now is 0777
	defer syscall.Umask(old)
	sock := filepath.Join(t.TempDir(), "api.sock")
	var checked bool
	testHookBeforeListen = func(path string) {
		checked = true
		fi, err := os.Lstat(path)
		if err != nil {
			t.Errorf("bound socket: %v", err)
			return
		}
		if perm := fi.Mode().Perm(); perm != 0o660 {
			t.Errorf("socket mode %v before listen, want 0660", perm)
		}
		if c, err := net.Dial("unix", path); err == nil {
			_ = c.Close()
			t.Error("socket connectable before its mode is set")
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("connect before listen: %v, want connection refused", err)
		}
	}
	defer func() { testHookBeforeListen = func(string) {} }()
	s, err := New(Config{Socket: sock}, &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	if !checked {
		t.Fatal("the socket was not created through listenUnix")
	}
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket %v, want a socket with 0660", fi.Mode())
	}
	if _, err := api.NewUnixClient(sock).Status(context.Background()); err != nil {
		t.Fatalf("status over the socket: %v", err)
	}
}

// staleSocket leaves a socket file nobody listens on, as a crashed onaird does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	staleSocket(t, sock)
	s, err := New(Config{Socket: sock}, &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	if _, err := api.NewUnixClient(sock).Status(context.Background()); err != nil {
		t.Fatalf("status over the socket: %v", err)
	}
}

// A second onaird (or anything else) answering on the socket keeps it: the
// new server fails instead of stealing it.
func TestLiveSocketIsNotStolen(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	first, err := New(Config{Socket: sock}, &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	start(t, first)
	second, err := New(Config{Socket: sock}, &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	err = second.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "another process answers on it") {
		t.Fatalf("second server on a live socket: %v", err)
	}
	if _, err := api.NewUnixClient(sock).Status(context.Background()); err != nil {
		t.Fatalf("the first server lost its socket: %v", err)
	}
}

func TestNonSocketFileIsNotRemoved(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	if err := os.WriteFile(sock, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Socket: sock}, &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Run over a regular file: %v", err)
	}
	if b, err := os.ReadFile(sock); err != nil || string(b) != "precious" {
		t.Fatalf("the file was touched: %v %q", err, b)
	}
}

// The lead runs the API under a restarting supervisor: a taken port must
// be an error from Run (not a hang, not a crash), Ready must stay open, and
// the other listener must not be left behind.
func TestTakenPortMakesRunFailAndReadyStayOpen(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }() // only holds the port
	sock := filepath.Join(t.TempDir(), "api.sock")
	s, err := New(withAuth(t, Config{Listen: taken.Addr().String(), Socket: sock}), &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "api.listen") || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Run on a taken port: %v", err)
	}
	select {
	case <-s.Ready():
		t.Fatal("Ready closed although api.listen never bound")
	default:
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket left behind after Run failed: %v", err)
	}
	// Freed, the next Run (the supervisor's restart) serves.
	addr := taken.Addr().String()
	if err := taken.Close(); err != nil {
		t.Fatal(err)
	}
	start(t, s)
	if _, err := tcpClient(t, addr).Status(context.Background()); err != nil {
		t.Fatalf("status after the restart: %v", err)
	}
}

// onaird says READY=1 when Ready closes: not while one listener is down,
// even if the other serves.
func TestReadyWaitsForEveryListener(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	other, err := New(Config{Socket: sock}, &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	start(t, other) // holds the socket
	s, err := New(withAuth(t, Config{Listen: freeAddr(t), Socket: sock}), &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Ready():
		t.Fatal("Ready before Run")
	default:
	}
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("Run succeeded on a taken socket")
	}
	select {
	case <-s.Ready():
		t.Fatal("Ready closed although api.socket never served")
	default:
	}
}

func TestSocketIsRemovedOnStop(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	s, err := New(Config{Socket: sock}, &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after stop: %v", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket left after stop: %v", err)
	}
}

// POST /api/uplinks/{name} reaches the box with the name from the path; an
// unknown uplink is 404, a malformed body 400 and never reaches the box.
func TestUplinkEnableDisable(t *testing.T) {
	box := &fakeBox{}
	addr := tcpServer(t, box)
	c := tcpClient(t, addr)
	st, err := c.SetUplink(t.Context(), "cell1", false)
	if err != nil || st.Name != "cell1" || st.Enabled || st.State != api.UplinkDisabled {
		t.Fatalf("disable cell1: %+v, %v", st, err)
	}
	_, err = c.SetUplink(t.Context(), "cell9", true)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Fatalf("unknown uplink: %v", err)
	}
	for _, body := range []string{``, `{"enabled": "yes"}`, `{"enabled": true, "x": 1}`} {
		code, _, b := send(t, addr, newReq(t, http.MethodPost, api.PathUplinks+"cell1", "application/json", body))
		if code != http.StatusBadRequest {
			t.Errorf("body %q: %d %s", body, code, b)
		}
	}
	if code, _, b := send(t, addr, newReq(t, http.MethodGet, api.PathUplinks+"cell1", "", "")); code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d %s", code, b)
	}
	box.mu.Lock()
	defer box.mu.Unlock()
	if box.uplinks != 1 {
		t.Fatalf("box saw %d uplink calls, want 1", box.uplinks)
	}
}

// POST /api/audio/source reaches the box with the mode; a mode the box
// refuses is 400 with its reason, a malformed body 400 that never reaches it.
func TestAudioSourceForcesAndRefusesUnknownModes(t *testing.T) {
	box := &fakeBox{}
	addr := tcpServer(t, box)
	c := tcpClient(t, addr)
	st, err := c.SetAudioSource(t.Context(), api.AudioBackup)
	if err != nil || st.Mode != api.AudioBackup {
		t.Fatalf("force backup: %+v, %v", st, err)
	}
	_, err = c.SetAudioSource(t.Context(), "desk")
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Error(), "unknown mode") {
		t.Fatalf("unknown mode: %v", err)
	}
	for _, body := range []string{``, `{"mode": 1}`, `{"mode": "auto", "x": 1}`} {
		code, _, b := send(t, addr, newReq(t, http.MethodPost, api.PathAudioSource, "application/json", body))
		if code != http.StatusBadRequest {
			t.Errorf("body %q: %d %s", body, code, b)
		}
	}
	box.mu.Lock()
	defer box.mu.Unlock()
	if len(box.audio) != 1 || box.audio[0] != api.AudioBackup { // "desk" was refused by the box
		t.Fatalf("box saw %v", box.audio)
	}
}

// POST /api/onair reaches the box for both directions; a malformed body
// never does.
func TestOnAirGoesLiveAndStops(t *testing.T) {
	box := &fakeBox{}
	addr := tcpServer(t, box)
	c := tcpClient(t, addr)
	st, err := c.SetOnAir(t.Context(), false)
	if err != nil || st.Phase != api.OnAirStopped {
		t.Fatalf("stop: %+v, %v", st, err)
	}
	if st, err = c.SetOnAir(t.Context(), true); err != nil || st.Phase != api.OnAirLive {
		t.Fatalf("go live: %+v, %v", st, err)
	}
	for _, body := range []string{``, `{"live": "yes"}`, `{"live": true, "x": 1}`} {
		code, _, b := send(t, addr, newReq(t, http.MethodPost, api.PathOnAir, "application/json", body))
		if code != http.StatusBadRequest {
			t.Errorf("body %q: %d %s", body, code, b)
		}
	}
	box.mu.Lock()
	defer box.mu.Unlock()
	if len(box.onair) != 2 || box.onair[0] || !box.onair[1] {
		t.Fatalf("box saw %v", box.onair)
	}
}

// POST /api/panel/press: a known button acts, an unknown one is 404.
func TestPanelPressUnknownButtonIs404(t *testing.T) {
	box := &fakeBox{}
	addr := tcpServer(t, box)
	c := tcpClient(t, addr)
	res, err := c.PanelPress(t.Context(), "failover", false)
	if err != nil || res.Action != "failover video" {
		t.Fatalf("press: %+v, %v", res, err)
	}
	_, err = c.PanelPress(t.Context(), "eject", false)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Fatalf("unknown button: %v", err)
	}
}

// The studio's Prometheus scrapes the same listener the page uses: /metrics
// answers with the box's metrics from one status snapshot, and a POST to it
// is refused like any other method a route does not take.
func TestMetricsAreServedFromTheStatusAndOnlyByGET(t *testing.T) {
	box := &fakeBox{}
	addr := freeAddr(t)
	s, err := New(withAuth(t, Config{Listen: addr, Metrics: metrics.New(box.Status, zaptest.NewLogger(t)).Handler()}), box, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	code, _, body := send(t, addr, newReq(t, http.MethodGet, "/metrics", "", ""))
	if code != http.StatusOK || !strings.Contains(body, `onair_build_info{version="test"} 1`) || !strings.Contains(body, `onair_box_state{state="on_air"} 1`) {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	if code, _, body = send(t, addr, newReq(t, http.MethodPost, "/metrics", "application/json", "{}")); code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /metrics: %d %s", code, body)
	}
	// Without a handler there is no such route.
	bare := tcpServer(t, box)
	if code, _, _ = send(t, bare, newReq(t, http.MethodGet, "/metrics", "", "")); code != http.StatusNotFound {
		t.Fatalf("GET /metrics without metrics: %d", code)
	}
}

func (b *fakeBox) Restart(name string, force bool) (api.RestartResult, error) {
	switch name {
	case "encoder-b":
		return api.RestartResult{Name: name, Kind: "child"}, nil
	case "output":
		if !force {
			return api.RestartResult{}, errors.New("restart output: it reconnects the stream (the viewers see a break): say --yes")
		}
		return api.RestartResult{Name: name, Kind: "component"}, nil
	}
	return api.RestartResult{}, fmt.Errorf("restart %q: no such child or component: %w", name, ErrNotFound)
}

func (b *fakeBox) ApplyConfig(_ context.Context, raw []byte, dryRun bool) (api.ConfigResult, error) {
	if strings.Contains(string(raw), "gop: -1") {
		return api.ConfigResult{}, fmt.Errorf("video.gop: -1: must be 1..600: %w", ErrInvalid)
	}
	return api.ConfigResult{DryRun: dryRun, Live: []string{"video.bitrate_kbps"}}, nil
}

func (b *fakeBox) StartCanary(worker string) (api.CanaryStatus, error) {
	if worker == "" {
		return api.CanaryStatus{}, errors.New("canary: worker \"\": want an absolute path")
	}
	return api.CanaryStatus{State: api.CanaryStarting, Worker: worker}, nil
}

func (b *fakeBox) Update(req api.UpdateRequest) (api.UpdateInstall, error) {
	if req.Bundle == "" {
		return api.UpdateInstall{}, errors.New("update: not configured (update.public_key is empty)")
	}
	return api.UpdateInstall{Bundle: req.Bundle, State: "verify"}, nil
}
