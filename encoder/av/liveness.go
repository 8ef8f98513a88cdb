package av

import (
	"fmt"
	"sync"
	"time"

	"onair/encoder/wire"
)

// Capture liveness. A live source may deliver nothing for seconds (an HDMI
// cable pulled, a camera rebooting) and then resume. That is not a fault of
// the capture child: it keeps saying so on the wire, apart from frames, so
// onaird's stall detection (any message is progress) never kills it for a
// silent source, and the slate the keeper shows is not mixed up with restart
// loops whose backoff grows to 30 s.
const (
	// heartbeatEvery is the longest capture stays silent on the wire: when
	// no Progress went out for this long, a heartbeat does. It must stay well
	// under video.stall_after (500 ms by default).
	heartbeatEvery = 100 * time.Millisecond
	// noSignalFrames is how many frame intervals without a frame make a
	// live source "no signal".
	noSignalFrames = 5
)

// liveness tracks whether the source delivers and when capture last spoke on
// the wire. Times are CLOCK_MONOTONIC ns, passed in (tests use synthetic ones).
type liveness struct {
	mu        sync.Mutex
	lostAfter int64 // ns without a frame after which there is no signal
	beat      int64 // ns without a Progress after which a heartbeat is due
	lastFrame int64 // last frame from the source (or the start)
	lastSent  int64 // last Progress sent
	last      wire.Progress
	signal    bool
}

func newLiveness(frame time.Duration, now int64) *liveness {
	return &liveness{
		lostAfter: int64(noSignalFrames * frame), beat: int64(heartbeatEvery),
		lastFrame: now, lastSent: now, signal: true,
		last: wire.Progress{Source: wire.SourceLive},
	}
}

// frame records a frame the source delivered at now. back reports that the
// source had been declared without signal, gap how long it was silent.
func (l *liveness) frame(now int64) (back bool, gap time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	gap = time.Duration(now - l.lastFrame)
	l.lastFrame = now
	back = !l.signal
	l.signal = true
	return back, gap
}

// sent records a Progress sent at now (after a published picture).
func (l *liveness) sent(p wire.Progress, now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = p
	l.lastSent = now
}

// heartbeat returns the Progress to send at now when one is due (nothing was
// sent for heartbeatEvery), with Source saying whether the source has
// signal. lost reports that the signal was declared lost at this call.
func (l *liveness) heartbeat(now int64) (p wire.Progress, due, lost bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	silent := now - l.lastFrame
	if l.signal && silent >= l.lostAfter {
		l.signal = false
		lost = true
	}
	if now-l.lastSent < l.beat && !lost {
		return wire.Progress{}, false, false
	}
	p = l.last
	p.Source = wire.SourceLive
	if !l.signal {
		p.Source = wire.SourceNoSignal
		p.LastError = fmt.Sprintf("no signal for %s", time.Duration(silent).Round(time.Millisecond))
	}
	l.lastSent = now
	return p, true, lost
}

// mailboxDepth is how many frames the mailbox keeps: two, so a pair of
// frames that arrive together (a peer's pacing woke late, network jitter)
// both reach the ring (liveIndex puts the second at the next index), while
// a burst still collapses to its newest two.
const mailboxDepth = 2

// mailbox hands the newest frames from the source reader to the ring writer.
// It keeps the newest mailboxDepth frames in arrival order: a frame put
// while the mailbox is full replaces the oldest one (which is dropped). So a
// source that delivers a burst after a pause (a network peer catching up, a
// driver's queue) never builds a backlog: the writer gets the newest
// pictures and writes them at the current index. Ownership moves by
// swapping: put and take each give the caller back a frame that is then its
// own, so the reader, the writer and the mailbox never share one.
type mailbox[F any] struct {
	mu      sync.Mutex
	queue   []queued[F] // oldest first
	free    []F         // frames to hand to the reader
	dropped uint64
	notify  chan struct{} // one pending wake-up for the writer
}

type queued[F any] struct {
	f       F
	arrival int64
}

// newMailbox makes a mailbox holding the spare frames (mailboxDepth of them).
func newMailbox[F any](spares ...F) *mailbox[F] {
	return &mailbox[F]{free: spares, notify: make(chan struct{}, 1)}
}

// put stores f (arrived at arrival) and returns the frame to reuse.
func (m *mailbox[F]) put(f F, arrival int64) F {
	m.mu.Lock()
	var back F
	if len(m.free) > 0 {
		back = m.free[len(m.free)-1]
		m.free = m.free[:len(m.free)-1]
	} else {
		back = m.queue[0].f
		m.queue = m.queue[1:]
		m.dropped++
	}
	m.queue = append(m.queue, queued[F]{f, arrival})
	m.mu.Unlock()
	select {
	case m.notify <- struct{}{}:
	default:
	}
	return back
}

// take swaps the oldest kept frame for spare. ok is false when nothing is
// queued (spare is then returned as is). more reports frames still queued.
func (m *mailbox[F]) take(spare F) (f F, arrival int64, ok, more bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.queue) == 0 {
		return spare, 0, false, false
	}
	q := m.queue[0]
	m.queue = m.queue[1:]
	m.free = append(m.free, spare)
	return q.f, q.arrival, true, len(m.queue) > 0
}

// droppedFrames is how many frames were replaced before the writer took them.
func (m *mailbox[F]) droppedFrames() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dropped
}

// liveIndex is the ring index for a live picture that arrived in index now,
// when next is the index after the last one capture published (0: none).
//
// Normally that is now: a picture is stamped by its arrival, so after a
// pause (next far behind) the first picture back is written at the current
// index at once, never at the indexes the source missed. A source whose
// frame phase sits at an index boundary has two arrivals land in one index
// and none in the next now and then (jitter of a millisecond is enough):
// the second one then goes to the next index, which is due within a frame,
// instead of being dropped and leaving a hole the keeper fills with a
// repeat. Capture never runs more than one index ahead of arrival: a source
// faster than the box clock loses a picture now and then (ok false).
func liveIndex(now, next uint64) (idx uint64, ok bool) {
	switch {
	case now >= next:
		return now, true
	case next == now+1:
		return next, true
	default:
		return 0, false
	}
}
