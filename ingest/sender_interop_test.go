package ingest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	srt "github.com/datarhei/gosrt"
	"github.com/jonboulle/clockwork"

	"onair/bond/sender"
	"onair/internal/testutil"
	"onair/web/api"
)

// TestSRTLAWithOurSender: onair's own SRTLA sender (package bond/sender)
// bonds two links into onair-ingest's receiver; a gosrt caller with
// passphrase and stream id streams through both, one link is disabled
// halfway, and the stream arrives intact over one SRT session. The
// receiver counts nothing malformed, nothing rate-limited, and no refusal
// but the NGPs the sender's opening REG2 probes ask for (SRTLA.md §5).
func TestSRTLAWithOurSender(t *testing.T) {
	ts := readFile(t, sampleTS(t))
	const secret, sid = "onair-interop-secret", "#!::r=live/cam,m=publish"
	out := filepath.Join(t.TempDir(), "rec.ts")
	srv, _, stop := runServer(t, Config{SRTLA: "127.0.0.1:0", Passphrase: secret, StreamID: sid, OutFile: out,
		Latency: 1500 * time.Millisecond})
	port := srv.SRTLAAddrs()[0].(*net.UDPAddr).Port

	s, err := sender.New(sender.Config{Receiver: "127.0.0.1:" + strconv.Itoa(port)}, testutil.NilLogger(t).Named("sender"),
		clockwork.NewRealClock())
	if err != nil {
		t.Fatal(err)
	}
	s.SetLinks([]sender.Link{
		{Name: "a", Addr: netip.MustParseAddr("127.0.0.2"), Policy: api.PolicyBond},
		{Name: "b", Addr: netip.MustParseAddr("127.0.0.3"), Policy: api.PolicyBond},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if rerr := <-done; rerr != nil && !errors.Is(rerr, context.Canceled) {
			t.Errorf("sender: %v", rerr)
		}
	})
	<-s.Ready()
	deadline := time.Now().Add(10 * time.Second)
	for alive := 0; alive < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("links not alive: %+v; receiver %+v", s.Samples(), srv.Report().SRTLA)
		}
		time.Sleep(20 * time.Millisecond)
		alive = 0
		for _, sm := range s.Samples() {
			if sm.Alive {
				alive++
			}
		}
	}

	cfg := srt.DefaultConfig()
	cfg.Passphrase, cfg.StreamId, cfg.Latency, cfg.Logger = secret, sid, 1500*time.Millisecond, nil
	conn, err := srt.Dial("srt", s.LocalAddr().String(), cfg)
	if err != nil {
		t.Fatalf("dial through the sender: %v", err)
	}
	defer func() { _ = conn.Close() }()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	const chunk = 1316
	half := len(ts) / chunk / 2 * chunk
	var bHalf uint64
	for off := 0; off < len(ts); off += chunk {
		<-tick.C
		if off == half {
			bHalf = srv.Report().SRTLA.Groups[0].Links[1].Pkts
			if err := s.SetEnabled("b", false); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := conn.Write(ts[off:min(off+chunk, len(ts))]); err != nil {
			t.Fatalf("write at %d: %v (the session broke)", off, err)
		}
	}
	waitDelivered(t, func() int64 { return srv.Report().Transport.Bytes }, int64(len(ts)))
	st := srv.Report().SRTLA
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := readFile(t, out); !bytes.Equal(got, ts) {
		t.Fatalf("recording %d bytes differs from the %d sent", len(got), len(ts))
	}
	if r := srv.Report(); r.Connections != 1 || r.Sessions[0].StreamID != sid {
		t.Errorf("connections %d sessions %+v", r.Connections, r.Sessions)
	}
	c := st.Counters
	if len(st.Groups) != 1 || len(st.Groups[0].Links) != 2 || c.GroupsCreated != 1 || c.Registrations != 2 ||
		len(c.Malformed) != 0 || c.RateLimited != 0 || c.RegErrors[reasonNoGroupForTest] != sum(c.RegErrors) {
		t.Errorf("receiver %+v", st)
	}
	if bHalf == 0 {
		t.Errorf("link b carried nothing before it was disabled")
	}
	t.Logf("link a %d packets, link b %d (%d by half time)", st.Groups[0].Links[0].Pkts, st.Groups[0].Links[1].Pkts, bHalf)
}

// reasonNoGroupForTest is relay's REG_NGP reason key (Counters.RegErrors).
const reasonNoGroupForTest = "no_group"

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}
