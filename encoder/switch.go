package encoder

import (
	"fmt"
	"sync"

	"github.com/cespare/xxhash/v2"
	"go.uber.org/zap"

	"onair/web/api"
)

// Packet is one encoded access unit from one encoder.
type Packet struct {
	From      int    // encoder slot: 0 = A, 1 = B
	Index     uint64 // frame index
	PTS       int64  // 90 kHz
	Key       bool   // IDR
	CaptureNs int64  // when the picture was captured (or substituted)
	Data      []byte
}

// SwitchStatus is the switch's state for the status API; the type lives in
// the API package so that clients share it.
type SwitchStatus = api.SwitchStatus

type seen struct {
	hash uint64
	from int
}

// Switch chooses, for every frame index, exactly one copy to send to the mux
// (DESIGN.md, "Hitless twin encoders"). While the twins are locked — every
// compared pair of copies hashed equal since the last common codec reset — the
// first copy to arrive wins and the later one is dropped, so a killed or hung
// encoder costs no frame and adds no latency. While unlocked, only the active
// encoder's packets are used, and the switch moves to the other encoder only
// at one of its IDRs, and only when it must: the active encoder is gone
// (a gap is then unavoidable and counted), or a manual failover asked for it
// and its IDR is exactly the next index (no gap). An active encoder that is
// merely a few frames behind the other is never abandoned while unlocked —
// that would turn lateness into a gap the viewer sees; one that falls too far
// behind is restarted by onaird's lag check, which makes it gone.
//
// Written by hand: this is the encoder-level analogue of SMPTE ST 2022-7
// seamless protection switching, which no library provides for encoded video.
//
// States of the pair (transitions in brackets):
//
//	single   one encoder alive                     [EncoderStarted → unlocked]
//	unlocked both alive, streams differ            [RelockAt(R) → relocking]
//	relocking both reset at R, not yet verified    [first compared pair ≥ R: equal → locked; unequal → unlocked]
//	locked   identical streams verified            [mismatch → unlocked; EncoderDown → single]
//
// Copies before R never lock, even when equal: the codec states may still
// differ, and "first copy wins" would then mix two streams.
//
// A copy from R on that arrives ahead of the emitted stream and cannot be
// emitted yet (the standby ran ahead of the active encoder while relocking,
// or while locked it is further ahead than the next index) is held, not
// thrown away: if the encoder that would have delivered the indexes between
// dies, the held copies are the only ones left (Next emits them). Held
// copies are bounded (maxHeld per encoder) and dropped once the emitted
// stream passes them. An encoder
// declared down is refused outright until EncoderStarted announces its next
// instance: what it flushes after a SIGCONT, or while it is being killed,
// is never emitted and never touches the lock, the active encoder or the
// comparison.
type Switch struct {
	mu       sync.Mutex
	log      *zap.Logger
	names    []string
	alive    []bool
	started  []uint64 // start index of each encoder's current instance
	lastIdx  []uint64 // last index received from each encoder
	active   int      // -1 until the first key frame
	pending  int      // -1, or the target of a manual failover asked for while unlocked
	locked   bool
	relockAt *uint64
	failedAt *uint64 // index at which the last re-lock attempt failed, since the last start
	needKey  bool    // the next emitted packet must be an IDR
	emitted  bool
	last     uint64
	window   map[uint64]seen
	held     []map[uint64]Packet // per encoder: copies ahead of the emitted stream, from R on
	st       SwitchStatus
}

// maxHeld bounds the copies held per encoder: about 2 s at 30 fps, more
// than the standby is ever ahead while it is trusted (video.hang_after).
const maxHeld = 64

// NewSwitch makes a switch for the named encoders (one or two).
func NewSwitch(names []string, log *zap.Logger) (*Switch, error) {
	if len(names) < 1 || len(names) > 2 {
		return nil, fmt.Errorf("encoder: switch takes 1 or 2 encoders, got %d", len(names))
	}
	n := len(names)
	return &Switch{
		log: log, names: names, alive: make([]bool, n), started: make([]uint64, n), lastIdx: make([]uint64, n),
		active: -1, pending: -1, needKey: true, window: map[uint64]seen{}, held: make([]map[uint64]Packet, n),
		st: SwitchStatus{Twins: n == 2, FramesFrom: make([]uint64, n), Dropped: make([]uint64, n), Names: names},
	}, nil
}

// EncoderStarted records that encoder e (re)started and will produce indexes
// from start on. Its stream is not locked to the other until a common reset.
func (s *Switch) EncoderStarted(e int, start uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alive[e] = true
	s.started[e] = start
	s.forget(e)
	s.failedAt = nil
	if s.locked {
		s.log.Info("twins unlocked: encoder restarted", zap.String("encoder", s.names[e]))
	}
	s.locked = false
	s.relockAt = nil
}

// EncoderDown records that encoder e exited, stalled or was killed, or that
// the caller decided to restart it: call it at that decision, before the
// kill. From then on every packet from e is refused (Offer returns false
// and changes nothing else) until EncoderStarted(e, …) announces a new
// instance; calling it again is a cheap no-op. If e was active and the twins
// were locked, the other takes over with no gap.
func (s *Switch) EncoderDown(e int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.alive[e] {
		return
	}
	s.alive[e] = false
	s.forget(e)
	if s.pending == e {
		s.log.Info("pending failover cancelled: its target is down", zap.String("encoder", s.names[e]))
		s.pending = -1
	}
	wasLocked := s.locked
	s.locked = false
	s.relockAt = nil
	if s.active == e && len(s.names) == 2 && s.alive[1-e] {
		s.setActive(1-e, !wasLocked, "active encoder down")
	}
}

// RelockAt records that both encoders were told to reset their codec at
// index r; the first pair of copies compared at or after r decides: equal
// locks the twins, unequal counts a failure and NeedsRelock asks again.
// Copies before r never lock. An r at or before the index where the last
// attempt failed is ignored (that reset is known not to make the streams
// equal): NeedsRelock stays true and the caller picks a later boundary.
func (s *Switch) RelockAt(r uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failedAt != nil && r <= *s.failedAt {
		s.log.Debug("re-lock index not after the failed attempt: ignored", zap.Uint64("at", r), zap.Uint64("failed_at", *s.failedAt))
		return
	}
	s.locked = false
	s.relockAt = &r
}

// Locked reports whether the twins are locked (identical streams verified).
func (s *Switch) Locked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.locked
}

// NeedsRelock reports whether both encoders are alive but not locked and no
// re-lock is pending: the caller should pick a GOP boundary and reset both.
func (s *Switch) NeedsRelock() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.names) == 2 && s.alive[0] && s.alive[1] && !s.locked && s.relockAt == nil
}

// FailoverResult says what a manual failover did.
type FailoverResult struct {
	Target  string // the encoder that is or will be active
	Pending bool   // unlocked: Target takes over at a seamless point, not yet
}

// Failover makes the other encoder active. While locked it takes effect at
// once and costs nothing. While unlocked it is recorded as pending and takes
// effect, still without a gap, at the other encoder's first IDR that directly
// follows the emitted stream or when the twins lock, whichever comes first.
// Asking again while pending keeps the request.
func (s *Switch) Failover() (FailoverResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.names) != 2 {
		return FailoverResult{}, fmt.Errorf("encoder: failover needs twins (video.twins is false)")
	}
	if s.active < 0 {
		return FailoverResult{}, fmt.Errorf("encoder: failover: no video emitted yet")
	}
	other := 1 - s.active
	if !s.alive[other] {
		return FailoverResult{}, fmt.Errorf("encoder: failover: %s is not running", s.names[other])
	}
	if s.locked {
		s.setActive(other, false, "manual failover")
		return FailoverResult{Target: s.names[other]}, nil
	}
	if s.pending != other {
		s.pending = other
		s.log.Info("manual failover pending: twins unlocked", zap.String("target", s.names[other]))
	}
	return FailoverResult{Target: s.names[other], Pending: true}, nil
}

func (s *Switch) setActive(e int, needKey bool, why string) {
	if s.active == e {
		return
	}
	from := ""
	if s.active >= 0 {
		from = s.names[s.active]
	}
	s.pending = -1 // reached, or overtaken by this change
	s.active = e
	s.needKey = needKey
	s.st.Switches++
	s.st.LastSwitch = &api.VideoSwitch{AfterIndex: s.last, From: from, To: s.names[e], Reason: why, AtNextIDR: needKey}
	s.log.Info("active encoder changed", zap.String("active", s.names[e]), zap.String("why", why), zap.Bool("at_next_idr", needKey))
}

// forget drops encoder e's unpaired copies from the comparison window: they
// belong to an instance that is down or replaced.
func (s *Switch) forget(e int) {
	for idx, c := range s.window {
		if c.from == e {
			delete(s.window, idx)
		}
	}
	s.st.Dropped[e] += uint64(len(s.held[e]))
	s.held[e] = nil
}

// hold keeps p, dropped for now, if it may be needed later: it is ahead of
// the emitted stream and comes from a stream that is or is being verified
// (locked, or at or after the re-lock index). It reports whether p is held.
func (s *Switch) hold(p Packet) bool {
	e := p.From
	lockable := s.locked || (s.relockAt != nil && p.Index >= *s.relockAt) // locked, or from the re-lock index on
	if len(s.names) != 2 || !s.emitted || p.Index <= s.last || !lockable {
		return false
	}
	if s.held[e] == nil {
		s.held[e] = map[uint64]Packet{}
	}
	if len(s.held[e]) >= maxHeld {
		return false
	}
	s.held[e][p.Index] = p
	return true
}

// Next returns a held copy that now follows the emitted stream directly
// and may be emitted: while locked, either encoder's; otherwise only the
// active encoder's (an IDR if it must start at one). The caller sends it to
// the mux as it would a packet Offer accepted, and calls Next again until it
// returns false: after every Offer, and after every EncoderDown (the standby
// that takes over may hold the indexes the dead encoder never delivered).
func (s *Switch) Next() (Packet, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.emitted {
		return Packet{}, false
	}
	for e := range s.held {
		for i := range s.held[e] {
			if i <= s.last {
				delete(s.held[e], i)
				s.st.Dropped[e]++ // overtaken: the other copy went out
			}
		}
	}
	for _, e := range []int{s.active, 1 - s.active} {
		if e < 0 || e >= len(s.held) {
			continue
		}
		p, ok := s.held[e][s.last+1]
		if !ok || !s.alive[e] {
			continue
		}
		if !s.locked && (e != s.active || (s.needKey && !p.Key)) {
			continue
		}
		delete(s.held[e], p.Index)
		s.emit(p)
		return p, true
	}
	return Packet{}, false
}

// Offer hands the switch one packet; it reports whether the packet is the
// copy to send to the mux. Packets must be offered in arrival order.
func (s *Switch) Offer(p Packet) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := p.From
	if !s.alive[e] || p.Index < s.started[e] {
		// After EncoderDown (a SIGCONTed encoder flushing, one being killed),
		// or below its instance's start (an earlier instance's tail): never
		// trust it, and let it change nothing but this counter.
		s.st.Dropped[e]++
		return false
	}
	s.lastIdx[e] = p.Index
	s.compare(p.Index, xxhash.Sum64(p.Data), e)

	if s.emitted && p.Index <= s.last {
		s.st.Dropped[e]++ // the later copy
		return false
	}
	ok := false
	switch {
	case s.active < 0:
		ok = p.Key
		if ok {
			s.active = e
			s.log.Info("first key frame", zap.String("encoder", s.names[e]), zap.Uint64("index", p.Index))
		}
	case e == s.active:
		ok = !s.needKey || p.Key
	case s.locked:
		// First copy wins: the active encoder is late or gone. But only a
		// copy that follows the emitted stream: one further ahead means the
		// indexes between were this encoder's copies dropped before the
		// lock (it ran ahead of the active one while unlocked), and the
		// active encoder, alive, still delivers them.
		ok = p.Index == s.last+1 || !s.alive[s.active]
	default:
		// Unlocked and not active: take over only at an IDR, and only when
		// the active encoder is gone or itself waits for an IDR (the gap is
		// then already there), or a manual failover asked for this one and
		// the IDR follows the emitted stream directly.
		switch {
		case p.Key && (!s.alive[s.active] || s.needKey):
			s.setActive(e, false, "active encoder gone")
			ok = true
		case p.Key && s.pending == e && p.Index == s.last+1:
			s.setActive(e, false, "manual failover at a seamless IDR")
			ok = true
		}
	}
	if !ok {
		if !s.hold(p) {
			s.st.Dropped[e]++
		}
		return false
	}
	s.emit(p)
	return true
}

// emit records p as the copy sent to the mux.
func (s *Switch) emit(p Packet) {
	e := p.From
	if e == s.active {
		s.needKey = false
	}
	if s.emitted && p.Index > s.last+1 {
		s.st.GapFrames += p.Index - s.last - 1
		s.log.Warn("gap: frame indexes skipped", zap.String("encoder", s.names[e]), zap.Uint64("after", s.last),
			zap.Uint64("index", p.Index), zap.Bool("locked", s.locked), zap.Bool("key", p.Key),
			zap.Uint64s("last_from", s.lastIdx))
	}
	s.emitted = true
	s.last = p.Index
	s.st.Emitted++
	s.st.FramesFrom[e]++
	// prune the comparison window
	if p.Index > 512 {
		for idx := range s.window {
			if idx < p.Index-512 {
				delete(s.window, idx)
			}
		}
	}
}

// compare records the hash of index i from encoder e and checks it against the
// other encoder's copy.
func (s *Switch) compare(i uint64, h uint64, e int) {
	if len(s.names) != 2 {
		return
	}
	prev, ok := s.window[i]
	if !ok || prev.from == e {
		s.window[i] = seen{hash: h, from: e}
		return
	}
	delete(s.window, i)
	// Only copies made after both encoders' current instances started are comparable.
	if i < s.started[0] || i < s.started[1] {
		return
	}
	s.st.Compared++
	switch {
	case prev.hash == h && s.relockAt != nil && i >= *s.relockAt:
		s.locked = true
		s.relockAt = nil
		s.failedAt = nil
		s.st.Relocks++
		newest := max(s.started[0], s.started[1])
		s.st.LastRelockF = int64(i - newest)
		s.log.Info("twins locked", zap.Uint64("index", i), zap.Int64("frames_after_start", s.st.LastRelockF))
		if s.pending >= 0 {
			s.setActive(s.pending, false, "manual failover (twins locked)")
		}
	case prev.hash != h && s.locked:
		s.st.Mismatches++
		s.locked = false
		s.log.Warn("[unexpected] twins diverged: unlocked", zap.Uint64("index", i))
	case prev.hash != h && s.relockAt != nil && i >= *s.relockAt:
		// The reset did not make the streams equal (a command that arrived
		// late, settings that differ). Unlocked twins cost up to a GOP at the
		// next death of the active encoder, so count it and let NeedsRelock
		// ask for the next boundary.
		s.st.RelockFailures++
		s.log.Warn("re-lock failed: copies differ at or after the reset index; another attempt follows",
			zap.Uint64("index", i), zap.Uint64("relock_at", *s.relockAt), zap.Uint64("failures", s.st.RelockFailures))
		s.relockAt = nil
		s.failedAt = &i
	}
}

// Status is a snapshot for the status API.
func (s *Switch) Status() SwitchStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Locked = s.locked
	st.LastIndex = s.last
	if s.active >= 0 {
		st.Active = s.names[s.active]
	}
	if s.pending >= 0 {
		st.FailoverPending = s.names[s.pending]
	}
	if s.relockAt != nil {
		r := *s.relockAt
		st.RelockAt = &r
	}
	st.FramesFrom = append([]uint64(nil), s.st.FramesFrom...)
	st.Dropped = append([]uint64(nil), s.st.Dropped...)
	st.Alive = append([]bool(nil), s.alive...)
	if s.st.LastSwitch != nil {
		ls := *s.st.LastSwitch
		st.LastSwitch = &ls
	}
	return st
}
