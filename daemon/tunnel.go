package daemon

import (
	"context"

	"go.uber.org/zap"

	"onair/maintenance/tunnel"
	"onair/supervisor"
	"onair/web/api"
)

// buildTunnel adds the reverse SSH maintenance tunnel when
// maintenance.tunnel is set. A key file or known_hosts it cannot use is
// the component's error (shown in status, retried with backoff): remote
// maintenance failing never keeps the box off air.
func (d *Daemon) buildTunnel() error {
	c := d.cfg.Maintenance.Tunnel
	if !c.Configured() {
		return nil
	}
	t, err := tunnel.New(c, tunnel.Deps{Log: d.log.Named("tunnel"), Clock: d.clock})
	if err != nil {
		d.tunnelErr = err
		d.log.Error("maintenance tunnel cannot start", zap.Error(err))
	}
	d.tunnel = t
	return d.front.Add(supervisor.ComponentSpec{Name: "tunnel", Run: func(ctx context.Context) error {
		if d.tunnel == nil {
			return d.tunnelErr
		}
		return d.tunnel.Run(ctx)
	}, Backoff: d.backoff()})
}

// tunnelStatus is the tunnel's status, nil when none is configured.
func (d *Daemon) tunnelStatus() *api.TunnelStatus {
	c := d.cfg.Maintenance.Tunnel
	if !c.Configured() {
		return nil
	}
	if d.tunnel == nil {
		return &api.TunnelStatus{State: api.TunnelRefused, Target: c.User + "@" + c.Host, RemotePort: c.RemotePort, LastError: d.tunnelErr.Error()}
	}
	st := d.tunnel.Status()
	return &st
}
