package daemon

import (
	"context"
	"time"

	"onair/live"
	"onair/output"
	"onair/web/api"
)

// buildLive makes the on-air control over the programme and the output.
func (d *Daemon) buildLive() error {
	v := d.cfg.Video
	gop := time.Duration(float64(v.GOP) / v.FPS.Float() * float64(time.Second))
	// The output's own drain is bounded by 1 s + one latency + the
	// handshake's duration (at most 2 s) + 100 ms (output.SRT.End): this
	// bound lies beyond it, so the output, not this deadline, says how the
	// end went.
	drain := 4*time.Second + 2*d.cfg.Output.URL.Latency
	l, err := live.New(live.Config{AutoStart: d.cfg.OnAir.AutoStart, GOPDuration: gop, DrainTimeout: drain},
		d.prog, liveOutput{d.out}, d.log.Named("live"), d.clock)
	if err != nil {
		return err
	}
	d.live = l
	return nil
}

// liveOutput is the output as the on-air control sees it.
type liveOutput struct{ o *output.SRT }

func (l liveOutput) End(ctx context.Context) (drained, connected bool, err error) {
	r, err := l.o.End(ctx)
	return r.Drained, r.Connected, err
}

func (l liveOutput) Start() { l.o.Start() }

// SetOnAir goes live or stops the stream cleanly (the API's go live / stop).
func (b box) SetOnAir(ctx context.Context, on bool) (api.OnAirStatus, error) {
	if on {
		err := b.d.live.GoLive("operator")
		return b.d.live.Status(), err
	}
	_, err := b.d.live.Stop(ctx, "operator")
	return b.d.live.Status(), err
}
