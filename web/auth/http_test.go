package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const remoteA = "192.0.2.10:40000"

// A route the middleware forgot would be open to the whole network.
func TestEveryProtectedRouteRefusesWithoutSession(t *testing.T) {
	h := newHarness(t, nil)
	h.setPassword()
	for _, tc := range []struct {
		name, method, target, accept string
		body                         any
		want                         int
		location                     string
	}{
		{"api GET", http.MethodGet, "/api/status", "", nil, http.StatusUnauthorized, ""},
		{"api GET from a browser", http.MethodGet, "/api/status", "text/html", nil, http.StatusUnauthorized, ""},
		{"api POST", http.MethodPost, "/api/failover/video", "", struct{}{}, http.StatusUnauthorized, ""},
		{"logout", http.MethodPost, PathLogout, "", struct{}{}, http.StatusUnauthorized, ""},
		{"password change", http.MethodPost, PathPassword, "", ChangePasswordRequest{OldPassword: testPassword, NewPassword: "another long one"}, http.StatusUnauthorized, ""},
		{"page", http.MethodGet, "/", "text/html,application/xhtml+xml", nil, http.StatusSeeOther, "/login"},
		{"page HEAD", http.MethodHead, "/logs", "text/html", nil, http.StatusSeeOther, "/login"},
		{"page without Accept html", http.MethodGet, "/", "*/*", nil, http.StatusUnauthorized, ""},
		{"unknown path", http.MethodGet, "/anything", "", nil, http.StatusUnauthorized, ""},
		{"OPTIONS", http.MethodOptions, "/api/status", "", nil, http.StatusUnauthorized, ""},
		{"traversal out of a public prefix", http.MethodGet, "/assets/login/../../api/status", "", nil, http.StatusUnauthorized, ""},
		{"dot segment in a public prefix", http.MethodGet, "/assets/login/./x.js", "", nil, http.StatusUnauthorized, ""},
		{"login page lookalike", http.MethodGet, "/login/x", "", nil, http.StatusUnauthorized, ""},
		{"POST to the login page", http.MethodPost, "/login", "", struct{}{}, http.StatusMethodNotAllowed, ""},
		{"POST to a public asset", http.MethodPost, "/assets/login/app.js", "", struct{}{}, http.StatusMethodNotAllowed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := h.browser(remoteA)
			w := b.do(tc.method, tc.target, tc.body, map[string]string{"Accept": tc.accept})
			if w.Code != tc.want {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.target, w.Code, w.Body, tc.want)
			}
			if got := w.Header().Get("Location"); got != tc.location {
				t.Errorf("Location %q, want %q", got, tc.location)
			}
			if strings.Contains(w.Body.String(), "protected") {
				t.Errorf("the protected handler ran: %s", w.Body)
			}
		})
	}
	t.Run("a forged cookie", func(t *testing.T) {
		b := h.browser(remoteA)
		b.cookies[SessionCookie] = &http.Cookie{Name: SessionCookie, Value: strings.Repeat("A", 43)}
		w := b.do(http.MethodGet, "/api/status", nil, nil)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if _, ok := b.cookies[SessionCookie]; ok {
			t.Error("an unknown session cookie is not cleared")
		}
	})
	t.Run("public paths", func(t *testing.T) {
		b := h.browser(remoteA)
		for _, p := range []string{"/login", "/assets/login/app.js", PathSession} {
			if w := b.do(http.MethodGet, p, nil, nil); w.Code != http.StatusOK {
				t.Errorf("GET %s: %d %s", p, w.Code, w.Body)
			}
		}
	})
	t.Run("with a session", func(t *testing.T) {
		b := h.browser(remoteA)
		b.mustLogin()
		for _, tc := range []struct{ method, target string }{{http.MethodGet, "/api/status"}, {http.MethodPost, "/api/failover/video"}, {http.MethodGet, "/"}} {
			w := b.do(tc.method, tc.target, struct{}{}, nil)
			if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "protected") {
				t.Errorf("%s %s: %d %s", tc.method, tc.target, w.Code, w.Body)
			}
		}
	})
}

// A page on another site must not be able to drive the box through the
// operator's logged-in browser.
func TestPOSTWithoutTheCSRFTokenIsRefused(t *testing.T) {
	h := newHarness(t, nil)
	h.setPassword()
	logged := h.browser(remoteA)
	logged.mustLogin()
	for _, tc := range []struct {
		name, target, token string
		b                   *browser
		want                int
	}{
		{"protected, no token", "/api/failover/video", "", logged, http.StatusForbidden},
		{"protected, wrong token", "/api/failover/video", "x" + logged.csrf[1:], logged, http.StatusForbidden},
		{"protected, the pre-session token", "/api/failover/video", "use-pre", logged, http.StatusForbidden},
		{"logout, no token", PathLogout, "", logged, http.StatusForbidden},
		{"password, wrong token", PathPassword, "nope", logged, http.StatusForbidden},
		{"login, no token", PathLogin, "", nil, http.StatusForbidden},
		{"login, wrong token", PathLogin, "wrong", nil, http.StatusForbidden},
		{"setup, no token", PathSetup, "", nil, http.StatusForbidden},
		{"protected, right token", "/api/failover/video", logged.csrf, logged, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			if b == nil {
				b = h.browser(remoteA)
				b.session() // has the pre-session cookie, sends another token
			}
			tok := tc.token
			if tok == "use-pre" {
				pre := h.browser(remoteA)
				tok = pre.session().CSRFToken
			}
			hdr := map[string]string{CSRFHeader: tok}
			var body any = struct{}{}
			if tc.target == PathLogin {
				body = LoginRequest{Password: testPassword}
			}
			w := b.do(http.MethodPost, tc.target, body, hdr)
			if w.Code != tc.want {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.want)
			}
		})
	}
	if w := logged.do(http.MethodGet, "/api/status", nil, nil); w.Code != http.StatusOK {
		t.Errorf("the session ended after refused POSTs: %d", w.Code)
	}
	t.Run("login with the header but no pre-session cookie", func(t *testing.T) {
		b := h.browser(remoteA)
		tok := b.session().CSRFToken
		delete(b.cookies, preSessionCookie)
		if w := b.do(http.MethodPost, PathLogin, LoginRequest{Password: testPassword}, map[string]string{CSRFHeader: tok}); w.Code != http.StatusForbidden {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}

func TestCookieFlags(t *testing.T) {
	h := newHarness(t, nil)
	h.setPassword()
	b := h.browser(remoteA)
	check := func(t *testing.T, c *http.Cookie) {
		t.Helper()
		if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("cookie %s: HttpOnly %v Secure %v SameSite %v Path %q Domain %q", c.Name, c.HttpOnly, c.Secure, c.SameSite, c.Path, c.Domain)
		}
		if !strings.HasPrefix(c.Name, "__Host-") {
			t.Errorf("cookie %s: no __Host- prefix", c.Name)
		}
	}
	for _, step := range []struct {
		name  string
		do    func() *http.Response
		names []string
	}{
		{"session", func() *http.Response { return b.do(http.MethodGet, PathSession, nil, nil).Result() }, []string{preSessionCookie}},
		{"login", func() *http.Response { return b.login(testPassword).Result() }, []string{SessionCookie, preSessionCookie}},
		{"logout", func() *http.Response { return b.do(http.MethodPost, PathLogout, struct{}{}, nil).Result() }, []string{SessionCookie}},
	} {
		t.Run(step.name, func(t *testing.T) {
			res := step.do()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%d", res.StatusCode)
			}
			got := map[string]bool{}
			for _, c := range res.Cookies() {
				got[c.Name] = true
				check(t, c)
			}
			for _, n := range step.names {
				if !got[n] {
					t.Errorf("no Set-Cookie %s", n)
				}
			}
		})
	}
}

// The token printed at first start must not let a second person in after
// the operator set the password.
func TestSetupTokenWorksOnceAndNotAfterAPasswordIsSet(t *testing.T) {
	h := newHarness(t, nil)
	tok, ok := h.a.SetupToken()
	if !ok || len(tok) != 26 {
		t.Fatalf("setup token %d chars, ok %v", len(tok), ok)
	}
	b := h.browser(remoteA)
	if info := b.session(); !info.SetupNeeded || info.LoggedIn || info.Locked {
		t.Fatalf("session %+v, want setup needed", info)
	}
	if w := b.login(testPassword); w.Code != http.StatusConflict {
		t.Fatalf("login before setup: %d %s", w.Code, w.Body)
	}
	steps := []struct {
		name      string
		token, pw string
		want      int
	}{
		{"wrong token", "AAAAAAAAAAAAAAAAAAAAAAAAAA", testPassword, http.StatusForbidden},
		{"empty token", "", testPassword, http.StatusForbidden},
		{"right token, password too short", tok, "short", http.StatusBadRequest},
		{"right token, typed in lower case with dashes", strings.ToLower(tok[:13]) + "-" + tok[13:], testPassword, http.StatusOK},
		{"right token again", tok, "another password!", http.StatusConflict},
	}
	for _, s := range steps {
		sb := h.browser(remoteA)
		sb.session()
		w := sb.do(http.MethodPost, PathSetup, SetupRequest{Token: s.token, Password: s.pw}, nil)
		if w.Code != s.want {
			t.Fatalf("%s: %d %s, want %d", s.name, w.Code, w.Body, s.want)
		}
		if w.Code == http.StatusOK {
			if info := decode[SessionInfo](t, w); !info.LoggedIn || info.CSRFToken == "" || sb.sessionID() == "" {
				t.Fatalf("setup did not log in: %+v", info)
			}
			if got := sb.do(http.MethodGet, "/api/status", nil, nil); got.Code != http.StatusOK {
				t.Fatalf("after setup: %d", got.Code)
			}
		}
	}
	if _, ok := h.a.SetupToken(); ok {
		t.Error("the setup token is still there")
	}
	if w := h.socket(http.MethodGet, PathSetupToken, nil, true); w.Code != http.StatusConflict {
		t.Errorf("setup-token after setup: %d %s", w.Code, w.Body)
	}
	if err := h.a.Setup(context.Background(), tok, "yet another password"); !errors.Is(err, ErrSetupDone) {
		t.Errorf("Setup again: %v, want ErrSetupDone", err)
	}
	h.restart()
	if st, _ := h.a.State(); st != StateReady {
		t.Fatalf("after restart: %v", st)
	}
	if _, ok := h.a.SetupToken(); ok {
		t.Error("a setup token after restart with a password")
	}
	if w := h.browser(remoteA).login(testPassword); w.Code != http.StatusOK {
		t.Errorf("login after restart: %d %s", w.Code, w.Body)
	}
}

func TestSetupTokenIsNewAtEachStartWhileNoPassword(t *testing.T) {
	h := newHarness(t, nil)
	first, _ := h.a.SetupToken()
	h.restart()
	second, ok := h.a.SetupToken()
	if !ok || second == first {
		t.Fatalf("tokens %q then %q (ok %v)", first, second, ok)
	}
	if err := h.a.Setup(context.Background(), first, testPassword); !errors.Is(err, ErrBadSetupToken) {
		t.Fatalf("last start's token: %v, want ErrBadSetupToken", err)
	}
}

// Two tabs submitting the setup form at once must not both set a password.
func TestConcurrentSetupsSetThePasswordOnce(t *testing.T) {
	h := newHarness(t, nil)
	tok, _ := h.a.SetupToken()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		h.secrets[testPassword+string(rune('a'+i))] = true
		wg.Go(func() { errs[i] = h.a.Setup(context.Background(), tok, testPassword+string(rune('a'+i))) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrSetupDone):
		default:
			t.Errorf("Setup: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d setups succeeded, want 1", ok)
	}
}

func TestWrongPasswordIsRefused(t *testing.T) {
	h := newHarness(t, nil)
	h.setPassword()
	for _, pw := range []string{"", "Tr0ub4dor&3", testPassword + " ", strings.ToUpper(testPassword)} {
		b := h.browser(remoteA)
		w := b.login(pw)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("login %q: %d %s", pw, w.Code, w.Body)
		}
		if b.sessionID() != "" {
			t.Fatalf("login %q: a session cookie", pw)
		}
		h.clock.Advance(time.Hour) // not the brake under test
	}
}

// Without a brake, a script guesses the password at the hash's speed.
func TestGuessingIsSlowedThenUnlocksWithTime(t *testing.T) {
	h := newHarness(t, nil)
	h.setPassword()
	b := h.browser(remoteA)
	fails := func(n int) {
		t.Helper()
		for i := range n {
			if w := b.login("Tr0ub4dor&3"); w.Code != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d %s", i+1, w.Code, w.Body)
			}
		}
	}
	locked := func(retry string) {
		t.Helper()
		w := b.login(testPassword) // even the right password waits
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != retry {
			t.Fatalf("%d Retry-After %q, want 429 %s: %s", w.Code, w.Header().Get("Retry-After"), retry, w.Body)
		}
	}
	fails(5)
	locked("1")
	h.clock.Advance(999 * time.Millisecond)
	locked("1")
	h.clock.Advance(time.Millisecond)
	fails(1)
	locked("2")
	h.clock.Advance(2 * time.Second)
	fails(1)
	locked("4")

	// Another address is not locked; the same IPv6 /64 is one client.
	if w := h.browser("198.51.100.7:1").login(testPassword); w.Code != http.StatusOK {
		t.Errorf("another address: %d %s", w.Code, w.Body)
	}
	v6 := h.browser("[2001:db8:1:2::10]:5000")
	for range 5 {
		v6.login("Tr0ub4dor&3")
	}
	if w := h.browser("[2001:db8:1:2:ffff::1]:6000").login(testPassword); w.Code != http.StatusTooManyRequests {
		t.Errorf("same /64: %d, want 429", w.Code)
	}
	if w := h.browser("[2001:db8:1:3::10]:5000").login(testPassword); w.Code != http.StatusOK {
		t.Errorf("another /64: %d, want 200", w.Code)
	}

	// A success forgets the failures.
	h.clock.Advance(4 * time.Second)
	if w := b.login(testPassword); w.Code != http.StatusOK {
		t.Fatalf("after the lockout: %d %s", w.Code, w.Body)
	}
	b = h.browser(remoteA)
	fails(5)
	locked("1")
}

func TestWrongSetupTokensAreBraked(t *testing.T) {
	h := newHarness(t, nil)
	tok, _ := h.a.SetupToken()
	b := h.browser(remoteA)
	b.session()
	for range 5 {
		if w := b.do(http.MethodPost, PathSetup, SetupRequest{Token: "AAAA", Password: testPassword}, nil); w.Code != http.StatusForbidden {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	if w := b.do(http.MethodPost, PathSetup, SetupRequest{Token: tok, Password: testPassword}, nil); w.Code != http.StatusTooManyRequests {
		t.Fatalf("%d %s, want 429", w.Code, w.Body)
	}
	h.clock.Advance(time.Second)
	if w := b.do(http.MethodPost, PathSetup, SetupRequest{Token: tok, Password: testPassword}, nil); w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

// A stolen cookie must stop working.
func TestSessionExpires(t *testing.T) {
	setup := func(t *testing.T) (*harness, func() int) {
		h := newHarness(t, nil)
		h.setPassword()
		b := h.browser(remoteA)
		b.mustLogin()
		return h, func() int { return b.do(http.MethodGet, "/api/status", nil, nil).Code }
	}
	t.Run("idle", func(t *testing.T) {
		h, get := setup(t)
		for i, step := range []struct {
			advance time.Duration
			want    int
		}{
			{30*time.Minute - time.Second, http.StatusOK},
			{30*time.Minute - time.Second, http.StatusOK}, // the last use reset the idle timer
			{30 * time.Minute, http.StatusUnauthorized},
		} {
			h.clock.Advance(step.advance)
			if got := get(); got != step.want {
				t.Fatalf("step %d: %d, want %d", i, got, step.want)
			}
		}
	})
	t.Run("absolute despite use", func(t *testing.T) {
		h, get := setup(t)
		for elapsed := 10 * time.Minute; elapsed < 12*time.Hour; elapsed += 10 * time.Minute {
			h.clock.Advance(10 * time.Minute)
			if got := get(); got != http.StatusOK {
				t.Fatalf("after %s: %d", elapsed, got)
			}
		}
		h.clock.Advance(10 * time.Minute)
		if got := get(); got != http.StatusUnauthorized {
			t.Fatalf("after 12h: %d", got)
		}
		if n := h.a.sessions.count(); n != 0 {
			t.Errorf("%d sessions kept", n)
		}
	})
}

func TestNewLoginEvictsTheLeastRecentlyUsedSession(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxSessions = 2 })
	h.setPassword()
	a, b, c := h.browser(remoteA), h.browser(remoteA), h.browser(remoteA)
	a.mustLogin()
	h.clock.Advance(time.Second)
	b.mustLogin()
	h.clock.Advance(time.Second)
	a.do(http.MethodGet, "/api/status", nil, nil) // a is the one in use
	h.clock.Advance(time.Second)
	c.mustLogin()
	for _, tc := range []struct {
		name string
		b    *browser
		want int
	}{{"a", a, http.StatusOK}, {"b", b, http.StatusUnauthorized}, {"c", c, http.StatusOK}} {
		if got := tc.b.do(http.MethodGet, "/api/status", nil, nil).Code; got != tc.want {
			t.Errorf("session %s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if n := h.a.sessions.count(); n != 2 {
		t.Errorf("%d sessions, want 2", n)
	}
}

func TestLogoutEndsTheSession(t *testing.T) {
	h := newHarness(t, nil)
	h.setPassword()
	b := h.browser(remoteA)
	b.mustLogin()
	id, csrf := b.sessionID(), b.csrf
	if w := b.do(http.MethodPost, PathLogout, struct{}{}, nil); w.Code != http.StatusOK {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	if b.sessionID() != "" {
		t.Error("the cookie is not cleared")
	}
	replay := h.browser(remoteA)
	replay.cookies[SessionCookie] = &http.Cookie{Name: SessionCookie, Value: id}
	replay.csrf = csrf
	if w := replay.do(http.MethodPost, "/api/failover/video", struct{}{}, nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("the old cookie after logout: %d", w.Code)
	}
}

// Session fixation: a session ID known before login must not become the
// logged-in one, nor stay valid.
func TestLoginIssuesANewSessionID(t *testing.T) {
	h := newHarness(t, nil)
	h.setPassword()
	b := h.browser(remoteA)
	b.mustLogin()
	old := b.sessionID()
	b.mustLogin()
	if b.sessionID() == old {
		t.Fatal("same session ID after a new login")
	}
	replay := h.browser(remoteA)
	replay.cookies[SessionCookie] = &http.Cookie{Name: SessionCookie, Value: old}
	if w := replay.do(http.MethodGet, "/api/status", nil, nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("the previous ID still works: %d", w.Code)
	}
}

func TestChangePassword(t *testing.T) {
	h := newHarness(t, nil)
	h.setPassword()
	me, other := h.browser(remoteA), h.browser("198.51.100.7:1")
	me.mustLogin()
	other.mustLogin()
	const next = "a brand new passphrase"
	h.secrets[next] = true
	for _, tc := range []struct {
		name     string
		old, new string
		want     int
	}{
		{"wrong old", "not it at all", next, http.StatusForbidden},
		{"too short", testPassword, "short", http.StatusBadRequest},
		{"ok", testPassword, next, http.StatusOK},
	} {
		if w := me.do(http.MethodPost, PathPassword, ChangePasswordRequest{OldPassword: tc.old, NewPassword: tc.new}, nil); w.Code != tc.want {
			t.Fatalf("%s: %d %s, want %d", tc.name, w.Code, w.Body, tc.want)
		}
	}
	if w := me.do(http.MethodGet, "/api/status", nil, nil); w.Code != http.StatusOK {
		t.Errorf("the changer's session: %d", w.Code)
	}
	if w := other.do(http.MethodGet, "/api/status", nil, nil); w.Code != http.StatusUnauthorized {
		t.Errorf("another session after the change: %d", w.Code)
	}
	h.restart()
	if w := h.browser(remoteA).login(testPassword); w.Code != http.StatusUnauthorized {
		t.Errorf("old password after the change: %d", w.Code)
	}
	if w := h.browser(remoteA).login(next); w.Code != http.StatusOK {
		t.Errorf("new password after restart: %d %s", w.Code, w.Body)
	}
}

// The setup token and a password reset without the old one are for root on
// the box; a mux mistake must not serve them to the network.
func TestSocketRoutesRefuseTCP(t *testing.T) {
	h := newHarness(t, nil)
	tok, _ := h.a.SetupToken()
	for _, tc := range []struct {
		method, path string
		body         any
	}{{http.MethodGet, PathSetupToken, nil}, {http.MethodPost, PathPasswd, PasswdRequest{Password: testPassword}}} {
		if w := h.socket(tc.method, tc.path, tc.body, false); w.Code != http.StatusForbidden || strings.Contains(w.Body.String(), tok) {
			t.Errorf("%s over TCP: %d %s", tc.path, w.Code, w.Body)
		}
	}
	if st, _ := h.a.State(); st != StateSetup {
		t.Fatalf("state %v", st)
	}
	w := h.socket(http.MethodGet, PathSetupToken, nil, true)
	if got := decode[SetupTokenResponse](t, w); w.Code != http.StatusOK || got.Token != tok {
		t.Fatalf("setup-token over the socket: %d %s", w.Code, w.Body)
	}
	if w := h.socket(http.MethodPost, PathPasswd, PasswdRequest{Password: "short"}, true); w.Code != http.StatusBadRequest {
		t.Fatalf("passwd short: %d %s", w.Code, w.Body)
	}
	if w := h.socket(http.MethodPost, PathPasswd, PasswdRequest{Password: testPassword}, true); w.Code != http.StatusOK {
		t.Fatalf("passwd: %d %s", w.Code, w.Body)
	}
	b := h.browser(remoteA)
	b.mustLogin()
	h.secrets["the next password"] = true
	if w := h.socket(http.MethodPost, PathPasswd, PasswdRequest{Password: "the next password"}, true); w.Code != http.StatusOK {
		t.Fatalf("passwd again: %d %s", w.Code, w.Body)
	}
	if w := b.do(http.MethodGet, "/api/status", nil, nil); w.Code != http.StatusUnauthorized {
		t.Errorf("a session outlived onairctl passwd: %d", w.Code)
	}
}

func TestBodiesAreCheckedBeforeUse(t *testing.T) {
	h := newHarness(t, nil)
	h.setPassword()
	for _, tc := range []struct {
		name string
		body any
		ct   string
		want int
	}{
		{"over the limit", `{"password": "` + strings.Repeat("x", 5000) + `"}`, "application/json", http.StatusRequestEntityTooLarge},
		{"a form", "password=x", "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"text/plain", `{"password": "x"}`, "text/plain", http.StatusUnsupportedMediaType},
		{"unknown field", `{"password": "x", "admin": true}`, "application/json", http.StatusBadRequest},
		{"two values", `{"password": "x"} {}`, "application/json", http.StatusBadRequest},
		{"not JSON", `password`, "application/json", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := h.browser(remoteA)
			b.session()
			w := b.do(http.MethodPost, PathLogin, tc.body, map[string]string{"Content-Type": tc.ct})
			if w.Code != tc.want {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.want)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("answer Content-Type %q", ct)
			}
		})
	}
	b := h.browser(remoteA)
	if w := b.do(http.MethodGet, PathLogin, nil, nil); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != http.MethodPost {
		t.Errorf("GET %s: %d Allow %q", PathLogin, w.Code, w.Header().Get("Allow"))
	}
}

func TestLockedPageOffersNeitherSetupNorLogin(t *testing.T) {
	h := newHarness(t, nil)
	writeFile(t, h.dir+"/"+PasswordFile, "not a hash\n")
	h.restart()
	b := h.browser(remoteA)
	if info := b.session(); !info.Locked || info.SetupNeeded || info.LoggedIn {
		t.Fatalf("session %+v", info)
	}
	if w := b.login(testPassword); w.Code != http.StatusServiceUnavailable {
		t.Errorf("login: %d %s", w.Code, w.Body)
	}
	if w := b.do(http.MethodPost, PathSetup, SetupRequest{Token: "ANYTHING", Password: testPassword}, nil); w.Code != http.StatusServiceUnavailable {
		t.Errorf("setup: %d %s", w.Code, w.Body)
	}
	if w := h.socket(http.MethodGet, PathSetupToken, nil, true); w.Code != http.StatusServiceUnavailable {
		t.Errorf("setup-token: %d %s", w.Code, w.Body)
	}
	if w := h.socket(http.MethodPost, PathPasswd, PasswdRequest{Password: testPassword}, true); w.Code != http.StatusOK {
		t.Fatalf("passwd: %d %s", w.Code, w.Body)
	}
	if w := b.login(testPassword); w.Code != http.StatusOK {
		t.Errorf("login after onairctl passwd: %d %s", w.Code, w.Body)
	}
}

func TestIsLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:8080", true}, {"127.1.2.3", true}, {"[::1]:443", true}, {"::1", true},
		{"localhost:80", true}, {"LOCALHOST", true}, {"[::ffff:127.0.0.1]:1", true},
		{"0.0.0.0:80", false}, {":8080", false}, {"[::]:443", false}, {"192.168.1.2:80", false},
		{"box.local:80", false}, {"localhost.evil.example", false}, {"", false},
	} {
		if got := IsLoopback(tc.addr); got != tc.want {
			t.Errorf("IsLoopback(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}
