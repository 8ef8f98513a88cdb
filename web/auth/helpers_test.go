package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fastParams keep the tests fast: argon2id with 64 KiB and one pass.
var fastParams = Params{Time: 1, MemoryKiB: 64, Threads: 1}

const testPassword = "correct horse battery"

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// harness is an Auth behind Require, with a fake clock, an observed log,
// and every secret it saw: at the end of each test none of them may be in
// the log.
type harness struct {
	t       *testing.T
	dir     string
	cfg     Config
	clock   *clockwork.FakeClock
	core    zapcore.Core
	logs    *observer.ObservedLogs
	a       *Auth
	page    http.Handler // Require(Register + protected routes)
	sock    http.Handler // RegisterSocket
	secrets map[string]bool
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, dir: filepath.Join(t.TempDir(), "state"), clock: clockwork.NewFakeClockAt(start), secrets: map[string]bool{testPassword: true}}
	h.cfg = Config{Params: fastParams, Public: []string{"/assets/login/"}}
	if mod != nil {
		mod(&h.cfg)
	}
	h.core, h.logs = observer.New(zapcore.DebugLevel)
	h.restart()
	t.Cleanup(func() { h.checkLogHasNoSecret() })
	return h
}

// restart makes a new Auth on the same state dir, as a new start of onaird
// does.
func (h *harness) restart() {
	h.t.Helper()
	log := zap.New(h.core)
	cfg := h.cfg
	cfg.Dir = h.dir
	a, err := New(cfg, log, h.clock)
	if err != nil {
		h.t.Fatalf("New: %v", err)
	}
	h.a = a
	if tok, ok := a.SetupToken(); ok {
		h.secrets[tok] = true
	}
	mux := http.NewServeMux()
	a.Register(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "protected "+r.URL.Path)
	})
	h.page = a.Require(mux)
	sock := http.NewServeMux()
	a.RegisterSocket(sock)
	h.sock = sock
}

// setPassword sets testPassword as over the socket.
func (h *harness) setPassword() {
	h.t.Helper()
	if err := h.a.SetPassword(context.Background(), testPassword); err != nil {
		h.t.Fatalf("SetPassword: %v", err)
	}
}

func (h *harness) checkLogHasNoSecret() {
	h.t.Helper()
	for _, e := range h.logs.All() {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		for s := range h.secrets {
			if s != "" && strings.Contains(line, s) {
				h.t.Errorf("a secret is in the log: %q in %q", s, line)
			}
		}
	}
}

// browser keeps cookies like a browser and sends its CSRF token on POSTs.
type browser struct {
	h       *harness
	remote  string
	cookies map[string]*http.Cookie
	csrf    string
}

func (h *harness) browser(remote string) *browser {
	return &browser{h: h, remote: remote, cookies: map[string]*http.Cookie{}}
}

// do sends a request to the page. body: nil, a string, or a value to
// marshal (then Content-Type is application/json). hdr sets headers; an
// empty value removes one.
func (b *browser) do(method, target string, body any, hdr map[string]string) *httptest.ResponseRecorder {
	b.h.t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	default:
		j, err := json.Marshal(v)
		if err != nil {
			b.h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	r := httptest.NewRequest(method, target, rd)
	r.RemoteAddr = b.remote
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	for _, c := range b.cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	if b.csrf != "" && method == http.MethodPost {
		r.Header.Set(CSRFHeader, b.csrf)
	}
	for k, v := range hdr {
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	b.h.page.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
			continue
		}
		b.cookies[c.Name] = c
		b.h.secrets[c.Value] = true
	}
	return w
}

// session is GET /api/session; it keeps the CSRF token.
func (b *browser) session() SessionInfo {
	b.h.t.Helper()
	w := b.do(http.MethodGet, PathSession, nil, nil)
	if w.Code != http.StatusOK {
		b.h.t.Fatalf("GET %s: %d %s", PathSession, w.Code, w.Body)
	}
	info := decode[SessionInfo](b.h.t, w)
	b.csrf = info.CSRFToken
	b.h.secrets[info.CSRFToken] = true
	return info
}

// login asks for a CSRF token, then logs in with pw.
func (b *browser) login(pw string) *httptest.ResponseRecorder {
	b.h.t.Helper()
	b.session() // as the page does before it shows the form
	b.h.secrets[pw] = true
	w := b.do(http.MethodPost, PathLogin, LoginRequest{Password: pw}, nil)
	if w.Code == http.StatusOK {
		info := decode[SessionInfo](b.h.t, w)
		b.csrf = info.CSRFToken
		b.h.secrets[info.CSRFToken] = true
	}
	return w
}

// mustLogin logs in with testPassword.
func (b *browser) mustLogin() {
	b.h.t.Helper()
	if w := b.login(testPassword); w.Code != http.StatusOK {
		b.h.t.Fatalf("login: %d %s", w.Code, w.Body)
	}
}

func (b *browser) sessionID() string {
	if c := b.cookies[SessionCookie]; c != nil {
		return c.Value
	}
	return ""
}

// socket sends a request as if over the unix socket (unix: false, as if
// over TCP).
func (h *harness) socket(method, target string, body any, unix bool) *httptest.ResponseRecorder {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	r := httptest.NewRequest(method, target, rd)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if unix {
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.UnixAddr{Name: "/run/onair/onaird.sock", Net: "unix"}))
		r.RemoteAddr = "@"
	}
	w := httptest.NewRecorder()
	h.sock.ServeHTTP(w, r)
	return w
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, w.Body, err)
	}
	return v
}
