package daemon

import (
	"errors"
	"fmt"

	"onair/bond"
	"onair/bond/abr"
	"onair/bond/uplink"
	"onair/output"
	"onair/web"
	"onair/web/api"
)

// buildBond makes the bonding layer of an srtla:// output: the SRT caller
// then dials it on loopback and waits out a total outage of every uplink.
func (d *Daemon) buildBond(ocfg *output.Config) error {
	c := d.cfg
	if !c.Output.URL.SRTLA {
		return nil
	}
	specs := make([]uplink.Spec, len(c.Uplinks))
	for i, u := range c.Uplinks {
		specs[i] = uplink.Spec{Name: u.Name, Interface: u.Interface, Policy: u.Policy, CapBytes: u.CapBytes()}
	}
	b, err := bond.New(bond.Config{Receiver: c.Output.URL.Addr(), Uplinks: specs, OutageHold: c.Output.OutageHold.D()}, d.log.Named("bond"), d.clock)
	if err != nil {
		return fmt.Errorf("uplinks: %w", err)
	}
	d.bond = b
	ocfg.Dial = b.Dial()
	ocfg.PeerIdle = c.Output.OutageHold.D()
	return nil
}

// buildABR makes the adaptive bitrate when video.abr (default: on for
// srtla://) asks for it; it moves both twins at one frame index.
func (d *Daemon) buildABR() error {
	v := d.cfg.Video
	if !v.ABREnabled(d.cfg.Output.URL.SRTLA) {
		return nil
	}
	cfg := abr.Config{MinKbps: v.MinKbps(), MaxKbps: v.BitrateKbps, Latency: d.cfg.Output.URL.Latency}
	a, err := abr.New(cfg, abrSource{d}, d.twins, d.log.Named("abr"), d.clock)
	if err != nil {
		return fmt.Errorf("video.abr: %w", err)
	}
	d.abr = a
	return nil
}

// abrSource is what the adaptive bitrate reads: the SRT statistics and, when
// bonded, every SRTLA link.
type abrSource struct{ d *Daemon }

func (s abrSource) Sample() abr.Sample {
	st := s.d.out.Stats()
	smp := abr.Sample{Connected: st.Connected, RTTms: st.RTTms, SendBufMs: float64(st.SendBufMs), SendBufPkts: st.SendBufPkts,
		PktSent: st.PktSent, PktRetrans: st.PktRetrans, PktLoss: st.PktSendLoss, PktBytes: output.ChunkSize,
		SendRateKbps: st.SendRateMbps * 1048.576} // gosrt's Mbit is 1024² bit
	if s.d.bond != nil {
		smp.Links = s.d.bond.LinkSamples()
	}
	return smp
}

// bitrateStatus is the bitrate and who set it last.
func (d *Daemon) bitrateStatus(kbps int) api.BitrateStatus {
	if d.abr != nil {
		return d.abr.Status()
	}
	ceil, why := d.caps.Ceiling()
	if why == "" {
		why = "fixed (video.abr off)"
	}
	return api.BitrateStatus{Kbps: kbps, MinKbps: kbps, MaxKbps: ceil, Reason: why}
}

// ceilingSetter applies the ceiling of the caps: the adaptive bitrate's
// ceiling, or, with a fixed bitrate, both encoders at one frame index.
type ceilingSetter struct{ d *Daemon }

func (c ceilingSetter) SetCeiling(kbps int, why string) error {
	d := c.d
	if d.abr != nil {
		d.abr.SetCeiling(kbps, why)
		return nil
	}
	at, err := d.twins.SetBitrate(kbps)
	if err == nil {
		d.lastBitrateAt.Store(at)
	}
	return err
}

// SetVideoBitrate is the operator's bitrate: the adaptive bitrate's ceiling
// while it runs, else both encoders' bitrate at one frame index. A cap of
// load shedding in force keeps the bitrate lower until it is lifted; then
// the operator's value applies.
func (b box) SetVideoBitrate(kbps int) (api.BitrateResult, error) {
	d := b.d
	if kbps < 100 || kbps > d.cfg.Video.BitrateKbps {
		return api.BitrateResult{}, fmt.Errorf("daemon: bitrate %d kbps: must be 100..video.bitrate_kbps (%d)", kbps, d.cfg.Video.BitrateKbps)
	}
	before := d.lastBitrateAt.Load()
	if err := d.caps.SetOperator(kbps); err != nil {
		return api.BitrateResult{}, err
	}
	if ceil, _ := d.caps.Ceiling(); d.abr != nil || ceil != kbps {
		return api.BitrateResult{Result: api.BitrateCeiling, Kbps: kbps}, nil
	}
	at := d.lastBitrateAt.Load()
	if at == before {
		at = 0 // unchanged: nothing was sent to the encoders
	}
	return api.BitrateResult{Result: api.BitrateSet, AtIndex: at, Kbps: kbps}, nil
}

// SetUplink enables or disables one uplink of a bonded output.
func (b box) SetUplink(name string, enabled bool) (api.UplinkStatus, error) {
	if b.d.bond == nil {
		return api.UplinkStatus{}, fmt.Errorf("daemon: uplink %q: the output is not bonded (output.url is srt://): %w", name, web.ErrNotFound)
	}
	u, err := b.d.bond.SetEnabled(name, enabled)
	if errors.Is(err, bond.ErrUnknownUplink) {
		return u, fmt.Errorf("%w: %w", err, web.ErrNotFound)
	}
	return u, err
}
