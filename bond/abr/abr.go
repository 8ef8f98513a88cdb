package abr

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/web/api"
)

// Source gives the controller its input. Sample is called once per
// Interval from Run's goroutine and must not block for long (output.SRT's
// Stats and the SRTLA sender's link table are both cheap).
type Source interface {
	Sample() Sample
}

// Bitrate applies a video bitrate. encoder.Twins implements it: both twins
// switch at the returned frame index. An error leaves the bitrate unknown;
// ABR retries on the next tick.
type Bitrate interface {
	SetBitrate(kbps int) (uint64, error)
}

// ErrNilDependency is returned by New for a nil Source or Bitrate.
var ErrNilDependency = errors.New("abr: nil dependency")

// ABR runs a Controller on a clock: it samples Source every Interval and
// applies the decisions to Bitrate.
type ABR struct {
	cfg   Config
	src   Source
	out   Bitrate
	log   *zap.Logger
	clock clockwork.Clock

	mu        sync.Mutex
	ctrl      *Controller
	applied   int // last bitrate the encoders accepted (0: none yet)
	pending   bool
	reason    string
	changedAt time.Time

	stepped func() // tests: called after every step
}

// New validates cfg and returns an ABR that has not touched the encoders
// yet. A nil log discards; a nil clock is the real one.
func New(cfg Config, src Source, out Bitrate, log *zap.Logger, clock clockwork.Clock) (*ABR, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil || out == nil {
		return nil, fmt.Errorf("%w: source and bitrate are required", ErrNilDependency)
	}
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	cfg = cfg.withDefaults()
	return &ABR{cfg: cfg, src: src, out: out, log: log, clock: clock, ctrl: NewController(cfg)}, nil
}

// Run applies the start bitrate at once, then samples every Interval until
// ctx is done. It returns nil on cancellation: a failing SetBitrate is
// logged and retried, never fatal (the stream goes on at the old rate).
func (a *ABR) Run(ctx context.Context) error {
	t := a.clock.NewTicker(a.cfg.Interval)
	defer t.Stop()
	a.step()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.Chan():
			a.step()
		}
	}
}

func (a *ABR) step() {
	if a.stepped != nil {
		defer a.stepped()
	}
	s := a.src.Sample()
	now := a.clock.Now()
	a.mu.Lock()
	d := a.ctrl.Update(now, s)
	if d.Changed {
		a.pending, a.reason = true, d.Reason
	}
	retry := a.pending
	a.mu.Unlock()
	if !retry {
		return
	}
	at, err := a.out.SetBitrate(d.Kbps)
	if err != nil {
		a.log.Warn("cannot set the video bitrate; retrying next tick", zap.Int("kbps", d.Kbps), zap.String("reason", d.Reason), zap.Error(err))
		return
	}
	a.mu.Lock()
	a.applied, a.pending, a.changedAt = d.Kbps, false, now
	a.mu.Unlock()
	a.log.Info("bitrate", zap.Int("kbps", d.Kbps), zap.String("reason", d.Reason), zap.Uint64("at_index", at),
		zap.Float64("send_buf_ms", s.SendBufMs), zap.Float64("rtt_ms", s.RTTms))
}

// SetMax sets the operator's cap (0: none), never above Config.MaxKbps nor
// below MinKbps. A lower cap is applied on the next tick.
func (a *ABR) SetMax(kbps int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ctrl.SetMax(kbps)
}

// SetCeiling is SetMax with the reason the bitrate shows when the ceiling
// pulls it down (load shedding: "shed: on battery").
func (a *ABR) SetCeiling(kbps int, why string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ctrl.SetCeiling(kbps, why)
}

// Status is the bitrate for the status API: Kbps is what the encoders last
// accepted (0 before the first), MaxKbps the current ceiling.
func (a *ABR) Status() api.BitrateStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	return api.BitrateStatus{
		Kbps:      a.applied,
		MinKbps:   a.cfg.MinKbps,
		MaxKbps:   a.ctrl.Ceiling(),
		ABR:       true,
		Reason:    a.reason,
		ChangedAt: a.changedAt,
	}
}
