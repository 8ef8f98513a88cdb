package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"onair/web/api"
)

// The web page's figures of issue 12, and the recording's, from one box
// with twins streaming to onair-ingest, its page on api.listen behind a
// password set over the socket:
//
//   - page_sse_event_latency_p50_ms / _max_ms: from the return of POST
//     /api/failover/video (over the socket) to the video_failover event on
//     a stream (GET /api/stream, the page's session cookie) open all along,
//     over pageFailovers failovers, each once the twins are locked (the
//     events come from a diff of the status every events.WatchInterval,
//     100 ms: that is the bound);
//   - page_cpu_idle_pct and page_cpu_10_clients_pct: onaird's own CPU
//     (utime+stime of /proc/PID/stat, % of one core) over pageWindow with no
//     page open, then with 10 streams open; _extra_pct the difference;
//   - record_cpu_off_pct, record_cpu_on_pct, record_cpu_extra_pct: the same
//     with the recording (recording.dir, autostart false) stopped, then
//     started over the socket.
func runPage(work string) {
	if err := benchPage(filepath.Join(work, "page")); err != nil {
		fmt.Fprintln(os.Stderr, "bench: page:", err)
	}
}

const (
	pageFailovers = 10
	pageClients   = 10
	pageWindow    = 15 * time.Second
	pagePassword  = "bench the page 12"
)

func benchPage(dir string) error {
	recDir := filepath.Join(dir, "rec")
	if err := os.MkdirAll(recDir, 0o755); err != nil {
		return err
	}
	extra := fmt.Sprintf("recording:\n  dir: %q\n  segment: 10m\n  autostart: false\n", recDir)
	b, rx, _, err := powerBox(dir, extra)
	if err != nil {
		return err
	}
	defer stop(rx)
	defer stop(b.cmd)
	locked := func(st api.Status) bool { return st.Output.State == "connected" && st.Video.Switch.Locked }
	st := b.waitFor(30*time.Second, locked)
	if st.Page == nil || st.Page.Listen == "" {
		return fmt.Errorf("status has no page listener: %+v", st.Page)
	}
	base := "http://" + st.Page.Listen
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err = b.client.Passwd(ctx, pagePassword); err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	cookie, err := pageLogin(ctx, base, pagePassword)
	if err != nil {
		return err
	}

	// The event latency, on one stream open through every failover.
	s, err := openStream(ctx, base, cookie)
	if err != nil {
		return err
	}
	var took, posts []time.Duration
	for i := range pageFailovers {
		b.waitFor(20*time.Second, locked)
		// A random phase against events.WatchInterval (100 ms): a fixed
		// pause after a status poll would time every failover alike.
		time.Sleep(500*time.Millisecond + rand.N(100*time.Millisecond))
		s.drain()
		posted := time.Now()
		r, ferr := b.client.FailoverVideo(ctx)
		returned := time.Now()
		posts = append(posts, returned.Sub(posted))
		if ferr != nil {
			s.close()
			return fmt.Errorf("failover %d: %w", i, ferr)
		}
		if r.Result != api.FailoverSwitched {
			s.close()
			return fmt.Errorf("failover %d: %+v; want switched", i, r)
		}
		at, werr := s.waitEvent(api.EventVideoFailover, 5*time.Second)
		if werr != nil {
			s.close()
			return fmt.Errorf("failover %d: %w", i, werr)
		}
		took = append(took, at.Sub(returned))
	}
	s.close()
	fmt.Fprintf(os.Stderr, "bench: page: event after the POST's return %v; the POSTs took %v\n", took, posts)
	sorted := slices.Sorted(slices.Values(took))
	emit("page_sse_event_latency_p50_ms", ms(sorted[len(sorted)/2]), "ms")
	emit("page_sse_event_latency_max_ms", ms(sorted[len(sorted)-1]), "ms")

	// CPU without a page, then with pageClients pages open.
	pid := b.cmd.Process.Pid
	streams := func(n int) func(api.Status) bool {
		return func(st api.Status) bool { return st.Page != nil && st.Page.Streams == n }
	}
	b.waitFor(10*time.Second, streams(0))
	time.Sleep(2 * time.Second)
	idle, err := cpuPct(pid, pageWindow)
	if err != nil {
		return err
	}
	var open []*sseStream
	defer func() {
		for _, o := range open {
			o.close()
		}
	}()
	for range pageClients {
		o, oerr := openStream(ctx, base, cookie)
		if oerr != nil {
			return oerr
		}
		open = append(open, o)
	}
	b.waitFor(10*time.Second, streams(pageClients))
	time.Sleep(2 * time.Second)
	clients, err := cpuPct(pid, pageWindow)
	if err != nil {
		return err
	}
	var bytes int64
	for _, o := range open {
		bytes += o.bytes()
		o.close()
	}
	open = nil
	fmt.Fprintf(os.Stderr, "bench: page: %d streams took %d KiB in all\n", pageClients, bytes>>10)
	emit("page_cpu_idle_pct", idle, "%")
	emit("page_cpu_10_clients_pct", clients, "%")
	emit("page_cpu_10_clients_extra_pct", clients-idle, "%")

	// CPU with the recording stopped, then recording.
	b.waitFor(10*time.Second, streams(0))
	time.Sleep(2 * time.Second)
	off, err := cpuPct(pid, pageWindow)
	if err != nil {
		return err
	}
	if _, err = b.client.SetRecording(ctx, true); err != nil {
		return fmt.Errorf("recording start: %w", err)
	}
	b.waitFor(10*time.Second, func(st api.Status) bool {
		return st.Recording != nil && st.Recording.State == api.RecordingRecording
	})
	time.Sleep(2 * time.Second)
	on, err := cpuPct(pid, pageWindow)
	if err != nil {
		return err
	}
	rec, err := b.client.SetRecording(ctx, false)
	if err != nil {
		return fmt.Errorf("recording stop: %w", err)
	}
	fmt.Fprintf(os.Stderr, "bench: page: recording %s, %d segments, %d MiB\n", rec.State, rec.Segments, rec.Bytes>>20)
	emit("record_cpu_off_pct", off, "%")
	emit("record_cpu_on_pct", on, "%")
	emit("record_cpu_extra_pct", on-off, "%")
	return nil
}

// pageLogin logs in as the page does (GET /api/session for the
// pre-session cookie and CSRF token, POST /api/login) and returns the
// session's Cookie header.
func pageLogin(ctx context.Context, base, password string) (string, error) {
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	call := func(method, path, cookie, csrf, body string) (*http.Response, map[string]any, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			return nil, nil, err
		}
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		if csrf != "" {
			req.Header.Set(api.CSRFHeader, csrf)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer func() { _ = resp.Body.Close() }() // read to the end below
		var m map[string]any
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, nil, err
		}
		_ = json.Unmarshal(raw, &m) // a non-JSON answer shows in the error below
		if resp.StatusCode != http.StatusOK {
			return nil, nil, fmt.Errorf("%s %s: %s %s", method, path, resp.Status, raw)
		}
		return resp, m, nil
	}
	resp, m, err := call(http.MethodGet, api.PathSession, "", "", "")
	if err != nil {
		return "", err
	}
	var pre []string
	for _, c := range resp.Cookies() {
		pre = append(pre, c.Name+"="+c.Value)
	}
	csrf, _ := m["csrf_token"].(string)
	body, err := json.Marshal(map[string]string{"password": password})
	if err != nil {
		return "", err
	}
	resp, _, err = call(http.MethodPost, api.PathLogin, strings.Join(pre, "; "), csrf, string(body))
	if err != nil {
		return "", err
	}
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-onair_session" { // web/auth.SessionCookie
			return c.Name + "=" + c.Value, nil
		}
	}
	return "", errors.New("login: no session cookie")
}

// sseStream is one open GET /api/stream, read by a goroutine: the event
// events go to events with the time their last line arrived; status and
// log events are only counted.
type sseStream struct {
	resp   *http.Response
	cancel context.CancelFunc
	events chan sseEvent
	n      chan int64 // the bytes read, once the reader ended
	total  int64
}

type sseEvent struct {
	ev api.Event
	at time.Time
}

func openStream(ctx context.Context, base, cookie string) (*sseStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+api.PathStream, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		_ = resp.Body.Close() // refused: nothing to read
		cancel()
		return nil, fmt.Errorf("stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{resp: resp, cancel: cancel, events: make(chan sseEvent, 256), n: make(chan int64, 1)}
	go s.read()
	return s, nil
}

func (s *sseStream) read() {
	var n int64
	defer func() { s.n <- n; close(s.events) }()
	r := bufio.NewReaderSize(s.resp.Body, 64<<10)
	kind := ""
	var data strings.Builder
	for {
		line, err := r.ReadString('\n')
		n += int64(len(line))
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if kind == "event" {
				var ev api.Event
				if json.Unmarshal([]byte(data.String()), &ev) == nil {
					select {
					case s.events <- sseEvent{ev: ev, at: time.Now()}:
					default: // nobody is measuring: dropped
					}
				}
			}
			kind = ""
			data.Reset()
		case strings.HasPrefix(line, "event:"):
			kind = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
}

// drain forgets the events read so far (the replay, earlier failovers).
func (s *sseStream) drain() {
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// waitEvent returns when the next event of kind arrived.
func (s *sseStream) waitEvent(kind api.EventKind, limit time.Duration) (time.Time, error) {
	deadline := time.After(limit)
	for {
		select {
		case e, ok := <-s.events:
			if !ok {
				return time.Time{}, errors.New("stream ended")
			}
			if e.ev.Kind == kind {
				return e.at, nil
			}
		case <-deadline:
			return time.Time{}, fmt.Errorf("no %s event on the stream within %s", kind, limit)
		}
	}
}

// close ends the stream and waits for its reader.
func (s *sseStream) close() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	_ = s.resp.Body.Close() // the reader's error is the end it waits for
	s.total = <-s.n
	s.cancel = nil
}

// bytes is what the stream read; it ends the stream.
func (s *sseStream) bytes() int64 {
	s.close()
	return s.total
}

// cpuPct is pid's own CPU (utime+stime) over d, in % of one core.
func cpuPct(pid int, d time.Duration) (float64, error) {
	t0, err := procTicks(pid)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	time.Sleep(d)
	t1, err := procTicks(pid)
	if err != nil {
		return 0, err
	}
	const hz = 100 // USER_HZ: the unit of /proc/PID/stat's times on Linux
	return float64(t1-t0) / hz / time.Since(start).Seconds() * 100, nil
}

func procTicks(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, err
	}
	stime, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, err
	}
	return utime + stime, nil
}
