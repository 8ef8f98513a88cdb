package metrics

import "onair/web/api"

var (
	audioModes       = names(api.AudioAuto, api.AudioMain, api.AudioBackup)
	audioChainStates = names(api.AudioChainDown, api.AudioChainStalled, api.AudioChainSilent, api.AudioChainOK)
)

// audioMetrics are the programme's audio and its chains.
type audioMetrics struct {
	mode, active, frames, gaps, dups, switches, filled, missing *metric
	state, peak, rms, healthy, drift, offset, delay             *metric
	received, played, late, dropped                             *metric
}

func newAudioMetrics(def define) audioMetrics {
	return audioMetrics{
		mode:     def(gauge, "onair_audio_mode", "The operator's choice of audio source: 1 for the current mode.", "mode"),
		active:   def(gauge, "onair_audio_active_chain", "1 for the chain the programme's audio comes from.", "chain"),
		frames:   def(counter, "onair_audio_frames_total", "Audio frames muxed."),
		gaps:     def(counter, "onair_audio_gap_frames_total", "Audio frame indexes never muxed."),
		dups:     def(counter, "onair_audio_duplicate_frames_total", "Audio frames at or before the last one muxed (dropped)."),
		switches: def(counter, "onair_audio_switches_total", "Changes of the active audio chain."),
		filled:   def(counter, "onair_audio_filled_frames_total", "Frames the inactive chain supplied because the active one had none in time."),
		missing:  def(counter, "onair_audio_missing_frames_total", "Audio frame indexes no chain delivered in time."),

		state:    def(gauge, "onair_audio_chain_state", "What the selector sees of the chain: 1 for the current state.", "chain", "state"),
		peak:     def(gauge, "onair_audio_chain_peak_dbfs", "The last frame's peak level, dBFS (-120: silence).", "chain"),
		rms:      def(gauge, "onair_audio_chain_rms_dbfs", "The last frame's RMS level, dBFS (-120: silence).", "chain"),
		healthy:  def(gauge, "onair_audio_chain_healthy_seconds", "How long the chain has delivered every frame in time and above silence.", "chain"),
		drift:    def(gauge, "onair_audio_chain_clock_drift_ratio", "The device's sample rate against the box clock, minus 1 (once measured).", "chain"),
		offset:   def(gauge, "onair_audio_chain_offset_seconds", "How far the chain's frames sit from the box clock.", "chain"),
		delay:    def(gauge, "onair_audio_chain_delay_seconds", "How long after its last sample was due the last frame reached the selector.", "chain"),
		received: def(counter, "onair_audio_chain_received_frames_total", "Frames received from the chain.", "chain"),
		played:   def(counter, "onair_audio_chain_played_frames_total", "Frames of the chain that went to the programme.", "chain"),
		late:     def(counter, "onair_audio_chain_late_frames_total", "Frames of the chain that came after their deadline.", "chain"),
		dropped:  def(counter, "onair_audio_chain_dropped_frames_total", "Frames of the chain refused (duplicate, out of order or too far ahead).", "chain"),
	}
}

// collect sends nothing when no chain is configured: the box has no audio.
func (m audioMetrics) collect(e emitter, a *api.AudioStatus) {
	if len(a.Chains) == 0 {
		return
	}
	e.states(m.mode, string(a.Mode), audioModes)
	e.emit(m.frames, float64(a.Frames))
	e.emit(m.gaps, float64(a.GapFrames))
	e.emit(m.dups, float64(a.Duplicates))
	e.emit(m.switches, float64(a.Switches))
	e.emit(m.filled, float64(a.Filled))
	e.emit(m.missing, float64(a.Missing))
	for _, c := range a.Chains {
		e.flag(m.active, a.Active != "" && a.Active == c.Name, c.Name)
		e.states(m.state, string(c.State), audioChainStates, c.Name)
		e.emit(m.peak, c.PeakDBFS, c.Name)
		e.emit(m.rms, c.RMSDBFS, c.Name)
		e.emit(m.healthy, c.HealthyS, c.Name)
		if c.RateMeasured {
			e.emit(m.drift, c.RatePPM/1e6, c.Name)
		}
		e.emit(m.offset, ms(c.OffsetMs), c.Name)
		e.emit(m.delay, ms(c.DelayMs), c.Name)
		e.emit(m.received, float64(c.Frames), c.Name)
		e.emit(m.played, float64(c.Played), c.Name)
		e.emit(m.late, float64(c.Late), c.Name)
		e.emit(m.dropped, float64(c.Dropped), c.Name)
	}
}
