package ring

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func newRing(t *testing.T, slots int) *Ring {
	t.Helper()
	r, err := Create(filepath.Join(t.TempDir(), "video.ring"), Geometry{Width: 64, Height: 32, FPSNum: 30, FPSDen: 1}, slots, MonotonicNs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func fill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}

func TestOpenSeesWhatCreateWrote(t *testing.T) {
	r := newRing(t, 4)
	o, err := Open(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cerr := o.Close(); cerr != nil {
			t.Error(cerr)
		}
	}()
	if o.Geometry() != r.Geometry() || o.EpochNs() != r.EpochNs() || o.FrameSize() != 64*32*3/2 {
		t.Fatalf("opened %+v epoch %d, created %+v epoch %d", o.Geometry(), o.EpochNs(), r.Geometry(), r.EpochNs())
	}
	buf, err := r.Claim(0)
	if err != nil {
		t.Fatal(err)
	}
	fill(buf, 7)
	r.Publish(0, 42, FlagRepeat)
	dst := make([]byte, o.FrameSize())
	m, err := o.Read(0, dst)
	if err != nil || m.CaptureNs != 42 || m.Flags != FlagRepeat || dst[100] != 7 {
		t.Fatalf("read back %+v %v %d", m, err, dst[100])
	}
}

// The cadence keeper and a late capture race for the same index: exactly one
// may win, or the twins could encode different pictures for one index.
func TestOnlyOneWriterWinsAnIndex(t *testing.T) {
	r := newRing(t, 8)
	for i := uint64(0); i < 200; i++ {
		var wins, losses int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := r.Claim(i)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins++
				} else if errors.Is(err, ErrClaimed) {
					losses++
				}
			}()
		}
		wg.Wait()
		if wins != 1 || losses != 3 {
			t.Fatalf("index %d: %d winners, %d losers", i, wins, losses)
		}
		r.Publish(i, 0, 0)
	}
}

func TestReaderLappedGetsErrOverwritten(t *testing.T) {
	r := newRing(t, 4)
	for i := uint64(0); i < 6; i++ {
		b, _ := r.Claim(i)
		fill(b, byte(i))
		r.Publish(i, 0, 0)
	}
	dst := make([]byte, r.FrameSize())
	if _, err := r.Read(1, dst); !errors.Is(err, ErrOverwritten) {
		t.Fatalf("index 1 after 6 publishes in 4 slots: %v", err)
	}
	if _, err := r.Read(9, dst); !errors.Is(err, ErrNotYet) {
		t.Fatalf("future index: %v", err)
	}
	if m, err := r.Read(5, dst); err != nil || dst[0] != 5 || m.Index != 5 {
		t.Fatalf("newest: %v %d", err, dst[0])
	}
	if _, err := r.Claim(1); !errors.Is(err, ErrClaimed) {
		t.Fatalf("claiming an index the ring moved past: %v", err)
	}
	if r.Head() != 6 {
		t.Fatalf("head %d", r.Head())
	}
}

func TestWaitWakesOnPublish(t *testing.T) {
	r := newRing(t, 4)
	done := make(chan error, 1)
	go func() { done <- r.Wait(context.Background(), 0, 5*time.Second) }()
	select {
	case err := <-done:
		t.Fatalf("Wait returned before publish: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	b, _ := r.Claim(0)
	fill(b, 1)
	r.Publish(0, 0, 0)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(context.Background(), 1, 10*time.Millisecond); !errors.Is(err, ErrNotYet) {
		t.Fatalf("timeout: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Wait(ctx, 1, time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// A reader copying a slot while a writer laps it must notice, never return a
// torn picture.
func TestConcurrentReadNeverTorn(t *testing.T) {
	r := newRing(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	writer := make(chan struct{})
	// The ring is unmapped at cleanup: the writer must be gone by then.
	defer func() { cancel(); <-writer }()
	go func() {
		defer close(writer)
		for i := uint64(0); ctx.Err() == nil; i++ {
			b, err := r.Claim(i)
			if err != nil {
				continue
			}
			fill(b, byte(i))
			r.Publish(i, int64(i), 0)
		}
	}()
	dst := make([]byte, r.FrameSize())
	good := 0
	for ctx.Err() == nil {
		h := r.Head()
		if h == 0 {
			continue
		}
		m, err := r.Read(h-1, dst)
		if err != nil {
			continue
		}
		for _, v := range dst {
			if v != byte(m.Index) {
				t.Fatalf("torn picture: index %d has byte %d", m.Index, v)
			}
		}
		good++
	}
	if good == 0 {
		t.Fatal("no successful read")
	}
}

func TestIndexTimeRoundTrip(t *testing.T) {
	r, err := Create(filepath.Join(t.TempDir(), "r"), Geometry{Width: 16, Height: 16, FPSNum: 30000, FPSDen: 1001}, 4, 1_000_000_000)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}()
	for _, i := range []uint64{0, 1, 29, 30, 1799, 107892} {
		if got := r.IndexAt(r.TimeOf(i)); got != i {
			t.Errorf("IndexAt(TimeOf(%d)) = %d", i, got)
		}
	}
}

func TestCreateRejectsOddSize(t *testing.T) {
	if _, err := Create(filepath.Join(t.TempDir(), "r"), Geometry{Width: 15, Height: 16, FPSNum: 30, FPSDen: 1}, 4, 0); err == nil {
		t.Fatal("odd width accepted")
	}
}

// A capture killed between Claim and Publish leaves its slot "writing" for
// good: Reclaim must publish a substitute there, wake a reader waiting on
// it, and the stale claimer (should it resume) must not publish over it.
func TestReclaimPublishesAnAbandonedClaim(t *testing.T) {
	r := newRing(t, 4)
	stale, err := r.Claim(2)
	if err != nil {
		t.Fatal(err)
	}
	if r.Reclaim(3, func([]byte) (int64, Flags) { t.Fatal("fill called for an unclaimed index"); return 0, 0 }) {
		t.Fatal("Reclaim took an index nobody claimed")
	}
	done := make(chan error, 1)
	go func() { done <- r.Wait(context.Background(), 2, time.Minute) }()
	if !r.Reclaim(2, func(buf []byte) (int64, Flags) { fill(buf, 9); return 77, FlagRepeat }) {
		t.Fatal("Reclaim refused an abandoned claim")
	}
	if err = <-done; err != nil {
		t.Fatalf("reader waiting on the abandoned index: %v", err)
	}
	_ = stale // the stale claimer resumes and tries to publish
	if r.Publish(2, 5, 0) {
		t.Fatal("the stale claimer published over the reclaimed slot")
	}
	m, err := r.Meta(2)
	if err != nil || m.CaptureNs != 77 || m.Flags != FlagRepeat {
		t.Fatalf("after the stale publish: %+v %v", m, err)
	}
	if r.Reclaim(2, func([]byte) (int64, Flags) { return 0, 0 }) {
		t.Fatal("Reclaim took a published index")
	}
	if r.Head() != 3 {
		t.Fatalf("head %d", r.Head())
	}
}

// The encoder hands libx264 the picture where it lies in the ring (View)
// and checks afterwards that nobody overwrote it (Intact): a reader lapped
// while its consumer copied the slot must learn that it read a torn picture.
func TestViewIsThePublishedPictureUntilTheRingLapsIt(t *testing.T) {
	r := newRing(t, 4)
	buf, err := r.Claim(5)
	if err != nil {
		t.Fatal(err)
	}
	fill(buf, 9)
	r.Publish(5, 77, FlagSlate)
	if _, _, err = r.View(6); !errors.Is(err, ErrNotYet) {
		t.Fatalf("view of an unpublished index: %v, want ErrNotYet", err)
	}
	m, pic, err := r.View(5)
	if err != nil || m.Index != 5 || m.CaptureNs != 77 || m.Flags != FlagSlate || len(pic) != r.FrameSize() || pic[0] != 9 || pic[len(pic)-1] != 9 {
		t.Fatalf("view %+v, %d bytes, %v", m, len(pic), err)
	}
	if !r.Intact(5) || r.Intact(4) || r.Intact(9) {
		t.Fatalf("intact 5 %v, 4 %v, 9 %v: want only the published index", r.Intact(5), r.Intact(4), r.Intact(9))
	}
	// Index 9 lands in 5's slot: the viewed bytes change under the reader.
	next, err := r.Claim(9)
	if err != nil {
		t.Fatal(err)
	}
	if r.Intact(5) {
		t.Fatal("index 5 still intact once 9 claimed its slot")
	}
	fill(next, 3)
	if pic[0] != 3 {
		t.Fatalf("the view is not the ring's own bytes: %d", pic[0])
	}
	r.Publish(9, 78, 0)
	if r.Intact(5) || !r.Intact(9) {
		t.Fatalf("after 9's publish: intact 5 %v, 9 %v", r.Intact(5), r.Intact(9))
	}
	if _, _, err := r.View(5); !errors.Is(err, ErrOverwritten) {
		t.Fatalf("view of a lapped index: %v, want ErrOverwritten", err)
	}
}
