package auth

import (
	"net/http"
	"testing"
	"time"
)

// The journal and the page's log ring are read by more people than the
// box's password: nothing typed or handed out may reach them. (Every test's
// harness checks this at its end; this one walks every path that logs.)
func TestSecretsNeverInTheLog(t *testing.T) {
	h := newHarness(t, nil)
	tok, _ := h.a.SetupToken()
	b := h.browser(remoteA)
	b.session()
	for _, s := range []struct {
		req  SetupRequest
		want int
	}{
		{SetupRequest{Token: "NOT-THE-TOKEN-AT-ALL", Password: testPassword}, http.StatusForbidden},
		{SetupRequest{Token: tok, Password: testPassword}, http.StatusOK},
	} {
		w := b.do(http.MethodPost, PathSetup, s.req, nil)
		if w.Code != s.want {
			t.Fatalf("setup: %d %s", w.Code, w.Body)
		}
		if w.Code == http.StatusOK {
			b.csrf = decode[SessionInfo](t, w).CSRFToken
		}
	}
	h.secrets["NOT-THE-TOKEN-AT-ALL"] = true
	intruder := h.browser("198.51.100.7:1")
	for range 6 {
		intruder.login("Tr0ub4dor&3") // failures, then a lockout
	}
	b.mustLogin()
	const next = "the second passphrase"
	h.secrets[next] = true
	if w := b.do(http.MethodPost, PathPassword, ChangePasswordRequest{OldPassword: testPassword, NewPassword: next}, nil); w.Code != http.StatusOK {
		t.Fatalf("change: %d %s", w.Code, w.Body)
	}
	if w := b.do(http.MethodPost, PathLogout, struct{}{}, nil); w.Code != http.StatusOK {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	if w := h.socket(http.MethodPost, PathPasswd, PasswdRequest{Password: testPassword}, true); w.Code != http.StatusOK {
		t.Fatalf("passwd: %d %s", w.Code, w.Body)
	}
	b.mustLogin()
	h.clock.Advance(13 * time.Hour)
	b.do(http.MethodGet, "/api/status", nil, nil) // expired

	if h.logs.Len() < 6 {
		t.Fatalf("only %d log entries: the check below proves little", h.logs.Len())
	}
	for _, want := range []string{tok, b.csrf, testPassword, next} {
		if !h.secrets[want] {
			t.Fatalf("the harness does not watch for %q", want)
		}
	}
	h.checkLogHasNoSecret()
}
