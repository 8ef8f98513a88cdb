package av

import (
	"testing"
	"time"

	"onair/encoder/wire"
)

const frame30 = time.Second / 30

// A silent source must not silence capture on the wire: a heartbeat goes out
// every heartbeatEvery, and after noSignalFrames frame intervals it says
// "no signal" (before this, a pulled cable made onaird kill capture after
// stall_after and restart it with a backoff growing to 30 s).
func TestSilentSourceSendsNoSignalHeartbeats(t *testing.T) {
	var now int64 = 1e12
	l := newLiveness(frame30, now)
	l.frame(now)
	l.sent(wire.Progress{Index: 41, Frames: 7, Source: wire.SourceLive}, now)
	if _, due, _ := l.heartbeat(now + int64(heartbeatEvery) - 1); due {
		t.Fatal("heartbeat due before heartbeatEvery of silence on the wire")
	}
	var beats []wire.Progress
	lostAt := int64(-1)
	for ts := now; ts <= now+int64(2*time.Second); ts += int64(time.Millisecond) {
		p, due, lost := l.heartbeat(ts)
		if lost {
			if lostAt >= 0 {
				t.Fatal("signal declared lost twice")
			}
			lostAt = ts - now
		}
		if due {
			beats = append(beats, p)
		}
	}
	// Checked every millisecond: lost at the first millisecond past the limit.
	if want := int64(noSignalFrames * frame30); lostAt < want || lostAt >= want+int64(time.Millisecond) {
		t.Fatalf("signal lost after %v, want %d frame intervals (%v)", time.Duration(lostAt), noSignalFrames, time.Duration(want))
	}
	// One heartbeat every heartbeatEvery, plus the one announcing the loss.
	if n := len(beats); n < 20 || n > 21 {
		t.Fatalf("%d heartbeats in 2 s, want about one per %v", n, heartbeatEvery)
	}
	if beats[0].Source != wire.SourceLive {
		t.Fatalf("first heartbeat (100 ms silent) says %q, want live", beats[0].Source)
	}
	for _, p := range beats[2:] {
		if p.Source != wire.SourceNoSignal || p.Index != 41 || p.Frames != 7 || p.LastError == "" {
			t.Fatalf("heartbeat during signal loss: %+v", p)
		}
	}
	back, gap := l.frame(now + int64(2*time.Second))
	if !back || gap != 2*time.Second {
		t.Fatalf("frame after 2 s: back %v gap %v", back, gap)
	}
	p, due, _ := l.heartbeat(now + int64(2*time.Second) + int64(heartbeatEvery))
	if !due || p.Source != wire.SourceLive {
		t.Fatalf("heartbeat after the signal came back: %+v due %v", p, due)
	}
}

// While frames flow, each picture's Progress is the liveness: no heartbeat
// is added between them.
func TestNoHeartbeatWhileFramesFlow(t *testing.T) {
	var now int64 = 5e12
	l := newLiveness(frame30, now)
	for i := range 300 {
		ts := now + int64(i)*int64(frame30)
		l.frame(ts)
		l.sent(wire.Progress{Index: uint64(i)}, ts)
		if _, due, lost := l.heartbeat(ts + int64(frame30) - 1); due || lost {
			t.Fatalf("heartbeat at frame %d while frames flow", i)
		}
	}
}

// A burst after a pause (a peer catching up, a driver's queue) must not
// become a backlog: the writer gets the newest two frames, the older ones
// it did not take are dropped, and no frame is handed out twice.
func TestMailboxKeepsOnlyTheNewestFramesOfABurst(t *testing.T) {
	pool := []*int{new(int), new(int), new(int), new(int)}
	mb := newMailbox(pool[2:]...)
	work, cur := pool[0], pool[1]
	if _, _, ok, _ := mb.take(cur); ok {
		t.Fatal("take on an empty mailbox")
	}
	for n := 1; n <= 150; n++ { // the burst: 150 frames before the writer wakes
		*work = n
		work = mb.put(work, int64(n))
	}
	<-mb.notify
	var got []int
	for {
		f, arrival, ok, more := mb.take(cur)
		if !ok {
			break
		}
		if int64(*f) != arrival {
			t.Fatalf("frame %d handed out with the arrival of %d", *f, arrival)
		}
		got = append(got, *f)
		cur = f
		if !more {
			break
		}
	}
	if len(got) != 2 || got[0] != 149 || got[1] != 150 {
		t.Fatalf("took frames %v, want the newest two, [149 150]", got)
	}
	if _, _, ok, _ := mb.take(cur); ok {
		t.Fatal("a frame was handed out twice")
	}
	if d := mb.droppedFrames(); d != 148 {
		t.Fatalf("%d frames dropped, want 148", d)
	}
	// A pair arriving together is kept whole.
	*work = 151
	work = mb.put(work, 151)
	*work = 152
	work = mb.put(work, 152)
	a, _, _, _ := mb.take(cur)
	b, _, _, _ := mb.take(a)
	if *a != 151 || *b != 152 {
		t.Fatalf("pair handed out as %d, %d", *a, *b)
	}
	// Every frame has exactly one holder.
	seen := map[*int]bool{work: true, b: true}
	for _, f := range mb.free {
		seen[f] = true
	}
	if len(seen) != len(pool) {
		t.Fatalf("%d distinct frames held, want %d: a frame has two holders", len(seen), len(pool))
	}
}

// Arrival jitter at an index boundary put two pictures in one index and none
// in the next; the second was dropped and the keeper repeated a picture
// every few frames. The second now goes to the next index; a burst after a
// pause still starts at the current index, never at the missed ones.
func TestSecondArrivalInOneIndexTakesTheNextAndPauseResumesAtNow(t *testing.T) {
	cases := []struct {
		name      string
		now, next uint64
		idx       uint64
		ok        bool
	}{
		{"first picture", 100, 0, 100, true},
		{"on time", 100, 100, 100, true},
		{"after a hole", 103, 100, 103, true},
		{"second in one index", 100, 101, 101, true},
		{"two ahead", 100, 102, 0, false},
		{"back after a 5 s pause", 250, 101, 250, true},
	}
	for _, c := range cases {
		if idx, ok := liveIndex(c.now, c.next); idx != c.idx || ok != c.ok {
			t.Errorf("%s: liveIndex(%d, %d) = %d, %v; want %d, %v", c.name, c.now, c.next, idx, ok, c.idx, c.ok)
		}
	}
	// A jittery 30 fps source whose phase sits on the boundary fills every index.
	next, holes := uint64(0), 0
	for k := uint64(0); k < 300; k++ {
		now := 1000 + k
		if k%3 == 1 {
			now-- // arrived a millisecond early: still in the previous index
		}
		idx, ok := liveIndex(now, next)
		if !ok {
			t.Fatalf("frame %d dropped", k)
		}
		if next != 0 && idx > next {
			holes += int(idx - next)
		}
		next = idx + 1
	}
	if holes != 0 {
		t.Fatalf("%d holes for a source at the box rate with jitter", holes)
	}
}
