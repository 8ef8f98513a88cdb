package output

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"onair/supervisor"
)

// swallower is a loopback UDP port that reads every datagram and never
// answers: a dial to it hangs until gosrt's connect timeout.
type swallower struct {
	addr  string
	first chan struct{} // closed at the first datagram
	n     atomic.Int64
}

func startSwallower(t *testing.T) *swallower {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sw := &swallower{addr: c.LocalAddr().String(), first: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
			if sw.n.Add(1) == 1 {
				close(sw.first)
			}
		}
	}()
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		<-done
	})
	return sw
}

func (sw *swallower) waitFirst(t *testing.T) {
	t.Helper()
	select {
	case <-sw.first:
	case <-time.After(10 * time.Second):
		t.Fatal("no datagram reached the dial address")
	}
}

// gosrt's Dial ignores contexts; a stop during a dial to a peer that never
// answers must not wait out the (here 60 s) connect timeout.
func TestStopDuringDialReturnsAtOnce(t *testing.T) {
	sw := startSwallower(t)
	s, err := New(Config{Target: mustURL(t, "srt://"+sw.addr+"?connect_timeout=60000")}, zap.NewNop(), clockwork.NewRealClock())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	sw.waitFirst(t) // the handshake is out: Run is inside srt.Dial
	if st := s.Status().State; st != StateConnecting {
		t.Fatalf("state %s while the dial hangs, want connecting", st)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(15 * time.Second): // a bound, well below the 60 s the dial would take
		t.Fatal("Run did not return after cancel: it waits for the dial")
	}
	if st := s.Status().State; st != StateStopped {
		t.Errorf("state %s after Run, want stopped", st)
	}
}

// The UDP goes to Config.Dial, not to the peer named in the URL (a bonding
// layer's loopback port); the status shows both, never the passphrase.
func TestDialAddressIsWhereTheUDPGoes(t *testing.T) {
	sw := startSwallower(t)
	target := mustURL(t, "srt://studio.example.invalid:7001?passphrase=correct-horse-battery&streamid=cam1&connect_timeout=60000")
	s, err := New(Config{Target: target, Dial: sw.addr}, zap.NewNop(), clockwork.NewRealClock())
	if err != nil {
		t.Fatal(err)
	}
	stop := runSRT(t, s)
	sw.waitFirst(t)
	st := s.Status()
	if st.Dial != sw.addr || !strings.Contains(st.Target, "studio.example.invalid:7001") {
		t.Errorf("status dial %q target %q, want dial %q and the studio as target", st.Dial, st.Target, sw.addr)
	}
	if strings.Contains(fmt.Sprintf("%+v", st), "correct-horse-battery") {
		t.Errorf("status shows the passphrase: %+v", st)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
}

func TestNewRejectsBadDialAddress(t *testing.T) {
	for _, d := range []string{"127.0.0.1", ":9000", "127.0.0.1:0", "127.0.0.1:http", "127.0.0.1:70000"} {
		if _, err := New(Config{Target: mustURL(t, "srt://127.0.0.1:9"), Dial: d}, nil, nil); err == nil {
			t.Errorf("Dial %q accepted", d)
		}
	}
}

// Redials are paced by the supervisor's Backoff from Config, on the
// injected clock.
func TestRedialFollowsConfiguredBackoff(t *testing.T) {
	sw := startSwallower(t)
	core, logs := observer.New(zapcore.InfoLevel)
	fc := clockwork.NewFakeClock()
	s, err := New(Config{
		Target:  mustURL(t, "srt://"+sw.addr+"?connect_timeout=100"),
		Backoff: supervisor.Backoff{Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond},
	}, zap.New(core), fc)
	if err != nil {
		t.Fatal(err)
	}
	runSRT(t, s)
	for i, want := range []time.Duration{100, 200, 400, 400} {
		want *= time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := fc.BlockUntilContext(ctx, 1) // in backoff, after the (real-time) dial timeout
		cancel()
		if err != nil {
			t.Fatalf("failure %d: no backoff timer: %v", i+1, err)
		}
		entries := logs.FilterMessage("srt connect failed").All()
		if len(entries) != i+1 {
			t.Fatalf("failure %d: %d failures logged", i+1, len(entries))
		}
		if got := entries[i].ContextMap()["backoff"]; got != want {
			t.Errorf("failure %d: backoff %v, want %s", i+1, got, want)
		}
		if st := s.Status().State; st != StateBackoff {
			t.Errorf("failure %d: state %s, want backoff", i+1, st)
		}
		fc.Advance(want)
	}
}

// A bonding layer sits behind a loopback port: the session (passphrase,
// streamid, latency) is the studio's, end to end, and bytes arrive
// identical. Stats shows the connection.
func TestDialThroughRelayKeepsSessionEndToEnd(t *testing.T) {
	needSLT(t)
	port := freeUDPPort(t)
	r := startReceiver(t, port, "&passphrase="+pass, filepath.Join(t.TempDir(), "out.ts"))
	rl := startRelay(t, port)
	target := mustURL(t, fmt.Sprintf("srt://127.0.0.1:%d?latency=200&passphrase=%s&streamid=cam1", port, pass))
	s, err := New(Config{Target: target, Dial: fmt.Sprintf("127.0.0.1:%d", rl.port)}, zap.NewNop(), clockwork.NewRealClock())
	if err != nil {
		t.Fatal(err)
	}
	var live Stats
	s.OnConnect(func() { live = s.Stats() })
	st := sendAndCompare(t, s, r, 2)
	if rl.dataPkts.Load() == 0 || rl.clearDataPkts.Load() != 0 {
		t.Errorf("relay saw %d data packets, %d unencrypted; want all of them, encrypted", rl.dataPkts.Load(), rl.clearDataPkts.Load())
	}
	if !live.Connected || live.Session != 1 {
		t.Errorf("Stats at connect %+v, want connected session 1", live)
	}
	after := s.Stats()
	if after.Connected || after.Session != 1 || after.PktSent == 0 || after.PktSent < uint64(st.BytesSent/ChunkSize) {
		t.Errorf("Stats after stop %+v, want not connected, session 1, at least %d packets sent", after, st.BytesSent/ChunkSize)
	}
}
