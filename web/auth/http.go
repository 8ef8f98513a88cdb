package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"onair/web/api"
)

// The routes. Register serves the page's, RegisterSocket the socket's.
const (
	PathSession    = api.PathSession    // GET: SessionInfo
	PathLogin      = api.PathLogin      // POST LoginRequest: SessionInfo
	PathLogout     = "/api/logout"      // POST {} (or an empty JSON body): SessionInfo
	PathSetup      = "/api/setup"       // POST SetupRequest: SessionInfo, logged in
	PathPassword   = "/api/password"    // POST ChangePasswordRequest, with a session
	PathSetupToken = api.PathSetupToken // GET, socket only: SetupTokenResponse
	PathPasswd     = api.PathPasswd     // POST PasswdRequest, socket only
)

// CSRFHeader carries the CSRF token of SessionInfo on every POST.
const CSRFHeader = api.CSRFHeader

// The cookies. The __Host- prefix makes a browser refuse them unless
// Secure, Path=/ and without Domain: nothing on another name of the
// network can plant one (cookie tossing defeats a double-submit token).
const (
	SessionCookie    = "__Host-onair_session"
	preSessionCookie = "__Host-onair_csrf"
)

// LoginRequest is the body of POST /api/login.
type LoginRequest struct {
	Password string `json:"password"`
}

// SetupRequest is the body of POST /api/setup.
type SetupRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

// ChangePasswordRequest is the body of POST /api/password.
type ChangePasswordRequest struct {
	OldPassword string `json:"old_password"`
	NewPassword string `json:"new_password"`
}

// PasswdRequest is the body of POST /api/passwd (the socket).
type PasswdRequest struct {
	Password string `json:"password"`
}

// SetupTokenResponse is the answer of GET /api/setup-token (the socket).
type SetupTokenResponse struct {
	Token string `json:"token"`
}

// SessionInfo is what the page needs to know first.
type SessionInfo struct {
	SetupNeeded bool `json:"setup_needed"` // no password yet: show setup
	Locked      bool `json:"locked"`       // the password file is unusable: show ErrLocked's text
	LoggedIn    bool `json:"logged_in"`
	// CSRFToken goes back in X-CSRF-Token on every POST: the session's
	// once logged in, else the pre-session one (for login and setup).
	CSRFToken string `json:"csrf_token"`
}

// Register serves the page's routes on mux (the mux behind Require): the
// session, login, logout, setup and password change. A route's other
// methods are answered 405 with JSON.
func (a *Auth) Register(mux *http.ServeMux) {
	route(mux, http.MethodGet, PathSession, a.handleSession)
	route(mux, http.MethodPost, PathLogin, a.handleLogin)
	route(mux, http.MethodPost, PathLogout, a.handleLogout)
	route(mux, http.MethodPost, PathSetup, a.handleSetup)
	route(mux, http.MethodPost, PathPassword, a.handlePassword)
}

// RegisterSocket serves onairctl's routes on mux, the unix socket's (no
// Require: the socket's mode is its access control): the setup token and
// setting the password without the old one. Both refuse (403) a request
// that did not come over a unix socket, should they end up on a TCP mux.
func (a *Auth) RegisterSocket(mux *http.ServeMux) {
	route(mux, http.MethodGet, PathSetupToken, socketOnly(a.handleSetupToken))
	route(mux, http.MethodPost, PathPasswd, socketOnly(a.handlePasswd))
}

func route(mux *http.ServeMux, method, p string, h http.HandlerFunc) {
	mux.HandleFunc(method+" "+p, h) // GET also answers HEAD
	allow := method
	if method == http.MethodGet {
		allow = "GET, HEAD"
	}
	mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "auth: "+r.Method+" "+p+": method not allowed (allowed: "+allow+")")
	})
}

type sessionCtxKey struct{}

// Require refuses every request without a live session, except the
// routes that make one (session, login, setup), Config.LoginPage and
// Config.Public (those two GET and HEAD only). Without a session, an
// /api/ route or a non-page request is answered 401 JSON, and a page
// request (GET or HEAD, Accept text/html) is redirected (303) to
// LoginPage. With a session, any method but GET, HEAD and OPTIONS must
// carry the session's CSRF token in X-CSRF-Token (403 otherwise).
func (a *Auth) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, sent := a.lookup(r)
		if sess != nil {
			r = r.WithContext(context.WithValue(r.Context(), sessionCtxKey{}, sess))
		}
		p := r.URL.Path
		switch {
		case p == PathSession || p == PathLogin || p == PathSetup:
			next.ServeHTTP(w, r) // they check their CSRF token themselves
			return
		case a.public(p):
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				writeError(w, http.StatusMethodNotAllowed, "auth: "+r.Method+" "+quote(p)+": method not allowed (allowed: GET, HEAD)")
				return
			}
			next.ServeHTTP(w, r)
			return
		case sess == nil:
			if sent {
				clearCookie(w, SessionCookie) // expired or unknown: stop sending it
			}
			if isPageRequest(r) {
				w.Header().Set("Cache-Control", "no-store")
				http.Redirect(w, r, a.cfg.LoginPage, http.StatusSeeOther)
				return
			}
			writeError(w, http.StatusUnauthorized, "auth: not logged in")
			return
		case !safeMethod(r.Method) && !equalSecret(r.Header.Get(CSRFHeader), sess.csrf):
			writeError(w, http.StatusForbidden, "auth: missing or wrong "+CSRFHeader+" header")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// isPageRequest: what a browser sends when the user opens a page.
func isPageRequest(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		!strings.HasPrefix(r.URL.Path, "/api/") && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// public tells whether p is LoginPage or in Config.Public. Only a clean
// path matches: /assets/../api/status is not under /assets/ (the mux
// would clean it after the check).
func (a *Auth) public(p string) bool {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	if c != p {
		return false
	}
	if p == a.cfg.LoginPage {
		return true
	}
	for _, pub := range a.cfg.Public {
		if p == pub || (strings.HasSuffix(pub, "/") && strings.HasPrefix(p, pub)) {
			return true
		}
	}
	return false
}

// lookup returns the live session of r's cookie (marking it used), or nil;
// sent tells whether r had a session cookie at all.
func (a *Auth) lookup(r *http.Request) (sess *session, sent bool) {
	if s, ok := r.Context().Value(sessionCtxKey{}).(*session); ok {
		return s, true
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil, false
	}
	return a.sessions.get(c.Value), true
}

// csrfOK checks X-CSRF-Token on a login or setup: against the session's
// token when r has a session, else against the pre-session cookie.
func (a *Auth) csrfOK(r *http.Request, sess *session) bool {
	got := r.Header.Get(CSRFHeader)
	if sess != nil {
		return equalSecret(got, sess.csrf)
	}
	c, err := r.Cookie(preSessionCookie)
	return err == nil && equalSecret(got, c.Value)
}

func (a *Auth) refuseCSRF(w http.ResponseWriter) {
	writeError(w, http.StatusForbidden, "auth: missing or wrong "+CSRFHeader+" header: GET "+PathSession+" first")
}

func (a *Auth) handleSession(w http.ResponseWriter, r *http.Request) {
	sess, _ := a.lookup(r)
	if sess != nil {
		writeJSON(w, http.StatusOK, SessionInfo{LoggedIn: true, CSRFToken: sess.csrf})
		return
	}
	st, _ := a.State()
	info := SessionInfo{SetupNeeded: st == StateSetup, Locked: st == StateLocked}
	if c, err := r.Cookie(preSessionCookie); err == nil && validToken(c.Value) {
		info.CSRFToken = c.Value
	} else {
		tok, err := randomToken()
		if err != nil {
			a.log.Error("[unexpected] pre-session token", zap.Error(err))
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		setCookie(w, preSessionCookie, tok)
		info.CSRFToken = tok
	}
	writeJSON(w, http.StatusOK, info)
}

// validToken: the shape of randomToken's output (a cookie the browser
// kept from us, not something planted).
func validToken(s string) bool {
	if len(s) != 43 {
		return false
	}
	for _, c := range []byte(s) {
		if !isAlnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func (a *Auth) handleLogin(w http.ResponseWriter, r *http.Request) {
	sess, _ := a.lookup(r)
	if !a.csrfOK(r, sess) {
		a.refuseCSRF(w)
		return
	}
	key, ok := a.admit(w, r)
	if !ok {
		return
	}
	var req LoginRequest
	if !readJSON(w, r, &req) {
		return
	}
	err := a.verify(r.Context(), req.Password)
	switch {
	case errors.Is(err, ErrWrongPassword):
		a.failed(w, key, "login failed: wrong password")
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	case err != nil:
		a.writePasswordError(w, err)
		return
	}
	a.limiter.succeed(key)
	if c, err := r.Cookie(SessionCookie); err == nil { // a new ID at every login: no session fixation
		a.sessions.remove(c.Value)
	}
	a.startSession(w, key, "logged in")
}

func (a *Auth) handleSetup(w http.ResponseWriter, r *http.Request) {
	sess, _ := a.lookup(r)
	if !a.csrfOK(r, sess) {
		a.refuseCSRF(w)
		return
	}
	key, ok := a.admit(w, r)
	if !ok {
		return
	}
	var req SetupRequest
	if !readJSON(w, r, &req) {
		return
	}
	err := a.Setup(r.Context(), req.Token, req.Password)
	switch {
	case errors.Is(err, ErrBadSetupToken):
		a.failed(w, key, "setup failed: wrong setup token")
		writeError(w, http.StatusForbidden, err.Error())
		return
	case err != nil:
		a.writePasswordError(w, err)
		return
	}
	a.limiter.succeed(key)
	a.startSession(w, key, "setup done, logged in")
}

func (a *Auth) handleLogout(w http.ResponseWriter, r *http.Request) {
	sess, _ := a.lookup(r)
	if sess == nil {
		writeError(w, http.StatusUnauthorized, "auth: not logged in")
		return
	}
	if !equalSecret(r.Header.Get(CSRFHeader), sess.csrf) {
		a.refuseCSRF(w)
		return
	}
	var req struct{}
	if !readJSON(w, r, &req) {
		return
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		a.sessions.remove(c.Value)
	}
	clearCookie(w, SessionCookie)
	a.log.Info("logged out", zap.Stringer("client", clientKey(r.RemoteAddr)))
	a.event("logged out", clientKey(r.RemoteAddr).String())
	writeJSON(w, http.StatusOK, SessionInfo{})
}

func (a *Auth) handlePassword(w http.ResponseWriter, r *http.Request) {
	sess, _ := a.lookup(r)
	if sess == nil {
		writeError(w, http.StatusUnauthorized, "auth: not logged in")
		return
	}
	if !equalSecret(r.Header.Get(CSRFHeader), sess.csrf) {
		a.refuseCSRF(w)
		return
	}
	key, ok := a.admit(w, r)
	if !ok {
		return
	}
	var req ChangePasswordRequest
	if !readJSON(w, r, &req) {
		return
	}
	err := a.ChangePassword(r.Context(), req.OldPassword, req.NewPassword)
	switch {
	case errors.Is(err, ErrWrongPassword):
		a.failed(w, key, "password change failed: wrong old password")
		writeError(w, http.StatusForbidden, err.Error()) // 403: the session is fine, 401 would log the page out
		return
	case err != nil:
		a.writePasswordError(w, err)
		return
	}
	a.limiter.succeed(key)
	a.sessions.removeAllBut(sess) // whoever knew the old password is out
	a.event("password changed on the page; other sessions ended", key.String())
	writeJSON(w, http.StatusOK, SessionInfo{LoggedIn: true, CSRFToken: sess.csrf})
}

func (a *Auth) handleSetupToken(w http.ResponseWriter, _ *http.Request) {
	tok, ok := a.SetupToken()
	if !ok {
		if st, _ := a.State(); st == StateLocked {
			writeError(w, http.StatusServiceUnavailable, ErrLocked.Error())
			return
		}
		writeError(w, http.StatusConflict, ErrSetupDone.Error()+": no setup token")
		return
	}
	writeJSON(w, http.StatusOK, SetupTokenResponse{Token: tok})
}

func (a *Auth) handlePasswd(w http.ResponseWriter, r *http.Request) {
	var req PasswdRequest
	if !readJSON(w, r, &req) {
		return
	}
	if err := a.SetPassword(r.Context(), req.Password); err != nil {
		a.writePasswordError(w, err)
		return
	}
	a.event("password set over the unix socket (onairctl passwd)", "unix socket")
	writeJSON(w, http.StatusOK, struct{}{})
}

// socketOnly refuses a request that did not come over a unix socket.
func socketOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Context().Value(http.LocalAddrContextKey).(*net.UnixAddr); !ok {
			writeError(w, http.StatusForbidden, "auth: "+r.URL.Path+" answers on the unix socket only")
			return
		}
		h(w, r)
	}
}

// admit answers 429 with Retry-After when r's client is locked out.
func (a *Auth) admit(w http.ResponseWriter, r *http.Request) (netip.Prefix, bool) {
	key := clientKey(r.RemoteAddr)
	ok, wait := a.limiter.allow(key)
	if !ok {
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, http.StatusTooManyRequests, "auth: too many failures from this address: try again in "+(time.Duration(secs)*time.Second).String())
		return key, false
	}
	return key, true
}

// failed counts a failure of key and logs it (the client, never what it typed).
func (a *Auth) failed(w http.ResponseWriter, key netip.Prefix, msg string) {
	lock := a.limiter.fail(key)
	if lock > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(lock.Seconds()))))
		a.log.Warn(msg+"; client locked out", zap.Stringer("client", key), zap.Duration("lockout", lock))
		a.event(msg+"; client locked out for "+lock.String(), key.String())
		return
	}
	a.log.Info(msg, zap.Stringer("client", key))
	// A failure before the lockout is only logged: a guesser must not
	// flush the post-event report. The lockout is an event.
}

// event tells Config.OnEvent, if set.
func (a *Auth) event(what, client string) {
	if a.cfg.OnEvent != nil {
		a.cfg.OnEvent(what, client)
	}
}

// startSession creates a session, sets its cookie and answers SessionInfo.
func (a *Auth) startSession(w http.ResponseWriter, key netip.Prefix, msg string) {
	id, sess, evicted, err := a.sessions.create()
	if err != nil {
		a.log.Error("[unexpected] new session", zap.Error(err))
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	setCookie(w, SessionCookie, id)
	clearCookie(w, preSessionCookie)
	a.log.Info(msg, zap.Stringer("client", key), zap.Bool("evicted_oldest_session", evicted))
	a.event(msg, key.String())
	writeJSON(w, http.StatusOK, SessionInfo{LoggedIn: true, CSRFToken: sess.csrf})
}

// writePasswordError answers an error of a password operation that is not
// a wrong secret.
func (a *Auth) writePasswordError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrPasswordTooShort), errors.Is(err, ErrPasswordTooLong), errors.Is(err, ErrPasswordInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrSetupDone), errors.Is(err, ErrNoPassword):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrLocked):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		a.log.Error("password operation", zap.Error(err)) // a write error: names the file
		writeError(w, http.StatusInternalServerError, "auth: could not store the password: see the box's log")
	}
}

func setCookie(w http.ResponseWriter, name, value string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/",
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// readJSON reads r's body into v: Content-Type application/json (415: a
// cross-site form cannot send it without a CORS preflight, which is never
// granted), at most api.MaxBodyBytes (413), one JSON value with known
// fields (400). An empty body is {}. It answers the error itself.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "auth: POST "+r.URL.Path+": Content-Type must be application/json")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, api.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "auth: POST "+r.URL.Path+": body over the limit")
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, "auth: POST "+r.URL.Path+": read body: "+err.Error())
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		// Not err's text: a JSON error can quote the body, a password.
		writeError(w, http.StatusBadRequest, "auth: POST "+r.URL.Path+": body must be one JSON object with the documented fields")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to tell it
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, api.Error{Error: msg})
}

func quote(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return strconv.Quote(strings.ToValidUTF8(s, "?"))
}

// IsLoopback tells whether addr, a host or host:port, is "localhost" or a
// loopback IP literal: where plain HTTP may listen. A name other than
// localhost is not resolved and is not loopback.
func IsLoopback(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
