package link

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"onair/encoder/wire"
)

// fakeProc records what the link asked of the supervisor.
type fakeProc struct {
	mu       sync.Mutex
	progress map[uint64]int
	restarts map[uint64][]string
}

func newFakeProc() *fakeProc {
	return &fakeProc{progress: map[uint64]int{}, restarts: map[uint64][]string{}}
}

func (p *fakeProc) Progress(seq uint64)            { p.mu.Lock(); p.progress[seq]++; p.mu.Unlock() }
func (p *fakeProc) Fail(seq uint64, reason string) { p.Restart(seq, reason) }
func (p *fakeProc) Restart(seq uint64, reason string) {
	p.mu.Lock()
	p.restarts[seq] = append(p.restarts[seq], reason)
	p.mu.Unlock()
}

type collector struct {
	mu   sync.Mutex
	msgs []Msg
}

func (c *collector) deliver(m Msg) { c.mu.Lock(); c.msgs = append(c.msgs, m); c.mu.Unlock() }

func stream(t testing.TB, msgs ...func(w *wire.Writer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	w := wire.NewWriter(&b)
	for _, m := range msgs {
		if err := m(w); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func hello(start uint64) func(w *wire.Writer) error {
	return func(w *wire.Writer) error {
		return w.WriteJSON(wire.Header{Kind: wire.KindHello}, wire.Hello{Role: "encode", StartIndex: start})
	}
}

func pkt(k wire.Kind, index uint64, n int) func(w *wire.Writer) error {
	return func(w *wire.Writer) error {
		return w.Write(wire.Header{Kind: k, Index: index}, bytes.Repeat([]byte{1}, n))
	}
}

func newTestLink(t testing.TB, role Role, window func() (uint64, uint64)) (*Link, *fakeProc, *collector) {
	t.Helper()
	p, c := newFakeProc(), &collector{}
	l, err := New(Config{Name: "x", Role: role, Slot: 0, MaxVideo: 1 << 20, Window: window}, p, c.deliver, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return l, p, c
}

func run(l *Link, seq uint64, b []byte) {
	l.mu.Lock()
	l.seq = seq
	l.mu.Unlock()
	l.cur.Store(seq)
	l.read(seq, io.NopCloser(bytes.NewReader(b)))
}

func TestEncoderStreamIsDeliveredInOrderBetweenStartAndEnd(t *testing.T) {
	l, p, c := newTestLink(t, RoleEncode, nil)
	run(l, 7, stream(t, hello(10), pkt(wire.KindVideo, 10, 5), pkt(wire.KindVideo, 11, 5)))
	var evs []Event
	for _, m := range c.msgs {
		if m.Seq != 7 {
			t.Errorf("message tagged with instance %d, want 7", m.Seq)
		}
		evs = append(evs, m.Ev)
	}
	if want := []Event{EvStarted, EvPacket, EvPacket, EvEnded}; !equal(evs, want) {
		t.Fatalf("events %v, want %v", evs, want)
	}
	if c.msgs[0].H.Index != 10 || c.msgs[2].H.Index != 11 {
		t.Errorf("start %d, second packet %d", c.msgs[0].H.Index, c.msgs[2].H.Index)
	}
	if p.progress[7] != 3 || len(p.restarts) != 0 {
		t.Errorf("progress %v restarts %v", p.progress, p.restarts)
	}
	if l.LastVideo() != 12 {
		t.Errorf("LastVideo %d, want 12", l.LastVideo())
	}
}

// Found in review: a video message from the audio chain reached the switch
// with slot -1 and panicked onaird (index out of range).
func TestVideoFromTheAudioChainIsAViolationNotAPanic(t *testing.T) {
	l, p, c := newTestLink(t, RoleAudio, nil)
	run(l, 3, stream(t, pkt(wire.KindAudio, 1, 10), pkt(wire.KindVideo, 2, 10), pkt(wire.KindAudio, 3, 10)))
	if len(c.msgs) != 1 || c.msgs[0].H.Kind != wire.KindAudio {
		t.Fatalf("delivered %d messages, want only the first audio frame", len(c.msgs))
	}
	if len(p.restarts[3]) != 1 || l.Status().Violations != 1 {
		t.Fatalf("restarts %v violations %d, want one of each", p.restarts, l.Status().Violations)
	}
}

// Found in review: one video packet with a huge frame index made the switch
// treat every later (correct) index as an old copy: video frozen for good.
func TestHugeFrameIndexRestartsTheChildAndIsNeverDelivered(t *testing.T) {
	window := func() (uint64, uint64) { return 88, 112 }
	l, p, c := newTestLink(t, RoleEncode, window)
	run(l, 1, stream(t, hello(100), pkt(wire.KindVideo, 100, 4), pkt(wire.KindVideo, 1<<62, 4)))
	for _, m := range c.msgs {
		if m.Ev == EvPacket && m.H.Index != 100 {
			t.Fatalf("delivered index %d outside the window", m.H.Index)
		}
	}
	if len(p.restarts[1]) != 1 {
		t.Fatalf("restarts %v, want one", p.restarts)
	}
	if st := l.Status(); st.Violations != 1 || st.LastViolation == "" {
		t.Errorf("status %+v", st)
	}
}

func TestHelloWithAStartIndexOutsideTheWindowIsAViolation(t *testing.T) {
	l, p, _ := newTestLink(t, RoleEncode, func() (uint64, uint64) { return 0, 50 })
	run(l, 1, stream(t, hello(1000)))
	if len(p.restarts[1]) != 1 {
		t.Fatalf("restarts %v", p.restarts)
	}
}

func TestPayloadLimitsPerKind(t *testing.T) {
	for _, tc := range []struct {
		name string
		role Role
		msg  func(w *wire.Writer) error
	}{
		{"audio over one ADTS frame", RoleAudio, pkt(wire.KindAudio, 1, MaxAudio+1)},
		{"video over MaxVideo", RoleEncode, pkt(wire.KindVideo, 1, 1<<20+1)},
		{"progress over MaxJSON", RoleCapture, func(w *wire.Writer) error {
			return w.Write(wire.Header{Kind: wire.KindProgress}, bytes.Repeat([]byte(" "), MaxJSON+1))
		}},
		{"empty video", RoleEncode, pkt(wire.KindVideo, 1, 0)},
		{"audio levels only, no frame", RoleAudio, pkt(wire.KindAudio, 1, wire.AudioLevelsSize)},
		{"audio level not a number", RoleAudio, func(w *wire.Writer) error {
			nan := float32(math.NaN())
			return w.Write(wire.Header{Kind: wire.KindAudio, Index: 1}, wire.AppendAudio(nil, wire.AudioLevels{Peak: nan, RMS: 0.1}, []byte{0xff, 0xf1}))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, p, c := newTestLink(t, tc.role, nil)
			run(l, 1, stream(t, tc.msg))
			for _, m := range c.msgs {
				if m.Ev == EvPacket {
					t.Fatalf("oversized message delivered")
				}
			}
			if len(p.restarts[1]) != 1 || l.Status().Violations != 1 {
				t.Fatalf("restarts %v status %+v", p.restarts, l.Status())
			}
		})
	}
}

func TestCommandsFromAChildAreAViolation(t *testing.T) {
	l, p, _ := newTestLink(t, RoleEncode, nil)
	run(l, 1, stream(t, func(w *wire.Writer) error {
		return w.WriteJSON(wire.Header{Kind: wire.KindCommand}, wire.Command{Op: wire.OpStop})
	}))
	if len(p.restarts[1]) != 1 {
		t.Fatalf("restarts %v", p.restarts)
	}
}

func TestMalformedHelloIsAViolation(t *testing.T) {
	l, p, c := newTestLink(t, RoleEncode, nil)
	run(l, 1, stream(t, func(w *wire.Writer) error {
		return w.Write(wire.Header{Kind: wire.KindHello}, []byte("{not json"))
	}))
	if len(p.restarts[1]) != 1 {
		t.Fatalf("restarts %v", p.restarts)
	}
	if len(c.msgs) != 1 || c.msgs[0].Ev != EvEnded {
		t.Fatalf("messages %v, want only the end", c.msgs)
	}
}

// A child killed in the middle of a message ends its stream; that is not a
// broken contract and must not be counted as one.
func TestTruncatedMessageOfAKilledChildIsAnEndNotAViolation(t *testing.T) {
	l, p, _ := newTestLink(t, RoleEncode, nil)
	b := stream(t, hello(0), pkt(wire.KindVideo, 0, 100))
	run(l, 1, b[:len(b)-10])
	if len(p.restarts) != 0 || l.Status().Violations != 0 {
		t.Fatalf("restarts %v violations %d", p.restarts, l.Status().Violations)
	}
}

func TestProgressOfAnOldInstanceDoesNotReplaceTheCurrentOne(t *testing.T) {
	l, _, _ := newTestLink(t, RoleCapture, nil)
	l.mu.Lock()
	l.seq = 2
	l.mu.Unlock()
	b, _ := json.Marshal(wire.Progress{Index: 99})
	l.read(1, io.NopCloser(bytes.NewReader(stream(t, func(w *wire.Writer) error { return w.Write(wire.Header{Kind: wire.KindProgress}, b) }))))
	if got := l.Progress().Index; got != 0 {
		t.Fatalf("progress of instance 1 shown for instance 2: index %d", got)
	}
}

func TestQueueIsBoundedInBytes(t *testing.T) {
	q := NewQueue(100, 1000)
	big := Msg{Data: make([]byte, 600)}
	if !q.Put(big) {
		t.Fatal("put refused")
	}
	done := make(chan bool)
	go func() { done <- q.Put(big) }() // 1200 > 1000: must wait
	// Give a Put that does not wait every chance to get through (bounded:
	// this only turns a missing wait into a failure, it measures no speed).
	for range 50 {
		time.Sleep(time.Millisecond)
		if len(q.C()) > 1 {
			t.Fatal("second put did not wait for the budget")
		}
	}
	select {
	case <-done:
		t.Fatal("second put returned before the budget was released")
	default:
	}
	m := <-q.C()
	q.Release(m)
	if !<-done {
		t.Fatal("second put refused")
	}
	if now, peak := q.Bytes(); now != 600 || peak != 600 {
		t.Errorf("bytes now %d peak %d", now, peak)
	}
	// one message over the whole budget still passes an empty queue
	q.Release(<-q.C())
	if !q.Put(Msg{Data: make([]byte, 5000)}) {
		t.Fatal("oversized message refused on an empty queue")
	}
	q.Release(<-q.C())
	q.Close()
	if q.Put(big) {
		t.Fatal("put after close accepted")
	}
}

func equal(a, b []Event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Found in review: a SIGSTOPped encoder that was declared hung and restarted
// flushed its packets on SIGCONT, and they counted as its progress, so the
// health check judged the next instance by the old one's frames.
func TestPacketsOfARestartedInstanceDoNotCountAsItsProgress(t *testing.T) {
	l, _, _ := newTestLink(t, RoleEncode, nil)
	l.mu.Lock()
	l.seq = 1
	l.mu.Unlock()
	l.cur.Store(1)
	l.Restart("hung")
	l.read(1, io.NopCloser(bytes.NewReader(stream(t, hello(0), pkt(wire.KindVideo, 5, 4)))))
	if got := l.LastVideo(); got != 0 {
		t.Fatalf("LastVideo %d after the instance was condemned, want 0", got)
	}
}

// A heartbeat whose real-time margin is out of range keeps the rest of its
// figures: the margin is dropped and counted, the child is not restarted
// (the margin is for the crew; nothing onaird decides depends on it). A
// well-formed margin, and none at all (an older worker), pass as they are.
func TestMalformedMarginIsDroppedAndCountedNotAViolation(t *testing.T) {
	l, p, _ := newTestLink(t, RoleEncode, nil)
	beat := func(v wire.Progress) func(w *wire.Writer) error {
		return func(w *wire.Writer) error {
			return w.WriteJSON(wire.Header{Kind: wire.KindProgress, Index: v.Index}, v)
		}
	}
	run(l, 1, stream(t, hello(0), beat(wire.Progress{Index: 10, Frames: 11, Margin: 2.5, MarginMin: 2})))
	if got := l.Progress(); got.Margin != 2.5 || got.MarginMin != 2 {
		t.Fatalf("well-formed margin: got %v min %v", got.Margin, got.MarginMin)
	}
	run(l, 1, stream(t, hello(0), beat(wire.Progress{Index: 20, Frames: 21, Margin: 2, MarginMin: 3})))
	got := l.Progress()
	if got.Index != 20 || got.Frames != 21 || got.Margin != 0 || got.MarginMin != 0 {
		t.Fatalf("malformed margin (min above margin): progress %+v, want index 20, frames 21, no margin", got)
	}
	run(l, 1, stream(t, hello(0), func(w *wire.Writer) error {
		return w.Write(wire.Header{Kind: wire.KindProgress, Index: 30}, []byte(`{"index":30,"frames":31,"lag_frames":0}`))
	}))
	if got := l.Progress(); got.Index != 30 || got.Margin != 0 || got.CheckMargin() != nil {
		t.Fatalf("progress of an older worker: %+v", got)
	}
	st := l.Status()
	if st.MalformedMargins != 1 || st.Violations != 0 || len(p.restarts) != 0 {
		t.Fatalf("malformed margins %d, violations %d, restarts %v: want 1, 0, none", st.MalformedMargins, st.Violations, p.restarts)
	}
}
