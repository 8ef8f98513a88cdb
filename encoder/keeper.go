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
	r      *ring.Ring
	cfg    KeeperConfig
	log    *zap.Logger
	slate  []byte
	black  []byte
	prev   []byte
	nowNs  func() int64
	sleep  func(ctx context.Context, untilNs int64) error
	mu     sync.Mutex
	st     KeeperStatus
	lastOK int64 // monotonic ns of the last live picture
}

// NewKeeper makes a keeper for r.
func NewKeeper(r *ring.Ring, cfg KeeperConfig, log *zap.Logger) (*Keeper, error) {
	if cfg.LateFrames < 1 {
		return nil, fmt.Errorf("encoder: keeper late frames %d < 1", cfg.LateFrames)
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

// Run keeps the cadence until ctx is done.
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
		// If onaird itself was starved, indexes older than the ring can hold are
		// gone for good: jump forward rather than write pictures nobody can read.
		now := k.nowNs()
		if cur := k.r.IndexAt(now); cur > next+uint64(k.r.Slots()/2) {
			skip := cur - uint64(k.cfg.LateFrames) - next
			k.log.Warn("[unexpected] keeper fell behind, skipping", zap.Uint64("from", next), zap.Uint64("frames", skip))
			k.mu.Lock()
			k.st.BehindFrames += skip
			k.mu.Unlock()
			next += skip
			continue
		}
		k.ensure(next, now)
		next++
	}
}

// ensure makes sure index i has a picture.
func (k *Keeper) ensure(i uint64, now int64) {
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
		// Capture is writing it right now: give it one more frame, then it is its.
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
	k.r.Publish(i, now, flags)
}

func (k *Keeper) readPrev(i uint64) error {
	_, err := k.r.Read(i, k.prev)
	return err
}
