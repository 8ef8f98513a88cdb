// Package live is the box's on-air control: go live, and stop with a clean
// end of the stream. A stop, from the crew (panel, page, onairctl) or from
// the power policy, ends the programme at the end of the current GOP (the
// receiver's TS decodes to its last frame, audio up to the same instant),
// then lets the output send what is queued, waits for the receiver to
// acknowledge it and closes the connection. The encoders, the audio chains
// and the uplinks keep running (warm), so going live again takes one
// connect and one GOP.
//
// Not for: deciding when to stop (the panel, the power policy and the
// operator do), muxing (tsmux.Programme) or sending (output.SRT); or powering
// off (package power does that after Stop returned).
package live

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/encoder/tsmux"
	"onair/web/api"
)

// Programme is the muxing stage (tsmux.Programme).
type Programme interface {
	// End ends the muxing at the end of the current GOP, or where it
	// stands when ctx is done first.
	End(ctx context.Context) tsmux.EndInfo
	// Resume starts the next output session afresh.
	Resume()
}

// Output is the sender (output.SRT through a small adapter).
type Output interface {
	// End sends what is queued, waits for the acknowledgement and closes;
	// connected is false when there was no connection.
	End(ctx context.Context) (drained, connected bool, err error)
	// Start dials again.
	Start()
}

// Config configures the control.
type Config struct {
	// AutoStart: the box goes live by itself at start (the default a crew
	// expects: power on, on air). False starts stopped.
	AutoStart bool
	// GOPDuration bounds the wait for the end of the GOP: a stop cuts where
	// it stands after two GOPs without a key frame (no video at all).
	GOPDuration time.Duration
	// DrainTimeout bounds the output's drain (its own linger is about 1 s
	// plus the SRT latency; this is the outer bound).
	DrainTimeout time.Duration
}

// Control is the on-air state of the box.
//
// Phases and their transitions:
//
//	live     -> stopping   Stop (operator, panel, power)
//	stopping -> stopped    the programme ended and the output closed
//	stopped  -> live       GoLive
//
// Stop while stopped returns the last end at once; GoLive while live does
// nothing; either waits for a stop under way to complete.
type Control struct {
	cfg   Config
	prog  Programme
	out   Output
	log   *zap.Logger
	clock clockwork.Clock

	op sync.Mutex // serialises GoLive and Stop

	mu sync.Mutex
	st api.OnAirStatus
}

// New builds the control in its start phase (live when AutoStart). The
// output must be built to match: idle at start unless AutoStart.
func New(cfg Config, prog Programme, out Output, log *zap.Logger, clock clockwork.Clock) (*Control, error) {
	if prog == nil || out == nil {
		return nil, errors.New("live: programme and output are required")
	}
	if cfg.GOPDuration <= 0 {
		return nil, fmt.Errorf("live: GOP duration %s", cfg.GOPDuration)
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	c := &Control{cfg: cfg, prog: prog, out: out, log: log, clock: clock}
	c.st = api.OnAirStatus{Phase: api.OnAirLive, Reason: "auto-start", Since: clock.Now()}
	if !cfg.AutoStart {
		c.st = api.OnAirStatus{Phase: api.OnAirStopped, Reason: "onair.autostart off: waiting for go live", Since: clock.Now()}
		prog.End(canceled()) // nothing muxed until GoLive
	}
	return c, nil
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// Status returns the on-air state.
func (c *Control) Status() api.OnAirStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	if st.LastEnd != nil {
		e := *st.LastEnd
		st.LastEnd = &e
	}
	return st
}

// Live reports whether the stream is wanted on air.
func (c *Control) Live() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Phase == api.OnAirLive
}

func (c *Control) set(phase api.OnAirPhase, reason string, end *api.StreamEnd) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.Phase, c.st.Reason, c.st.Since = phase, reason, c.clock.Now()
	if end != nil {
		c.st.LastEnd = end
	}
}

// GoLive puts the stream on air: the output dials and the programme starts
// at the next key frame. Live already: nothing happens.
func (c *Control) GoLive(reason string) error {
	c.op.Lock()
	defer c.op.Unlock()
	if c.Live() {
		return nil
	}
	c.prog.Resume()
	c.out.Start()
	c.set(api.OnAirLive, reason, nil)
	c.log.Info("going live", zap.String("reason", reason))
	return nil
}

// Stop ends the stream cleanly and keeps it off air until GoLive; it returns
// how the end went once the connection is closed. Already stopped: the last
// end, at once. ctx bounds the whole stop; when it is done the stream is cut
// where it stands and the output closed without waiting for the drain. The
// error is the output's (the stream is stopped either way); the end says
// what went wrong too.
func (c *Control) Stop(ctx context.Context, reason string) (api.StreamEnd, error) {
	c.op.Lock()
	defer c.op.Unlock()
	if st := c.Status(); st.Phase == api.OnAirStopped {
		if st.LastEnd != nil {
			return *st.LastEnd, nil
		}
		return api.StreamEnd{Reason: st.Reason}, nil
	}
	start := c.clock.Now()
	c.set(api.OnAirStopping, reason, nil)
	c.log.Info("stopping: ending the stream at the end of the GOP", zap.String("reason", reason))
	gopCtx, cancel := context.WithTimeout(ctx, 2*c.cfg.GOPDuration+time.Second)
	info := c.prog.End(gopCtx)
	cancel()
	drainCtx, cancel := context.WithTimeout(ctx, c.cfg.DrainTimeout)
	drained, connected, err := c.out.End(drainCtx)
	cancel()
	end := api.StreamEnd{Reason: reason, At: c.clock.Now(), LastIndex: info.LastIndex, Drained: drained && connected,
		TookMs: float64(c.clock.Since(start).Microseconds()) / 1000}
	switch {
	case err != nil:
		end.Error = err.Error()
	case !connected:
		end.Error = "the output was not connected: nothing to drain"
	case !drained:
		end.Error = "the receiver did not acknowledge the tail in time"
	}
	if !info.AtGOPEnd && end.Error == "" {
		end.Error = "cut before the end of the GOP (no key frame in time)"
	}
	c.set(api.OnAirStopped, reason, &end)
	c.log.Info("stream ended", zap.String("reason", reason), zap.Uint64("last_index", info.LastIndex),
		zap.Bool("at_gop_end", info.AtGOPEnd), zap.Bool("drained", end.Drained), zap.Float64("took_ms", end.TookMs), zap.String("error", end.Error))
	return end, err
}
