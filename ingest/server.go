package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	srt "github.com/datarhei/gosrt"
	"go.uber.org/zap"

	"onair/ingest/relay"
	"onair/output/srturl"
)

// Config configures a Server.
type Config struct {
	// Listen is the UDP address of the SRT listener, e.g. "127.0.0.1:9000".
	Listen string
	// Passphrase, when set, requires AES encryption (pbkeylen 16 on the caller)
	// with this passphrase (10..79 characters); unencrypted or wrongly keyed
	// callers are rejected. When empty, encrypted callers are rejected.
	Passphrase string
	// StreamID, when set, rejects callers with another SRT stream id.
	StreamID string
	// OutFile receives every byte received, appended (created if missing).
	// Empty: nothing is recorded.
	OutFile string
	// Latency is the SRT receiver latency; 0 keeps gosrt's default (120 ms).
	Latency time.Duration
	// ReplaceAfter is how long the current publisher must have been silent
	// before a new caller may replace it; until then new callers are rejected
	// (one publisher at a time). 0 means 1 s.
	ReplaceAfter time.Duration
	// ReportFile, when set, receives the report as JSON every ReportInterval
	// and when Run returns, replaced atomically.
	ReportFile string
	// ReportInterval defaults to 1 s.
	ReportInterval time.Duration
	// Analyzer configures the analysis of the received stream.
	Analyzer Options
	// PeerIdleTimeout is how long the SRT listener keeps a silent connection;
	// 0 keeps gosrt's default (5 s). A bonded sender's total outage keeps its
	// SRT session only if this outlasts it.
	PeerIdleTimeout time.Duration

	// SRTLA, when set, is the UDP address SRTLA senders reach (package
	// relay; a wildcard address serves IPv4 and IPv6). The Server then
	// terminates each group itself: its SRT listener moves to 127.0.0.1:0
	// (Listen is ignored) and is the relay's downstream, with the same
	// passphrase, stream id, latency, output and analysis; the report gains
	// an "srtla" section.
	SRTLA string
	// Forward, with SRTLA, relays each group to this SRT listener
	// ("srt://HOST:PORT") instead of terminating it here: no SRT listener
	// runs, nothing is recorded or analyzed, and the report has only the
	// srtla section. Passphrase and stream id are the business of the
	// sender and that listener.
	Forward string
	// Relay tunes the SRTLA receiver (limits and timeouts; zero values are
	// its defaults). Listen and Downstream are set from SRTLA and Forward.
	Relay relay.Config
}

// Server is the studio-side SRT receiver: it accepts one publisher at a time,
// appends what it receives to Config.OutFile and measures it with an Analyzer.
// A publisher that reconnects (onaird restarts, link loss) gets a new
// connection; the file and the analysis continue across connections.
type Server struct {
	cfg Config
	log *zap.Logger
	an  *Analyzer

	forward string // host:port of Config.Forward

	ready chan struct{}
	addr  net.Addr     // set before ready is closed (nil with Forward)
	relay *relay.Relay // set before ready is closed (nil without SRTLA)

	mu     sync.Mutex
	conns  []*connState
	active *connState
	file   *os.File
}

type connState struct {
	info     ConnInfo
	conn     srt.Conn
	lastData time.Time
	done     chan struct{}
}

// New validates cfg and returns a Server. Nothing is opened until Run.
func New(cfg Config, log *zap.Logger) (*Server, error) {
	var forward string
	switch {
	case cfg.SRTLA == "" && cfg.Forward != "":
		return nil, errors.New("ingest: forward needs an srtla address")
	case cfg.SRTLA != "":
		cfg.Listen = "127.0.0.1:0" // the relay's downstream, loopback only
		if cfg.Forward != "" {
			var err error
			if forward, err = parseForward(cfg.Forward); err != nil {
				return nil, err
			}
			if cfg.OutFile != "" {
				return nil, errors.New("ingest: with forward nothing is received here: no output file")
			}
		}
		// Validate the relay's settings now; Run makes the real one once the
		// downstream address is known.
		rc := cfg.Relay
		rc.Listen, rc.Downstream = []string{cfg.SRTLA}, "127.0.0.1:1"
		if _, err := relay.New(rc, nil, nil); err != nil {
			return nil, fmt.Errorf("ingest: srtla: %w", err)
		}
	}
	if cfg.Listen == "" {
		return nil, errors.New("ingest: listen address is empty")
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return nil, fmt.Errorf("ingest: listen address %q: %w", cfg.Listen, err)
	}
	if n := len(cfg.Passphrase); n != 0 && (n < 10 || n > 79) {
		return nil, fmt.Errorf("ingest: passphrase must be 10..79 characters, got %d", n)
	}
	if cfg.Latency < 0 || cfg.PeerIdleTimeout < 0 {
		return nil, errors.New("ingest: negative latency or peer idle timeout")
	}
	if cfg.ReplaceAfter <= 0 {
		cfg.ReplaceAfter = time.Second
	}
	if cfg.ReportInterval <= 0 {
		cfg.ReportInterval = time.Second
	}
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.Analyzer.Now == nil {
		cfg.Analyzer.Now = time.Now
	}
	return &Server{
		cfg:     cfg,
		log:     log,
		an:      NewAnalyzer(cfg.Analyzer),
		forward: forward,
		ready:   make(chan struct{}),
	}, nil
}

// parseForward accepts srt://HOST:PORT and returns HOST:PORT. Query keys are
// refused: a relay passes SRT through, so latency, passphrase and stream id
// are set by the sender and the listener, not here.
func parseForward(s string) (string, error) {
	if strings.Contains(s, "?") {
		return "", fmt.Errorf("ingest: forward %q: only srt://HOST:PORT, no options", s)
	}
	u, err := srturl.Parse(s)
	if err != nil {
		return "", fmt.Errorf("ingest: forward: %w", err)
	}
	return u.Addr(), nil
}

// Ready is closed once Run listens; Addr is valid from then on.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// SRTLAAddrs returns the addresses the SRTLA receiver listens on (nil
// before Ready or without Config.SRTLA).
func (s *Server) SRTLAAddrs() []net.Addr {
	select {
	case <-s.ready:
	default:
		return nil
	}
	if s.relay == nil {
		return nil
	}
	return s.relay.Addrs()
}

// Addr returns the address the SRT listener is bound to (nil before Ready,
// and with Config.Forward, where there is none).
func (s *Server) Addr() net.Addr {
	select {
	case <-s.ready:
		return s.addr
	default:
		return nil
	}
}

// Run listens and receives until ctx is cancelled, then closes the
// connection, syncs and closes the file, writes the final report file and
// returns nil. It returns an error if the file or the listener cannot be
// opened, or if the listener (or the SRTLA receiver) fails. Call Run once.
func (s *Server) Run(ctx context.Context) error {
	if s.forward != "" {
		return s.runForward(ctx)
	}
	if s.cfg.OutFile != "" {
		f, err := os.OpenFile(s.cfg.OutFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("ingest: open output: %w", err)
		}
		s.file = f
	}
	srtCfg := srt.DefaultConfig()
	if s.cfg.Latency > 0 {
		srtCfg.Latency = s.cfg.Latency
	}
	if s.cfg.PeerIdleTimeout > 0 {
		srtCfg.PeerIdleTimeout = s.cfg.PeerIdleTimeout
	}
	ln, err := srt.Listen("srt", s.cfg.Listen, srtCfg)
	if err != nil {
		s.closeFile()
		return fmt.Errorf("ingest: %w", err)
	}
	s.addr = ln.Addr()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	relayErr := make(chan error, 1)
	if s.cfg.SRTLA != "" {
		if err := s.startRelay(ctx, cancel, s.addr.String(), &wg, relayErr); err != nil {
			ln.Close()
			s.closeFile()
			wg.Wait()
			return err
		}
	}
	close(s.ready)
	s.log.Info("listening", zap.Stringer("addr", s.addr), zap.Bool("encrypted", s.cfg.Passphrase != ""))
	wg.Go(func() {
		<-ctx.Done()
		ln.Close() // unblocks Accept2 and closes the connections
	})
	if s.cfg.ReportFile != "" {
		wg.Go(func() { s.reportLoop(ctx) })
	}

	var runErr error
	for {
		req, err := ln.Accept2()
		if err != nil {
			if ctx.Err() == nil {
				runErr = fmt.Errorf("ingest: accept: %w", err)
				s.log.Error("accept failed", zap.Error(err))
				cancel()
			}
			break
		}
		s.handle(req, &wg)
	}
	// Wait for the reader goroutines to exit (the listener closed their connections).
	s.mu.Lock()
	conns := append([]*connState(nil), s.conns...)
	s.mu.Unlock()
	for _, c := range conns {
		<-c.done
	}
	s.an.Flush()
	s.closeFile()
	wg.Wait()
	select {
	case err := <-relayErr:
		runErr = err
	default:
	}
	if s.cfg.ReportFile != "" {
		if err := WriteReportFile(s.cfg.ReportFile, s.Report()); err != nil {
			s.log.Error("final report", zap.Error(err))
			if runErr == nil {
				runErr = err
			}
		}
	}
	r := s.Report()
	s.log.Info("stopped", zap.Int("connections", r.Connections), zap.Int64("video_frames", r.Video.Frames),
		zap.Int64("missing", r.Video.Missing), zap.Int64("bytes", r.Transport.Bytes))
	return runErr
}

// startRelay runs the SRTLA receiver in wg with downstream as its SRT
// listener and returns once it listens. A later failure of the relay goes to
// errc and cancels the Server.
func (s *Server) startRelay(ctx context.Context, cancel context.CancelFunc, downstream string,
	wg *sync.WaitGroup, errc chan error) error {
	rc := s.cfg.Relay
	rc.Listen, rc.Downstream = []string{s.cfg.SRTLA}, downstream
	r, err := relay.New(rc, s.log.Named("srtla"), nil)
	if err != nil {
		return fmt.Errorf("ingest: srtla: %w", err)
	}
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			errc <- fmt.Errorf("ingest: srtla: %w", err)
			cancel()
		}
	})
	select {
	case <-r.Ready():
		s.relay = r
		return nil
	case <-done:
		return <-errc
	}
}

// runForward runs only the SRTLA receiver, relaying every group to
// Config.Forward, and the report loop.
func (s *Server) runForward(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	relayErr := make(chan error, 1)
	if err := s.startRelay(ctx, cancel, s.forward, &wg, relayErr); err != nil {
		wg.Wait()
		return err
	}
	close(s.ready)
	s.log.Info("forwarding srtla", zap.String("to", s.forward))
	if s.cfg.ReportFile != "" {
		wg.Go(func() { s.reportLoop(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	var runErr error
	select {
	case runErr = <-relayErr:
	default:
	}
	if s.cfg.ReportFile != "" {
		if err := WriteReportFile(s.cfg.ReportFile, s.Report()); err != nil {
			s.log.Error("final report", zap.Error(err))
			if runErr == nil {
				runErr = err
			}
		}
	}
	return runErr
}

func (s *Server) closeFile() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return
	}
	if err := s.file.Sync(); err != nil {
		s.log.Error("sync output", zap.Error(err))
	}
	if err := s.file.Close(); err != nil {
		s.log.Error("close output", zap.Error(err))
	}
	s.file = nil
}

func (s *Server) reportLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ReportInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := WriteReportFile(s.cfg.ReportFile, s.Report()); err != nil {
				s.log.Warn("report", zap.Error(err))
			}
		}
	}
}

// handle decides on one connection request and, when accepted, starts its reader.
func (s *Server) handle(req srt.ConnRequest, wg *sync.WaitGroup) {
	log := s.log.With(zap.Stringer("remote", req.RemoteAddr()), zap.String("stream_id", req.StreamId()))
	reject := func(reason srt.RejectionReason, msg string) {
		log.Warn("connection rejected: "+msg, zap.Uint32("reason", uint32(reason)))
		req.Reject(reason)
	}
	if s.cfg.StreamID != "" && req.StreamId() != s.cfg.StreamID {
		reject(srt.REJX_FORBIDDEN, "stream id mismatch")
		return
	}
	switch {
	case s.cfg.Passphrase == "" && req.IsEncrypted():
		reject(srt.REJ_UNSECURE, "caller is encrypted, no passphrase configured")
		return
	case s.cfg.Passphrase != "" && !req.IsEncrypted():
		reject(srt.REJ_UNSECURE, "passphrase required")
		return
	case s.cfg.Passphrase != "":
		if err := req.SetPassphrase(s.cfg.Passphrase); err != nil {
			reject(srt.REJ_BADSECRET, "wrong passphrase")
			return
		}
	}

	// One publisher at a time: a silent one is replaced, a live one is kept.
	s.mu.Lock()
	old := s.active
	if old != nil && time.Since(old.lastData) < s.cfg.ReplaceAfter {
		s.mu.Unlock()
		reject(srt.REJX_CONFLICT, "a publisher is already live")
		return
	}
	s.mu.Unlock()
	if old != nil {
		log.Warn("replacing silent publisher", zap.Uint32("old_socket_id", old.info.SocketID))
		_ = old.conn.Close()
		<-old.done
	}

	conn, err := req.Accept()
	if err != nil {
		log.Warn("accept failed", zap.Error(err))
		return
	}
	now := time.Now()
	c := &connState{
		info: ConnInfo{SocketID: conn.SocketId(), Remote: conn.RemoteAddr().String(), StreamID: conn.StreamId(), Since: now},
		conn: conn, lastData: now, done: make(chan struct{}),
	}
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.active = c
	s.mu.Unlock()
	s.an.resync()
	log.Info("publisher connected", zap.Uint32("socket_id", c.info.SocketID))
	wg.Go(func() { s.read(c, log.With(zap.Uint32("socket_id", c.info.SocketID))) })
}

// read copies one connection into the file and the analyzer until it ends.
func (s *Server) read(c *connState, log *zap.Logger) {
	defer close(c.done)
	var reads uint64 // packets read (the deferred accounting reads it)
	defer func() {
		var st srt.Statistics
		c.conn.Stats(&st)
		_ = c.conn.Close()
		a := st.Accumulated
		s.mu.Lock()
		c.info.SRT = &RecvStats{PktRecv: a.PktRecv, PktRecvUnique: a.PktRecvUnique, PktRead: reads,
			PktRecvLoss: a.PktRecvLoss, PktRecvRetrans: a.PktRecvRetrans,
			PktRecvBelated: a.PktRecvBelated, PktRecvDrop: a.PktRecvDrop, PktRecvUndecrypt: a.PktRecvUndecrypt,
			RTTms: st.Instantaneous.MsRTT}
		if s.active == c {
			s.active = nil
		}
		bytes, rs := c.info.Bytes, *c.info.SRT
		if s.file != nil {
			if err := s.file.Sync(); err != nil {
				log.Error("sync output", zap.Error(err))
			}
		}
		s.mu.Unlock()
		log.Info("publisher gone", zap.Int64("bytes", bytes), zap.Uint64("pkt_recv", rs.PktRecv),
			zap.Uint64("pkt_recv_loss", rs.PktRecvLoss), zap.Uint64("pkt_recv_retrans", rs.PktRecvRetrans),
			zap.Uint64("pkt_recv_drop", rs.PktRecvDrop), zap.Uint64("pkt_read", rs.PktRead))
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.conn.Read(buf)
		if n > 0 {
			reads++ // gosrt's Read returns one packet's payload at most
			s.mu.Lock()
			c.info.Bytes += int64(n)
			c.lastData = time.Now()
			if s.file != nil {
				if _, werr := s.file.Write(buf[:n]); werr != nil {
					log.Error("write output", zap.Error(werr))
				}
			}
			s.mu.Unlock()
			_, _ = s.an.Write(buf[:n])
		}
		if err != nil {
			log.Debug("read ended", zap.Error(err))
			return
		}
	}
}

// Report returns the live report, with the connection count and sessions.
func (s *Server) Report() Report {
	r := s.an.Report()
	r.Sessions = s.Connections()
	r.Connections = len(r.Sessions)
	select {
	case <-s.ready:
		if s.relay != nil {
			st := s.relay.Stats()
			r.SRTLA = &st
		}
	default:
	}
	return r
}

// Connections returns every connection accepted so far, oldest first.
func (s *Server) Connections() []ConnInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ConnInfo, len(s.conns))
	for i, c := range s.conns {
		out[i] = c.info
	}
	return out
}
