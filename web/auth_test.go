package web

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap/zaptest"

	"onair/web/api"
	"onair/web/auth"
)

const testPassword = "correct horse battery"

// withAuth gives cfg an Auth whose password is testPassword (cheap argon2id
// parameters: the cost is web/auth's business, not these tests').
func withAuth(t *testing.T, cfg Config) Config {
	t.Helper()
	a, err := auth.New(auth.Config{Dir: t.TempDir(), Params: auth.Params{Time: 1, MemoryKiB: 64, Threads: 1}},
		zaptest.NewLogger(t), clockwork.NewRealClock())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetPassword(context.Background(), testPassword); err != nil {
		t.Fatal(err)
	}
	cfg.Auth = a
	return cfg
}

// tcpClient is an API client of addr, logged in.
func tcpClient(t *testing.T, addr string) *api.Client {
	t.Helper()
	c := api.NewHTTPClient("http://" + addr)
	if err := c.Login(context.Background(), testPassword); err != nil {
		t.Fatalf("login on %s: %v", addr, err)
	}
	return c
}

// sessions are the logged-in sessions of raw requests (send), by address.
var sessions sync.Map // addr → rawSession

type rawSession struct{ cookie, csrf string }

// sessionOf logs in to addr once per address with raw requests and returns
// the session cookie and CSRF token send puts on every request.
func sessionOf(t *testing.T, addr string) rawSession {
	t.Helper()
	if s, ok := sessions.Load(addr); ok {
		return s.(rawSession)
	}
	get := func(method, path, cookie, csrf, body string) (*http.Response, map[string]any) {
		req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		if csrf != "" {
			req.Header.Set(auth.CSRFHeader, csrf)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var m map[string]any
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &m)
		return resp, m
	}
	resp, m := get(http.MethodGet, auth.PathSession, "", "", "")
	pre := resp.Cookies()
	if len(pre) == 0 {
		t.Fatalf("GET %s set no cookie: %v", auth.PathSession, m)
	}
	csrf, _ := m["csrf_token"].(string)
	resp, m = get(http.MethodPost, auth.PathLogin, pre[0].Name+"="+pre[0].Value, csrf, `{"password":"`+testPassword+`"}`)
	var s rawSession
	for _, c := range resp.Cookies() {
		if c.Name == auth.SessionCookie {
			s.cookie = c.Name + "=" + c.Value
		}
	}
	s.csrf, _ = m["csrf_token"].(string)
	if s.cookie == "" || s.csrf == "" {
		t.Fatalf("login: %d %v", resp.StatusCode, m)
	}
	sessions.Store(addr, s)
	return s
}

// Every route of the page's listener but login and setup refuses a request
// without a session: the API, the metrics, the events and the logs.
func TestEveryAPIRouteRefusesWithoutASession(t *testing.T) {
	addr := freeAddr(t)
	box := &fakeBox{}
	cfg := withAuth(t, Config{Listen: addr, Events: fakeEvents{}, Logs: fakeLogs{}, Metrics: http.NotFoundHandler()})
	s, err := New(cfg, box, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	for _, r := range []struct{ method, path string }{
		{"GET", api.PathStatus}, {"GET", api.PathEvents}, {"GET", api.PathLogs}, {"GET", "/metrics"},
		{"POST", api.PathFailoverVideo}, {"POST", api.PathVideoBitrate}, {"POST", api.PathUplinks + "cell1"},
		{"POST", api.PathAudioSource}, {"POST", api.PathOnAir}, {"POST", api.PathPanelPress},
		{"POST", auth.PathLogout}, {"POST", auth.PathPassword}, {"GET", auth.PathSetupToken}, {"POST", auth.PathPasswd},
	} {
		req := newReq(t, r.method, r.path, "application/json", "{}")
		req.Header.Set("X-Test-No-Session", "1")
		if code, _, body := send(t, addr, req); code != http.StatusUnauthorized {
			t.Errorf("%s %s without a session: %d %s; want 401", r.method, r.path, code, body)
		}
	}
	if f, _ := box.calls(); f != 0 {
		t.Errorf("a failover ran without a session")
	}
	// With the session but without the CSRF token, a POST is refused.
	sess := sessionOf(t, addr)
	req := newReq(t, "POST", api.PathFailoverVideo, "application/json", "{}")
	req.Header.Set("X-Test-No-Session", "1")
	req.Header.Set("Cookie", sess.cookie)
	if code, _, body := send(t, addr, req); code != http.StatusForbidden || !strings.Contains(body, "X-CSRF-Token") {
		t.Errorf("POST with the cookie but no CSRF token: %d %s; want 403", code, body)
	}
	req = newReq(t, "POST", api.PathFailoverVideo, "application/json", "{}")
	req.Header.Set("X-Test-No-Session", "1")
	req.Header.Set("Cookie", sess.cookie)
	req.Header.Set(auth.CSRFHeader, strings.Repeat("A", len(sess.csrf)))
	if code, _, _ := send(t, addr, req); code != http.StatusForbidden {
		t.Errorf("POST with a wrong CSRF token: %d; want 403", code)
	}
	if f, _ := box.calls(); f != 0 {
		t.Errorf("a failover ran without the CSRF token")
	}
}

type fakeEvents struct{}

func (fakeEvents) List(since time.Time, after uint64) ([]api.Event, uint64) {
	var out []api.Event
	for i, e := range []api.Event{
		{Seq: 3, Time: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), Kind: api.EventRestart, Subject: "encoder-a", Reason: "killed"},
		{Seq: 4, Time: time.Now().Add(-time.Minute), Kind: api.EventVideoFailover, Subject: "encoder-b", Reason: "active encoder down"},
	} {
		_ = i
		if e.Seq > after && !e.Time.Before(since) {
			out = append(out, e)
		}
	}
	return out, 2
}

type fakeLogs struct{}

func (fakeLogs) Lines(after uint64, n int) ([]api.LogLine, uint64) {
	var out []api.LogLine
	for i := uint64(1); i <= 5; i++ {
		if i > after {
			out = append(out, api.LogLine{Seq: i, Level: "info", Msg: "line"})
		}
	}
	if n > 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out, 0
}

func TestEventsAndLogsAreServedWithTheirFilters(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	s, err := New(Config{Socket: sock, Events: fakeEvents{}, Logs: fakeLogs{}}, &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	c := api.NewUnixClient(sock)
	ctx := context.Background()
	ev, err := c.Events(ctx, "2h", 0)
	if err != nil || len(ev.Events) != 1 || ev.Events[0].Seq != 4 || ev.Lost != 2 {
		t.Errorf("events since 2h: %v %+v; want only seq 4, lost 2", err, ev)
	}
	if ev, err = c.Events(ctx, "", 0); err != nil || len(ev.Events) != 2 {
		t.Errorf("all events: %v %+v", err, ev)
	}
	if ev, err = c.Events(ctx, "2026-12-03T09:00:00Z", 3); err != nil || len(ev.Events) != 1 || ev.Events[0].Seq != 4 {
		t.Errorf("events after 3 since a time: %v %+v", err, ev)
	}
	var se *api.StatusError
	if _, err = c.Events(ctx, "yesterday", 0); !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Message, "since=") {
		t.Errorf("a bad since must be 400 naming it: %v", err)
	}
	lg, err := c.Logs(ctx, 2, 2)
	if err != nil || len(lg.Lines) != 2 || lg.Lines[0].Seq != 4 {
		t.Errorf("logs after 2, n 2: %v %+v; want 4 and 5", err, lg)
	}
}

func TestSocketServesTheSetupTokenAndPasswdWithoutASession(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	a, err := auth.New(auth.Config{Dir: t.TempDir(), Params: auth.Params{Time: 1, MemoryKiB: 64, Threads: 1}}, zaptest.NewLogger(t), clockwork.NewRealClock())
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	s, err := New(Config{Socket: sock, Listen: addr, Auth: a}, &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	ctx := context.Background()
	c := api.NewUnixClient(sock)
	tok, err := c.SetupToken(ctx)
	if want, _ := a.SetupToken(); err != nil || tok != want {
		t.Fatalf("setup token over the socket: %v %q", err, tok)
	}
	if err = c.Passwd(ctx, testPassword); err != nil {
		t.Fatal(err)
	}
	if _, err = c.SetupToken(ctx); err == nil {
		t.Error("a setup token after the password was set")
	}
	if _, err = tcpClient(t, addr).Status(ctx); err != nil {
		t.Errorf("login with the password set over the socket: %v", err)
	}
	// The socket's routes are not on the page's listener.
	if _, err = api.NewHTTPClient("http://" + addr).SetupToken(ctx); err == nil {
		t.Error("the setup token was served on TCP")
	}
}

func TestLockedPageAnswers503AndTheSocketStillServes(t *testing.T) {
	sock, addr := filepath.Join(t.TempDir(), "api.sock"), freeAddr(t)
	s, err := New(Config{Socket: sock, Listen: addr, AuthErr: errors.New("auth: mkdir /var/lib/onair/auth: read-only file system")}, &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	req := newReq(t, "GET", api.PathStatus, "", "")
	req.Header.Set("X-Test-No-Session", "1")
	if code, _, body := send(t, addr, req); code != http.StatusServiceUnavailable || !strings.Contains(body, "read-only file system") {
		t.Errorf("TCP with no auth: %d %s; want 503 with the reason", code, body)
	}
	if _, err := api.NewUnixClient(sock).Status(context.Background()); err != nil {
		t.Errorf("socket: %v", err)
	}
}

func TestMetricsListenerServesOnlyMetricsToAllowedAddresses(t *testing.T) {
	addr := freeAddr(t)
	m := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "onair_up 1\n") })
	s, err := New(Config{Socket: filepath.Join(t.TempDir(), "s"), MetricsListen: addr, Metrics: m}, &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || body != "onair_up 1\n" {
		t.Errorf("/metrics from loopback: %d %q", code, body)
	}
	if code, _ := get(api.PathStatus); code != http.StatusNotFound {
		t.Errorf("status on the metrics listener: %d; want 404", code)
	}
	// An address outside metrics.allow is refused.
	h := s.metricsOnly(m)
	for remote, want := range map[string]int{"10.1.2.3:5000": 403, "192.168.7.9:5000": 200} {
		s.cfg.MetricsAllow = []netip.Prefix{netip.MustParsePrefix("192.168.7.0/24")}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.RemoteAddr = remote
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("metrics from %s: %d; want %d", remote, rec.Code, want)
		}
	}
}

func TestHTTPSServesThePageWithItsCertificateAndRefusesForeignHosts(t *testing.T) {
	cert, err := auth.LoadOrCreateCertificate(auth.CertConfig{Dir: t.TempDir(), Hostname: "encoder-3", Extra: []string{"encoder-3.local"}},
		zaptest.NewLogger(t), clockwork.NewRealClock())
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cfg := withAuth(t, Config{HTTPS: addr, Cert: cert, Names: []string{"encoder-3.local"}})
	s, err := New(cfg, &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf())
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "encoder-3.local", MinVersion: tls.VersionTLS12}}
	hc := &http.Client{Transport: tr}
	get := func(host string) (*http.Response, string) {
		req, err := http.NewRequest("GET", "https://"+addr+auth.PathSession, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("encoder-3.local")
	if resp.StatusCode != 200 || !strings.Contains(body, "csrf_token") || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("session over HTTPS: %d %q HSTS %q", resp.StatusCode, body, resp.Header.Get("Strict-Transport-Security"))
	}
	for _, c := range resp.Cookies() {
		if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || !strings.HasPrefix(c.Name, "__Host-") {
			t.Errorf("cookie %s: Secure %v HttpOnly %v SameSite %v; want all, with the __Host- prefix", c.Name, c.Secure, c.HttpOnly, c.SameSite)
		}
	}
	if resp, _ = get("192.168.1.50"); resp.StatusCode != 200 {
		t.Errorf("Host an IP literal: %d; want 200", resp.StatusCode)
	}
	if resp, body = get("evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("Host evil.example over HTTPS: %d %s; want 403 (DNS rebinding)", resp.StatusCode, body)
	}
}

func TestPlainHTTPOffLoopbackIsRefused(t *testing.T) {
	if _, err := New(withAuth(t, Config{Listen: "0.0.0.0:8080"}), &fakeBox{}, zaptest.NewLogger(t)); err == nil || !strings.Contains(err.Error(), "api.https") {
		t.Errorf("api.listen 0.0.0.0: %v; want refused, pointing at api.https", err)
	}
}

func TestRecordingStartStopAndARefusedStartIs409WithTheReason(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	s, err := New(Config{Socket: sock}, &fakeBox{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	start(t, s)
	c, ctx := api.NewUnixClient(sock), context.Background()
	if st, err := c.SetRecording(ctx, true); err != nil || st.State != api.RecordingRecording {
		t.Fatalf("start: %v %+v", err, st)
	}
	if st, err := c.SetRecording(ctx, false); err != nil || st.State != api.RecordingStopped {
		t.Fatalf("stop: %v %+v", err, st)
	}
	var se *api.StatusError
	if _, err := c.SetRecording(ctx, true); !errors.As(err, &se) || se.Code != http.StatusConflict || !strings.Contains(se.Message, "disk full") {
		t.Fatalf("refused start: %v; want 409 with the reason", err)
	}
}
