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
// The UDP may go to a dial address other than the SRT peer (Config.Dial): a
// bonding layer on a loopback port forwards it, while passphrase, streamid
// and latency stay end to end. Stats is the input of adaptive bitrate.
//
// It is not the bonding layer (SRTLA, package bond), not a listener, and not
// a muxer: the caller hands it whole TS packets (package encoder/tsmux) and
// restarts the TS with PAT/PMT and an IDR on every (re)connect, writing
// through WriteSession so nothing muxed for an earlier connection leaks into
// the next (Session tells it when to restart).
package output

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	srt "github.com/datarhei/gosrt"
	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/output/srturl"
	"onair/supervisor"
	"onair/web/api"
)

const (
	// ChunkSize is the SRT payload: 7 TS packets, libsrt's live default.
	ChunkSize = 7 * 188
	// QueueSize bounds the bytes waiting to be sent (about 6 s at 5 Mbit/s).
	QueueSize = 4 << 20

	// peerIdleTimeout closes a connection whose receiver went silent (no ACK,
	// no keepalive). The receiver ACKs every 10 ms while data flows, so 2 s
	// is long for a healthy link and short enough to redial quickly.
	peerIdleTimeout = 2 * time.Second
	// linger is how long Run keeps sending after ctx is done, on top of the
	// SRT latency the receiver needs before it delivers the tail.
	linger = time.Second
	// tailMargin is how long the caller still waits, once every packet is
	// acknowledged and one SRT latency plus the handshake's duration have
	// passed, before it closes. A gosrt listener delivers a packet one latency
	// after the caller's send time plus how late it took the handshake
	// (its TSBPD base is the caller's handshake timestamp, its clock starts
	// when it handles the handshake), up to the whole handshake when the
	// listener is slow at the start (twin encoders starting); at the shutdown
	// it throws away what it has not delivered, and its Read may throw away
	// what the reader has not read yet. A fixed 20 ms lost the stream's last
	// packet (the last two audio frames of a stop) on a loaded 2-core CI
	// machine.
	tailMargin = 100 * time.Millisecond
	// maxHandshakeWait bounds the handshake's share of the tail wait.
	maxHandshakeWait = 2 * time.Second
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
//	connected  -> idle         End: the queue drained, acknowledged, the connection closed
//	connecting,
//	backoff    -> idle         End (a dial under way is abandoned)
//	idle       -> connecting   Start
//	any        -> stopped      ctx done (after the linger drain when connected)
type State = api.OutputState

// States reported in Status.
const (
	StateStopped    State = "stopped"
	StateConnecting State = "connecting"
	StateConnected  State = "connected"
	StateBackoff    State = "backoff"
	// StateIdle: not wanted on air (End); nothing is dialled until Start.
	StateIdle State = "idle"
)

// Redial backoff defaults, for the zero fields of Config.Backoff.
const (
	DefaultBackoffInitial    = 500 * time.Millisecond
	DefaultBackoffMax        = 5 * time.Second
	DefaultBackoffResetAfter = 10 * time.Second
)

// Config configures an SRT output.
type Config struct {
	// Target is the SRT peer: address, latency, passphrase, streamid
	// (srturl.Parse of output.url).
	Target srturl.URL
	// Dial is the host:port the UDP is sent to; empty means Target's. A
	// bonding layer listening on a loopback port sets it; the SRT session
	// (passphrase, streamid, latency) is still Target's, end to end.
	Dial string
	// PeerIdle is how long a receiver may stay silent before the connection
	// is given up; zero means 2 s. A bonded output sets output.outage_hold,
	// so the SRT session outlives a total outage of every uplink.
	PeerIdle time.Duration
	// Backoff paces redials after a failed dial or a lost connection; zero
	// fields take 500 ms, 5 s and (healthy connection time that starts the
	// count over) 10 s.
	Backoff supervisor.Backoff
	// StartIdle: Run dials nothing until Start (the box starts stopped).
	StartIdle bool
}

// EndResult is how one clean end of the stream went (End).
type EndResult struct {
	// Drained is true when every queued byte was sent and acknowledged
	// by the receiver, and one latency passed, before the close.
	Drained bool
	// Connected is false when there was no connection to end.
	Connected bool
}

// Start wants the stream on air: Run dials (again) and sends. It undoes
// End; calling it while live does nothing.
func (s *SRT) Start() {
	s.mu.Lock()
	s.want = true
	s.mu.Unlock()
	s.poke()
}

// End ends the stream cleanly and keeps it off air until Start: Write stops
// queueing, what is queued is sent, the receiver's acknowledgement of every
// packet is awaited (up to about 1 s plus the SRT latency), then the
// connection is closed. A dial under way is abandoned. End returns when that
// is done, or when ctx is done (the end then completes on its own). It must
// be called while Run runs.
func (s *SRT) End(ctx context.Context) (EndResult, error) {
	done := make(chan EndResult, 1)
	s.mu.Lock()
	s.want = false
	s.accepting = false // nothing written from now on goes out
	if s.state == StateIdle || s.state == StateStopped {
		s.mu.Unlock()
		return EndResult{}, nil
	}
	s.enders = append(s.enders, done)
	if s.stopDial != nil {
		s.stopDial()
	}
	s.mu.Unlock()
	s.poke()
	select {
	case r := <-done:
		return r, nil
	case <-ctx.Done():
		return EndResult{}, fmt.Errorf("output: end: %w", ctx.Err())
	}
}

func (s *SRT) poke() {
	select {
	case s.ctl <- struct{}{}:
	default:
	}
}

// wanted reports whether the stream is wanted on air.
func (s *SRT) wanted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.want
}

// ended tells every End waiting that the stream is off air.
func (s *SRT) ended(r EndResult) {
	s.mu.Lock()
	enders := s.enders
	s.enders = nil
	s.mu.Unlock()
	for _, e := range enders {
		e <- r
	}
}

// waitIdle waits, in StateIdle, until the stream is wanted again or ctx is done.
func (s *SRT) waitIdle(ctx context.Context) error {
	s.setState(StateIdle)
	s.ended(EndResult{})
	for !s.wanted() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctl:
		}
	}
	return nil
}

// SRT is a self-healing SRT caller. Create it with New, start it with Run,
// feed it with Write from any goroutine.
type SRT struct {
	target  srturl.URL
	dial    string // host:port the UDP goes to
	idle    time.Duration
	backoff supervisor.Backoff
	log     *zap.Logger
	clock   clockwork.Clock
	pace    func(inBps float64) float64 // bits/s for a measured input rate

	wake chan struct{} // cap 1: data queued
	ctl  chan struct{} // cap 1: want changed (Start, End)

	mu        sync.Mutex
	state     State
	want      bool               // on air wanted: dial and send (Start), or not (End)
	enders    []chan EndResult   // End calls waiting for the clean close
	stopDial  context.CancelFunc // abandons the dial under way
	accepting bool               // Write queues (connected, or draining)
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

	turns atomic.Uint64 // send loop turns (BenchmarkSendFrame)
}

// New validates cfg and returns an idle SRT output. clock drives the
// backoff, the pacing and the rate measurements.
func New(cfg Config, log *zap.Logger, clock clockwork.Clock) (*SRT, error) {
	t := cfg.Target
	if t.Host == "" || t.Port == 0 {
		return nil, errors.New("output: no target (output.url)")
	}
	dial := cfg.Dial
	if dial == "" {
		dial = t.Addr()
	} else if host, port, err := net.SplitHostPort(dial); err != nil || host == "" {
		return nil, fmt.Errorf("output: dial address %q: want host:port", dial)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("output: dial address %q: bad port", dial)
	}
	b := cfg.Backoff
	if b.Initial == 0 {
		b.Initial = DefaultBackoffInitial
	}
	if b.Max == 0 {
		b.Max = max(DefaultBackoffMax, b.Initial)
	}
	if b.ResetAfter == 0 {
		b.ResetAfter = DefaultBackoffResetAfter
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	idle := cfg.PeerIdle
	if idle == 0 {
		idle = peerIdleTimeout
	} else if idle < 500*time.Millisecond || idle > 5*time.Minute {
		return nil, fmt.Errorf("output: peer idle %s: want 500ms..5m", idle)
	}
	return &SRT{
		target:  t,
		dial:    dial,
		idle:    idle,
		backoff: b,
		log:     log,
		clock:   clock,
		pace:    defaultPace,
		wake:    make(chan struct{}, 1),
		ctl:     make(chan struct{}, 1),
		state:   StateStopped,
		want:    !cfg.StartIdle,
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

// Run dials, sends and redials (with Config.Backoff) until ctx is done. It
// then sends what is queued (for up to about 1 s plus the SRT latency, until
// the receiver has acknowledged it), closes the connection and returns
// ctx.Err(). A cancel in the middle of a dial returns at once; a connection
// that the abandoned dial still makes is closed.
func (s *SRT) Run(ctx context.Context) error {
	log := s.log.With(zap.String("target", s.target.String()), zap.String("dial", s.dial))
	failures := 0 // consecutive, for the backoff
	defer s.setState(StateStopped)
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !s.wanted() {
			if err := s.waitIdle(ctx); err != nil {
				return err
			}
			failures = 0
		}
		s.setState(StateConnecting)
		dialCtx, stopDial := context.WithCancel(ctx)
		s.mu.Lock()
		if !s.want { // End came between the check and here
			s.mu.Unlock()
			stopDial()
			continue
		}
		s.stopDial = stopDial
		s.mu.Unlock()
		conn, shake, err := s.dialSRT(dialCtx)
		stopDial()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !s.wanted() {
			if conn != nil {
				_ = conn.Close() // ended while dialling: nobody wants it
			}
			continue
		}
		if err != nil {
			failures++
			msg := describeDialError(err, s.dial)
			s.mu.Lock()
			s.lastErr = msg
			s.mu.Unlock()
			log.Warn("srt connect failed", zap.String("reason", msg), zap.Error(err), zap.Duration("backoff", s.backoff.Delay(failures)))
		} else {
			start := s.clock.Now()
			var r EndResult
			r, err = s.serve(ctx, log, conn, shake)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, errEnded) {
				s.setState(StateIdle)
				s.ended(r)
				continue
			}
			if s.clock.Since(start) >= s.backoff.ResetAfter {
				failures = 0
			}
			failures++
			msg := describeConnError(err)
			s.mu.Lock()
			s.lastErr = msg
			s.mu.Unlock()
			log.Warn("srt connection lost", zap.String("reason", msg), zap.Error(err), zap.Duration("backoff", s.backoff.Delay(failures)))
		}
		s.setState(StateBackoff)
		t := s.clock.NewTimer(s.backoff.Delay(failures))
	wait:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-s.ctl:
				if !s.wanted() {
					t.Stop()
					break wait
				}
			case <-t.Chan():
				break wait
			}
		}
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

// dialSRT dials Target's SRT session over UDP to the dial address. gosrt's
// Dial is not context-aware: it runs in a goroutine, a cancel returns at
// once, and a connection it makes after that is closed.
//
// It also returns how long the handshake took, which delays the receiver's
// delivery clock (tailMargin).
func (s *SRT) dialSRT(ctx context.Context) (srt.Conn, time.Duration, error) {
	type result struct {
		conn  srt.Conn
		shake time.Duration
		err   error
	}
	res := make(chan result, 1)
	go func() {
		start := s.clock.Now()
		conn, err := s.dialOnce()
		res <- result{conn, min(s.clock.Since(start), maxHandshakeWait), err}
	}()
	select {
	case r := <-res:
		return r.conn, r.shake, r.err
	case <-ctx.Done():
		go func() {
			if r := <-res; r.conn != nil {
				_ = r.conn.Close() // a connection nobody wants: no one to tell
			}
		}()
		return nil, 0, ctx.Err()
	}
}

func (s *SRT) dialOnce() (srt.Conn, error) {
	c := srt.DefaultConfig()
	c.ConnectionTimeout = s.target.ConnectTimeout
	c.PeerLatency = s.target.Latency
	c.ReceiverLatency = s.target.Latency
	c.StreamId = s.target.StreamID
	c.Passphrase = s.target.Passphrase
	c.PBKeylen = s.target.PBKeyLen
	c.EnforcedEncryption = true
	c.PayloadSize = ChunkSize
	c.PeerIdleTimeout = s.idle
	c.Logger = nil
	return srt.Dial("srt", s.dial, c)
}

// errEnded: serve returned because End asked for a clean close.
var errEnded = errors.New("output: ended")

// serve runs one connection until it fails, ctx is done, or End asks for
// the clean close (errEnded, with how the drain went).
func (s *SRT) serve(ctx context.Context, log *zap.Logger, conn srt.Conn, shake time.Duration) (EndResult, error) {
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
	// The connection ends here either way; what ended it is serve's error.
	defer func() { _ = conn.Close() }()

	s.mu.Lock()
	s.conn = conn
	s.peer = conn.RemoteAddr().String()
	s.connects++
	s.lastErr = ""
	s.state = StateConnected
	s.queue, s.head = s.queue[:0], 0
	s.accepting = s.want
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
	chunk := make([]byte, pacerBurst)
	// One timer for the pacing waits, reset for each: a clock.After per
	// wait was an allocation and a timer per chunk.
	timer := s.clock.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	draining := ctx.Done()
	ending := false               // End asked for the clean close
	var deadline <-chan time.Time // set once draining
	var written uint64            // packets written on this connection
	for {
		s.turns.Add(1)
		s.mu.Lock()
		avail := len(s.queue) - s.head
		rate := s.pace(s.inBps)
		s.mu.Unlock()

		var wait <-chan time.Time
		wake := s.wake
		switch avail {
		case 0:
			if deadline != nil {
				drained := s.lingerACK(conn, deadline, shake, written)
				if ending && ctx.Err() == nil {
					return EndResult{Drained: drained, Connected: true}, errEnded
				}
				return EndResult{}, context.Canceled
			}
		default:
			want := batch(avail)
			if d := p.reserve(s.clock.Now(), want, rate); d > 0 {
				p.unreserve(want)
				timer.Reset(d)
				wait = timer.Chan()
				// The pace, not the data, decides when the next batch
				// goes: new bytes need not wake the loop before that.
				wake = nil
				break
			}
			s.mu.Lock()
			n := copy(chunk[:want], s.queue[s.head:])
			s.head += n
			if s.head == len(s.queue) {
				s.queue, s.head = s.queue[:0], 0
			}
			s.mu.Unlock()
			// gosrt cuts a write into packets of its payload size, the
			// chunk size: one write per batch, one SRT packet per chunk.
			if _, err := conn.Write(chunk[:n]); err != nil {
				return EndResult{}, fmt.Errorf("output: srt write: %w", err)
			}
			written += uint64((n + ChunkSize - 1) / ChunkSize)
			s.mu.Lock()
			s.measureOut(s.clock.Now(), uint64(n))
			s.mu.Unlock()
			continue
		}

		select {
		case <-draining:
			draining = nil
			deadline = s.clock.After(linger + s.target.Latency + shake + tailMargin)
			log.Info("srt draining before close")
		case <-s.ctl:
			if !s.wanted() && deadline == nil {
				draining, ending = nil, true
				deadline = s.clock.After(linger + s.target.Latency + shake + tailMargin)
				log.Info("srt ending: draining before close")
			}
		case <-deadline:
			log.Warn("srt linger expired with data queued")
			if ending && ctx.Err() == nil {
				return EndResult{Connected: true}, errEnded
			}
			return EndResult{}, ctx.Err()
		case <-dead:
			return EndResult{}, errPeerClosed
		case <-wake:
		case <-wait:
		}
	}
}

// batch is how many of avail queued bytes serve hands to SRT in one write
// once the pace allows: whole chunks, at most a pacer burst of them, so the
// loop wakes once per burst rather than once per chunk (issue 14: each
// wake-up of the 300 a second cost more than the write); a partial chunk
// only when it is all there is, and then at once. (A partial chunk used to
// wait 5 ms for more bytes: that was a wake-up of its own after every audio
// frame and every video frame's tail, some 75 a second, to save a few small
// packets; the muxer writes whole frames, so a partial chunk is a frame's
// end.) gosrt sends what it was handed on its own 10 ms tick, so batching
// adds no burst on the wire that the pacer's bucket did not already allow.
func batch(avail int) int {
	if avail < ChunkSize {
		return avail
	}
	return min(avail-avail%ChunkSize, pacerBurst)
}

// lingerACK waits, until deadline, for the receiver to acknowledge every
// sent packet and then for one latency, the handshake's duration and
// tailMargin so it can deliver them: gosrt's Close drops the unacknowledged
// tail (FACTS.md §3, linger). It reports whether everything was
// acknowledged and the wait passed.
//
// written is how many packets serve wrote: gosrt counts a packet in its
// send buffer only once its writer goroutine has taken it from the write
// queue, so an empty send buffer right after the last Write means nothing;
// the wait is for every written packet to have been sent and none to be
// left unacknowledged. A packet the sender dropped as too late leaves the
// buffer too: then the tail is not drained.
func (s *SRT) lingerACK(conn srt.Conn, deadline <-chan time.Time, shake time.Duration, written uint64) bool {
	var st srt.Statistics
	conn.Stats(&st)
	drops := st.Accumulated.PktSendDrop
	for {
		conn.Stats(&st)
		if st.Accumulated.PktSentUnique >= written && st.Instantaneous.PktSendBuf == 0 {
			break
		}
		select {
		case <-deadline:
			s.log.Warn("srt linger expired with unacknowledged packets", zap.Uint64("packets", st.Instantaneous.PktSendBuf),
				zap.Uint64("not_yet_sent", written-min(written, st.Accumulated.PktSentUnique)))
			return false
		case <-s.clock.After(5 * time.Millisecond):
		}
	}
	if d := st.Accumulated.PktSendDrop - drops; d > 0 {
		s.log.Warn("srt sender dropped packets of the tail as too late", zap.Uint64("packets", d))
		return false
	}
	select {
	case <-deadline:
		return false
	case <-s.clock.After(s.target.Latency + shake + tailMargin):
		return true
	}
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
		Dial:         s.dial,
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

// Stats are the live figures of the current connection, the input of an
// adaptive bitrate. When not connected they are the last connection's, with
// Connected false. Counters are per connection (Session).
type Stats struct {
	Connected    bool    `json:"connected"`
	Session      int     `json:"session"`        // Session(): 1 for the first connection, 0 before
	RTTms        float64 `json:"rtt_ms"`         // smoothed round-trip time
	SendBufPkts  uint64  `json:"send_buf_pkts"`  // sent, not yet acknowledged
	SendBufBytes uint64  `json:"send_buf_bytes"` // the same in bytes, with headers
	SendBufMs    uint64  `json:"send_buf_ms"`    // time span of the unacknowledged packets
	PktSent      uint64  `json:"pkt_sent"`
	PktRetrans   uint64  `json:"pkt_retrans"`
	PktSendLoss  uint64  `json:"pkt_send_loss"` // reported lost by the receiver
	PktSendDrop  uint64  `json:"pkt_send_drop"` // too late, dropped by the sender
	PktRecvNAK   uint64  `json:"pkt_recv_nak"`
	SendRateMbps float64 `json:"send_rate_mbps"` // gosrt's estimate (Mbit = 1024²), updated about once a second
	QueuedBytes  int     `json:"queued_bytes"`   // in the output's own queue, not yet handed to SRT
}

// Stats returns the current connection's figures. Cheap enough to call
// every 100 ms; safe for concurrent use.
func (s *SRT) Stats() Stats {
	var st srt.Statistics
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Stats(&st)
	} else {
		st = s.stats
	}
	return Stats{
		Connected:    s.conn != nil && s.state == StateConnected,
		Session:      s.connects,
		RTTms:        st.Instantaneous.MsRTT,
		SendBufPkts:  st.Instantaneous.PktSendBuf,
		SendBufBytes: st.Instantaneous.ByteSendBuf,
		SendBufMs:    st.Instantaneous.MsSendBuf,
		PktSent:      st.Accumulated.PktSent,
		PktRetrans:   st.Accumulated.PktRetrans,
		PktSendLoss:  st.Accumulated.PktSendLoss,
		PktSendDrop:  st.Accumulated.PktSendDrop,
		PktRecvNAK:   st.Accumulated.PktRecvNAK,
		SendRateMbps: st.Instantaneous.MbpsSentRate,
		QueuedBytes:  len(s.queue) - s.head,
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
// addr is where the UDP went.
func describeDialError(err error, addr string) string {
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
		if probeRefused(addr) {
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
	defer func() { _ = c.Close() }() // a probe socket: nothing to flush
	if _, err = c.Write(nil); err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	return errors.Is(err, syscall.ECONNREFUSED)
}
