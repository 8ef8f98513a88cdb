package encoder

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"onair/encoder/ring"
	"onair/web/api"
)

// KeeperConfig configures the cadence keeper.
type KeeperConfig struct {
	// LateFrames is how many frame durations capture may be late with an index
	// before the keeper substitutes it.
	LateFrames int
	// SlateAfter is how long the last picture is repeated before the slate replaces it.
	SlateAfter time.Duration
	// Caption is the slate's text.
	Caption string
}

// KeeperStatus is what the keeper has done, for the status API; the type
// lives in the API package so that clients share it.
type KeeperStatus = api.KeeperStatus

// Keeper is the one authority of the frame cadence (DESIGN.md, "Hitless twin
// encoders"): for every frame index it makes sure the ring holds a picture by
// the index's deadline (its due time plus LateFrames). If capture has not
// claimed the index by then, the keeper claims it and writes a repeat of the
// previous picture, or the slate once capture has been gone for SlateAfter.
// Because the substitute is decided once, in one place, both encoders see the
// same picture for every index and stay locked through capture failures.
type Keeper struct {
	r     *ring.Ring
	cfg   KeeperConfig
	log   *zap.Logger
	slate []byte
	black []byte
	prev  []byte
	// The clock, CLOCK_MONOTONIC ns like the ring's epoch: ring.MonotonicNs
	// and ring.SleepUntil, synthetic in tests.
	nowNs  func() int64
	sleep  func(ctx context.Context, untilNs int64) error
	mu     sync.Mutex
	st     KeeperStatus
	lastOK int64    // monotonic ns of the last live picture
	held   []uint64 // indexes claimed but unpublished at their deadline: reclaimed one frame later
}

// NewKeeper makes a keeper for r.
func NewKeeper(r *ring.Ring, cfg KeeperConfig, log *zap.Logger) (*Keeper, error) {
	if cfg.LateFrames < 1 {
		return nil, fmt.Errorf("encoder: keeper late frames %d < 1", cfg.LateFrames)
	}
	// An index is checked LateFrames after it is due; by then capture is at
	// that many indexes further on. From half the ring on, the keeper would
	// write into slots the encoders and capture need (and the old catch-up
	// rule skipped every deadline: no repeat, no slate, holes downstream).
	if half := r.Slots() / 2; cfg.LateFrames >= half {
		return nil, fmt.Errorf("encoder: keeper late frames %d must be below half the ring (%d of %d slots): raise ring slots or lower late frames",
			cfg.LateFrames, half, r.Slots())
	}
	if cfg.Caption == "" {
		cfg.Caption = "SIGNAL LOST"
	}
	g := r.Geometry()
	slate, err := Slate(g.Width, g.Height, cfg.Caption)
	if err != nil {
		return nil, err
	}
	return &Keeper{
		r: r, cfg: cfg, log: log, slate: slate, black: Black(g.Width, g.Height),
		prev: make([]byte, r.FrameSize()), nowNs: ring.MonotonicNs, sleep: ring.SleepUntil,
	}, nil
}

// Status is a snapshot of the keeper's counters.
func (k *Keeper) Status() KeeperStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.st
}

// Run keeps the cadence until ctx is done: it sleeps until each index's
// deadline and ensures it has a picture. After a late wake-up it catches up
// on every index still in the ring; only those the ring has moved past are
// skipped (counted as skipped_late).
func (k *Keeper) Run(ctx context.Context) error {
	late := time.Duration(k.cfg.LateFrames) * k.r.Geometry().FrameDuration()
	start := k.nowNs()
	k.lastOK = start
	next := k.r.IndexAt(start)
	for {
		deadline := k.r.TimeOf(next) + int64(late)
		if err := k.sleep(ctx, deadline); err != nil {
			return nil
		}
		// If onaird itself was starved (this loop woke late, many deadlines
		// passed), every index the ring still holds is filled, oldest first,
		// without sleeping: the encoders wait for them. Only an index whose
		// slot capture reuses within the next frame (the slot of cur+1-slots
		// is that of cur+1) is gone for good and skipped: writing it could
		// race capture for the slot.
		now := k.nowNs()
		if oldest := k.oldestHeld(now); next < oldest {
			skip := oldest - next
			k.log.Warn("[unexpected] keeper fell behind the ring, skipping indexes it no longer holds",
				zap.Uint64("from", next), zap.Uint64("frames", skip))
			k.mu.Lock()
			k.st.BehindFrames += skip
			k.mu.Unlock()
			next = oldest
		}
		k.ensure(next, now)
		next++
	}
}

// oldestHeld is the oldest index the keeper may still fill at time now: its
// slot is not due for a later index before the next frame.
func (k *Keeper) oldestHeld(now int64) uint64 {
	cur, slots := k.r.IndexAt(now), uint64(k.r.Slots())
	if cur+2 <= slots {
		return 0
	}
	return cur + 2 - slots
}

// ensure makes sure index i has a picture.
func (k *Keeper) ensure(i uint64, now int64) {
	k.reclaimHeld(i, now)
	published, claimed := k.r.State(i)
	if published {
		k.mu.Lock()
		defer k.mu.Unlock()
		// Flags only: the picture itself is read when a repeat needs it.
		if m, err := k.r.Meta(i); err == nil && m.Flags == 0 {
			k.st.Live++
			k.st.LastLiveIdx = i
			k.lastOK = now
			if k.st.Signal != "live" {
				if k.st.Signal != "" {
					k.log.Info("capture signal back", zap.Uint64("index", i))
				}
				k.st.Signal = "live"
			}
		}
		k.st.KeeperIndex = i
		return
	}
	if claimed {
		// Capture is writing it right now: give it one more frame (until the
		// keeper looks at a later index), then reclaimHeld fills it.
		k.held = append(k.held, i)
		return
	}
	buf, err := k.r.Claim(i)
	if errors.Is(err, ring.ErrClaimed) {
		return // capture won the race at the last moment: its picture stands
	}
	if err != nil {
		k.log.Error("[unexpected] keeper claim", zap.Uint64("index", i), zap.Error(err))
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	flags := k.substitute(i, now, buf)
	k.r.Publish(i, now, flags)
}

// substitute writes the picture that stands in for missed index i into buf
// (repeat, slate or black) and counts it. k.mu must be held.
func (k *Keeper) substitute(i uint64, now int64, buf []byte) ring.Flags {
	var flags ring.Flags
	gone := time.Duration(now - k.lastOK)
	switch {
	case gone >= k.cfg.SlateAfter:
		copy(buf, k.slate)
		flags = ring.FlagSlate
		k.st.Slates++
		if k.st.Signal != "slate" {
			k.log.Warn("capture gone: showing slate", zap.Uint64("index", i), zap.Duration("gone", gone))
			k.st.Signal = "slate"
		}
	case i > 0 && k.readPrev(i-1) == nil:
		copy(buf, k.prev)
		flags = ring.FlagRepeat
		k.st.Repeats++
		if k.st.Signal != "frozen" {
			k.log.Warn("capture late: repeating last picture", zap.Uint64("index", i))
			k.st.Signal = "frozen"
		}
	default:
		copy(buf, k.black)
		flags = ring.FlagBlack
		k.st.Blacks++
	}
	k.st.KeeperIndex = i
	return flags
}

// reclaimHeld fills every held index before i that is still claimed but
// unpublished: its writer (capture killed between Claim and Publish) had its
// frame of grace, and the encoders must never wait on it.
func (k *Keeper) reclaimHeld(i uint64, now int64) {
	keep := k.held[:0]
	for _, h := range k.held {
		if h >= i {
			keep = append(keep, h)
			continue
		}
		if k.r.Reclaim(h, func(buf []byte) (int64, ring.Flags) {
			k.mu.Lock()
			defer k.mu.Unlock()
			k.st.Reclaimed++
			return now, k.substitute(h, now, buf)
		}) {
			k.log.Warn("capture claimed an index and never published it: keeper filled it", zap.Uint64("index", h))
		}
	}
	k.held = keep
}

func (k *Keeper) readPrev(i uint64) error {
	_, err := k.r.Read(i, k.prev)
	return err
}
