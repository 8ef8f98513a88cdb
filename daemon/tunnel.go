package daemon

import (
	"context"
	"sync"

	"go.uber.org/zap"

	"onair/maintenance/tunnel"
	"onair/supervisor"
	"onair/web/api"
)

// tunnelSlot is the maintenance tunnel as the component last made it:
// tunnel.New runs at every start of the component, so a key file or
// known_hosts provisioned or fixed after boot is read at the next retry,
// without a restart of onaird.
type tunnelSlot struct {
	mu  sync.Mutex
	t   *tunnel.Tunnel
	err error // why the last New failed (t is then nil)
}

// buildTunnel adds the reverse SSH maintenance tunnel when
// maintenance.tunnel is set. A key file or known_hosts it cannot use is
// the component's error (shown in status, retried with backoff): remote
// maintenance failing never keeps the box off air.
func (d *Daemon) buildTunnel() error {
	c := d.cfg.Maintenance.Tunnel
	if !c.Configured() {
		return nil
	}
	return d.front.Add(supervisor.ComponentSpec{Name: "tunnel", Run: func(ctx context.Context) error {
		t, err := tunnel.New(c, tunnel.Deps{Log: d.log.Named("tunnel"), Clock: d.clock})
		d.tunnel.mu.Lock()
		d.tunnel.t, d.tunnel.err = t, err
		d.tunnel.mu.Unlock()
		if err != nil {
			d.log.Error("maintenance tunnel cannot start", zap.Error(err))
			return err
		}
		return t.Run(ctx)
	}, Backoff: d.backoff()})
}

// tunnelStatus is the tunnel's status, nil when none is configured.
func (d *Daemon) tunnelStatus() *api.TunnelStatus {
	c := d.cfg.Maintenance.Tunnel
	if !c.Configured() {
		return nil
	}
	d.tunnel.mu.Lock()
	t, err := d.tunnel.t, d.tunnel.err
	d.tunnel.mu.Unlock()
	if t == nil {
		st := &api.TunnelStatus{State: api.TunnelConnecting, Target: c.User + "@" + c.Host, RemotePort: c.RemotePort}
		if err != nil {
			st.State, st.LastError = api.TunnelRefused, err.Error()
		}
		return st
	}
	st := t.Status()
	return &st
}
