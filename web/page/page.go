// Package page is the box's web page for the crew's phones: the embedded
// HTML, JavaScript and CSS (no CDN, no framework, no build step), and the
// Server-Sent Events stream (GET /api/stream) that keeps the page live with
// the status, the post-event report's events and the log tail.
//
// The page reads the api types as the JSON of GET /api/status has them
// and renders each part only when it is present (no bond: no uplinks); its
// controls POST to the existing command endpoints of package web, with the
// CSRF token of web/auth. Every string from the status may come from a peer:
// the page sets textContent, never innerHTML with data.
//
// Not for: the stream itself (it only reads snapshots: the status func, the
// event ring, the log ring; nothing of the stream depends on it, and a slow
// or stuck browser is dropped, never waited for), authentication (web/auth
// wraps the mux), or the checks of package web's guard (Host, Origin,
// methods, JSON bodies), which the caller puts around everything.
//
// # Wiring
//
//	p, err := page.New(page.Config{Status: box.Status, Events: ring, Logs: logs}, log.Named("page"), clock)
//	a, err := auth.New(auth.Config{Dir: dir, Public: page.Public()}, log.Named("auth"), clock)
//	mux := http.NewServeMux()
//	a.Register(mux)
//	p.Register(mux) // GET /{$}, /login, /static/…, /api/stream
//	mux.Handle("/", apiMux)
//	handler := guard(a.Require(mux))
//
// The stream clears the server's WriteTimeout for its own response through
// http.ResponseController, so every wrapper between the server and the
// handler must pass the ResponseWriter through or implement Unwrap.
package page

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/web/api"
)

//go:embed assets
var assets embed.FS

// EventSource is the post-event report's ring (events.Ring).
type EventSource interface {
	// List returns the kept events with Seq > after and Time >= since (zero:
	// all), oldest first, and how many fell off the ring.
	List(since time.Time, after uint64) ([]api.Event, uint64)
	// Subscribe returns a channel of every event added from now on and a
	// func that ends the subscription. The channel is closed when the
	// subscriber fell behind: the stream then ends, and the browser
	// reconnects with Last-Event-ID and catches up from List.
	Subscribe() (<-chan api.Event, func())
}

// LogSource is onaird's log ring as the page shows it.
type LogSource interface {
	// Lines returns at most n of the newest lines with Seq > after, oldest
	// first, and how many older lines fell off the tail (logging.Tail).
	Lines(after uint64, n int) ([]api.LogLine, uint64)
	// Subscribe is as EventSource.Subscribe, for log lines.
	Subscribe() (<-chan api.LogLine, func())
}

// Config configures the page. Zero fields take the defaults in brackets.
type Config struct {
	// Status returns a snapshot of the whole box; required. It is called
	// every Interval by every open stream, so it must be cheap.
	Status func() api.Status
	// Events is the event ring; required.
	Events EventSource
	// Logs is the log ring; nil: no log tail.
	Logs LogSource
	// Interval is how often a stream checks whether the status changed
	// [DefaultInterval].
	Interval time.Duration
	// MaxStreams caps the open streams; one more is answered 503
	// [DefaultMaxStreams].
	MaxStreams int
}

// Defaults of Config, and the stream's fixed timings.
const (
	DefaultInterval   = 250 * time.Millisecond
	DefaultMaxStreams = 32
	// KeepAlive is how often an idle stream sends a comment, so that
	// proxies and the browser see it alive.
	KeepAlive = 15 * time.Second
	// WriteTimeout bounds each write of a stream: a client that takes
	// longer to take a few kilobytes is gone or stuck, and is dropped.
	WriteTimeout = 5 * time.Second
	// MaxAge ends a stream that long after it opened. The browser
	// reconnects at once, and so passes the session check again: a stream
	// does not outlive a logout or an expired session by more than this,
	// and an open page keeps its session alive (auth.Config.SessionIdle
	// is longer).
	MaxAge = 5 * time.Minute
	// ReplayEvents is how many of the newest events a stream sends first
	// when the browser has seen none (no Last-Event-ID).
	ReplayEvents = 50
	// ReplayLogs is how many of the newest log lines a stream sends first.
	ReplayLogs = 100
)

// Page serves the web page and its stream. Create it with New.
type Page struct {
	cfg     Config
	log     *zap.Logger
	clock   clockwork.Clock
	static  map[string]asset // by name under assets/
	streams atomic.Int64
}

// asset is one embedded file, ready to serve.
type asset struct {
	name  string
	data  []byte
	ctype string
	etag  string
}

// New checks cfg and loads the embedded assets.
func New(cfg Config, log *zap.Logger, clock clockwork.Clock) (*Page, error) {
	if cfg.Status == nil {
		return nil, errors.New("page: no status func")
	}
	if cfg.Events == nil {
		return nil, errors.New("page: no event source")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	p := &Page{cfg: cfg, log: log, clock: clock, static: map[string]asset{}}
	err := fs.WalkDir(assets, "assets", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := assets.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		base := path.Base(name)
		ctype := mime.TypeByExtension(path.Ext(base))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		p.static[base] = asset{name: base, data: data, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("page: assets: %w", err)
	}
	for _, need := range []string{"index.html", "login.html", "app.js", "login.js", "common.js", "style.css"} {
		if _, ok := p.static[need]; !ok {
			return nil, fmt.Errorf("page: asset %s missing", need)
		}
	}
	return p, nil
}

// The page's paths.
const (
	PathIndex  = "/"
	PathLogin  = "/login"
	PathStatic = "/static/"
)

// Public are the paths the login page needs before a session:
// auth.Config.Public. They hold code and style only, no data.
func Public() []string { return []string{PathStatic} }

// Register serves the page on mux: GET / (the page), GET /login (setup or
// login, as GET /api/session says), GET /static/… (the assets) and GET
// api.PathStream (the live stream). GET also answers HEAD; other methods
// fall through to whatever else mux has for the path.
func (p *Page) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", p.file("index.html"))
	mux.HandleFunc("GET "+PathLogin, p.file("login.html"))
	mux.HandleFunc("GET "+PathStatic+"{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if _, ok := p.static[name]; !ok || strings.HasSuffix(name, ".html") {
			setPageHeaders(w)
			http.Error(w, "no such file", http.StatusNotFound)
			return
		}
		p.file(name)(w, r)
	})
	mux.HandleFunc("GET "+api.PathStream, p.stream)
}

// Streams is the number of open streams.
func (p *Page) Streams() int { return int(p.streams.Load()) }

// ContentSecurityPolicy is sent with every page and asset: nothing but this
// origin, no inline script or style element, no framing.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// file serves one embedded asset. The browser revalidates every time
// (no-cache with an ETag): an update of the box shows at the next load.
func (p *Page) file(name string) http.HandlerFunc {
	a := p.static[name]
	return func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, a.name, time.Time{}, strings.NewReader(string(a.data)))
	}
}
