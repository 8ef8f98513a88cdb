package metrics

import "onair/web/api"

var (
	powerStates = names(api.PowerOnline, api.PowerOnBattery, api.PowerLowBattery, api.PowerForcedShutdown,
		api.PowerLost, api.PowerUnreachable, api.PowerEnding, api.PowerEnded)
	powerSources = names(api.SourceMains, api.SourceBattery, api.SourceUnknown)
)

// powerMetrics are the power (UPS, GPIO signals, policy) and the heat.
type powerMetrics struct {
	state, source, shedding, poweredOff, signal *metric
	upsReachable, charge, runtime               *metric
	tempC, warnC, hot, heatShedding, zoneC      *metric
}

func newPowerMetrics(def define) powerMetrics {
	return powerMetrics{
		state:      def(gauge, "onair_power_state", "Where the power policy is: 1 for the current state.", "state"),
		source:     def(gauge, "onair_power_source", "What the box runs on, as far as it can tell: 1 for the current source.", "source"),
		shedding:   def(gauge, "onair_power_shedding", "1 while the bitrate is capped for power."),
		poweredOff: def(gauge, "onair_power_off_requested", "1 once the power-off was asked for (it is, at most once)."),
		signal:     def(gauge, "onair_power_signal_active", "1 while the GPIO power input is asserted.", "signal", "line"),

		upsReachable: def(gauge, "onair_ups_reachable", "1 while upsd answers for the UPS.", "ups"),
		charge:       def(gauge, "onair_ups_battery_charge_ratio", "battery.charge, when the UPS reports it.", "ups"),
		runtime:      def(gauge, "onair_ups_battery_runtime_seconds", "battery.runtime, when the UPS reports it.", "ups"),

		tempC:        def(gauge, "onair_thermal_temperature_celsius", "The hottest thermal zone."),
		warnC:        def(gauge, "onair_thermal_warn_celsius", "The warning threshold (thermal.warn_c)."),
		hot:          def(gauge, "onair_thermal_hot", "1 while above the warning threshold (with hysteresis)."),
		heatShedding: def(gauge, "onair_thermal_shedding", "1 while the bitrate is capped for heat."),
		zoneC:        def(gauge, "onair_thermal_zone_temperature_celsius", "One thermal zone's temperature.", "zone", "type"),
	}
}

// collect sends the power part only when power is configured and the heat
// part only when a thermal zone was found.
func (m powerMetrics) collect(e emitter, p *api.PowerStatus, t *api.ThermalStatus) {
	if p != nil {
		e.states(m.state, string(p.State), powerStates)
		e.states(m.source, string(p.Source), powerSources)
		e.flag(m.shedding, p.Shedding)
		e.flag(m.poweredOff, p.PoweredOff)
		for _, s := range p.Signals {
			e.flag(m.signal, s.Active, s.Name, s.Line)
		}
		if u := p.UPS; u != nil {
			e.flag(m.upsReachable, u.Reachable, u.Name)
			if u.ChargePct >= 0 { // -1: not reported
				e.emit(m.charge, pct(u.ChargePct), u.Name)
			}
			if u.RuntimeS >= 0 {
				e.emit(m.runtime, u.RuntimeS, u.Name)
			}
		}
	}
	if t != nil {
		e.emit(m.tempC, t.MaxC)
		e.emit(m.warnC, t.WarnC)
		e.flag(m.hot, t.Hot)
		e.flag(m.heatShedding, t.Shedding)
		for _, z := range t.Zones {
			e.emit(m.zoneC, z.TempC, z.Name, z.Type)
		}
	}
}
