package metrics

import "onair/web/api"

var (
	groupStates  = names(api.GroupUnregistered, api.GroupRegistering, api.GroupRegistered, api.GroupOutage)
	uplinkStates = names(api.UplinkAbsent, api.UplinkDown, api.UplinkRegistering, api.UplinkUp,
		api.UplinkDead, api.UplinkDisabled, api.UplinkCapped)
)

// bondMetrics are the bonding layer and its uplinks.
type bondMetrics struct {
	group, registrations, suppressed                *metric
	info, state, enabled, carrying, rtt, loss, thru *metric
	sent, capBytes, window, inFlight                *metric
}

func newBondMetrics(def define) bondMetrics {
	return bondMetrics{
		group:         def(gauge, "onair_bond_group_state", "The SRTLA group's registration with the receiver: 1 for the current state.", "state"),
		registrations: def(counter, "onair_bond_registrations_total", "SRTLA registrations that got a group."),
		suppressed:    def(counter, "onair_bond_suppressed_retransmits_total", "SRT retransmissions dropped because the same packet went out less than one round trip before."),

		info:     def(gauge, "onair_uplink_info", "Always 1; interface is the one the uplink matched (or its glob), policy how it carries the stream.", "uplink", "interface", "policy"),
		state:    def(gauge, "onair_uplink_state", "Where the uplink is: 1 for the current state.", "uplink", "state"),
		enabled:  def(gauge, "onair_uplink_enabled", "0 while the operator switched the uplink off.", "uplink"),
		carrying: def(gauge, "onair_uplink_carrying", "1 while the uplink carries stream bytes.", "uplink"),
		rtt:      def(gauge, "onair_uplink_rtt_seconds", "Round-trip time of the uplink's keepalives.", "uplink"),
		loss:     def(gauge, "onair_uplink_loss_ratio", "Share of the uplink's packets SRT reported lost, over the last few seconds.", "uplink"),
		thru:     def(gauge, "onair_uplink_throughput_bytes_per_second", "What the uplink carries now.", "uplink"),
		sent:     def(counter, "onair_uplink_sent_bytes_total", "Bytes sent on the uplink.", "uplink"),
		capBytes: def(gauge, "onair_uplink_cap_bytes", "The uplink's cap (cap_mb), in bytes; only for a capped uplink.", "uplink"),
		window:   def(gauge, "onair_uplink_window_packets", "The uplink's SRTLA window, in packets.", "uplink"),
		inFlight: def(gauge, "onair_uplink_in_flight_packets", "Packets sent on the uplink, not yet acknowledged.", "uplink"),
	}
}

func (m bondMetrics) collect(e emitter, b *api.BondStatus) {
	e.states(m.group, string(b.Group), groupStates)
	e.emit(m.registrations, float64(b.Registers))
	e.emit(m.suppressed, float64(b.RetransSuppressed))
	for _, u := range b.Uplinks {
		e.emit(m.info, 1, u.Name, u.Interface, string(u.Policy))
		e.states(m.state, string(u.State), uplinkStates, u.Name)
		e.flag(m.enabled, u.Enabled, u.Name)
		e.flag(m.carrying, u.Carrying, u.Name)
		e.emit(m.rtt, ms(u.RTTms), u.Name)
		e.emit(m.loss, pct(u.LossPct), u.Name)
		e.emit(m.thru, kbps(u.ThroughputKbps), u.Name)
		e.emit(m.sent, float64(u.BytesSent), u.Name)
		if u.CapBytes > 0 {
			e.emit(m.capBytes, float64(u.CapBytes), u.Name)
		}
		e.emit(m.window, float64(u.Window)/1000, u.Name) // the status has packets x 1000
		e.emit(m.inFlight, float64(u.InFlight), u.Name)
	}
}
