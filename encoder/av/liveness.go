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

// mailbox hands the newest frame from the source reader to the ring writer.
// It holds one frame: a frame put while the previous one was not taken yet
// replaces it (the older one is dropped). So a source that delivers a burst
// after a pause (a network peer catching up, a driver's queue) never builds
// a backlog: the writer always gets the newest picture and writes it at the
// current index. Ownership moves by swapping: put and take each give the
// caller back the frame the mailbox held, which is then the caller's own.
type mailbox[F any] struct {
	mu      sync.Mutex
	ready   F
	arrival int64
	fresh   bool
	dropped uint64
	notify  chan struct{} // one pending wake-up for the writer
}

func newMailbox[F any](spare F) *mailbox[F] {
	return &mailbox[F]{ready: spare, notify: make(chan struct{}, 1)}
}

// put stores f (arrived at arrival) and returns the frame to reuse.
func (m *mailbox[F]) put(f F, arrival int64) F {
	m.mu.Lock()
	old := m.ready
	if m.fresh {
		m.dropped++
	}
	m.ready, m.arrival, m.fresh = f, arrival, true
	m.mu.Unlock()
	select {
	case m.notify <- struct{}{}:
	default:
	}
	return old
}

// take swaps the newest frame for spare. ok is false when nothing new
// arrived since the last take (spare is then returned as is).
func (m *mailbox[F]) take(spare F) (f F, arrival int64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.fresh {
		return spare, 0, false
	}
	f, m.ready = m.ready, spare
	m.fresh = false
	return f, m.arrival, true
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
