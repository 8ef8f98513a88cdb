package encoder

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/encoder/link"
	"onair/encoder/wire"
)

// Encoder is one encoder child as the twin control sees it. link.Link
// implements it.
type Encoder interface {
	Name() string
	// Hello is the current instance's hello; false while none runs or it
	// has not said hello yet.
	Hello() (wire.Hello, bool)
	// LastVideo is the last video index + 1 of the current instance (0: none).
	LastVideo() uint64
	// Send writes a frame-indexed command to the current instance.
	Send(h wire.Header, cmd wire.Command) error
	// Restart kills the current instance; the process supervisor restarts it.
	Restart(reason string)
}

// VideoSink receives the one video stream the switch emits (tsmux.Programme).
type VideoSink interface {
	WriteVideo(index uint64, key bool, captureNs int64, au []byte)
}

// RelockMode is how a restarted twin re-locks.
type RelockMode string

// Re-lock modes (config video.relock).
const (
	// RelockGOP: every GOP is a fresh codec session in both encoders, so a
	// restarted encoder is identical from the next GOP boundary both have
	// reached, and the survivor's stream is never touched.
	RelockGOP RelockMode = "gop"
	// RelockCommand: both encoders are told to reset at one GOP boundary,
	// far enough ahead for the command to arrive first.
	RelockCommand RelockMode = "command"
)

// TwinsConfig configures the twin control.
type TwinsConfig struct {
	GOP            int
	FPSNum, FPSDen int
	Relock         RelockMode
	BitrateKbps    int // configured bitrate: what a (re)started encoder begins with
	// StallAfter: a twin this far behind capture while its twin keeps up
	// is lagging and is restarted.
	StallAfter time.Duration
	// HangAfter: while locked, a twin this far behind its twin is hung and
	// is restarted at once (that costs no frame while locked).
	HangAfter time.Duration
	// CheckEvery is the period of the re-lock and health checks while no
	// encoder message arrives (0: 200 ms); every message is followed by
	// them anyway.
	CheckEvery time.Duration
}

// TwinsStatus is the twin control's own state for the status API.
type TwinsStatus struct {
	BitrateKbps int `json:"bitrate_kbps"`
	// SkewMaxFrames is the largest distance seen between the locked twins
	// (video.hang_after must stay above it, or healthy twins restart).
	SkewMaxFrames uint64 `json:"twin_skew_max_frames"`
	Restarts      uint64 `json:"health_restarts"` // hung or lagging twins restarted
}

// Twins is the control loop of the encoders (one, or the twins A and B):
// it takes their packets from the links in arrival order, offers them to the
// switch and hands what the switch emits to the programme; it re-locks the
// twins after a restart, restarts a twin that is hung or lagging (judged
// against its twin, so a box-wide slowdown is never mistaken for a fault),
// brings a restarted encoder to the runtime state of its twin (catch-up),
// and addresses runtime commands to every encoder at the same frame index.
//
// Not for: choosing the copy of a frame (Switch), muxing (tsmux), or process
// control (the encoders' Restart goes to their supervisor).
type Twins struct {
	cfg   TwinsConfig
	sw    *Switch
	encs  []Encoder
	head  func() uint64 // the ring head: capture's newest frame index
	sink  VideoSink
	q     *link.Queue
	log   *zap.Logger
	clock clockwork.Clock

	bitrate  atomic.Int64
	skewMax  atomic.Uint64
	restarts atomic.Uint64
	current  []uint64 // per slot: the instance whose packets are trusted (0: none); only Run touches it
}

// NewTwins builds the twin control. encs are in switch order (A, B); q
// carries their links' messages; head is the ring head.
func NewTwins(cfg TwinsConfig, sw *Switch, encs []Encoder, head func() uint64, sink VideoSink, q *link.Queue, log *zap.Logger, clock clockwork.Clock) (*Twins, error) {
	switch {
	case sw == nil || head == nil || sink == nil || q == nil:
		return nil, errors.New("encoder: twins: switch, ring head, sink and queue are required")
	case len(encs) != len(sw.names):
		return nil, fmt.Errorf("encoder: twins: %d encoders for a switch of %d", len(encs), len(sw.names))
	case cfg.GOP <= 0 || cfg.FPSNum <= 0 || cfg.FPSDen <= 0:
		return nil, fmt.Errorf("encoder: twins: gop %d, fps %d/%d", cfg.GOP, cfg.FPSNum, cfg.FPSDen)
	case cfg.Relock != RelockGOP && cfg.Relock != RelockCommand:
		return nil, fmt.Errorf("encoder: twins: relock %q", cfg.Relock)
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = 200 * time.Millisecond
	}
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	t := &Twins{cfg: cfg, sw: sw, encs: encs, head: head, sink: sink, q: q, log: log, clock: clock, current: make([]uint64, len(encs))}
	t.bitrate.Store(int64(cfg.BitrateKbps))
	return t, nil
}

// Run consumes the encoders' messages until the queue is closed (every link
// drained: the clean end of the stream) or ctx is done, and runs the re-lock
// and health checks after each message. What the checks judge changes when
// a message arrives: a hello (re-lock), a twin's last index (hung: behind
// its twin, which the twin's packet shows the moment it arrives; lagging:
// behind capture while its twin keeps up, which the twin's packets show). So
// they follow the messages, and a slow ticker only backs them up. (A 20 ms
// ticker woke onaird 50 times a second for them: issue 14.)
func (t *Twins) Run(ctx context.Context) error {
	tick := t.clock.NewTicker(t.cfg.CheckEvery)
	defer tick.Stop()
	for {
		select {
		case m, ok := <-t.q.C():
			if !ok {
				return nil
			}
			t.handle(m)
			t.q.Release(m)
			t.check()
		case <-tick.Chan():
			t.check()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// check runs the re-lock and health checks of the twins.
func (t *Twins) check() {
	if len(t.encs) == 2 {
		t.relock()
		t.health()
	}
}

// handle applies one message of an encoder's instance. Channel order is per
// instance; a message of an instance that is not the trusted one (an earlier
// instance's tail, or one declared down by the health check) is dropped.
func (t *Twins) handle(m link.Msg) {
	slot := m.From.Slot()
	if slot < 0 || slot >= len(t.encs) {
		t.log.Error("[unexpected] message from a link without an encoder slot", zap.String("child", m.From.Name()))
		return
	}
	switch {
	case m.Ev == link.EvStarted:
		t.current[slot] = m.Seq
		t.sw.EncoderStarted(slot, m.H.Index)
		t.catchUp(slot, m.H.Index)
	case m.Seq != t.current[slot]:
		// stale: an earlier instance, or one already counted down
	case m.Ev == link.EvEnded:
		t.down(slot)
	case m.H.Kind == wire.KindVideo:
		p := Packet{From: slot, Index: m.H.Index, PTS: m.H.PTS, Key: m.H.Flags&wire.FlagKey != 0, CaptureNs: m.H.CaptureNs, Data: m.Data}
		if t.sw.Offer(p) {
			t.sink.WriteVideo(p.Index, p.Key, p.CaptureNs, p.Data)
		}
		t.emitHeld()
	}
}

// down stops trusting slot's instance: the switch counts it down, and the
// copies its twin held ahead of the emitted stream go out (its twin may
// hold the indexes it never delivered).
func (t *Twins) down(slot int) {
	t.current[slot] = 0
	t.sw.EncoderDown(slot)
	t.emitHeld()
}

// emitHeld sends the copies the switch held ahead of the emitted stream and
// that now follow it (Switch.Next).
func (t *Twins) emitHeld() {
	for {
		p, ok := t.sw.Next()
		if !ok {
			return
		}
		t.sink.WriteVideo(p.Index, p.Key, p.CaptureNs, p.Data)
	}
}

// relock schedules a re-lock whenever both twins run but are not locked (at
// start, and after either restarted).
func (t *Twins) relock() {
	if !t.sw.NeedsRelock() {
		return
	}
	ha, okA := t.encs[0].Hello()
	hb, okB := t.encs[1].Hello()
	if !okA || !okB {
		return
	}
	gop := uint64(t.cfg.GOP)
	newest := max(ha.StartIndex, hb.StartIndex)
	if t.cfg.Relock == RelockGOP {
		// The first boundary both have reached fresh and the switch has not passed.
		from := max(newest, t.sw.Status().LastIndex+1)
		at := ceilTo(from, gop)
		t.sw.RelockAt(at)
		t.log.Info("re-lock expected at the next common GOP", zap.Uint64("at_index", at))
		return
	}
	at := ceilTo(max(t.head(), newest)+t.commandLead(), gop)
	cmd := wire.Command{Op: wire.OpReset, AtIndex: at}
	t.sw.RelockAt(at)
	errA := t.encs[0].Send(wire.Header{Kind: wire.KindCommand, Index: at}, cmd)
	errB := t.encs[1].Send(wire.Header{Kind: wire.KindCommand, Index: at}, cmd)
	t.log.Info("re-lock scheduled", zap.Uint64("at_index", at), zap.NamedError("a", errA), zap.NamedError("b", errB))
}

func ceilTo(i, n uint64) uint64 { return (i + n - 1) / n * n }

// health restarts a twin that is alive but useless, judged against its twin,
// which proves the box itself keeps up (the supervisor separately kills any
// child silent for video.stall_after). See RestartVictim. The switch counts
// the victim down before it is killed, so nothing it still flushes (a
// SIGSTOPped encoder resumed) is trusted again.
func (t *Twins) health() {
	frames := func(d time.Duration) uint64 {
		return uint64(max(1, int(d.Seconds()*float64(t.cfg.FPSNum)/float64(t.cfg.FPSDen))))
	}
	lagLimit, hangLimit := max(5, frames(t.cfg.StallAfter)), frames(t.cfg.HangAfter)
	head := t.head()
	last := [2]uint64{t.encs[0].LastVideo(), t.encs[1].LastVideo()}
	locked := t.sw.Locked()
	if locked && last[0] != 0 && last[1] != 0 {
		if skew := max(last[0], last[1]) - min(last[0], last[1]); skew > t.skewMax.Load() {
			t.skewMax.Store(skew) // only Run writes
		}
	}
	n, why := RestartVictim(head, last, locked, lagLimit, hangLimit)
	if n < 0 {
		return
	}
	e := t.encs[n]
	t.log.Warn("restarting encoder: "+why, zap.String("child", e.Name()), zap.Uint64("index", last[n]),
		zap.Uint64("twin_index", last[1-n]), zap.Uint64("ring_head", head))
	t.down(n)
	t.restarts.Add(1)
	e.Restart(why)
}

// RestartVictim picks the twin to restart, or -1, and says why. last holds
// each twin's last video index + 1 (0: nothing from its current instance
// yet, which never counts as keeping up).
//
//   - hung: while the twins are locked, it is hangLimit frames behind its
//     twin (SIGSTOP, starved of CPU, stuck in the library). Restarting a twin
//     costs no frame while locked, so this can be quick.
//   - lagging: it is lagLimit frames behind capture while its twin is not;
//     a twin that lags past the ring skips pictures and diverges.
//
// When both are late the whole box was slow for a moment: that is a delay,
// and restarting both would make it a gap, so neither is restarted.
func RestartVictim(head uint64, last [2]uint64, locked bool, lagLimit, hangLimit uint64) (int, string) {
	behind := func(l uint64) bool { return l == 0 || head > l+lagLimit }
	for n := range last {
		me, twin := last[n], last[1-n]
		if me == 0 || twin == 0 {
			continue
		}
		if locked && twin > me+hangLimit {
			return n, fmt.Sprintf("hung: %d frames behind its twin", twin-me)
		}
		if behind(me) && !behind(twin) {
			return n, fmt.Sprintf("lagging %d frames behind capture while its twin keeps up", head-me)
		}
	}
	return -1, ""
}

// catchUp brings a (re)started encoder to the runtime state its twin has: it
// starts with the configured bitrate, so a runtime change is sent again at
// its first frame. It applies long before the next GOP boundary, where both
// encoders start fresh sessions with equal settings and re-lock.
func (t *Twins) catchUp(slot int, start uint64) {
	kbps := int(t.bitrate.Load())
	if kbps == t.cfg.BitrateKbps {
		return
	}
	cmd := wire.Command{Op: wire.OpBitrate, AtIndex: start, BitrateKbps: kbps}
	if err := t.encs[slot].Send(wire.Header{Kind: wire.KindCommand, Index: start}, cmd); err != nil {
		t.log.Warn("cannot send the current bitrate to a restarted encoder", zap.String("child", t.encs[slot].Name()), zap.Error(err))
	}
}

// SetBitrate changes the bitrate of every encoder at the same frame index
// and returns that index.
func (t *Twins) SetBitrate(kbps int) (uint64, error) {
	if kbps < 100 || kbps > 100000 {
		return 0, fmt.Errorf("encoder: bitrate %d kbps: must be 100..100000", kbps)
	}
	t.bitrate.Store(int64(kbps))
	at, err := t.SendCommand(wire.OpBitrate, kbps)
	t.log.Info("video bitrate change", zap.Int("kbps", kbps), zap.Uint64("at_index", at), zap.Error(err))
	return at, err
}

// SendCommand addresses a runtime command to every running encoder at the
// same frame index (a little ahead of the ring head) and returns that index.
func (t *Twins) SendCommand(op wire.Op, bitrateKbps int) (uint64, error) {
	at := t.head() + t.commandLead()
	cmd := wire.Command{Op: op, AtIndex: at, BitrateKbps: bitrateKbps}
	var errs []error
	for _, e := range t.encs {
		if _, ok := e.Hello(); !ok {
			continue
		}
		if err := e.Send(wire.Header{Kind: wire.KindCommand, Index: at}, cmd); err != nil {
			errs = append(errs, err)
		}
	}
	return at, errors.Join(errs...)
}

// Failover swaps the active encoder without a gap (see Switch.Failover).
func (t *Twins) Failover() (FailoverResult, error) { return t.sw.Failover() }

// Status returns the twin control's state.
func (t *Twins) Status() TwinsStatus {
	return TwinsStatus{BitrateKbps: int(t.bitrate.Load()), SkewMaxFrames: t.skewMax.Load(), Restarts: t.restarts.Load()}
}

// commandLead is how many frames ahead of the ring head a command is
// addressed (about 200 ms), so it reaches both encoders before that frame.
func (t *Twins) commandLead() uint64 {
	return uint64(float64(t.cfg.FPSNum)/float64(t.cfg.FPSDen)/5) + 3
}
