package page

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"onair/events"
	"onair/internal/testutil"
	"onair/web/api"
)

// wait bounds every read of a stream: a bug fails the test, it does not
// hang it. Nothing is asserted on how long anything took.
const wait = 5 * time.Second

// sseFrame is one parsed Server-Sent Event (or a comment).
type sseFrame struct {
	name, id, data, comment string
}

// sseClient reads one stream in the background.
type sseClient struct {
	resp   *http.Response
	frames chan sseFrame
	ended  chan struct{} // closed at EOF or a read error
	cancel context.CancelFunc
}

// openStream GETs url with hdr; it fails t unless the answer is 200
// text/event-stream.
func openStream(t *testing.T, url string, hdr http.Header) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+api.PathStream, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		cancel()
		t.Fatalf("GET %s: %s %q: %s", api.PathStream, resp.Status, resp.Header.Get("Content-Type"), b)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q; want no-store", cc)
	}
	c := &sseClient{resp: resp, frames: make(chan sseFrame, 1024), ended: make(chan struct{}), cancel: cancel}
	go c.read()
	t.Cleanup(func() { cancel(); _ = resp.Body.Close() })
	return c
}

// read parses the stream as a browser does (fields of one event up to an
// empty line; "retry" is ignored).
func (c *sseClient) read() {
	defer close(c.ended)
	sc := bufio.NewScanner(c.resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var f sseFrame
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if f != (sseFrame{}) {
				c.frames <- f
			}
			f = sseFrame{}
		case strings.HasPrefix(line, ":"):
			f.comment = strings.TrimSpace(line[1:])
		default:
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "event":
				f.name = v
			case "id":
				f.id = v
			case "data":
				f.data += v
			}
		}
	}
}

// next returns the next event that is not a keepalive comment.
func (c *sseClient) next(t *testing.T) sseFrame {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case f := <-c.frames:
			if f.name == "" && f.comment != "" {
				continue
			}
			return f
		case <-c.ended:
			t.Fatal("the stream ended; want another event")
		case <-timeout:
			t.Fatalf("no event within %s", wait)
		}
	}
}

// waitEnded fails t unless the response ends (EOF) within wait.
func (c *sseClient) waitEnded(t *testing.T) {
	t.Helper()
	select {
	case <-c.ended:
	case <-time.After(wait):
		t.Fatalf("the stream did not end within %s", wait)
	}
}

func decode[T any](t *testing.T, f sseFrame) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(f.data), &v); err != nil {
		t.Fatalf("event %q: %v: %s", f.name, err, f.data)
	}
	return v
}

// fakeStatus is a status func the test changes.
type fakeStatus struct {
	mu sync.Mutex
	st api.Status
}

func (f *fakeStatus) get() api.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeStatus) set(change func(*api.Status)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.st)
}

// fakeLogs is a LogSource: lines and one subscriber.
type fakeLogs struct {
	mu    sync.Mutex
	lines []api.LogLine
	subs  []chan api.LogLine
}

func (l *fakeLogs) Lines(after uint64, n int) ([]api.LogLine, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []api.LogLine
	for _, x := range l.lines {
		if x.Seq > after {
			out = append(out, x)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, uint64(len(l.lines))
}

func (l *fakeLogs) Subscribe() (<-chan api.LogLine, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan api.LogLine, 16)
	l.subs = append(l.subs, ch)
	return ch, func() {}
}

func (l *fakeLogs) add(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	x := api.LogLine{Seq: uint64(len(l.lines) + 1), Time: time.Now(), Level: "info", Logger: "onaird", Msg: msg}
	l.lines = append(l.lines, x)
	for _, ch := range l.subs {
		ch <- x
	}
}

// rig is a page with a fake clock, a real event ring and a server.
type rig struct {
	clock  *clockwork.FakeClock
	status *fakeStatus
	ring   *events.Ring
	logs   *fakeLogs
	page   *Page
	srv    *httptest.Server
	done   chan struct{} // one value each time a stream handler returned
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC))
	r := &rig{clock: clock, status: &fakeStatus{st: api.Status{State: api.BoxOnAir, Version: "test"}},
		ring: events.New(0, testutil.NilLogger(t), clock), logs: &fakeLogs{}, done: make(chan struct{}, 64)}
	cfg.Status = r.status.get
	if cfg.Events == nil {
		cfg.Events = r.ring
	}
	if cfg.Logs == nil {
		cfg.Logs = r.logs
	}
	p, err := New(cfg, testutil.NilLogger(t), clock)
	if err != nil {
		t.Fatal(err)
	}
	r.page = p
	mux := http.NewServeMux()
	p.Register(mux)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mux.ServeHTTP(w, req)
		if req.URL.Path == api.PathStream {
			r.done <- struct{}{}
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// tick advances the clock by one Interval once the stream's timers
// (Interval, KeepAlive, MaxAge) wait on it.
func (r *rig) tick(t *testing.T, streams int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := r.clock.BlockUntilContext(ctx, 3*streams); err != nil {
		t.Fatalf("the stream's tickers: %v", err)
	}
	r.clock.Advance(DefaultInterval)
}

func (r *rig) handlerReturned(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(wait):
		t.Fatalf("the stream handler did not return within %s", wait)
	}
}

func TestStreamSendsTheStatusFirstAndAgainOnlyWhenItChanged(t *testing.T) {
	r := newRig(t, Config{})
	c := openStream(t, r.srv.URL, nil)
	f := c.next(t)
	if f.name != "status" || decode[api.Status](t, f).State != api.BoxOnAir {
		t.Fatalf("first event %+v; want the status, on_air", f)
	}
	if r.page.Streams() != 1 {
		t.Errorf("Streams = %d; want 1", r.page.Streams())
	}

	r.status.set(func(s *api.Status) { s.State = api.BoxDegraded })
	r.tick(t, 1)
	f = c.next(t)
	if f.name != "status" || decode[api.Status](t, f).State != api.BoxDegraded {
		t.Fatalf("after the change %+v; want the status, degraded", f)
	}

	// No change: a tick sends nothing, so the next frame is the event.
	r.tick(t, 1)
	r.ring.Add(api.Event{Kind: api.EventOnAir, Reason: "operator"})
	if f = c.next(t); f.name != "event" {
		t.Fatalf("after an unchanged tick %+v; want the event (no status)", f)
	}
}

func TestStreamSendsANewEventWithItsSeqAsID(t *testing.T) {
	r := newRig(t, Config{})
	c := openStream(t, r.srv.URL, nil)
	c.next(t) // status
	frame := uint64(1234)
	added := r.ring.Add(api.Event{Kind: api.EventVideoFailover, Subject: "B", Frame: &frame, Reason: "operator"})
	f := c.next(t)
	e := decode[api.Event](t, f)
	if f.name != "event" || f.id != strconv.FormatUint(added.Seq, 10) || e.Seq != added.Seq ||
		e.Kind != api.EventVideoFailover || e.Frame == nil || *e.Frame != frame {
		t.Fatalf("got %+v %+v; want event id %d, the video failover at frame %d", f, e, added.Seq, frame)
	}
}

func TestStreamReplaysWhatTheBrowserMissed(t *testing.T) {
	ids := func(t *testing.T, c *sseClient, n int) []string {
		var got []string
		for range n {
			f := c.next(t)
			if f.name != "event" {
				t.Fatalf("got %+v; want an event", f)
			}
			got = append(got, f.id)
		}
		return got
	}
	for _, tc := range []struct {
		name, lastID string
		first        int // the first Seq replayed
	}{
		{"no Last-Event-ID: the newest 50", "", 11},
		{"Last-Event-ID 57: the 3 after it", "57", 58},
		{"Last-Event-ID beyond the newest (onaird restarted): the newest 50", "900", 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{})
			for i := range 60 {
				r.ring.Add(api.Event{Kind: api.EventRestart, Subject: "enc-" + strconv.Itoa(i+1), Reason: "exit"})
			}
			hdr := http.Header{}
			if tc.lastID != "" {
				hdr.Set("Last-Event-ID", tc.lastID)
			}
			c := openStream(t, r.srv.URL, hdr)
			if f := c.next(t); f.name != "status" {
				t.Fatalf("first %+v; want the status", f)
			}
			got := ids(t, c, 60-tc.first+1)
			if got[0] != strconv.Itoa(tc.first) || got[len(got)-1] != "60" {
				t.Errorf("replayed ids %s…%s; want %d…60", got[0], got[len(got)-1], tc.first)
			}
			// And then the new ones, without a duplicate.
			e := r.ring.Add(api.Event{Kind: api.EventConfig, Reason: "applied"})
			if f := c.next(t); f.id != strconv.FormatUint(e.Seq, 10) {
				t.Errorf("after the replay %+v; want the new event %d", f, e.Seq)
			}
		})
	}
}

func TestStreamSendsTheLogTail(t *testing.T) {
	r := newRig(t, Config{})
	r.logs.add("started")
	c := openStream(t, r.srv.URL, nil)
	c.next(t) // status
	if f := c.next(t); f.name != "log" || decode[api.LogLine](t, f).Msg != "started" {
		t.Fatalf("got %+v; want the kept log line", f)
	}
	r.logs.add("uplink up")
	if f := c.next(t); f.name != "log" || decode[api.LogLine](t, f).Msg != "uplink up" {
		t.Fatalf("got %+v; want the new log line", f)
	}
}

// cutSource is the ring with a subscription the test closes, as the ring
// does to a subscriber that fell behind.
type cutSource struct {
	*events.Ring
	ch chan api.Event
}

func (c *cutSource) Subscribe() (<-chan api.Event, func()) { return c.ch, func() {} }

func TestStreamEndsWhenTheRingCutsItOff(t *testing.T) {
	src := &cutSource{ch: make(chan api.Event)}
	r := newRig(t, Config{Events: src})
	src.Ring = r.ring
	c := openStream(t, r.srv.URL, nil)
	c.next(t) // status
	close(src.ch)
	c.waitEnded(t)
	r.handlerReturned(t)
	if n := r.page.Streams(); n != 0 {
		t.Errorf("Streams = %d after the end; want 0", n)
	}
}

func TestStreamEndsWithTheRequestContext(t *testing.T) {
	r := newRig(t, Config{})
	c := openStream(t, r.srv.URL, nil)
	c.next(t)
	c.cancel()
	r.handlerReturned(t)
	if n := r.page.Streams(); n != 0 {
		t.Errorf("Streams = %d after the client left; want 0", n)
	}
}

func TestStreamsBeyondMaxStreamsAre503(t *testing.T) {
	r := newRig(t, Config{MaxStreams: 1})
	c := openStream(t, r.srv.URL, nil)
	c.next(t)
	resp, err := http.Get(r.srv.URL + api.PathStream)
	if err != nil {
		t.Fatal(err)
	}
	var e api.Error
	_ = json.NewDecoder(resp.Body).Decode(&e)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(e.Error, "too many") {
		t.Fatalf("second stream: %s %q; want 503 too many", resp.Status, e.Error)
	}
	r.handlerReturned(t) // the refused one
	c.cancel()
	r.handlerReturned(t)
	c2 := openStream(t, r.srv.URL, nil) // a slot is free again
	if f := c2.next(t); f.name != "status" {
		t.Fatalf("third stream: %+v; want the status", f)
	}
}

func TestStreamSendsAKeepaliveWhenIdle(t *testing.T) {
	r := newRig(t, Config{})
	c := openStream(t, r.srv.URL, nil)
	c.next(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := r.clock.BlockUntilContext(ctx, 3); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(KeepAlive)
	timeout := time.After(wait)
	for {
		select {
		case f := <-c.frames:
			if f.comment == "keepalive" {
				return
			}
		case <-timeout:
			t.Fatal("no keepalive comment")
		}
	}
}

// A stream must not outlive a logout: it ends after MaxAge, and the
// browser's reconnect goes through auth.Require again.
func TestStreamEndsAfterMaxAge(t *testing.T) {
	r := newRig(t, Config{})
	c := openStream(t, r.srv.URL, nil)
	c.next(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := r.clock.BlockUntilContext(ctx, 3); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(MaxAge)
	c.waitEnded(t)
	r.handlerReturned(t)
}
