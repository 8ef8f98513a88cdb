package page

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"onair/internal/testutil"
)

// The page works on a box with no Internet (no CDN, no web font) and gives
// a peer's strings no way in: no external URL, no inline script, no HTML
// built from strings.
func TestAssetsHaveNoExternalURLAndNoHTMLFromStrings(t *testing.T) {
	p, err := New(Config{Status: (&fakeStatus{}).get, Events: &cutSource{}}, testutil.NilLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|(src|href|action)\s*=\s*["']?//|url\(\s*["']?(https?:)?//`)
	for name, a := range p.static {
		text := string(a.data)
		if m := url.FindString(text); m != "" {
			t.Errorf("%s links outside the box: %q", name, m)
		}
		switch {
		case strings.HasSuffix(name, ".js"):
			for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
				if strings.Contains(text, bad) {
					t.Errorf("%s uses %s: set textContent instead", name, bad)
				}
			}
		case strings.HasSuffix(name, ".html"):
			if regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]`).MatchString(text) || !regexp.MustCompile(`<script src=`).MatchString(text) {
				t.Errorf("%s has inline script (the CSP refuses it) or none at all", name)
			}
			if m := regexp.MustCompile(`(?i)\s(on[a-z]+|style)\s*=`).FindString(text); m != "" {
				t.Errorf("%s has an inline %q attribute (the CSP refuses it)", name, m)
			}
		}
	}
}

func TestPagesAndAssetsCarryTheSecurityHeaders(t *testing.T) {
	p, err := New(Config{Status: (&fakeStatus{}).get, Events: &cutSource{}}, testutil.NilLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Register(mux)
	for _, tc := range []struct{ path, ctype string }{
		{"/", "text/html"}, {"/login", "text/html"}, {"/static/app.js", "text/javascript"},
		{"/static/common.js", "text/javascript"}, {"/static/login.js", "text/javascript"}, {"/static/style.css", "text/css"},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
		h := rec.Result().Header
		if rec.Code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), tc.ctype) {
			t.Errorf("GET %s: %d %q; want 200 %s", tc.path, rec.Code, h.Get("Content-Type"), tc.ctype)
		}
		csp := h.Get("Content-Security-Policy")
		if !strings.HasPrefix(csp, "default-src 'self'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, csp)
		}
		for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
			if got := h.Get(k); got != want {
				t.Errorf("GET %s: %s %q; want %q", tc.path, k, got, want)
			}
		}
	}
	for _, path := range []string{"/static/index.html", "/static/nothing.js", "/static/"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d; want 404", path, rec.Code)
		}
	}
}
