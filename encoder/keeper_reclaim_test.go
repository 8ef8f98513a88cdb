package encoder

import (
	"bytes"
	"context"
	"testing"
	"time"

	"onair/encoder/ring"
)

// A capture killed between Claim and Publish used to leave its index
// "claimed" for good: the keeper deferred to it and moved on, and both
// encoders waited on that index forever. The keeper (on synthetic time) must
// fill it one frame after its deadline, and a reader waiting on it must get
// the substitute.
func TestKeeperFillsIndexClaimedButNeverPublished(t *testing.T) {
	g := ring.Geometry{Width: 32, Height: 32, FPSNum: 100, FPSDen: 1} // 10 ms frames
	const lateFrames = 2
	r, k := keeperOn(t, g, 64, 0, KeeperConfig{LateFrames: lateFrames, SlateAfter: time.Hour})
	frame := int64(g.FrameDuration())
	start := 100 * frame
	const abandoned uint64 = 110 // capture claims it, then dies before Publish

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now, delivered := start, r.IndexAt(start)
	var publishedAt int64 = -1
	k.nowNs = func() int64 { return now }
	k.sleep = func(ctx context.Context, until int64) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		// what the keeper did at `now` is done: note when the index got its picture
		if pub, _ := r.State(abandoned); pub && publishedAt < 0 {
			publishedAt = now
		}
		if until > now {
			now = until
		}
		// capture delivers every index due by now, on time, except that it
		// claims `abandoned` and never publishes it.
		for ; r.TimeOf(delivered) <= now; delivered++ {
			buf, err := r.Claim(delivered)
			if err != nil {
				continue
			}
			if delivered == abandoned {
				continue
			}
			for j := range buf {
				buf[j] = byte(delivered)
			}
			r.Publish(delivered, now, 0)
		}
		if r.IndexAt(now) > abandoned+10 {
			cancel()
			return ctx.Err()
		}
		return nil
	}

	waited := make(chan error, 1)
	go func() { waited <- r.Wait(context.Background(), abandoned, time.Minute) }()
	if err := k.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("reader waiting on the abandoned index: %v (the encoders would hang)", err)
	}

	deadline := r.TimeOf(abandoned) + lateFrames*frame
	if publishedAt < deadline || publishedAt > deadline+frame {
		t.Fatalf("abandoned index filled at %d ns, want after its deadline %d and within one frame of grace", publishedAt, deadline)
	}
	dst := make([]byte, r.FrameSize())
	m, err := r.Read(abandoned, dst)
	if err != nil || m.Flags != ring.FlagRepeat || !bytes.Equal(dst, bytes.Repeat([]byte{byte(abandoned - 1)}, len(dst))) {
		t.Fatalf("abandoned index: %v flags %v first byte %d, want a repeat of %d", err, m.Flags, dst[0], abandoned-1)
	}
	if r.Publish(abandoned, now, 0) {
		t.Fatal("the dead claimer's late Publish overwrote the substitute")
	}
	for i := abandoned - 5; i < abandoned+8; i++ {
		if pub, _ := r.State(i); !pub {
			t.Fatalf("index %d has no picture", i)
		}
	}
	if st := k.Status(); st.Reclaimed != 1 || st.Repeats != 1 {
		t.Fatalf("status %+v: want 1 reclaimed, 1 repeat", st)
	}
}
