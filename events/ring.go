// Package events is the box's post-event report: a bounded ring of events
// (every failover, restart, uplink, output, power, thermal, config, login,
// recording and tunnel change, with its time, frame index where it applies
// and reason), the subscriptions the web page's live stream reads, and the
// watcher that finds most of them by comparing successive status snapshots.
//
// Events come from two places. Most are changes the components already show
// in api.Status (an encoder switch, a restart count, an uplink's state), so
// Diff derives them from two snapshots and no component has to know about
// events. Those a status cannot show (a login, a refused config) are added
// with Add by whoever sees them.
//
// Not for: logs (every event is also logged, but the log says far more), or
// metrics (web/metrics counts; this keeps the story).
package events

import (
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/web/api"
)

// DefaultSize is the ring's length: a long show with a bad network makes a
// few events a minute; 2048 of them hold many hours.
const DefaultSize = 2048

// subBuffer is a subscriber's channel capacity: a page that has not read
// this many events is behind, and is cut off (it reconnects and catches up
// from the ring with Last-Event-ID).
const subBuffer = 64

// Ring keeps the newest events. Its methods are safe for concurrent use.
type Ring struct {
	log   *zap.Logger
	clock clockwork.Clock

	mu   sync.Mutex
	buf  []api.Event // circular, len == size once full
	head int         // index of the oldest once full
	seq  uint64      // Seq of the newest
	subs map[chan api.Event]struct{}
}

// New makes a ring of size events (DefaultSize when size <= 0).
func New(size int, log *zap.Logger, clock clockwork.Clock) *Ring {
	if size <= 0 {
		size = DefaultSize
	}
	return &Ring{log: log, clock: clock, buf: make([]api.Event, 0, size), subs: map[chan api.Event]struct{}{}}
}

// Add numbers e, stamps it with the clock's time when it has none, keeps it,
// logs it and hands it to every subscriber; it returns the event as kept.
// It never blocks: a subscriber that is full is cut off (its channel is
// closed).
func (r *Ring) Add(e api.Event) api.Event {
	if e.Time.IsZero() {
		e.Time = r.clock.Now()
	}
	r.mu.Lock()
	r.seq++
	e.Seq = r.seq
	if len(r.buf) < cap(r.buf) {
		r.buf = append(r.buf, e)
	} else {
		r.buf[r.head] = e
		r.head = (r.head + 1) % len(r.buf)
	}
	for ch := range r.subs {
		select {
		case ch <- e:
		default:
			delete(r.subs, ch)
			close(ch)
		}
	}
	r.mu.Unlock()
	fields := []zap.Field{zap.Uint64("seq", e.Seq), zap.String("kind", string(e.Kind)), zap.String("reason", e.Reason)}
	if e.Subject != "" {
		fields = append(fields, zap.String("subject", e.Subject))
	}
	if e.Frame != nil {
		fields = append(fields, zap.Uint64("frame", *e.Frame))
	}
	r.log.Info("event", fields...)
	return e
}

// List returns the kept events with Seq > after and Time >= since (a zero
// since: all), oldest first, and how many events were dropped off the ring.
func (r *Ring) List(since time.Time, after uint64) (evs []api.Event, lost uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.buf)
	for i := range n {
		e := r.buf[(r.head+i)%n]
		if e.Seq > after && !e.Time.Before(since) {
			evs = append(evs, e)
		}
	}
	return evs, r.seq - uint64(n)
}

// Subscribe returns a channel that receives every event added from now on,
// and a func that ends the subscription (call it once; it is safe after
// the ring cut the subscriber off). The channel is closed when the
// subscriber falls subBuffer events behind.
func (r *Ring) Subscribe() (<-chan api.Event, func()) {
	ch := make(chan api.Event, subBuffer)
	r.mu.Lock()
	r.subs[ch] = struct{}{}
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, ok := r.subs[ch]; ok {
			delete(r.subs, ch)
			close(ch)
		}
	}
}

// Last is the Seq of the newest event (0: none yet).
func (r *Ring) Last() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}
