package encoder

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/encoder/link"
	"onair/encoder/wire"
)

// fakeEncoder is an encoder child as the twin control sees it.
type fakeEncoder struct {
	name  string
	mu    sync.Mutex
	hello *wire.Hello
	last  uint64
	cmds  []wire.Command
	rests []string
}

func (e *fakeEncoder) Name() string { return e.name }
func (e *fakeEncoder) Hello() (wire.Hello, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.hello == nil {
		return wire.Hello{}, false
	}
	return *e.hello, true
}
func (e *fakeEncoder) LastVideo() uint64 { e.mu.Lock(); defer e.mu.Unlock(); return e.last }
func (e *fakeEncoder) Send(_ wire.Header, c wire.Command) error {
	e.mu.Lock()
	e.cmds = append(e.cmds, c)
	e.mu.Unlock()
	return nil
}
func (e *fakeEncoder) Restart(why string) { e.mu.Lock(); e.rests = append(e.rests, why); e.mu.Unlock() }

type sinkRec struct{ idx []uint64 }

func (s *sinkRec) WriteVideo(i uint64, _ bool, _ int64, _ []byte) { s.idx = append(s.idx, i) }

type nopProc struct{}

func (nopProc) Progress(uint64)        {}
func (nopProc) Restart(uint64, string) {}
func (nopProc) Fail(uint64, string)    {}

type twinRig struct {
	tw    *Twins
	sw    *Switch
	encs  [2]*fakeEncoder
	links [2]*link.Link
	sink  *sinkRec
	head  atomic.Uint64 // the ring head: set by the test, read by Run's checks
	q     *link.Queue
}

func newTwinRig(t *testing.T) *twinRig {
	t.Helper()
	r := &twinRig{sink: &sinkRec{}, q: link.NewQueue(64, 1<<20)}
	var err error
	if r.sw, err = NewSwitch([]string{"encoder-a", "encoder-b"}, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	var encs []Encoder
	for i, n := range []string{"encoder-a", "encoder-b"} {
		r.encs[i] = &fakeEncoder{name: n}
		encs = append(encs, r.encs[i])
		if r.links[i], err = link.New(link.Config{Name: n, Role: link.RoleEncode, Slot: i}, nopProc{}, func(link.Msg) {}, nil); err != nil {
			t.Fatal(err)
		}
	}
	cfg := TwinsConfig{GOP: 4, FPSNum: 30, FPSDen: 1, Relock: RelockGOP, BitrateKbps: 4000,
		StallAfter: 500 * time.Millisecond, HangAfter: 200 * time.Millisecond}
	if r.tw, err = NewTwins(cfg, r.sw, encs, r.head.Load, r.sink, r.q, nil, clockwork.NewFakeClock()); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *twinRig) start(slot int, seq, start uint64) {
	r.encs[slot].hello = &wire.Hello{StartIndex: start}
	r.tw.handle(link.Msg{From: r.links[slot], Seq: seq, Ev: link.EvStarted, H: wire.Header{Index: start}})
}

func (r *twinRig) packet(slot int, seq, i uint64) {
	r.encs[slot].last = i + 1
	r.tw.handle(link.Msg{From: r.links[slot], Seq: seq, Ev: link.EvPacket,
		H: wire.Header{Kind: wire.KindVideo, Index: i, Flags: map[bool]wire.Flags{true: wire.FlagKey}[i%4 == 0]}, Data: bytes.Repeat([]byte{byte(i)}, 8)})
}

// locked starts both twins and feeds identical packets 0..n-1 from both,
// with the re-lock scheduled in between, so the twins are locked.
func (r *twinRig) locked(t *testing.T, n uint64) {
	t.Helper()
	r.start(0, 1, 0)
	r.start(1, 1, 0)
	r.tw.relock()
	for i := range n {
		r.head.Store(i + 1)
		r.packet(0, 1, i)
		r.packet(1, 1, i)
	}
	if !r.sw.Locked() {
		t.Fatalf("twins not locked after %d equal packets: %+v", n, r.sw.Status())
	}
}

// Found in review: a SIGSTOPped twin declared hung was killed a moment
// later, and what it flushed on SIGCONT in between was still trusted — the
// switch could emit it, lock onto it, or switch back to the dead encoder.
func TestHungTwinIsCountedDownBeforeAnythingItFlushesIsTrusted(t *testing.T) {
	r := newTwinRig(t)
	r.locked(t, 8)
	for i := uint64(8); i < 20; i++ { // B stops at 7: hung behind A
		r.head.Store(i + 1)
		r.packet(0, 1, i)
	}
	r.tw.health()
	if len(r.encs[1].rests) != 1 || len(r.encs[0].rests) != 0 {
		t.Fatalf("restarts A %v B %v, want B once", r.encs[0].rests, r.encs[1].rests)
	}
	if st := r.sw.Status(); st.Alive[1] {
		t.Fatal("hung twin still alive in the switch after its restart was decided")
	}
	emitted := len(r.sink.idx)
	for i := uint64(8); i < 30; i++ { // B resumes and flushes before the kill lands
		r.packet(1, 1, i)
	}
	if len(r.sink.idx) != emitted {
		t.Fatalf("flushed packets of the condemned instance were emitted: %v", r.sink.idx[emitted:])
	}
	if st := r.sw.Status(); st.Locked || st.Active != "encoder-a" {
		t.Fatalf("switch %+v: must stay on A, unlocked", st)
	}
	// its new instance is trusted again
	r.start(1, 2, 24)
	if st := r.sw.Status(); !st.Alive[1] {
		t.Fatal("new instance not alive")
	}
}

func TestRestartedTwinIsBroughtToTheRuntimeBitrate(t *testing.T) {
	r := newTwinRig(t)
	r.locked(t, 8)
	at, err := r.tw.SetBitrate(2500)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range r.encs {
		if len(e.cmds) != 1 || e.cmds[0].BitrateKbps != 2500 || e.cmds[0].AtIndex != at {
			t.Fatalf("%s commands %+v, want bitrate 2500 at %d", e.name, e.cmds, at)
		}
	}
	r.tw.handle(link.Msg{From: r.links[1], Seq: 1, Ev: link.EvEnded})
	r.start(1, 2, 40)
	c := r.encs[1].cmds
	if len(c) != 2 || c[1].Op != wire.OpBitrate || c[1].BitrateKbps != 2500 || c[1].AtIndex != 40 {
		t.Fatalf("restarted twin's commands %+v, want bitrate 2500 at its start index 40", c)
	}
}

func TestStaleInstanceTailIsNotOfferedAfterTheNewStart(t *testing.T) {
	r := newTwinRig(t)
	r.start(0, 1, 0)
	r.packet(0, 1, 0)
	r.start(0, 2, 1) // restarted; instance 1's tail arrives late
	r.packet(0, 1, 1)
	r.tw.handle(link.Msg{From: r.links[0], Seq: 1, Ev: link.EvEnded})
	if len(r.sink.idx) != 1 || !r.sw.Status().Alive[0] {
		t.Fatalf("emitted %v, alive %v: the old instance's tail or end was applied", r.sink.idx, r.sw.Status().Alive)
	}
}

func TestGOPRelockIsAtTheFirstBoundaryBothReachedFresh(t *testing.T) {
	r := newTwinRig(t)
	r.start(0, 1, 0)
	for i := range uint64(6) {
		r.packet(0, 1, i)
	}
	r.start(1, 1, 5) // B starts later, at 5: the first common fresh GOP is 8
	r.tw.relock()
	if st := r.sw.Status(); st.RelockAt == nil || *st.RelockAt != 8 {
		t.Fatalf("relock at %v, want 8", st.RelockAt)
	}
}

func TestRunDrainsTheQueueUntilItCloses(t *testing.T) {
	r := newTwinRig(t)
	go func() {
		r.q.Put(link.Msg{From: r.links[0], Seq: 1, Ev: link.EvStarted})
		for i := range uint64(5) {
			r.q.Put(link.Msg{From: r.links[0], Seq: 1, Ev: link.EvPacket, H: wire.Header{Kind: wire.KindVideo, Index: i, Flags: wire.FlagKey}, Data: []byte{byte(i)}})
		}
		r.q.Close()
	}()
	if err := r.tw.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(r.sink.idx) != 5 {
		t.Fatalf("emitted %v, want 0..4", r.sink.idx)
	}
	if now, _ := r.q.Bytes(); now != 0 {
		t.Fatalf("%d bytes never released", now)
	}
}

// Issue 14: the re-lock and health checks ran on a 20 ms ticker, 50
// wake-ups a second of onaird; they now follow the encoders' messages. The
// twins lock, and a twin that hangs is restarted on its twin's packets,
// with no tick at all (the fake clock never moves).
func TestChecksFollowTheMessagesWithoutATick(t *testing.T) {
	r := newTwinRig(t)
	done := make(chan error, 1)
	go func() { done <- r.tw.Run(context.Background()) }()
	start := func(slot int) {
		e := r.encs[slot]
		e.mu.Lock()
		e.hello = &wire.Hello{StartIndex: 0}
		e.mu.Unlock()
		r.q.Put(link.Msg{From: r.links[slot], Seq: 1, Ev: link.EvStarted})
	}
	packet := func(slot int, i uint64) {
		e := r.encs[slot]
		e.mu.Lock()
		e.last = i + 1
		e.mu.Unlock()
		r.q.Put(link.Msg{From: r.links[slot], Seq: 1, Ev: link.EvPacket,
			H: wire.Header{Kind: wire.KindVideo, Index: i, Flags: map[bool]wire.Flags{true: wire.FlagKey}[i%4 == 0]}, Data: bytes.Repeat([]byte{byte(i)}, 8)})
	}
	start(0)
	start(1)
	for i := range uint64(8) {
		r.head.Store(i + 1) // read by Run, maybe while it still checks the last message
		packet(0, i)
		packet(1, i)
	}
	for i := uint64(8); i < 20; i++ { // B hangs at 7
		r.head.Store(i + 1)
		packet(0, i)
	}
	r.q.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := r.sw.Status().Relocks; n == 0 {
		t.Error("the twins never locked without a tick")
	}
	r.encs[0].mu.Lock()
	defer r.encs[0].mu.Unlock()
	r.encs[1].mu.Lock()
	defer r.encs[1].mu.Unlock()
	if len(r.encs[1].rests) != 1 || len(r.encs[0].rests) != 0 {
		t.Fatalf("restarts A %v B %v, want B once (hung)", r.encs[0].rests, r.encs[1].rests)
	}
}
