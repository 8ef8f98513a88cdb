package daemon

import (
	"errors"

	"onair/canary"
	"onair/supervisor"
	"onair/web/api"
)

// buildCanary adds the on-air canary of the encoder worker (twins only).
func (d *Daemon) buildCanary() error {
	if len(d.encoders) != 2 {
		return nil
	}
	c, err := canary.New(canary.Config{After: d.cfg.Update.CanaryAfter.D()}, canaryBox{d}, d.log.Named("canary"), d.clock)
	if err != nil {
		return err
	}
	d.canary = c
	return d.front.Add(supervisor.ComponentSpec{Name: "canary", Run: c.Run, Backoff: d.backoff()})
}

// canaryBox is the daemon as the canary sees it.
type canaryBox struct{ d *Daemon }

func (b canaryBox) Status() api.Status { return box(b).Status() }

func (b canaryBox) encoder(name string) *supervisor.Child {
	for _, c := range b.d.encoders {
		if c.sup.Status().Name == name {
			return c.sup
		}
	}
	return nil
}

func (b canaryBox) Worker(name string) string {
	if c := b.encoder(name); c != nil {
		return c.Path()
	}
	return ""
}

func (b canaryBox) SetWorker(name, path string) {
	if c := b.encoder(name); c != nil {
		c.SetPath(path)
	}
}

func (b canaryBox) RestartEncoder(name, reason string) {
	if c := b.encoder(name); c != nil {
		c.Restart(0, reason)
	}
}

func (b canaryBox) Failover() (string, bool, error) {
	r, err := b.d.twins.Failover()
	return r.Target, r.Pending, err
}

// StartCanary starts the on-air canary of a new encoder worker.
func (b box) StartCanary(worker string) (api.CanaryStatus, error) {
	if b.d.canary == nil {
		return api.CanaryStatus{}, errors.New("canary: needs twin encoders (video.twins)")
	}
	if err := b.d.canary.Start(worker); err != nil {
		return b.d.canary.Status(), err
	}
	return b.d.canary.Status(), nil
}
