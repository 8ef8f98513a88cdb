// Package link is onaird's end of the connection to one onair-av child: the
// socketpair handed to each instance as fd 3, the reader that turns the
// child's wire messages into tagged messages for onaird, and the command
// writer to the current instance.
//
// onaird trusts no child. Every message is checked before anything else sees
// it: its kind must match the child's role (video only from an encoder,
// audio only from an audio chain), its payload must fit the size allowed for
// its kind, and the frame index of a media message must lie in the window the
// caller allows (the ring head ± its slots for video, the audio clock ± a
// slack for audio). A violation is counted, logged, ends the connection and
// restarts that instance: a corrupt or hostile child can neither panic onaird
// nor push a huge index that would freeze the video for good.
//
// Messages carry the instance sequence number of the process supervisor, so
// packets still draining from a killed instance never count as progress of
// its successor, and the start and end of an instance reach the consumer in
// order with its packets.
//
// Not for: deciding what to do with packets (encoder's twin control, the
// programme muxer), or process control (the supervisor, reached through the
// small Process interface).
package link

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"go.uber.org/zap"

	"onair/encoder/wire"
)

// Process is what a link needs from the process supervisor of its child.
// supervisor.Child implements it. Both calls are no-ops for a seq that is
// not the current instance.
type Process interface {
	// Progress records that instance seq did something useful.
	Progress(seq uint64)
	// Restart kills instance seq; a new one starts at once.
	Restart(seq uint64, reason string)
	// Fail kills instance seq as a failure: the next start waits for the
	// backoff, so a child that keeps breaking the contract does not loop.
	Fail(seq uint64, reason string)
}

// Role is what a child does; it decides which messages it may send.
type Role = wire.Role

// Roles of onair-av.
const (
	RoleCapture = wire.RoleCapture
	RoleEncode  = wire.RoleEncode
	RoleAudio   = wire.RoleAudio
)

// Payload limits per kind. A video access unit is bounded by Config.MaxVideo.
const (
	MaxJSON  = 64 << 10                    // hello, progress
	MaxAudio = wire.AudioLevelsSize + 8191 // levels and one ADTS frame (13-bit frame length)
	// DefaultMaxVideo bounds an access unit when Config.MaxVideo is 0.
	DefaultMaxVideo = 16 << 20
)

// Event says what a Msg is.
type Event uint8

// Events.
const (
	EvPacket  Event = iota // a media packet (Header, Data)
	EvStarted              // the instance said hello; Header.Index is its start index
	EvEnded                // the instance's connection closed after its last message
)

// Msg is one message of one instance of a child.
type Msg struct {
	From *Link
	Seq  uint64 // supervisor instance sequence number
	Ev   Event
	H    wire.Header
	Data []byte
}

// Size is the payload size, used to bound queues in bytes.
func (m Msg) Size() int { return len(m.Data) }

// Config describes one child.
type Config struct {
	Name string
	Role Role
	// Slot is the encoder slot in the switch (0 = A, 1 = B), -1 otherwise.
	Slot int
	// MaxVideo bounds one video access unit in bytes (0: DefaultMaxVideo).
	MaxVideo int
	// Window returns the frame indexes a media message may carry, inclusive.
	// Nil accepts every index.
	Window func() (lo, hi uint64)
}

// Status is a link's counters for the status API.
type Status struct {
	Violations    uint64 `json:"violations"`
	LastViolation string `json:"last_violation,omitempty"`
	// MalformedMargins counts heartbeats whose real-time margin was out of
	// range (wire.Progress.CheckMargin): the margin was dropped, the rest of
	// the heartbeat kept. Not a violation: the figure is for the crew, and
	// nothing onaird decides depends on it.
	MalformedMargins uint64 `json:"malformed_margins,omitempty"`
}

// Violation sentinels, wrapped by the reason a link gives for a restart.
var (
	ErrRole  = errors.New("link: message kind not allowed for this role")
	ErrSize  = errors.New("link: payload too large for its kind")
	ErrIndex = errors.New("link: frame index outside the allowed window")
	ErrJSON  = errors.New("link: malformed message")
)

// Link is onaird's side of one child. Create it with New, hand ExtraFiles,
// Attach and Detach to the supervisor's Spec.
type Link struct {
	cfg     Config
	proc    Process
	deliver func(Msg)
	log     *zap.Logger

	readers   sync.WaitGroup
	lastVideo atomic.Uint64 // last video index + 1 of the current instance (0: none yet)
	viol      atomic.Uint64
	badMargin atomic.Uint64
	cur       atomic.Uint64 // current instance
	condemned atomic.Uint64 // an instance Restart was asked for: its packets no longer count

	mu       sync.Mutex
	seq      uint64       // current instance
	pending  *os.File     // parent end for the instance being started
	cmd      *wire.Writer // commands to the current instance
	hello    *wire.Hello
	prog     wire.Progress
	lastViol string
}

// New makes a link. deliver receives every media packet and, for encoders,
// the start and end of each instance, in order, from the reader goroutine of
// that instance; it may block (that is the backpressure on the child).
func New(cfg Config, proc Process, deliver func(Msg), log *zap.Logger) (*Link, error) {
	switch cfg.Role {
	case RoleCapture, RoleEncode, RoleAudio:
	default:
		return nil, fmt.Errorf("link: %s: unknown role %q", cfg.Name, cfg.Role)
	}
	if proc == nil || deliver == nil {
		return nil, fmt.Errorf("link: %s: process and deliver are required", cfg.Name)
	}
	if cfg.MaxVideo <= 0 || cfg.MaxVideo > wire.MaxPayload {
		cfg.MaxVideo = min(DefaultMaxVideo, wire.MaxPayload)
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Link{cfg: cfg, proc: proc, deliver: deliver, log: log.With(zap.String("child", cfg.Name))}, nil
}

// Name is the child's name.
func (l *Link) Name() string { return l.cfg.Name }

// Slot is the encoder slot, -1 for other roles.
func (l *Link) Slot() int { return l.cfg.Slot }

// ExtraFiles makes the connection for the next instance (supervisor
// Spec.ExtraFiles): the child gets one end as fd 3, the link keeps the other.
func (l *Link) ExtraFiles() ([]*os.File, func(), error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("link: socketpair for %s: %w", l.cfg.Name, err)
	}
	// onaird's end is non-blocking, so its reads wait in the Go netpoller.
	// A blocking read holds an OS thread in a syscall per child: the
	// runtime's sysmon then polls every 20 µs to retake the P from the
	// syscall, which was half of onaird's CPU at 4 Mbit/s (perf; pprof
	// does not see sysmon). The child's end is a separate open file
	// description and stays blocking.
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		_ = syscall.Close(fds[0]) // never handed out
		_ = syscall.Close(fds[1])
		return nil, nil, fmt.Errorf("link: socketpair for %s: non-blocking: %w", l.cfg.Name, err)
	}
	parent := os.NewFile(uintptr(fds[0]), l.cfg.Name+"-parent")
	kid := os.NewFile(uintptr(fds[1]), l.cfg.Name+"-child")
	l.mu.Lock()
	if l.pending != nil {
		_ = l.pending.Close() // an end no instance attached to: nothing was sent on it
	}
	l.pending = parent
	l.mu.Unlock()
	// The child holds its own copy of kid; closing ours cannot lose data.
	return []*os.File{kid}, func() { _ = kid.Close() }, nil
}

// Attach starts reading instance seq, which has just started (supervisor
// Spec.OnStart).
func (l *Link) Attach(seq uint64) {
	l.mu.Lock()
	conn := l.pending
	l.pending = nil
	l.seq = seq
	l.cur.Store(seq)
	l.hello = nil
	l.prog = wire.Progress{}
	l.lastVideo.Store(0)
	if conn != nil {
		l.cmd = wire.NewWriter(conn)
	}
	l.mu.Unlock()
	if conn == nil {
		l.log.Error("[unexpected] child started without a connection", zap.Uint64("instance", seq))
		return
	}
	l.readers.Add(1)
	go func() {
		defer l.readers.Done()
		l.read(seq, conn)
	}()
}

// Detach records that instance seq is gone (supervisor Spec.OnExit). The
// consumer learns it from EvEnded, in order with the instance's packets.
func (l *Link) Detach(seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seq == seq {
		l.cmd = nil
		l.hello = nil
	}
}

// Wait returns once every reader has finished (every instance's connection
// reached its end). Call it after the supervisor stopped the child.
func (l *Link) Wait() { l.readers.Wait() }

// Send writes a command to the current instance, if one runs and has said
// hello.
func (l *Link) Send(h wire.Header, cmd wire.Command) error {
	l.mu.Lock()
	w := l.cmd
	l.mu.Unlock()
	if w == nil {
		return fmt.Errorf("link: %s: no running instance", l.cfg.Name)
	}
	if err := w.WriteJSON(h, cmd); err != nil {
		return fmt.Errorf("link: %s: %w", l.cfg.Name, err)
	}
	return nil
}

// Hello returns the current instance's hello, if it has sent one.
func (l *Link) Hello() (wire.Hello, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hello == nil || l.cmd == nil {
		return wire.Hello{}, false
	}
	return *l.hello, true
}

// Progress is the current instance's last heartbeat.
func (l *Link) Progress() wire.Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.prog
}

// LastVideo is the last video index + 1 sent by the current instance (0:
// none yet).
func (l *Link) LastVideo() uint64 { return l.lastVideo.Load() }

// Restart restarts the current instance and forgets its progress, so the
// next one is judged on its own.
func (l *Link) Restart(reason string) {
	l.mu.Lock()
	seq := l.seq
	l.mu.Unlock()
	l.condemned.Store(seq)
	l.lastVideo.Store(0)
	l.proc.Restart(seq, reason)
}

// Status returns the link's counters.
func (l *Link) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Status{Violations: l.viol.Load(), LastViolation: l.lastViol, MalformedMargins: l.badMargin.Load()}
}

// read pumps one instance's messages until its connection ends or it breaks
// a rule.
func (l *Link) read(seq uint64, conn io.ReadCloser) {
	defer func() { _ = conn.Close() }() // only read from: nothing to flush
	encoder := l.cfg.Role == RoleEncode
	if encoder {
		// After its last packet, the consumer counts the instance down.
		defer func() { l.deliver(Msg{From: l, Seq: seq, Ev: EvEnded}) }()
	}
	r := wire.NewReader(conn)
	for {
		h, p, err := r.Read()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) {
				// The instance ended, possibly killed in the middle of a
				// message: that is an end, not a broken contract.
				return
			}
			l.violation(seq, err)
			return
		}
		m, err := l.check(h, p)
		if err != nil {
			l.violation(seq, err)
			return
		}
		l.proc.Progress(seq)
		switch h.Kind {
		case wire.KindHello:
			hello := m.(*wire.Hello)
			l.mu.Lock()
			if l.seq == seq {
				l.hello = hello
			}
			l.mu.Unlock()
			if encoder {
				l.deliver(Msg{From: l, Seq: seq, Ev: EvStarted, H: wire.Header{Kind: wire.KindHello, Index: hello.StartIndex}})
			}
		case wire.KindProgress:
			l.mu.Lock()
			if l.seq == seq {
				l.prog = *m.(*wire.Progress)
			}
			l.mu.Unlock()
		case wire.KindVideo:
			if seq == l.cur.Load() && seq != l.condemned.Load() {
				l.lastVideo.Store(h.Index + 1)
			}
			l.deliver(Msg{From: l, Seq: seq, Ev: EvPacket, H: h, Data: p})
		case wire.KindAudio:
			l.deliver(Msg{From: l, Seq: seq, Ev: EvPacket, H: h, Data: p})
		}
	}
}

// check applies the rules of the role to one message and decodes the JSON
// ones.
func (l *Link) check(h wire.Header, p []byte) (any, error) {
	if !Allowed(l.cfg.Role, h.Kind) {
		return nil, fmt.Errorf("%w: %s from a %s child", ErrRole, h.Kind, l.cfg.Role)
	}
	limit := MaxJSON
	switch h.Kind {
	case wire.KindVideo:
		limit = l.cfg.MaxVideo
	case wire.KindAudio:
		limit = MaxAudio
	}
	if len(p) > limit {
		return nil, fmt.Errorf("%w: %s of %d bytes (limit %d)", ErrSize, h.Kind, len(p), limit)
	}
	switch h.Kind {
	case wire.KindHello:
		var v wire.Hello
		if err := json.Unmarshal(p, &v); err != nil {
			return nil, fmt.Errorf("%w: hello: %w", ErrJSON, err)
		}
		if err := l.inWindow("start index", v.StartIndex); err != nil {
			return nil, err
		}
		return &v, nil
	case wire.KindProgress:
		var v wire.Progress
		if err := json.Unmarshal(p, &v); err != nil {
			return nil, fmt.Errorf("%w: progress: %w", ErrJSON, err)
		}
		if err := v.CheckMargin(); err != nil {
			// Logged on the first and every 100th: a worker that always
			// sends a bad margin must not flood the journal once a second.
			if n := l.badMargin.Add(1); n == 1 || n%100 == 0 {
				l.log.Warn("dropping a malformed real-time margin", zap.Error(err), zap.Uint64("malformed_margins", n))
			}
			v.Margin, v.MarginMin = 0, 0
		}
		return &v, nil
	case wire.KindAudio:
		if _, _, err := wire.SplitAudio(p); err != nil {
			return nil, err
		}
		return nil, l.inWindow(h.Kind.String()+" index", h.Index)
	default: // video
		if len(p) == 0 {
			return nil, fmt.Errorf("%w: empty %s packet", ErrJSON, h.Kind)
		}
		return nil, l.inWindow(h.Kind.String()+" index", h.Index)
	}
}

func (l *Link) inWindow(what string, i uint64) error {
	if l.cfg.Window == nil {
		return nil
	}
	lo, hi := l.cfg.Window()
	if i < lo || i > hi {
		return fmt.Errorf("%w: %s %d not in %d..%d", ErrIndex, what, i, lo, hi)
	}
	return nil
}

// violation counts, logs and restarts the instance that broke a rule.
func (l *Link) violation(seq uint64, err error) {
	l.viol.Add(1)
	l.mu.Lock()
	l.lastViol = err.Error()
	l.mu.Unlock()
	l.log.Warn("child broke the wire contract: restarting it", zap.Uint64("instance", seq), zap.Error(err))
	l.proc.Fail(seq, "wire: "+err.Error())
}

// Allowed reports whether a child of role may send messages of kind.
func Allowed(role Role, k wire.Kind) bool {
	switch k {
	case wire.KindHello, wire.KindProgress:
		return true
	case wire.KindVideo:
		return role == RoleEncode
	case wire.KindAudio:
		return role == RoleAudio
	}
	return false // commands go to children, never come from them
}
