// Package web is onaird's local API: JSON status and operator commands over
// HTTP, served on a loopback TCP address (the web page, Prometheus's /metrics) and
// on a unix socket (onairctl over SSH). Both listeners serve the same explicit
// mux; the types and the client are in web/api.
//
// Every request is checked before it reaches a handler (guard.go): the Host
// must be a loopback name (no DNS rebinding), a browser's cross-origin request
// is refused, methods are checked, a POST must be application/json and at
// most api.MaxBodyBytes. So a web page in a browser on the same machine cannot
// drive the box.
//
// Both TCP listeners (api.listen, plain HTTP on loopback; api.https, TLS on
// any address) put every route but login and setup behind a session
// (web/auth) and serve the web page (web/page); the unix socket needs no
// session (its mode is the access control: SSH, then root) and serves
// onairctl's setup-token and passwd besides the API. A separate
// metrics.listen serves only /metrics, to the addresses in metrics.allow.
//
// Not for: the stream itself, the page's assets (web/page), or the
// authentication's rules (web/auth).
package web

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"onair/web/api"
	"onair/web/auth"
)

// Box is what the API needs from onaird. Its methods are called from the
// HTTP handlers' goroutines, concurrently.
type Box interface {
	// Status returns a snapshot of the whole box.
	Status() api.Status
	// FailoverVideo swaps the active encoder without a gap and names the
	// target. pending: the twins are unlocked, so the target takes over at
	// the next seamless point instead of now. An error means the failover
	// is refused (answered 409 with its text).
	FailoverVideo() (target string, pending bool, err error)
	// SetVideoBitrate changes both encoders' bitrate at one frame index,
	// or, while the adaptive bitrate runs, its ceiling. An error means the
	// value is refused (answered 400 with its text).
	SetVideoBitrate(kbps int) (api.BitrateResult, error)
	// SetUplink enables or disables one uplink of a bonded output without a
	// gap. An error wrapping ErrNotFound is answered 404, any other 409.
	SetUplink(name string, enabled bool) (api.UplinkStatus, error)
	// SetAudioSource sets the audio mode (auto, or a forced chain) and
	// returns the audio status after it. An error means the mode is
	// refused (answered 400).
	SetAudioSource(mode api.AudioMode) (api.AudioStatus, error)
	// SetOnAir goes live (true) or stops the stream cleanly (false); a
	// stop returns once the stream has ended (ctx bounds it). An error is
	// answered 409.
	SetOnAir(ctx context.Context, live bool) (api.OnAirStatus, error)
	// PanelPress presses a front-panel button. An error wrapping
	// ErrNotFound (no such button) is answered 404, any other 409.
	PanelPress(button string, long bool) (api.PanelPressResult, error)
	// SetRecording starts or stops the local recording and returns its
	// status after. An error wrapping ErrNotFound (recording.dir is not
	// set) is answered 404, any other (it cannot start: the reason) 409.
	SetRecording(ctx context.Context, on bool) (api.RecordingStatus, error)
	// Restart restarts one child or component by name, the stream kept.
	// An error wrapping ErrNotFound is answered 404, any other 409.
	Restart(name string, force bool) (api.RestartResult, error)
	// ApplyConfig validates raw YAML and, unless dryRun, applies what can
	// change live and saves it. An error wrapping ErrInvalid (it does not
	// validate: the key named, nothing changed) is answered 400, any other
	// 409.
	ApplyConfig(ctx context.Context, raw []byte, dryRun bool) (api.ConfigResult, error)
	// StartCanary starts the on-air canary of a new encoder worker and
	// returns its status (answered 202); an error is answered 409.
	StartCanary(worker string) (api.CanaryStatus, error)
	// Update starts installing a signed bundle into the inactive slot
	// (answered 202); an error is answered 409.
	Update(req api.UpdateRequest) (api.UpdateInstall, error)
}

// ErrInvalid is wrapped by a Box error about input that does not validate.
var ErrInvalid = errors.New("invalid")

// ErrNotFound is wrapped by a Box error about something that does not exist
// (an unknown uplink, no bonding configured).
var ErrNotFound = errors.New("not found")

// Config says where to listen and what to serve.
type Config struct {
	Listen string // TCP, plain HTTP, loopback only, e.g. 127.0.0.1:8080; empty disables
	// HTTPS is a TCP address on any interface (e.g. ":8443"), served over
	// TLS with Cert; empty disables.
	HTTPS  string
	Socket string // unix socket path, created 0660; empty disables
	// Auth guards both TCP listeners (every route but login and setup
	// needs a session) and serves onairctl's setup-token and passwd on
	// the socket. Required when Listen or HTTPS is set, unless AuthErr
	// says why there is none: the TCP listeners then answer 503 with it
	// (the page is locked, the socket and the stream are not).
	Auth    *auth.Auth
	AuthErr error
	// Cert is the HTTPS listener's certificate (required with HTTPS).
	Cert *auth.Certificate
	// Names are the host names the HTTPS listener answers to besides IP
	// literals and localhost (the certificate's names): any other Host is
	// refused (DNS rebinding).
	Names []string
	// Page registers the web page's routes (web/page); nil: a minimal
	// index page.
	Page interface{ Register(mux *http.ServeMux) }
	// Events serves GET /api/events; nil: no such route.
	Events EventSource
	// Logs serves GET /api/logs; nil: no such route.
	Logs LogSource
	// Metrics serves GET /metrics (web/metrics) behind the session and on
	// the socket; nil: no such route.
	Metrics http.Handler
	// MetricsListen is a separate plain-HTTP listener for the studio's
	// Prometheus (any address): GET /metrics only, from MetricsAllow and
	// loopback only. Empty disables.
	MetricsListen string
	MetricsAllow  []netip.Prefix
}

// EventSource is the event ring (events.Ring).
type EventSource interface {
	List(since time.Time, after uint64) ([]api.Event, uint64)
}

// LogSource is onaird's log tail (logging.Tail).
type LogSource interface {
	Lines(after uint64, n int) ([]api.LogLine, uint64)
}

// The limits of the HTTP servers.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	shutdownGrace     = 2 * time.Second
)

// Server serves the API. Create it with New; Run (or RunTCP and RunSocket
// separately) may be called again after it returned, e.g. by a supervisor.
type Server struct {
	cfg     Config
	box     Box
	log     *zap.Logger
	tcp     http.Handler // the page's mux behind every check and the session
	https   http.Handler // the same, with the HTTPS listener's Host check
	unix    http.Handler // the socket's mux behind the checks that apply to a socket
	metrics http.Handler // the metrics listener's
	timeout timeouts

	mu      sync.Mutex
	serving map[string]bool // "tcp", "unix": bound and serving at least once
	ready   chan struct{}
}

type timeouts struct{ readHeader, read, write, idle time.Duration }

// New builds the server; nothing listens until Run. A non-loopback
// api.listen is refused: plain HTTP is for loopback only (HTTPS is for the
// network).
func New(cfg Config, box Box, log *zap.Logger) (*Server, error) {
	if cfg.Listen == "" && cfg.Socket == "" && cfg.HTTPS == "" {
		return nil, errors.New("web: none of api.listen, api.https and api.socket is set")
	}
	if cfg.Listen != "" {
		if err := checkLoopback(cfg.Listen); err != nil {
			return nil, err
		}
	}
	if (cfg.Listen != "" || cfg.HTTPS != "") && cfg.Auth == nil && cfg.AuthErr == nil {
		return nil, errors.New("web: a TCP listener needs the page's authentication")
	}
	if cfg.HTTPS != "" && cfg.Cert == nil {
		return nil, errors.New("web: api.https needs a certificate")
	}
	s := &Server{cfg: cfg, box: box, log: log, serving: map[string]bool{}, ready: make(chan struct{}),
		timeout: timeouts{readHeader: readHeaderTimeout, read: readTimeout, write: writeTimeout, idle: idleTimeout}}

	page := http.NewServeMux()
	s.routes(page)
	if cfg.Page != nil {
		cfg.Page.Register(page)
	} else {
		route(page, "/{$}", http.MethodGet, s.index)
	}
	notFound(page)
	var tcp http.Handler
	switch {
	case cfg.Auth != nil:
		cfg.Auth.Register(page)
		tcp = cfg.Auth.Require(page)
	default:
		why := fmt.Sprintf("web: the page is locked: %v (the stream and onairctl over the socket are not)", cfg.AuthErr)
		tcp = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeError(w, http.StatusServiceUnavailable, why) })
	}
	s.tcp = guard(tcp, s.allowedHost)
	s.https = guard(hsts(tcp), s.allowedHTTPSHost)

	sock := http.NewServeMux()
	s.routes(sock)
	if cfg.Auth != nil {
		cfg.Auth.RegisterSocket(sock)
	}
	notFound(sock)
	s.unix = guard(sock, nil) // a browser cannot reach a unix socket: no Host to check
	if cfg.Metrics != nil {
		s.metrics = s.metricsOnly(cfg.Metrics)
	}
	return s, nil
}

// routes serves the API on mux: the same on the page's listeners (behind
// the session) and on the socket.
func (s *Server) routes(mux *http.ServeMux) {
	route(mux, api.PathStatus, http.MethodGet, s.status)
	route(mux, api.PathFailoverVideo, http.MethodPost, s.failoverVideo)
	route(mux, api.PathVideoBitrate, http.MethodPost, s.videoBitrate)
	route(mux, api.PathUplinks+"{name}", http.MethodPost, s.setUplink)
	route(mux, api.PathAudioSource, http.MethodPost, s.setAudioSource)
	route(mux, api.PathOnAir, http.MethodPost, s.setOnAir)
	route(mux, api.PathPanelPress, http.MethodPost, s.panelPress)
	route(mux, api.PathRecording, http.MethodPost, s.setRecording)
	route(mux, api.PathRestart, http.MethodPost, s.restart)
	routeN(mux, api.PathConfig, http.MethodPost, api.MaxConfigBytes, s.applyConfig)
	route(mux, api.PathCanary, http.MethodPost, s.startCanary)
	route(mux, api.PathUpdate, http.MethodPost, s.startUpdate)
	if s.cfg.Events != nil {
		route(mux, api.PathEvents, http.MethodGet, s.events)
	}
	if s.cfg.Logs != nil {
		route(mux, api.PathLogs, http.MethodGet, s.logs)
	}
	if s.cfg.Metrics != nil {
		metrics := s.cfg.Metrics
		route(mux, "/metrics", http.MethodGet, func(w http.ResponseWriter, r *http.Request, _ []byte) { metrics.ServeHTTP(w, r) })
	}
}

func notFound(mux *http.ServeMux) {
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "web: no such endpoint: "+r.URL.Path)
	})
}

// hsts tells a browser that reached the box over HTTPS to stay on HTTPS.
func hsts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		next.ServeHTTP(w, r)
	})
}

// checkLoopback refuses an address that would listen beyond this machine.
func checkLoopback(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("web: api.listen %q: %w", listen, err)
	}
	if isLoopbackName(host) {
		return nil
	}
	return fmt.Errorf("web: api.listen %q: plain HTTP is for loopback only (127.0.0.1, [::1] or localhost); use api.https for the network", listen)
}

// isLoopbackName: "localhost" or a loopback IP literal.
func isLoopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// allowedHost is the DNS rebinding check: a page of evil.example whose name
// was re-pointed to 127.0.0.1 reaches our port with Host: evil.example.
func (s *Server) allowedHost(hostport string) bool {
	if hostport == s.cfg.Listen {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return isLoopbackName(host)
}

// allowedHTTPSHost is the HTTPS listener's DNS rebinding check: an IP
// literal (the box's address, however the crew reached it), a loopback
// name or one of Config.Names.
func (s *Server) allowedHTTPSHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil || isLoopbackName(host) {
		return true
	}
	for _, n := range s.cfg.Names {
		if strings.EqualFold(strings.TrimSuffix(host, "."), n) {
			return true
		}
	}
	return false
}

// Handler is the API as served on TCP, every check included, for tests.
func (s *Server) Handler() http.Handler { return s.tcp }

// Ready is closed once every configured listener is bound and serving.
func (s *Server) Ready() <-chan struct{} { return s.ready }

func (s *Server) markServing(kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serving[kind] = true
	if (s.cfg.Listen == "" || s.serving["tcp"]) && (s.cfg.Socket == "" || s.serving["unix"]) &&
		(s.cfg.HTTPS == "" || s.serving["https"]) && (s.cfg.MetricsListen == "" || s.serving["metrics"]) {
		select {
		case <-s.ready:
		default:
			close(s.ready)
		}
	}
}

// Run serves every configured listener until ctx is done (then it returns
// nil). It returns an error, having closed the others, as soon as one
// cannot bind or stops serving.
func (s *Server) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	if s.cfg.Listen != "" {
		g.Go(func() error { return s.RunTCP(gctx) })
	}
	if s.cfg.Socket != "" {
		g.Go(func() error { return s.RunSocket(gctx) })
	}
	if s.cfg.HTTPS != "" {
		g.Go(func() error { return s.RunHTTPS(gctx) })
	}
	if s.cfg.MetricsListen != "" {
		g.Go(func() error { return s.RunMetrics(gctx) })
	}
	return g.Wait()
}

// RunTCP serves api.listen until ctx is done; see Run.
func (s *Server) RunTCP(ctx context.Context) error {
	if s.cfg.Listen == "" {
		return errors.New("web: api.listen is not set")
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("web: api.listen %s: %w", s.cfg.Listen, err)
	}
	// "localhost" is resolved by the system: make sure it was loopback.
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		_ = ln.Close()
		return fmt.Errorf("web: api.listen %s: bound to %s, not loopback", s.cfg.Listen, ln.Addr())
	}
	return s.serve(ctx, "tcp", ln, s.tcp, nil)
}

// RunHTTPS serves api.https over TLS until ctx is done; see Run.
func (s *Server) RunHTTPS(ctx context.Context) error {
	if s.cfg.HTTPS == "" {
		return errors.New("web: api.https is not set")
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.HTTPS)
	if err != nil {
		return fmt.Errorf("web: api.https %s: %w", s.cfg.HTTPS, err)
	}
	return s.serve(ctx, "https", tls.NewListener(ln, s.cfg.Cert.TLSConfig()), s.https, nil)
}

// RunMetrics serves metrics.listen until ctx is done; see Run.
func (s *Server) RunMetrics(ctx context.Context) error {
	if s.cfg.MetricsListen == "" || s.metrics == nil {
		return errors.New("web: metrics.listen is not set")
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("web: metrics.listen %s: %w", s.cfg.MetricsListen, err)
	}
	return s.serve(ctx, "metrics", ln, s.metrics, nil)
}

// metricsOnly is the metrics listener: GET or HEAD /metrics from an allowed
// address, nothing else. It has no session (Prometheus cannot log in): the
// address list is its access control, and it serves only numbers.
func (s *Server) metricsOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		ip := ap.Addr().Unmap()
		allowed := err == nil && ip.IsLoopback()
		for _, p := range s.cfg.MetricsAllow {
			allowed = allowed || (err == nil && p.Contains(ip))
		}
		switch {
		case !allowed:
			writeError(w, http.StatusForbidden, "web: metrics: "+ip.String()+" is not in metrics.allow")
		case r.URL.Path != "/metrics":
			writeError(w, http.StatusNotFound, "web: the metrics listener serves /metrics only")
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "web: "+r.Method+" /metrics: method not allowed (allowed: GET, HEAD)")
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// RunSocket serves api.socket until ctx is done; see Run. The socket is
// created with mode 0660 before it listens; a stale one is removed only if
// nothing answers on it.
func (s *Server) RunSocket(ctx context.Context) error {
	if s.cfg.Socket == "" {
		return errors.New("web: api.socket is not set")
	}
	ln, cleanup, err := listenUnix(s.cfg.Socket, 0o660)
	if err != nil {
		return err
	}
	return s.serve(ctx, "unix", ln, s.unix, cleanup)
}

// serve serves ln until ctx is done or serving fails, then shuts down.
func (s *Server) serve(ctx context.Context, kind string, ln net.Listener, h http.Handler, cleanup func()) error {
	srv := s.httpServer(ctx, h)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s.log.Info("api listening", zap.String("addr", ln.Addr().String()), zap.String("net", kind))
	s.markServing(kind)
	var err error
	select {
	case err = <-served:
		err = fmt.Errorf("web: serve %s %s: %w", kind, ln.Addr(), err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		if serr := srv.Shutdown(sctx); serr != nil {
			_ = srv.Close()
		}
		cancel()
		<-served //nolint:errcheck // after Shutdown or Close, Serve only says http.ErrServerClosed
	}
	if cleanup != nil {
		cleanup()
	}
	return err
}

// httpServer is the HTTP server of one listener: a slow or silent client
// cannot hold a connection (slowloris) or grow a header without bound.
func (s *Server) httpServer(ctx context.Context, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.timeout.readHeader,
		ReadTimeout:       s.timeout.read,
		WriteTimeout:      s.timeout.write,
		IdleTimeout:       s.timeout.idle,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to tell it
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, api.Error{Error: msg})
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request, _ []byte) {
	writeJSON(w, http.StatusOK, s.box.Status())
}

// failoverVideo takes an empty body or a JSON object (no fields yet).
func (s *Server) failoverVideo(w http.ResponseWriter, _ *http.Request, body []byte) {
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := decodeStrict(body, &struct{}{}); err != nil {
			writeError(w, http.StatusBadRequest, "web: body must be {} or empty: "+err.Error())
			return
		}
	}
	target, pending, err := s.box.FailoverVideo()
	if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if pending {
		writeJSON(w, http.StatusAccepted, api.FailoverResult{Result: api.FailoverPending, Target: target,
			Detail: "twins unlocked: " + target + " takes over at its next IDR that follows without a gap, or when the twins lock"})
		return
	}
	writeJSON(w, http.StatusOK, api.FailoverResult{Result: api.FailoverSwitched, Target: target})
}

// videoBitrate takes {"kbps": N}.
func (s *Server) videoBitrate(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req api.BitrateRequest
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "web: body must be {\"kbps\": N}: "+err.Error())
		return
	}
	res, err := s.box.SetVideoBitrate(req.Kbps)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) setUplink(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.UplinkRequest
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "web: body must be {\"enabled\": true|false}: "+err.Error())
		return
	}
	st, err := s.box.SetUplink(r.PathValue("name"), req.Enabled)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeJSON(w, http.StatusOK, st)
	}
}

func (s *Server) setAudioSource(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req api.AudioSourceRequest
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, `web: body must be {"mode": "auto"|"main"|"backup"}: `+err.Error())
		return
	}
	st, err := s.box.SetAudioSource(req.Mode)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// stopTimeout bounds a stop asked over the API: one GOP, the drain and the
// close take a few seconds; the write timeout of the server is longer.
const stopTimeout = 8 * time.Second

// setOnAir takes {"live": bool}. A stop runs to its end even if the client
// goes away: a half-done stop would leave the show neither on nor off air.
func (s *Server) setOnAir(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.OnAirRequest
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, `web: body must be {"live": true|false}: `+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), stopTimeout)
	defer cancel()
	st, err := s.box.SetOnAir(ctx, req.Live)
	if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) panelPress(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req api.PanelPressRequest
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, `web: body must be {"button": NAME, "long": true|false}: `+err.Error())
		return
	}
	res, err := s.box.PanelPress(req.Button, req.Long)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// setRecording takes {"recording": bool}. A stop runs to its end (the
// segment synced and closed) even if the client goes away.
func (s *Server) setRecording(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.RecordingRequest
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, `web: body must be {"recording": true|false}: `+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), stopTimeout)
	defer cancel()
	st, err := s.box.SetRecording(ctx, req.Recording)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeJSON(w, http.StatusOK, st)
	}
}

// restart takes {"name": NAME, "force": bool}.
func (s *Server) restart(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req api.RestartRequest
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, `web: body must be {"name": NAME, "force": true|false}: `+err.Error())
		return
	}
	res, err := s.box.Restart(req.Name, req.Force)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// applyConfig takes {"yaml": TEXT, "dry_run": bool}.
func (s *Server) applyConfig(w http.ResponseWriter, r *http.Request, body []byte) {
	var req api.ConfigRequest
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, `web: body must be {"yaml": TEXT, "dry_run": true|false}: `+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), stopTimeout)
	defer cancel()
	res, err := s.box.ApplyConfig(ctx, []byte(req.YAML), req.DryRun)
	switch {
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// startCanary takes {"worker": PATH}.
func (s *Server) startCanary(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req api.CanaryRequest
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, `web: body must be {"worker": PATH}: `+err.Error())
		return
	}
	st, err := s.box.StartCanary(req.Worker)
	if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, st)
}

// startUpdate takes {"bundle": PATH, "force": bool, "at_stop": bool, "allow_downgrade": bool}.
func (s *Server) startUpdate(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req api.UpdateRequest
	if err := decodeStrict(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, `web: body must be {"bundle": PATH, "force": bool, "at_stop": bool, "allow_downgrade": bool}: `+err.Error())
		return
	}
	in, err := s.box.Update(req)
	if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, in)
}

// events answers GET /api/events?since=2h|RFC3339&after=SEQ.
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ []byte) {
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("since"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, v); err == nil {
			since = t
		} else {
			writeError(w, http.StatusBadRequest, "web: since="+quote(v)+": want a duration (2h) or an RFC 3339 time")
			return
		}
	}
	after, ok := uintParam(w, q.Get("after"), "after")
	if !ok {
		return
	}
	evs, lost := s.cfg.Events.List(since, after)
	if evs == nil {
		evs = []api.Event{}
	}
	writeJSON(w, http.StatusOK, api.EventsResponse{Events: evs, Lost: lost})
}

// logs answers GET /api/logs?after=SEQ&n=COUNT (n=0: all kept).
func (s *Server) logs(w http.ResponseWriter, r *http.Request, _ []byte) {
	q := r.URL.Query()
	after, ok := uintParam(w, q.Get("after"), "after")
	if !ok {
		return
	}
	n := uint64(200)
	if v := q.Get("n"); v != "" {
		if n, ok = uintParam(w, v, "n"); !ok {
			return
		}
	}
	if n == 0 {
		n = 100000 // all that are kept
	}
	lines, lost := s.cfg.Logs.Lines(after, int(min(n, 100000))) //nolint:gosec // bounded
	if lines == nil {
		lines = []api.LogLine{}
	}
	writeJSON(w, http.StatusOK, api.LogsResponse{Lines: lines, Lost: lost})
}

func uintParam(w http.ResponseWriter, v, name string) (uint64, bool) {
	if v == "" {
		return 0, true
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "web: "+name+"="+quote(v)+": want a whole number")
		return 0, false
	}
	return n, true
}

func (s *Server) index(w http.ResponseWriter, _ *http.Request, _ []byte) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	_, _ = fmt.Fprint(w, `<!doctype html><meta charset="utf-8"><title>onair</title>
<h1>onair</h1><p>Status: <a href="/api/status">/api/status</a> (JSON).</p>`)
}
