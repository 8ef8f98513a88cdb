package output

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A stop from the panel or for power must not cut the tail of the show: End
// sends what is queued, waits for the receiver's acknowledgement and closes;
// the box then stays off air (no redial) until Start, which opens a new
// session (the muxer starts afresh with tables and an IDR).
func TestEndDeliversTheWholeTailThenStaysOffAirUntilStart(t *testing.T) {
	needSLT(t)
	port := freeUDPPort(t)
	r := startReceiver(t, port, "", filepath.Join(t.TempDir(), "out.ts"))
	s := newSRT(t, fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port))
	runSRT(t, s)
	waitFor(t, 5*time.Second, "connected", func() bool { return s.Status().State == StateConnected })
	p := newProducer()
	p.run(context.Background(), s, 60) // 2 s, with two 120 KB bursts, the last frame is a burst's tail
	for i := 60; i < 62; i++ {
		f := p.frame(i * 30) // two bursts right before the end: a queue to drain
		_, _ = s.Write(f)
		p.all.Write(f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := s.End(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Connected || !res.Drained {
		t.Errorf("End = %+v, want connected and drained", res)
	}
	st := s.Status()
	if st.State != StateIdle {
		t.Errorf("state after End %q, want %q", st.State, StateIdle)
	}
	if _, werr := s.Write(p.frame(1)); werr != nil || s.Status().BytesDropped == 0 {
		t.Errorf("a write after End was not dropped (err %v, dropped %d)", werr, s.Status().BytesDropped)
	}
	want := p.all.Bytes()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end) && r.size() < int64(len(want)/4096*4096); {
		time.Sleep(10 * time.Millisecond)
	}
	// Off air means off air: no dial while idle.
	time.Sleep(300 * time.Millisecond)
	if st := s.Status(); st.State != StateIdle || st.Connects != 1 {
		t.Errorf("while idle: state %q, connects %d, want idle and 1", st.State, st.Connects)
	}
	if res2, err2 := s.End(ctx); err2 != nil || res2.Connected {
		t.Errorf("a second End = %+v, %v, want at once and not connected", res2, err2)
	}
	r.interrupt(t)
	got, err := os.ReadFile(r.out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes, sent %d: the tail is not whole (first diff at %d)", len(got), len(want), firstDiff(got, want))
	}

	// Going live again: a new receiver, a new session.
	r2 := startReceiver(t, port, "", filepath.Join(t.TempDir(), "out2.ts"))
	s.Start()
	waitFor(t, 5*time.Second, "connected again", func() bool { return s.Status().State == StateConnected })
	if st := s.Status(); st.Connects != 2 || s.Session() != 2 {
		t.Errorf("after Start: connects %d, session %d, want 2, 2", st.Connects, s.Session())
	}
	_, _ = s.WriteSession(2, p.frame(3))
	waitFor(t, 3*time.Second, "bytes sent on the new session", func() bool { return s.Status().BytesSent > uint64(len(want)) })
	r2.interrupt(t)
}

// A crew may stop while the studio is unreachable: End must not wait for a
// dial that cannot succeed, and Run must not dial again until Start.
func TestEndWhileDialingReturnsAtOnceAndStopsRedialing(t *testing.T) {
	port := freeUDPPort(t) // nobody listens
	s := newSRT(t, fmt.Sprintf("srt://127.0.0.1:%d?latency=200&connect_timeout=3000", port))
	runSRT(t, s)
	waitFor(t, 3*time.Second, "dialling", func() bool { return s.Status().State == StateConnecting })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := s.End(ctx)
	if err != nil {
		t.Fatalf("End while dialling: %v (it waited for the dial)", err)
	}
	if res.Connected {
		t.Errorf("End = %+v, want not connected", res)
	}
	waitFor(t, 2*time.Second, "idle", func() bool { return s.Status().State == StateIdle })
}

// A box configured to start stopped dials nothing until Start.
func TestStartIdleDialsNothingUntilStart(t *testing.T) {
	port := freeUDPPort(t)
	s, err := New(Config{Target: mustURL(t, fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port)), StartIdle: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	runSRT(t, s)
	waitFor(t, 2*time.Second, "idle", func() bool { return s.Status().State == StateIdle })
	s.Start()
	waitFor(t, 2*time.Second, "dialling after Start", func() bool {
		st := s.Status().State
		return st == StateConnecting || st == StateBackoff
	})
}
