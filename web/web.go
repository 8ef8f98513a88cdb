// Package web is onaird's local API: JSON status and operator commands over
// HTTP, served on a TCP address (the web page, Prometheus later) and on a
// unix socket (onairctl over SSH). Both listeners serve the same explicit mux.
//
// Not for: the stream itself, or anything reachable from outside the box
// without authentication (the TCP listener defaults to loopback).
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Box is what the API needs from onaird.
type Box interface {
	// Status returns a JSON-marshalable snapshot of the whole box.
	Status() any
	// FailoverVideo swaps the active encoder without a gap and names the
	// target. pending: the twins are unlocked, so the target takes over at
	// the next seamless point instead of now.
	FailoverVideo() (target string, pending bool, err error)
	// SetVideoBitrate changes both encoders' bitrate at one frame index, returned.
	SetVideoBitrate(kbps int) (uint64, error)
}

// Config says where to listen.
type Config struct {
	Listen string // TCP, e.g. 127.0.0.1:8080; empty disables
	Socket string // unix socket path; empty disables
}

// Server serves the API.
type Server struct {
	cfg Config
	box Box
	log *zap.Logger
	mux *http.ServeMux
}

// New builds the server; nothing listens until Run.
func New(cfg Config, box Box, log *zap.Logger) (*Server, error) {
	if cfg.Listen == "" && cfg.Socket == "" {
		return nil, errors.New("web: neither api.listen nor api.socket is set")
	}
	s := &Server{cfg: cfg, box: box, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /api/status", s.status)
	s.mux.HandleFunc("POST /api/failover/video", s.failoverVideo)
	s.mux.HandleFunc("POST /api/video/bitrate", s.videoBitrate)
	s.mux.HandleFunc("GET /{$}", s.index)
	return s, nil
}

// Handler is the API's handler, for tests.
func (s *Server) Handler() http.Handler { return s.mux }

// Run listens and serves until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	var lns []net.Listener
	if s.cfg.Listen != "" {
		ln, err := net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return fmt.Errorf("web: api.listen %s: %w", s.cfg.Listen, err)
		}
		lns = append(lns, ln)
	}
	if s.cfg.Socket != "" {
		if err := os.MkdirAll(filepath.Dir(s.cfg.Socket), 0o750); err != nil {
			closeAll(lns)
			return fmt.Errorf("web: api.socket dir: %w", err)
		}
		_ = os.Remove(s.cfg.Socket) // a stale socket from a crashed run
		ln, err := net.Listen("unix", s.cfg.Socket)
		if err != nil {
			closeAll(lns)
			return fmt.Errorf("web: api.socket %s: %w", s.cfg.Socket, err)
		}
		_ = os.Chmod(s.cfg.Socket, 0o660)
		lns = append(lns, ln)
	}
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 5 * time.Second}
	g, gctx := errgroup.WithContext(ctx)
	for _, ln := range lns {
		s.log.Info("api listening", zap.String("addr", ln.Addr().String()), zap.String("net", ln.Addr().Network()))
		g.Go(func() error {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("web: serve %s: %w", ln.Addr(), err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		if s.cfg.Socket != "" {
			_ = os.Remove(s.cfg.Socket)
		}
		return nil
	})
	return g.Wait()
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.box.Status())
}

func (s *Server) failoverVideo(w http.ResponseWriter, _ *http.Request) {
	target, pending, err := s.box.FailoverVideo()
	if err != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		return
	}
	if pending {
		writeJSON(w, http.StatusAccepted, map[string]string{"result": "pending", "target": target,
			"detail": "twins unlocked: " + target + " takes over at its next IDR that follows without a gap, or when the twins lock"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": "switched", "target": target})
}

// videoBitrate takes {"kbps": N}.
func (s *Server) videoBitrate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Kbps int `json:"kbps"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be {\"kbps\": N}: " + err.Error()})
		return
	}
	at, err := s.box.SetVideoBitrate(req.Kbps)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": "ok", "at_index": at, "kbps": req.Kbps})
}

func (s *Server) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, `<!doctype html><meta charset="utf-8"><title>onair</title>
<h1>onair</h1><p>Status: <a href="/api/status">/api/status</a> (JSON).</p>`)
}
