package page

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"onair/web/api"
)

// stream is GET api.PathStream: Server-Sent Events.
//
//	event: status   the whole api.Status, at once and whenever its JSON changed
//	                (checked every Interval)
//	event: event    id: SEQ, one api.Event: first the kept ones newer than
//	                Last-Event-ID (or the newest ReplayEvents), then each new one
//	event: log      one api.LogLine: first the newest ReplayLogs, then each new one
//	: keepalive     every KeepAlive
//
// It ends when the request's context ends (client gone, server shutdown),
// when a write takes longer than WriteTimeout, when a subscription is cut
// off for falling behind, or after MaxAge; the browser reconnects with
// Last-Event-ID and misses nothing the ring still holds.
func (p *Page) stream(w http.ResponseWriter, r *http.Request) {
	if n := p.streams.Add(1); n > int64(p.cfg.MaxStreams) {
		p.streams.Add(-1)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable,
			"page: too many live streams open ("+strconv.Itoa(p.cfg.MaxStreams)+"): close a tab, or wait")
		return
	}
	defer p.streams.Add(-1)
	log := p.log.With(zap.String("client", r.RemoteAddr))
	log.Debug("stream opened", zap.Uint64("last_event_id", lastEventID(r)))
	defer log.Debug("stream ended")

	rc := http.NewResponseController(w)
	// The server's WriteTimeout would cut every stream after 10 s; each
	// write gets its own deadline instead (sse.send).
	deadlines := true
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		deadlines = false
		log.Warn("stream: cannot clear the write deadline: the server's WriteTimeout will cut the stream (the browser reconnects)",
			zap.Error(err))
	}

	// Subscribe before listing: an event added in between is in both, and
	// is sent once (by Seq).
	evCh, unsubEvents := p.cfg.Events.Subscribe()
	defer unsubEvents()
	var logCh <-chan api.LogLine
	if p.cfg.Logs != nil {
		ch, unsub := p.cfg.Logs.Subscribe()
		defer unsub()
		logCh = ch
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, rc: rc, deadlines: deadlines}
	s.buf.WriteString("retry: 2000\n\n")

	last, err := json.Marshal(p.cfg.Status())
	if err != nil {
		p.log.Error("[unexpected] stream: status JSON", zap.Error(err))
		return
	}
	s.event("status", "", last)

	var lastEvent uint64
	for _, e := range p.replay(lastEventID(r)) {
		s.sendEvent(e)
		lastEvent = e.Seq
	}
	var lastLog uint64
	if p.cfg.Logs != nil {
		lines, _ := p.cfg.Logs.Lines(0, ReplayLogs)
		for _, l := range lines {
			s.sendLog(l)
			lastLog = l.Seq
		}
	}
	if !s.flush() {
		return
	}

	maxAge := p.clock.NewTimer(MaxAge)
	defer maxAge.Stop()
	tick := p.clock.NewTicker(p.cfg.Interval)
	defer tick.Stop()
	keep := p.clock.NewTicker(KeepAlive)
	defer keep.Stop()
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-maxAge.Chan():
			log.Debug("stream: MaxAge reached: ending, the browser reconnects through the session check")
			return
		case e, ok := <-evCh:
			if !ok {
				log.Debug("stream: events subscription cut off: ending, the browser reconnects")
				return
			}
			if e.Seq <= lastEvent {
				continue
			}
			lastEvent = e.Seq
			s.sendEvent(e)
		case l, ok := <-logCh:
			if !ok {
				log.Debug("stream: log subscription cut off: ending, the browser reconnects")
				return
			}
			if l.Seq <= lastLog {
				continue
			}
			lastLog = l.Seq
			s.sendLog(l)
		case <-tick.Chan():
			cur, err := json.Marshal(p.cfg.Status())
			if err != nil {
				p.log.Error("[unexpected] stream: status JSON", zap.Error(err))
				return
			}
			if bytes.Equal(cur, last) {
				continue
			}
			last = cur
			s.event("status", "", cur)
		case <-keep.Chan():
			s.buf.WriteString(": keepalive\n\n")
		}
		if !s.flush() {
			return
		}
	}
}

// replay is what a new stream sends first: the kept events after the one
// the browser saw last, or the newest ReplayEvents when it saw none. An
// after beyond the newest event means onaird started again (Seq begins at
// 1): the browser gets the newest ReplayEvents as on a first connect.
func (p *Page) replay(after uint64) []api.Event {
	evs, _ := p.cfg.Events.List(time.Time{}, 0)
	if after > 0 && len(evs) > 0 && evs[len(evs)-1].Seq >= after {
		i := len(evs)
		for i > 0 && evs[i-1].Seq > after {
			i--
		}
		return evs[i:]
	}
	if len(evs) > ReplayEvents {
		evs = evs[len(evs)-ReplayEvents:]
	}
	return evs
}

// lastEventID is the Seq the browser saw last: the Last-Event-ID header
// EventSource sends when it reconnects (0: none or not a number).
func lastEventID(r *http.Request) uint64 {
	n, err := strconv.ParseUint(strings.TrimSpace(r.Header.Get("Last-Event-ID")), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// sse collects events and writes them in one write per wake-up.
type sse struct {
	w         http.ResponseWriter
	rc        *http.ResponseController
	deadlines bool
	buf       bytes.Buffer
}

// event appends one event. data is one line of JSON (json.Marshal never
// writes a newline: one in a string is escaped).
func (s *sse) event(name, id string, data []byte) {
	if id != "" {
		s.buf.WriteString("id: " + id + "\n")
	}
	s.buf.WriteString("event: " + name + "\ndata: ")
	s.buf.Write(data)
	s.buf.WriteString("\n\n")
}

func (s *sse) sendEvent(e api.Event) {
	b, err := json.Marshal(e)
	if err != nil {
		return // an Event always marshals
	}
	s.event("event", strconv.FormatUint(e.Seq, 10), b)
}

func (s *sse) sendLog(l api.LogLine) {
	b, err := json.Marshal(l)
	if err != nil {
		return // a LogLine always marshals
	}
	s.event("log", "", b)
}

// flush writes what was collected, within WriteTimeout, and flushes it;
// false: the client is gone or stuck, end the stream.
func (s *sse) flush() bool {
	if s.buf.Len() == 0 {
		return true
	}
	if s.deadlines {
		// A network deadline is wall-clock time, whatever clock the page has.
		if err := s.rc.SetWriteDeadline(time.Now().Add(WriteTimeout)); err != nil {
			return false
		}
	}
	_, err := s.w.Write(s.buf.Bytes())
	s.buf.Reset()
	if err != nil {
		return false
	}
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return false
	}
	return true
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(api.Error{Error: msg})
}
