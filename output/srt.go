// Package output sends the multiplexed transport stream to the studio as an
// SRT caller (github.com/datarhei/gosrt) and never gives up: dial errors,
// rejections, peer restarts and send errors all lead to a capped backoff and
// a redial, for as long as the context lives.
//
// Write never blocks the producer and never fails: bytes go into a bounded
// queue and are dropped (and counted) while disconnected or when the queue is
// full, as a live stream must. A sender goroutine chunks the queue into
// 1316-byte payloads (7 TS packets) and paces them, because gosrt sends
// unspaced bursts that lose packets (FACTS.md §3) and IDR frames arrive as
// 100 KB+ bursts.
//
// It is not the bonding layer (SRTLA, package bond), not a listener, and not
// a muxer: the caller hands it whole TS packets (package encoder/tsmux) and
// restarts the TS with PAT/PMT and an IDR on every (re)connect, writing
// through WriteSession so nothing muxed for an earlier connection leaks into
// the next (Session tells it when to restart).
package output

import (
	"onair/output/srturl"
	"onair/web/api"

	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	srt "github.com/datarhei/gosrt"
	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
)

const (
	// ChunkSize is the SRT payload: 7 TS packets, libsrt's live default.
	ChunkSize = 7 * 188
	// QueueSize bounds the bytes waiting to be sent (about 6 s at 5 Mbit/s).
	QueueSize = 4 << 20

	minBackoff = 500 * time.Millisecond
	maxBackoff = 5 * time.Second
	// peerIdleTimeout closes a connection whose receiver went silent (no ACK,
	// no keepalive). The receiver ACKs every 10 ms while data flows, so 2 s
	// is long for a healthy link and short enough to redial quickly.
	peerIdleTimeout = 2 * time.Second
	// linger is how long Run keeps sending after ctx is done, on top of the
	// SRT latency the receiver needs before it delivers the tail.
	linger = time.Second
	// coalesce is how long a partial chunk waits for more bytes.
	coalesce = 5 * time.Millisecond
	// minPaceBps is the pacing floor; the pace is max(2 x input, floor).
	minPaceBps = 10_000_000
)

// State is the caller's connection state.
//
// Transitions:
//
//	stopped    -> connecting   Run starts
//	connecting -> connected    handshake done (OnConnect callbacks run)
//	connecting -> backoff      dial failed or rejected
//	connected  -> backoff      send failed, peer closed, peer idle
//	backoff    -> connecting   backoff elapsed
//	any        -> stopped      ctx done (after the linger drain when connected)
type State = api.OutputState

// States reported in Status.
const (
	StateStopped    State = "stopped"
	StateConnecting State = "connecting"
	StateConnected  State = "connected"
	StateBackoff    State = "backoff"
)

// Config configures an SRT output.
type Config struct {
	// Target is the SRT peer: address, latency, passphrase, streamid
	// (srturl.Parse of output.url).
	Target srturl.URL
}

// SRT is a self-healing SRT caller. Create it with New, start it with Run,
// feed it with Write from any goroutine.
type SRT struct {
	target srturl.URL
	log    *zap.Logger
	clock  clockwork.Clock
	pace   func(inBps float64) float64 // bits/s for a measured input rate

	wake chan struct{} // cap 1: data queued

	mu        sync.Mutex
	state     State
	accepting bool // Write queues (connected, or draining)
	queue     []byte
	head      int
	onConnect []func()
	conn      srt.Conn
	peer      string
	lastErr   string
	connects  int
	sent      uint64
	dropped   uint64
	inWindow  uint64 // bytes accepted since inStart
	inStart   time.Time
	inBps     float64
	outWindow uint64
	outStart  time.Time
	outBps    float64
	stats     srt.Statistics
}

// New validates cfg and returns an idle SRT output. clock drives the
// backoff, the pacing and the rate measurements.
func New(cfg Config, log *zap.Logger, clock clockwork.Clock) (*SRT, error) {
	t := cfg.Target
	if t.Host == "" || t.Port == 0 {
		return nil, errors.New("output: no target (output.url)")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	return &SRT{
		target: t,
		log:    log,
		clock:  clock,
		pace:   defaultPace,
		wake:   make(chan struct{}, 1),
		state:  StateStopped,
	}, nil
}

func defaultPace(inBps float64) float64 { return max(2*inBps, minPaceBps) }

// OnConnect registers f to be called (on Run's goroutine) after each
// successful connect, before any byte is sent on the new connection. Data
// written from then on reaches the new receiver, so f typically calls
// tsmux.Muxer.Reset and asks the encoders for an IDR. f must not block.
func (s *SRT) OnConnect(f func()) {
	s.mu.Lock()
	s.onConnect = append(s.onConnect, f)
	s.mu.Unlock()
}

// Write queues p for sending and always returns len(p), nil, so a muxer
// writing to it never stops. When not connected, or when p does not fit the
// bounded queue, p is dropped whole and counted in Status.BytesDropped.
// Writes are queued whole, so whole TS packets stay whole.
func (s *SRT) Write(p []byte) (int, error) { return s.write(-1, p) }

// Session is the number of the current connection: 1 for the first, and one
// more for each reconnect (0 before the first).
func (s *SRT) Session() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connects
}

// WriteSession is Write for a producer that must start its stream afresh on
// every connection (a TS muxer: tables, then an IDR): p is queued only while
// connection n is the current one. Whatever was written for an earlier
// connection, even a moment before the reconnect, can never reach a later
// one. The check and the queueing happen under one lock, so there is no
// window between "which session is it" and "queue this".
func (s *SRT) WriteSession(n int, p []byte) (int, error) { return s.write(n, p) }

// write queues p; session -1 accepts any connection.
func (s *SRT) write(session int, p []byte) (int, error) {
	s.mu.Lock()
	now := s.clock.Now()
	s.measureIn(now, uint64(len(p)))
	if !s.accepting || (session >= 0 && session != s.connects) || len(s.queue)-s.head+len(p) > QueueSize {
		s.dropped += uint64(len(p))
		s.mu.Unlock()
		return len(p), nil
	}
	if s.head > 0 && len(s.queue)+len(p) > cap(s.queue) {
		s.queue = append(s.queue[:0], s.queue[s.head:]...) // compact
		s.head = 0
	}
	s.queue = append(s.queue, p...)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// measureIn updates the input rate over ~1 s windows. Called with mu held.
func (s *SRT) measureIn(now time.Time, n uint64) {
	if s.inStart.IsZero() {
		s.inStart = now
	}
	s.inWindow += n
	if d := now.Sub(s.inStart); d >= time.Second {
		s.inBps = float64(s.inWindow) * 8 / d.Seconds()
		s.inWindow, s.inStart = 0, now
	}
}

// measureOut updates the send rate. Called with mu held.
func (s *SRT) measureOut(now time.Time, n uint64) {
	if s.outStart.IsZero() {
		s.outStart = now
	}
	s.sent += n
	s.outWindow += n
	if d := now.Sub(s.outStart); d >= time.Second {
		s.outBps = float64(s.outWindow) * 8 / d.Seconds()
		s.outWindow, s.outStart = 0, now
	}
}

// Run dials, sends and redials until ctx is done. It then sends what is
// queued (for up to about 1 s plus the SRT latency, until the receiver has
// acknowledged it), closes the connection and returns ctx.Err().
func (s *SRT) Run(ctx context.Context) error {
	log := s.log.With(zap.String("target", s.target.String()))
	backoff := minBackoff
	defer s.setState(StateStopped)
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.setState(StateConnecting)
		conn, err := s.dial()
		if err != nil {
			msg := describeDialError(err, s.target)
			s.mu.Lock()
			s.lastErr = msg
			s.mu.Unlock()
			log.Warn("srt connect failed", zap.String("reason", msg), zap.Error(err), zap.Duration("backoff", backoff))
		} else {
			backoff = minBackoff
			err = s.serve(ctx, log, conn)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			msg := describeConnError(err)
			s.mu.Lock()
			s.lastErr = msg
			s.mu.Unlock()
			log.Warn("srt connection lost", zap.String("reason", msg), zap.Error(err), zap.Duration("backoff", backoff))
		}
		s.setState(StateBackoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.clock.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func (s *SRT) setState(st State) {
	s.mu.Lock()
	s.state = st
	if st != StateConnected {
		s.accepting = false
		s.queue, s.head = s.queue[:0], 0
	}
	s.mu.Unlock()
}

func (s *SRT) dial() (srt.Conn, error) {
	c := srt.DefaultConfig()
	c.ConnectionTimeout = s.target.ConnectTimeout
	c.PeerLatency = s.target.Latency
	c.ReceiverLatency = s.target.Latency
	c.StreamId = s.target.StreamID
	c.Passphrase = s.target.Passphrase
	c.PBKeylen = s.target.PBKeyLen
	c.EnforcedEncryption = true
	c.PayloadSize = ChunkSize
	c.PeerIdleTimeout = peerIdleTimeout
	c.Logger = nil
	return srt.Dial("srt", s.target.Addr(), c)
}

// serve runs one connection until it fails or ctx is done.
func (s *SRT) serve(ctx context.Context, log *zap.Logger, conn srt.Conn) error {
	// gosrt closes a connection by itself (peer shutdown, peer idle) without
	// telling a writer; a blocked Read is the only way to notice while idle.
	// The receiver never sends data, so Read returns only on close.
	dead := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(dead)
		buf := make([]byte, 1500)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
		}
	}()
	defer wg.Wait()
	defer conn.Close()

	s.mu.Lock()
	s.conn = conn
	s.peer = conn.RemoteAddr().String()
	s.connects++
	s.lastErr = ""
	s.state = StateConnected
	s.queue, s.head = s.queue[:0], 0
	s.accepting = true
	s.stats = srt.Statistics{}
	callbacks := append([]func(){}, s.onConnect...)
	n := s.connects
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		conn.Stats(&s.stats)
		s.conn = nil
		s.mu.Unlock()
	}()
	log.Info("srt connected", zap.String("peer", s.peer), zap.Int("connects", n))
	for _, f := range callbacks {
		f()
	}

	p := newPacer(s.clock.Now())
	chunk := make([]byte, ChunkSize)
	draining := ctx.Done()
	var deadline <-chan time.Time // set once draining
	var partialSince time.Time    // when a partial chunk was first seen
	for {
		s.mu.Lock()
		avail := len(s.queue) - s.head
		rate := s.pace(s.inBps)
		s.mu.Unlock()

		var wait <-chan time.Time
		switch {
		case avail == 0:
			if deadline != nil {
				return s.lingerACK(conn, deadline)
			}
			partialSince = time.Time{}
		case avail < ChunkSize && deadline == nil:
			// let a partial chunk fill up a little: fewer, fuller packets
			now := s.clock.Now()
			if partialSince.IsZero() {
				partialSince = now
			}
			if d := coalesce - now.Sub(partialSince); d > 0 {
				wait = s.clock.After(d)
				break
			}
			fallthrough
		default:
			if d := p.reserve(s.clock.Now(), min(avail, ChunkSize), rate); d > 0 {
				p.unreserve(min(avail, ChunkSize))
				wait = s.clock.After(d)
				break
			}
			partialSince = time.Time{}
			s.mu.Lock()
			n := copy(chunk, s.queue[s.head:])
			s.head += n
			if s.head == len(s.queue) {
				s.queue, s.head = s.queue[:0], 0
			}
			s.mu.Unlock()
			if _, err := conn.Write(chunk[:n]); err != nil {
				return fmt.Errorf("output: srt write: %w", err)
			}
			s.mu.Lock()
			s.measureOut(s.clock.Now(), uint64(n))
			s.mu.Unlock()
			continue
		}

		select {
		case <-draining:
			draining = nil
			deadline = s.clock.After(linger + s.target.Latency)
			log.Info("srt draining before close")
		case <-deadline:
			log.Warn("srt linger expired with data queued")
			return ctx.Err()
		case <-dead:
			return errPeerClosed
		case <-s.wake:
		case <-wait:
		}
	}
}

// lingerACK waits, until deadline, for the receiver to acknowledge every
// sent packet and then for one latency so it can deliver them: gosrt's Close
// drops the unacknowledged tail (FACTS.md §3, linger).
func (s *SRT) lingerACK(conn srt.Conn, deadline <-chan time.Time) error {
	var st srt.Statistics
	for {
		conn.Stats(&st)
		if st.Instantaneous.PktSendBuf == 0 {
			break
		}
		select {
		case <-deadline:
			s.log.Warn("srt linger expired with unacknowledged packets", zap.Uint64("packets", st.Instantaneous.PktSendBuf))
			return context.Canceled
		case <-s.clock.After(5 * time.Millisecond):
		}
	}
	select {
	case <-deadline:
	case <-s.clock.After(s.target.Latency + 20*time.Millisecond):
	}
	return context.Canceled
}

var errPeerClosed = errors.New("connection closed by receiver or idle")

// pacer is a token bucket in bytes.
type pacer struct {
	tokens float64
	last   time.Time
}

const pacerBurst = 4 * ChunkSize

func newPacer(now time.Time) *pacer { return &pacer{tokens: pacerBurst, last: now} }

// reserve takes n bytes at rate bits/s and returns how long to wait before
// sending them (0 = now).
func (p *pacer) reserve(now time.Time, n int, rate float64) time.Duration {
	bps := rate / 8
	p.tokens = min(p.tokens+now.Sub(p.last).Seconds()*bps, pacerBurst)
	p.last = now
	p.tokens -= float64(n)
	if p.tokens >= 0 {
		return 0
	}
	return time.Duration(-p.tokens / bps * float64(time.Second))
}

// unreserve returns n bytes taken by a reserve that did not send.
func (p *pacer) unreserve(n int) { p.tokens += float64(n) }

// Status is a snapshot for the web page, onairctl and metrics; the type
// lives in the API package so that clients share it.
type Status = api.OutputStatus

// SRTStats are gosrt's statistics of the current (or last) connection.
type SRTStats = api.SRTStats

// Status returns a snapshot. Safe for concurrent use.
func (s *SRT) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Stats(&s.stats)
	}
	st := s.stats
	return Status{
		State:        s.state,
		Peer:         s.peer,
		Target:       s.target.String(),
		LastError:    s.lastErr,
		Connects:     s.connects,
		BytesSent:    s.sent,
		BytesDropped: s.dropped,
		BytesQueued:  len(s.queue) - s.head,
		InputKbps:    s.inBps / 1000,
		SendRateKbps: s.outBps / 1000,
		PaceKbps:     s.pace(s.inBps) / 1000,
		SRT: SRTStats{
			RTTms:        st.Instantaneous.MsRTT,
			PktSent:      st.Accumulated.PktSent,
			PktRetrans:   st.Accumulated.PktRetrans,
			PktDropped:   st.Accumulated.PktSendDrop,
			PktLoss:      st.Accumulated.PktSendLoss,
			LossRatePct:  st.Instantaneous.PktSendLossRate,
			SendBufMs:    st.Instantaneous.MsSendBuf,
			SendBufPkts:  st.Instantaneous.PktSendBuf,
			PeerLatencyM: st.Instantaneous.MsSendTsbPdDelay,
		},
	}
}

// SRT rejection reasons (libsrt SRT_REJECT_REASON); on the wire a rejection
// is handshake type 1000+reason.
var rejectReasons = map[uint64]string{
	0: "unknown", 1: "system error", 2: "peer error", 3: "receiver out of resources",
	4: "rogue handshake", 5: "receiver backlog full", 6: "internal error",
	7: "receiver closing", 8: "srt version mismatch", 9: "rendezvous cookie",
	10: "wrong passphrase", 11: "passphrase missing or not expected",
	12: "message api mismatch", 13: "congestion control mismatch",
	14: "packet filter mismatch", 15: "group mismatch", 16: "timeout", 17: "crypto mismatch",
}

// describeDialError turns gosrt's dial errors into what the crew reads.
func describeDialError(err error, t srturl.URL) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "connection rejected: REJECT ("):
		// gosrt formats the handshake type in base 32
		code := msg[strings.Index(msg, "REJECT (")+len("REJECT ("):]
		code = strings.TrimSuffix(code, ")")
		n, perr := strconv.ParseUint(code, 32, 32)
		if perr != nil || n < 1000 {
			return "rejected: " + msg
		}
		n -= 1000
		if n >= 1000 { // user-defined (streamid access control), e.g. 403
			return "rejected: by receiver (code " + strconv.FormatUint(n-1000, 10) + ")"
		}
		if r, ok := rejectReasons[n]; ok {
			return "rejected: " + r
		}
		return "rejected: reason " + strconv.FormatUint(n, 10)
	case strings.Contains(msg, "connection timeout"):
		if probeRefused(t.Addr()) {
			return "connection refused"
		}
		return "timeout: no response from receiver"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "cannot resolve host: " + dnsErr.Name
	}
	return msg
}

func describeConnError(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errPeerClosed):
		return "disconnected: " + err.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "disconnected: connection refused"
	case errors.Is(err, io.EOF):
		return "disconnected: connection closed"
	}
	return "disconnected: " + err.Error()
}

// probeRefused tells "nobody listens on that port" (ICMP port unreachable)
// from "no answer": gosrt's Dial reports both as a handshake timeout. It
// sends one empty datagram, which an SRT listener ignores.
func probeRefused(addr string) bool {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	if _, err := c.Write(nil); err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	return errors.Is(err, syscall.ECONNREFUSED)
}
