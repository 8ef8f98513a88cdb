// Package auth is the authentication of the box's web page: the one
// operator password (argon2id, in a file of the state dir), first-start
// setup with a one-time token instead of a default password, browser
// sessions with CSRF tokens, a per-address brake on guessing, the
// middleware that refuses every other route without a session, and the
// box's self-signed HTTPS certificate.
//
// Not for: users or roles (there is one operator password), the unix
// socket's access control (the socket's mode and owner are that: whoever
// can connect is root or in its group and needs no password), the page
// itself, or deciding what listens where (plain HTTP on loopback only is
// the caller's policy; IsLoopback helps it).
//
// # States
//
// An Auth is in one State, decided by the password file at New:
//
//	StateSetup   no password file: the page offers only setup, which takes
//	             the setup token (SetupToken; new at every start while
//	             there is no password, never logged by this package) and
//	             a new password.
//	StateReady   a password is set: login.
//	StateLocked  the password file exists but cannot be read or parsed:
//	             nothing logs in and setup is NOT offered (a corrupt file
//	             read as "no password" would hand the box to whoever
//	             reaches the page first). State says why, naming the file.
//
// Transitions: Setup → Ready (Setup with the token, or SetPassword);
// Locked → Ready (SetPassword: onairctl passwd over the socket, no restart,
// the show goes on); Ready → Ready (ChangePassword, SetPassword). Nothing
// goes back to Setup: that takes removing the password file and a restart.
//
// # Wiring
//
// The state dir is on the persistent partition, e.g. /var/lib/onair/auth
// (systemd StateDirectory=onair); New creates it 0700 if missing. onaird
// does roughly:
//
//	a, err := auth.New(auth.Config{Dir: dir}, log.Named("auth"), clock)
//	if tok, ok := a.SetupToken(); ok {
//		// To stderr (the journal), not through zap: the log ring is shown
//		// on the web page.
//		fmt.Fprintf(os.Stderr, "onaird: no password set; setup token: %s\n", tok)
//	}
//	if st, err := a.State(); st == auth.StateLocked {
//		log.Error("web page locked", zap.Error(err)) // names the file, no secret
//	}
//	cert, err := auth.LoadOrCreateCertificate(auth.CertConfig{Dir: dir, Extra: cfg.API.TLSNames}, log.Named("tls"), clock)
//
//	page := http.NewServeMux()    // what the browser reaches (HTTPS, loopback HTTP)
//	a.Register(page)              // /api/login, /api/logout, /api/setup, /api/session, /api/password
//	page.Handle("/", apiMux)      // the existing API and the page
//	tcp := guard(a.Require(page)) // web.guard outermost: Host, Origin, methods
//
//	sock := http.NewServeMux()    // onairctl over the unix socket: no session
//	a.RegisterSocket(sock)        // /api/setup-token, /api/passwd
//	sock.Handle("/", apiMux)
//	unix := guard(sock)
//
//	srv.TLSConfig = cert.TLSConfig() // and srv.ServeTLS(ln, "", "")
//
// The Require middleware goes inside web's guard (which refuses foreign
// Hosts and cross-origin browsers before any cookie is looked at) and
// outside every route. RegisterSocket's routes must not be on the page's
// mux; they refuse a request that did not come over a unix socket anyway.
// The guard's Host check must then accept the names in the certificate.
//
// # The page's side
//
// GET /api/session answers SessionInfo: setup needed, logged in, and a CSRF
// token. Every POST (login and setup included) sends that token back in the
// X-CSRF-Token header, with Content-Type application/json; before login the
// token is the double-submit value of a pre-session cookie, after it the
// session's own. Logged out, an /api/ route answers 401 JSON; a page (GET
// or HEAD, Accept: text/html) is redirected (303) to Config.LoginPage, one
// page that shows setup or login as /api/session says. The cookies are
// HttpOnly, Secure, SameSite=Strict, Path=/, with the __Host- prefix:
// over plain HTTP only a browser that treats loopback as secure (Chrome,
// Firefox) keeps them; tunnel the HTTPS port instead.
package auth

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/internal/atomicfile"
)

// State is what the page offers; see the package comment for the
// transitions.
type State int

// The states.
const (
	StateSetup  State = iota // no password: setup with the token only
	StateReady               // a password is set: login
	StateLocked              // the password file is unusable: nothing until SetPassword
)

// String names the state: setup, ready, locked.
func (s State) String() string {
	switch s {
	case StateSetup:
		return "setup"
	case StateReady:
		return "ready"
	case StateLocked:
		return "locked"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// PasswordFile is the name of the password file in Config.Dir.
const PasswordFile = "password"

// Errors of the password operations.
var (
	// ErrCorruptPasswordFile is wrapped by State's error when the password
	// file does not parse.
	ErrCorruptPasswordFile = errors.New("auth: corrupt password file")
	// ErrLocked: the password file is unusable (State says why); only
	// SetPassword works.
	ErrLocked = errors.New("auth: the password file is unusable: set a new password with onairctl passwd on the box")
	// ErrSetupDone: a password is set; the setup token is gone.
	ErrSetupDone = errors.New("auth: a password is already set")
	// ErrNoPassword: no password is set yet; only setup works.
	ErrNoPassword = errors.New("auth: no password is set yet: set one with the setup token")
	// ErrBadSetupToken: not the setup token of this start.
	ErrBadSetupToken = errors.New("auth: wrong setup token")
	// ErrWrongPassword: not the password.
	ErrWrongPassword = errors.New("auth: wrong password")
)

// Config configures an Auth. Zero fields take the defaults in brackets.
type Config struct {
	// Dir is the state dir: the password file, and usually the
	// certificate's files. Required; created 0700 if missing (an existing
	// dir keeps its mode; the password file is 0600 either way).
	Dir string
	// Params hash new passwords [DefaultParams].
	Params Params
	// SessionIdle ends a session unused that long [30 min]. The page's
	// status polling keeps an open page's session alive.
	SessionIdle time.Duration
	// SessionMax ends a session that long after login, used or not [12 h].
	SessionMax time.Duration
	// MaxSessions caps the sessions; a login beyond it evicts the one
	// used least recently [32].
	MaxSessions int
	// Limit is the brake on guessing.
	Limit LimitConfig
	// LoginPage is where Require redirects a page request without a
	// session; it is reachable without one ["/login"].
	LoginPage string
	// Public are more paths reachable without a session, GET and HEAD
	// only: the login page's assets. A path ending in "/" is a prefix.
	Public []string
	// OnEvent, if set, hears of every login, lockout after failed logins,
	// logout, setup and password change: what happened and the client's address (its
	// /32 or /64), never what was typed. It is called on the request's
	// goroutine and must not block.
	OnEvent func(what, client string)
}

func (c *Config) setDefaults() {
	if c.Params == (Params{}) {
		c.Params = DefaultParams
	}
	if c.SessionIdle <= 0 {
		c.SessionIdle = 30 * time.Minute
	}
	if c.SessionMax <= 0 {
		c.SessionMax = 12 * time.Hour
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 32
	}
	if c.LoginPage == "" {
		c.LoginPage = "/login"
	}
}

// Auth is the page's authentication. Its methods are safe for concurrent
// use. Nothing runs in the background: expired sessions and forgotten
// clients are dropped as requests come.
type Auth struct {
	cfg      Config
	log      *zap.Logger
	clock    clockwork.Clock
	file     string
	sessions *sessions
	limiter  *limiter
	hashSem  chan struct{} // one argon2id hash at a time: bounded memory

	setMu sync.Mutex // one password change at a time, from check to write

	mu      sync.Mutex
	state   State
	problem error  // why StateLocked
	hash    *hash  // StateReady
	token   string // StateSetup: the setup token, normalized
}

// New reads the password file in cfg.Dir. A missing file means first
// start: StateSetup with a new setup token. A file that cannot be read or
// parsed does not fail New (the socket must still take onairctl passwd, and
// the rest of the box must run): it gives StateLocked, logged here.
func New(cfg Config, log *zap.Logger, clock clockwork.Clock) (*Auth, error) {
	if cfg.Dir == "" {
		return nil, errors.New("auth: no state dir")
	}
	if err := validParams(cfg.Params); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	for _, p := range append([]string{cfg.LoginPage}, cfg.Public...) {
		if err := validPublicPath(p); err != nil {
			return nil, err
		}
	}
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: state dir: %w", err)
	}
	a := &Auth{
		cfg: cfg, log: log, clock: clock,
		file:     filepath.Join(cfg.Dir, PasswordFile),
		sessions: newSessions(clock, cfg.SessionIdle, cfg.SessionMax, cfg.MaxSessions),
		limiter:  newLimiter(cfg.Limit, clock),
		hashSem:  make(chan struct{}, 1),
	}
	h, err := a.readPasswordFile()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		tok, terr := newSetupToken()
		if terr != nil {
			return nil, terr
		}
		a.state, a.token = StateSetup, tok
		a.log.Warn("no password set: the web page offers only setup, with the setup token (onairctl setup-token)")
	case err != nil:
		a.state, a.problem = StateLocked, err
		a.log.Error("web page locked: no login until onairctl passwd sets a new password", zap.Error(err))
	default:
		a.state, a.hash = StateReady, h
	}
	return a, nil
}

// validParams refuses parameters that argon2 cannot use or that parseHash
// would refuse when it reads them back.
func validParams(p Params) error {
	if p == (Params{}) {
		return nil
	}
	if p.Time < 1 || p.Time > maxTime || p.Threads < 1 || p.Threads > maxThreads ||
		p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemoryKiB {
		return fmt.Errorf("auth: argon2id parameters %+v out of range", p)
	}
	return nil
}

// validPublicPath refuses a public path that would open more than meant:
// "/" as a prefix opens everything, an unclean one never matches, /api/ is
// the API's.
func validPublicPath(p string) error {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	switch {
	case !strings.HasPrefix(p, "/") || c != p:
		return fmt.Errorf("auth: public path %q: not a clean absolute path", p)
	case p == "/":
		return fmt.Errorf("auth: public path %q would make every path public", p)
	case strings.HasPrefix(p, "/api/"):
		return fmt.Errorf("auth: public path %q: the API is never public", p)
	}
	return nil
}

// readPasswordFile reads and parses the password file. Its error wraps
// fs.ErrNotExist when there is none, ErrCorruptPasswordFile when it does not
// parse, and names the file.
func (a *Auth) readPasswordFile() (*hash, error) {
	b, err := os.ReadFile(a.file)
	if err != nil {
		return nil, fmt.Errorf("auth: password file %s: %w", a.file, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, fmt.Errorf("%w %s: empty", ErrCorruptPasswordFile, a.file)
	}
	h, err := parseHash(s)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrCorruptPasswordFile, a.file, err)
	}
	if fi, err := os.Stat(a.file); err == nil && fi.Mode().Perm()&0o077 != 0 {
		a.log.Warn("password file readable by others: setting mode 0600",
			zap.String("file", a.file), zap.Stringer("mode", fi.Mode().Perm()))
		if err := os.Chmod(a.file, 0o600); err != nil {
			a.log.Warn("password file chmod", zap.String("file", a.file), zap.Error(err))
		}
	}
	return h, nil
}

// writePasswordFile stores h, atomically, mode 0600.
func (a *Auth) writePasswordFile(h *hash) error {
	return atomicfile.WriteFile(a.file, []byte(h.String()+"\n"), 0o600)
}

// newSetupToken is 128 random bits in base32 (26 characters, A–Z and 2–7:
// nothing to confuse when typed from a terminal).
func newSetupToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: setup token: %w", err)
	}
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b), nil
}

// normalizeToken is what a typed token is compared as: upper case, without
// spaces or dashes.
func normalizeToken(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// State is the current state; when StateLocked, the error says why (it
// names the file and holds no secret).
func (a *Auth) State() (State, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state, a.problem
}

// SetupToken is the setup token while no password is set (ok false once
// one is). The caller prints it to the journal; onairctl setup-token reads
// it over the socket.
func (a *Auth) SetupToken() (token string, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state != StateSetup {
		return "", false
	}
	return a.token, true
}

// Setup sets the first password, given the setup token. The token works
// once: after a successful Setup it is gone. A refused password (too short)
// or a failed write does not use it up.
func (a *Auth) Setup(ctx context.Context, token, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	a.setMu.Lock()
	defer a.setMu.Unlock()
	a.mu.Lock()
	st, want := a.state, a.token
	a.mu.Unlock()
	switch st {
	case StateReady:
		return ErrSetupDone
	case StateLocked:
		return ErrLocked
	}
	if !equalSecret(normalizeToken(token), want) {
		return ErrBadSetupToken
	}
	if err := a.replace(ctx, password); err != nil {
		return err
	}
	a.log.Info("password set with the setup token")
	return nil
}

// ChangePassword replaces the password, given the current one. Sessions
// are the caller's business (the HTTP handler ends all but the changer's).
func (a *Auth) ChangePassword(ctx context.Context, old, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	a.setMu.Lock()
	defer a.setMu.Unlock()
	if err := a.verify(ctx, old); err != nil {
		return err
	}
	if err := a.replace(ctx, password); err != nil {
		return err
	}
	a.log.Info("password changed")
	return nil
}

// SetPassword sets the password without the old one or the token, in any
// state: onairctl passwd, for whoever holds the unix socket. Every session
// ends.
func (a *Auth) SetPassword(ctx context.Context, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	a.setMu.Lock()
	defer a.setMu.Unlock()
	a.mu.Lock()
	was := a.state
	a.mu.Unlock()
	if err := a.replace(ctx, password); err != nil {
		return err
	}
	a.sessions.removeAllBut(nil)
	a.log.Info("password set over the socket", zap.Stringer("was", was))
	return nil
}

// replace hashes password, writes it and makes it the password: state
// Ready, no token, no problem. a.setMu is held.
func (a *Auth) replace(ctx context.Context, password string) error {
	var h *hash
	var err error
	if serr := a.withHashSlot(ctx, func() { h, err = newHash(password, a.cfg.Params) }); serr != nil {
		return serr
	}
	if err != nil {
		return err
	}
	if err := a.writePasswordFile(h); err != nil {
		return err
	}
	a.mu.Lock()
	a.state, a.problem, a.hash, a.token = StateReady, nil, h, ""
	a.mu.Unlock()
	return nil
}

// verify checks password against the current one: nil, ErrWrongPassword,
// ErrNoPassword, ErrLocked, or the context's error while waiting for the
// hash slot. A hash with other parameters than Config.Params is replaced
// after a success (when no change is under way).
func (a *Auth) verify(ctx context.Context, password string) error {
	a.mu.Lock()
	st, h := a.state, a.hash
	a.mu.Unlock()
	switch st {
	case StateSetup:
		return ErrNoPassword
	case StateLocked:
		return ErrLocked
	}
	var ok bool
	if err := a.withHashSlot(ctx, func() { ok = h.verify(password) }); err != nil {
		return err
	}
	if !ok {
		return ErrWrongPassword
	}
	if h.p != a.cfg.Params && checkPassword(password) == nil {
		a.rehash(ctx, h, password)
	}
	return nil
}

// rehash replaces h, a hash with old parameters, by one with the current
// ones, if h is still the password and no change holds a.setMu. A failure
// is only logged: the old hash still works.
func (a *Auth) rehash(ctx context.Context, h *hash, password string) {
	if !a.setMu.TryLock() {
		return // a change is under way (and maybe called verify): leave it
	}
	defer a.setMu.Unlock()
	a.mu.Lock()
	same := a.hash == h
	a.mu.Unlock()
	if !same {
		return
	}
	if err := a.replace(ctx, password); err != nil {
		a.log.Warn("password rehash with new parameters failed; the old hash stays", zap.Error(err))
		return
	}
	a.log.Info("password rehashed with new parameters",
		zap.Uint32("t", a.cfg.Params.Time), zap.Uint32("m_kib", a.cfg.Params.MemoryKiB), zap.Uint8("p", a.cfg.Params.Threads))
}

// withHashSlot runs f (an argon2id hash) when no other hash runs, or
// returns ctx's error if it ends first.
func (a *Auth) withHashSlot(ctx context.Context, f func()) error {
	select {
	case a.hashSem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("auth: waiting for the password hash: %w", ctx.Err())
	}
	defer func() { <-a.hashSem }()
	f()
	return nil
}
