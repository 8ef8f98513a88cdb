// Package audio is onaird's audio selector: it takes the AAC frames of the
// two audio chains (main, the desk feed, and backup, the crew's own input),
// each from its own onair-av process, and passes exactly one frame per
// index to the programme, from the chain that should be heard.
//
// Both chains stamp their frames on the box's one sample clock (frame k is
// 1024 samples at 48 kHz from the session epoch, in both), so a switch is a
// choice of which chain's frame k goes out: no gap, no overlap, timestamps
// continuous. The rules, per frame:
//   - main while it is healthy;
//   - backup when main is down (no process), stalled (its frame is not
//     there LateAfter after its last sample was due) or, in auto mode,
//     silent (every frame's RMS below SilenceDBFS for SilenceAfter), while
//     backup is not;
//   - back to main only after it has been healthy (every frame in time and,
//     in auto mode, above SilenceDBFS) for ReturnAfter, so a flapping feed
//     does not flap the programme; at once if backup fails;
//   - a forced chain (the operator's main or backup) is used while it is
//     present, whatever its level; while it is missing the other chain
//     fills in, so a forced choice never produces silence while a chain
//     runs;
//   - a frame the active chain misses once (late, lost) is filled from the
//     other chain for that index only; an index no chain has in time is
//     skipped (counted as missing), so audio never waits more than
//     LateAfter, and never for video.
//
// The selector is hand-written: it is the audio half of the hitless switch
// and no library does per-frame selection between timestamp-aligned AAC
// streams.
//
// Not for: capture, resampling, encoding or level metering (onair-av does
// those, the levels come with each frame), muxing (tsmux.Programme is the
// Sink), process supervision (supervisor.Child; the daemon reports a
// chain's process going up and down).
package audio

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/encoder/ring"
	"onair/encoder/wire"
	"onair/web/api"
)

// Chain is one of the two audio chains.
type Chain int

// The chains.
const (
	Main Chain = iota
	Backup
)

func (c Chain) String() string { return [...]string{"main", "backup"}[c] }

func (c Chain) other() Chain { return 1 - c }

// Sink takes the programme's audio: frame index i (ADTS), each index at
// most once and in increasing order. tsmux.Programme implements it.
type Sink interface {
	WriteAudio(i uint64, adts []byte)
}

// Config is the selector's timing and thresholds.
type Config struct {
	// Clock is the audio frame timeline (48 kHz / 1024 on the session epoch).
	Clock ring.Cadence
	// SilenceDBFS is the RMS level below which a frame is silent (-60).
	SilenceDBFS float64
	// SilenceAfter is how long main must stay silent before backup takes
	// over (3 s).
	SilenceAfter time.Duration
	// ReturnAfter is how long main must be healthy before it takes over
	// again (10 s).
	ReturnAfter time.Duration
	// LateAfter is how long after its last sample is due a frame may reach
	// the selector before its chain counts as stalled and the index goes
	// out from the other chain (250 ms).
	LateAfter time.Duration
	// Mode is the mode at start (auto).
	Mode api.AudioMode
}

// Defaults of Config.
const (
	DefaultSilenceDBFS  = -60.0
	DefaultSilenceAfter = 3 * time.Second
	DefaultReturnAfter  = 10 * time.Second
	DefaultLateAfter    = 250 * time.Millisecond
)

// maxAhead bounds the frames buffered per chain beyond the next index to
// play (2 s): a chain cannot make the selector hold more.
const maxAhead = 94

// startGrace is how long after the first frame played the preferred chain
// may still take over at once, uncounted: the two processes start a few
// frames apart, and the first to deliver must not hold the programme for
// ReturnAfter.
const startGrace = 2 * time.Second

// keepSwitches is how many switches Status lists.
const keepSwitches = 16

// ErrMode reports an unknown audio mode.
var ErrMode = errors.New("audio: unknown mode")

func (c Config) withDefaults() Config {
	if c.SilenceDBFS == 0 {
		c.SilenceDBFS = DefaultSilenceDBFS
	}
	if c.SilenceAfter == 0 {
		c.SilenceAfter = DefaultSilenceAfter
	}
	if c.ReturnAfter == 0 {
		c.ReturnAfter = DefaultReturnAfter
	}
	if c.LateAfter == 0 {
		c.LateAfter = DefaultLateAfter
	}
	if c.Mode == "" {
		c.Mode = api.AudioAuto
	}
	return c
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Clock.Num <= 0 || c.Clock.Den <= 0:
		return fmt.Errorf("audio: clock %d/%d: not a frame rate", c.Clock.Num, c.Clock.Den)
	case c.SilenceDBFS >= 0 || c.SilenceDBFS < wire.MinDBFS:
		return fmt.Errorf("audio: silence threshold %.1f dBFS outside %.0f..0", c.SilenceDBFS, wire.MinDBFS)
	case c.SilenceAfter <= 0, c.ReturnAfter <= 0:
		return fmt.Errorf("audio: silence_after %s and return_after %s must be positive", c.SilenceAfter, c.ReturnAfter)
	case c.LateAfter < 10*time.Millisecond || c.LateAfter > 2*time.Second:
		return fmt.Errorf("audio: late_after %s outside 10ms..2s", c.LateAfter)
	}
	return checkMode(c.Mode)
}

func checkMode(m api.AudioMode) error {
	switch m {
	case api.AudioAuto, api.AudioMain, api.AudioBackup:
		return nil
	}
	return fmt.Errorf("%w %q: want auto, main or backup", ErrMode, m)
}

// Selector picks one chain's frame per index and writes it to the Sink.
type Selector struct {
	cfg  Config
	sink Sink
	now  func() int64 // CLOCK_MONOTONIC ns, the clock of the frame timeline
	wall clockwork.Clock
	log  *zap.Logger

	silenceFrames, returnFrames, graceFrames uint64
	wake                                     chan struct{}

	mu       sync.Mutex
	mode     api.AudioMode
	chains   [2]chainState
	started  bool   // the first frame was played
	next     uint64 // the index to play next
	firstIdx uint64 // the first index played
	active   Chain
	reason   string
	switched bool // a counted switch happened: the start grace is over
	switches uint64
	last     []api.AudioSwitch
	filled   uint64
	missing  uint64
	out      []outFrame // frames decided under mu, written by Run
}

type chainState struct {
	up    bool
	seen  bool
	last  uint64 // highest index received
	frame map[uint64][]byte
	// run is the start of the chain's current run of frames that came in
	// time and in order (present), sound the same and above the silence
	// threshold; hasRun/hasSound say whether one is going on.
	presentFrom, soundFrom uint64
	hasPresent, hasSound   bool
	silentRun              uint64 // consecutive silent frames ending at last
	levels                 wire.AudioLevels
	delay                  time.Duration
	frames, played         uint64
	late, dropped          uint64
}

type outFrame struct {
	i    uint64
	adts []byte
}

// New returns a selector in cfg.Mode that has played nothing yet. now is
// the CLOCK_MONOTONIC clock of the frame timeline (nil: ring.MonotonicNs),
// wall stamps the switches (nil: the real clock), a nil log discards.
func New(cfg Config, sink Sink, now func() int64, wall clockwork.Clock, log *zap.Logger) (*Selector, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sink == nil {
		return nil, errors.New("audio: nil sink")
	}
	if now == nil {
		now = ring.MonotonicNs
	}
	if wall == nil {
		wall = clockwork.NewRealClock()
	}
	if log == nil {
		log = zap.NewNop()
	}
	frames := func(d time.Duration) uint64 {
		return max(1, uint64(d.Seconds()*float64(cfg.Clock.Num)/float64(cfg.Clock.Den)+0.5))
	}
	s := &Selector{cfg: cfg, sink: sink, now: now, wall: wall, log: log, mode: cfg.Mode,
		silenceFrames: frames(cfg.SilenceAfter), returnFrames: frames(cfg.ReturnAfter), graceFrames: frames(startGrace),
		wake: make(chan struct{}, 1)}
	for c := range s.chains {
		s.chains[c].frame = map[uint64][]byte{}
	}
	s.active = s.preferred()
	s.reason = "mode " + string(s.mode)
	return s, nil
}

// deadline is when frame i must be there: LateAfter after its last sample
// was due.
func (s *Selector) deadline(i uint64) int64 {
	return s.cfg.Clock.TimeOf(i+1) + int64(s.cfg.LateAfter)
}

// Up says chain c has a running process (its link attached).
func (s *Selector) Up(c Chain) {
	s.mu.Lock()
	s.chains[c].up = true
	s.mu.Unlock()
	s.poke()
}

// Down says chain c's process ended: it is missing at once, without
// waiting for its next frame to be late.
func (s *Selector) Down(c Chain) {
	s.mu.Lock()
	cs := &s.chains[c]
	cs.up, cs.hasPresent, cs.hasSound = false, false, false
	s.mu.Unlock()
	s.poke()
}

// Put hands the selector chain c's frame i with the levels its chain
// measured. It never blocks on the sink: Run writes.
func (s *Selector) Put(c Chain, i uint64, l wire.AudioLevels, adts []byte) {
	now := s.now()
	s.mu.Lock()
	cs := &s.chains[c]
	cs.frames++
	if cs.seen && i <= cs.last {
		cs.dropped++ // a duplicate or out of order: the chain's clock never goes back
		s.mu.Unlock()
		return
	}
	if cs.seen && i > cs.last+1 {
		cs.hasPresent, cs.hasSound = false, false // it skipped frames
	}
	cs.delay = time.Duration(now - s.cfg.Clock.TimeOf(i+1))
	if now > s.deadline(i) {
		cs.late++
		cs.hasPresent, cs.hasSound = false, false // late: not healthy
	} else if !cs.hasPresent {
		cs.hasPresent, cs.presentFrom = true, i
	}
	if l.RMSDBFS() < s.cfg.SilenceDBFS {
		cs.silentRun++
		cs.hasSound = false
	} else {
		cs.silentRun = 0
		if cs.hasPresent && !cs.hasSound {
			cs.hasSound, cs.soundFrom = true, i
		}
	}
	cs.seen, cs.last, cs.levels = true, i, l
	switch {
	case s.started && i < s.next:
		// Its index already went out (the other chain's frame, or skipped).
	case s.started && i >= s.next+maxAhead, !s.started && len(cs.frame) >= maxAhead:
		cs.dropped++
	default:
		cs.frame[i] = adts
	}
	s.mu.Unlock()
	s.poke()
}

func (s *Selector) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// SetMode sets the operator's choice. A forced chain takes over at once
// when it is present; auto returns to main at once when main is healthy.
func (s *Selector) SetMode(m api.AudioMode) error {
	if err := checkMode(m); err != nil {
		return err
	}
	s.mu.Lock()
	if s.mode != m {
		s.log.Info("audio mode", zap.String("mode", string(m)), zap.String("was", string(s.mode)))
		s.mode = m
		s.decide(s.now(), s.next, true)
	}
	s.mu.Unlock()
	s.poke()
	return nil
}

// SetThresholds changes the silence level, how long silence lasts before
// the other chain takes over, how long the preferred chain must be healthy
// to return, and the lateness bound, live (onairctl config apply): the
// mode, the chains' history and what is playing are kept. A value out of
// range is refused with nothing changed.
func (s *Selector) SetThresholds(silenceDBFS float64, silenceAfter, returnAfter, lateAfter time.Duration) error {
	s.mu.Lock()
	c := s.cfg
	s.mu.Unlock()
	c.SilenceDBFS, c.SilenceAfter, c.ReturnAfter, c.LateAfter = silenceDBFS, silenceAfter, returnAfter, lateAfter
	if err := c.Validate(); err != nil {
		return err
	}
	frames := func(d time.Duration) uint64 {
		return max(1, uint64(d.Seconds()*float64(c.Clock.Num)/float64(c.Clock.Den)+0.5))
	}
	s.mu.Lock()
	s.cfg = c
	s.silenceFrames, s.returnFrames = frames(c.SilenceAfter), frames(c.ReturnAfter)
	s.mu.Unlock()
	s.log.Info("audio thresholds", zap.Float64("silence_dbfs", silenceDBFS), zap.Duration("silence_after", silenceAfter),
		zap.Duration("return_after", returnAfter), zap.Duration("late_after", lateAfter))
	s.poke()
	return nil
}

// Run plays frames as they come and at their deadlines until ctx is done
// (nil). Only Run writes to the Sink, so the order is the index order.
func (s *Selector) Run(ctx context.Context) error {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		s.mu.Lock()
		wait := s.step(s.now())
		out := s.out
		s.out = nil
		s.mu.Unlock()
		for _, f := range out {
			s.sink.WriteAudio(f.i, f.adts)
		}
		if wait <= 0 || wait > 50*time.Millisecond {
			wait = 50 * time.Millisecond // a bounded sleep: nothing waits on a lost wake-up
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake: // Reset above needs no drain (Go 1.23 timers)
		case <-t.C:
		}
	}
}

// step plays every index that can be decided at now and returns how long
// until the next deadline (0: nothing pending). Called with mu held.
func (s *Selector) step(now int64) time.Duration {
	if !s.started {
		first, ok := s.firstPending()
		if !ok {
			return 0
		}
		s.started, s.next, s.firstIdx = true, first, first
	}
	// Far behind the clock (every chain gone for a long time): jump, count.
	if lag := s.cfg.Clock.IndexAt(now - int64(s.cfg.LateAfter)); lag > s.next+maxAhead {
		s.skip(lag - maxAhead - s.next)
	}
	for range 4 * maxAhead { // bounded: at most the buffered frames and those past their deadline
		n := s.next
		s.decide(now, n, false)
		a := s.active
		if f, ok := s.chains[a].frame[n]; ok {
			s.play(a, n, f)
			continue
		}
		if now < s.deadline(n) {
			return time.Duration(s.deadline(n) - now)
		}
		// The active chain has nothing for n in time.
		if f, ok := s.chains[a.other()].frame[n]; ok {
			s.filled++
			s.play(a.other(), n, f)
			continue
		}
		s.skip(1)
	}
	return time.Millisecond
}

func (s *Selector) firstPending() (uint64, bool) {
	var first uint64
	ok := false
	for c := range s.chains {
		for i := range s.chains[c].frame {
			if !ok || i < first {
				first, ok = i, true
			}
		}
	}
	return first, ok
}

func (s *Selector) play(c Chain, n uint64, f []byte) {
	s.chains[c].played++
	s.out = append(s.out, outFrame{i: n, adts: f})
	s.advance()
}

func (s *Selector) skip(k uint64) {
	s.missing += k
	for range min(k, maxAhead+1) {
		s.advance()
	}
	if k > maxAhead+1 {
		s.next += k - maxAhead - 1
		for c := range s.chains {
			clear(s.chains[c].frame)
		}
	}
}

func (s *Selector) advance() {
	for c := range s.chains {
		delete(s.chains[c].frame, s.next)
	}
	s.next++
}

// preferred is the chain the mode asks for.
func (s *Selector) preferred() Chain {
	if s.mode == api.AudioBackup {
		return Backup
	}
	return Main
}

// stalled: no process, nothing yet, or its next frame is past its deadline.
func (s *Selector) stalled(c Chain, now int64) bool {
	cs := &s.chains[c]
	return !cs.up || !cs.seen || now > s.deadline(cs.last+1)
}

func (s *Selector) silent(c Chain) bool { return s.chains[c].silentRun >= s.silenceFrames }

// why says what is wrong with c ("" when nothing is, in this mode).
func (s *Selector) why(c Chain, now int64) string {
	cs := &s.chains[c]
	switch {
	case !cs.up:
		return c.String() + " down"
	case s.stalled(c, now):
		return c.String() + " stalled"
	case s.mode == api.AudioAuto && s.silent(c):
		return fmt.Sprintf("%s silent (below %.0f dBFS for %s)", c, s.cfg.SilenceDBFS, s.cfg.SilenceAfter)
	}
	return ""
}

// healthyFrames is how many frames c has been healthy for: present, and
// in auto mode above the silence threshold too.
func (s *Selector) healthyFrames(c Chain, now int64) uint64 {
	cs := &s.chains[c]
	if s.stalled(c, now) {
		return 0
	}
	if s.mode == api.AudioAuto {
		if !cs.hasSound {
			return 0
		}
		return cs.last - cs.soundFrom + 1
	}
	if !cs.hasPresent {
		return 0
	}
	return cs.last - cs.presentFrom + 1
}

// decide sets the active chain for index n. operator: the mode just
// changed, so the preferred chain takes over at once if it can.
func (s *Selector) decide(now int64, n uint64, operator bool) {
	p, a := s.preferred(), s.active
	o := a.other()
	badA, badO := s.why(a, now), s.why(o, now)
	// The first choices are not switches: the two processes start a few
	// frames apart.
	counted := s.switched || (s.started && n >= s.firstIdx+s.graceFrames)
	presentOnly := func() bool { return s.stalled(a, now) && !s.stalled(o, now) }
	if a == p {
		switch {
		case badA == "":
		case badO == "":
			s.switchTo(o, n, badA, counted)
		case presentOnly():
			s.switchTo(o, n, badA+", "+o.String()+" present", counted) // something beats nothing
		}
		return
	}
	// On the other chain: back to the preferred one?
	switch {
	case badO != "": // o is p
		if presentOnly() {
			s.switchTo(o, n, badA+", "+o.String()+" present", counted)
		} else if operator {
			s.reason = fmt.Sprintf("operator: %s, but %s", s.mode, badO)
		}
	case operator:
		s.switchTo(o, n, "operator: "+string(s.mode), true)
	case !counted:
		s.switchTo(o, n, o.String()+" up", false)
	case s.healthyFrames(o, now) >= s.returnFrames:
		s.switchTo(o, n, fmt.Sprintf("%s healthy for %s", o, s.cfg.ReturnAfter), true)
	case badA != "":
		s.switchTo(o, n, badA, true)
	}
}

func (s *Selector) switchTo(c Chain, n uint64, reason string, counted bool) {
	from := s.active
	s.active, s.reason = c, reason
	if !s.started || !counted || c == from {
		return // nothing played yet, or the start grace: the first choice
	}
	s.switched = true
	s.switches++
	sw := api.AudioSwitch{At: s.wall.Now(), Index: n, From: from.String(), To: c.String(), Reason: reason}
	s.last = append(s.last, sw)
	if len(s.last) > keepSwitches {
		s.last = s.last[len(s.last)-keepSwitches:]
	}
	s.log.Info("audio source switched", zap.String("from", sw.From), zap.String("to", sw.To),
		zap.Uint64("at_index", n), zap.String("reason", reason))
}

// Status is the selector's part of api.AudioStatus (the programme's
// counters and the chains' rates are the daemon's to add).
func (s *Selector) Status() api.AudioStatus {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := api.AudioStatus{Mode: s.mode, Reason: s.reason, Switches: s.switches, Filled: s.filled, Missing: s.missing,
		LastSwitches: append([]api.AudioSwitch(nil), s.last...)}
	if s.started {
		st.Active = s.active.String()
	}
	frameS := float64(s.cfg.Clock.Den) / float64(s.cfg.Clock.Num)
	for c := range s.chains {
		cs := &s.chains[c]
		ch := api.AudioChainStatus{Name: Chain(c).String(), State: s.state(Chain(c), now),
			PeakDBFS: cs.levels.PeakDBFS(), RMSDBFS: cs.levels.RMSDBFS(), LastIndex: cs.last,
			Frames: cs.frames, Played: cs.played, Late: cs.late, Dropped: cs.dropped,
			DelayMs: float64(cs.delay.Microseconds()) / 1000}
		if cs.hasSound && !s.stalled(Chain(c), now) {
			ch.HealthyS = float64(cs.last-cs.soundFrom+1) * frameS
		}
		if !cs.seen {
			ch.PeakDBFS, ch.RMSDBFS = wire.MinDBFS, wire.MinDBFS
		}
		st.Chains = append(st.Chains, ch)
	}
	return st
}

func (s *Selector) state(c Chain, now int64) api.AudioChainState {
	switch {
	case !s.chains[c].up:
		return api.AudioChainDown
	case s.stalled(c, now):
		return api.AudioChainStalled
	case s.silent(c):
		return api.AudioChainSilent
	}
	return api.AudioChainOK
}
