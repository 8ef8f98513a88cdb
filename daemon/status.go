package daemon

import (
	"onair/internal/version"
	"onair/output"
	"onair/supervisor"
	"onair/web/api"
)

// box is the daemon as the API sees it (web.Box).
type box struct{ d *Daemon }

// Status returns a snapshot of the whole box.
func (b box) Status() api.Status {
	d := b.d
	st := api.Status{Version: version.Version, Uptime: d.clock.Since(d.started).Seconds(), Output: d.out.Status(),
		Components: append(append(d.front.Status(), d.tail.Status()...), d.links.Status()...)}
	for _, c := range d.children {
		p, l := c.link.Progress(), c.link.Status()
		st.Children = append(st.Children, api.ChildStatus{ProcessStatus: c.sup.Status(),
			LastIndex: p.Index, LagFrames: p.LagFrames, Frames: p.Frames, Source: p.Source,
			Violations: l.Violations, LastViolation: l.LastViolation,
			Margin: p.Margin, MarginMin: p.MarginMin, MalformedMargins: l.MalformedMargins})
	}
	prog, tw := d.prog.Status(), d.twins.Status()
	st.Video = api.VideoStatus{Switch: d.sw.Status(), Keeper: d.keeper.Status(), RingHead: d.ring.Head(),
		BitrateKbps: tw.BitrateKbps, LatencyP50Ms: prog.LatencyP50Ms, LatencyP99Ms: prog.LatencyP99Ms,
		MuxErrors: prog.MuxErrors, TwinSkewMaxFrames: tw.SkewMaxFrames, HealthRestarts: tw.Restarts}
	if d.bond != nil {
		bs := d.bond.Status()
		bs.Bitrate = d.bitrateStatus(tw.BitrateKbps)
		st.Bond = &bs
	}
	st.Audio = d.audioStatus()
	st.OnAir = d.live.Status()
	if d.power != nil {
		ps := d.power.Status()
		st.Power = &ps
	}
	if d.panel != nil {
		ps := d.panel.Status()
		st.Panel = &ps
	}
	if d.thermal != nil {
		ts := d.thermal.Status()
		st.Thermal = &ts
	}
	if r := d.recorder(); r != nil {
		rs := r.Status()
		st.Recording = &rs
	}
	st.Page = d.pageStatus()
	st.Tunnel = d.tunnelStatus()
	if d.canary != nil {
		cs := d.canary.Status()
		st.Canary = &cs
	}
	st.Update = d.updateStatus()
	st.State = api.BoxOnAir
	switch {
	case st.OnAir.Phase == api.OnAirStopped:
		st.State = api.BoxStopped
	case st.Output.State != output.StateConnected:
		st.State = api.BoxOffAir
	case !st.Video.Switch.Locked && st.Video.Switch.Twins, st.Video.Keeper.Signal != "live":
		st.State = api.BoxDegraded
	}
	for _, c := range st.Audio.Chains {
		if c.State != api.AudioChainOK && st.State == api.BoxOnAir {
			st.State = api.BoxDegraded // an audio chain is down, stalled or silent
		}
	}
	for _, c := range st.Components {
		if c.State != supervisor.StateRunning && st.State == api.BoxOnAir {
			st.State = api.BoxDegraded // on air, but a part is down: say so
		}
	}
	return st
}

// FailoverVideo swaps the active encoder without a gap.
func (b box) FailoverVideo() (string, bool, error) {
	r, err := b.d.twins.Failover()
	return r.Target, r.Pending, err
}
