package abr

import (
	"errors"
	"fmt"
	"time"

	"onair/web/api"
)

// ErrConfig reports an unusable Config (see Config.Validate).
var ErrConfig = errors.New("abr: bad config")

// DefaultInterval is the sample period when Config.Interval is zero.
const DefaultInterval = 100 * time.Millisecond

// DefaultPktBytes is the SRT payload of one packet (7 TS packets of 188
// bytes), used when Sample.PktBytes is zero.
const DefaultPktBytes = 1316

// Config is the controller's range and timing.
type Config struct {
	// MinKbps and MaxKbps bound the video bitrate (video.bitrate_min_kbps
	// and video.bitrate_kbps). The encoders accept 100..100000.
	MinKbps, MaxKbps int
	// StartKbps is the first bitrate; 0 means MaxKbps (see the package
	// comment for why the controller starts high).
	StartKbps int
	// Latency is the SRT latency: the emergency threshold is a third of it.
	Latency time.Duration
	// Interval is the sample period (default DefaultInterval, at most
	// 200 ms).
	Interval time.Duration
}

// Validate reports the first unusable field, wrapping ErrConfig.
func (c Config) Validate() error {
	switch {
	case c.MinKbps < 100 || c.MinKbps > 100000:
		return fmt.Errorf("%w: min_kbps %d: must be 100..100000", ErrConfig, c.MinKbps)
	case c.MaxKbps < c.MinKbps || c.MaxKbps > 100000:
		return fmt.Errorf("%w: max_kbps %d: must be min_kbps (%d)..100000", ErrConfig, c.MaxKbps, c.MinKbps)
	case c.StartKbps != 0 && (c.StartKbps < c.MinKbps || c.StartKbps > c.MaxKbps):
		return fmt.Errorf("%w: start_kbps %d: must be 0 or %d..%d", ErrConfig, c.StartKbps, c.MinKbps, c.MaxKbps)
	case c.Latency < 20*time.Millisecond:
		return fmt.Errorf("%w: latency %v: must be at least 20ms", ErrConfig, c.Latency)
	case c.Interval < 0 || c.Interval > 200*time.Millisecond:
		// the rate and growth windows (200 and 500 ms) need several samples
		return fmt.Errorf("%w: interval %v: must be 0 (default) or up to 200ms", ErrConfig, c.Interval)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.MinKbps < 100 {
		c.MinKbps = 100
	}
	if c.MaxKbps < c.MinKbps {
		c.MaxKbps = c.MinKbps
	}
	if c.StartKbps == 0 || c.StartKbps > c.MaxKbps || c.StartKbps < c.MinKbps {
		c.StartKbps = c.MaxKbps
	}
	if c.Latency <= 0 {
		c.Latency = 120 * time.Millisecond // SRT's default
	}
	return c
}

// Sample is what the controller reads each tick. The SRT fields map onto
// output.Stats: Connected, RTTms, SendBufMs, SendBufPkts, PktSent,
// PktRetrans, PktLoss = PktSendLoss, SendRateKbps = SendRateMbps·1048.576
// (gosrt's Mbit is 1024² bit). Cumulative counters belong to one SRT
// session (a counter going backwards is taken as a new session).
type Sample struct {
	// Connected is false while there is no SRT session: the controller
	// holds the bitrate and forgets its history.
	Connected bool
	// RTTms is SRT's smoothed RTT. It freezes while no ACK arrives, so the
	// controller uses it only for the status reason, never alone.
	RTTms float64
	// SendBufMs is the time span of the unacknowledged packets.
	SendBufMs float64
	// SendBufPkts is the number of unacknowledged packets.
	SendBufPkts uint64
	// PktSent, PktRetrans and PktLoss are cumulative: data packets sent
	// (retransmissions included), retransmitted, reported lost.
	PktSent, PktRetrans, PktLoss uint64
	// PktAcked is the cumulative number of packets acknowledged by the
	// receiver. Zero: derived as PktSent − PktRetrans − SendBufPkts. gosrt's
	// send buffer counts packets pushed and neither acknowledged nor dropped,
	// so this is exact up to the few ms of packets waiting for the sender's
	// next tick (a near-constant offset, gone in a rate) and the packets it
	// drops as too late (counted as delivered: only past the latency, long
	// after the emergency rule).
	PktAcked uint64
	// PktBytes is the payload of one data packet (0: DefaultPktBytes).
	PktBytes int
	// SendRateKbps is SRT's own send-rate estimate (updates about once a
	// second; shown in reasons only).
	SendRateKbps float64
	// Links are the SRTLA links (empty for a plain SRT output).
	Links []LinkSample
}

// LinkSample is one SRTLA link at the time of the sample.
type LinkSample struct {
	Name string
	// Alive: registered and heard from within the link timeout.
	Alive bool
	// Carrying: the scheduler gives it stream bytes (a backup link only
	// while engaged, a capped link never).
	Carrying bool
	// WindowPkts is the SRTLA window in packets (window/1000).
	WindowPkts float64
	// InFlight is the number of packets sent on it and not yet acknowledged.
	InFlight int
	// ThroughputKbps is what it sent over the last second or so.
	ThroughputKbps float64
	// RTTms and LossPct are the link's own round trip and loss.
	RTTms, LossPct float64
	// DeliveredPkts is cumulative: the data packets the receiver's SRTLA
	// ACKs named on this link (0: not known). Unlike SRT's ACK point it
	// does not wait behind holes, so its rate is what the link carries.
	DeliveredPkts uint64
}

// Decision is the controller's answer for one tick.
type Decision struct {
	// Kbps is the bitrate the encoders should run at (the previous one when
	// Changed is false).
	Kbps int
	// Reason says why the bitrate last changed.
	Reason string
	// Changed is true when Kbps differs from the last decision: apply it.
	Changed bool
}

// LinksFromUplinks converts the SRTLA sender's uplink status into link
// samples (Window is in packets × 1000 there). An uplink is alive while up
// or capped (registered and heard from), carrying as its status says.
func LinksFromUplinks(ups []api.UplinkStatus) []LinkSample {
	out := make([]LinkSample, 0, len(ups))
	for _, u := range ups {
		out = append(out, LinkSample{
			Name:           u.Name,
			Alive:          u.State == api.UplinkUp || u.State == api.UplinkCapped,
			Carrying:       u.Carrying,
			WindowPkts:     float64(u.Window) / 1000,
			InFlight:       u.InFlight,
			ThroughputKbps: u.ThroughputKbps,
			RTTms:          u.RTTms,
			LossPct:        u.LossPct,
		})
	}
	return out
}
