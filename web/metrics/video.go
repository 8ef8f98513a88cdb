package metrics

import (
	"strings"

	"onair/web/api"
)

var (
	// keeperSignals are what the cadence keeper shows (encoder.Keeper
	// sets them as literals: there are no constants to check them against).
	keeperSignals = []string{"live", "frozen", "slate"}
	// outputStates are output.State's.
	outputStates = []string{"stopped", "connecting", "connected", "backoff", "idle"}
)

// videoMetrics are the video path: the switch, the keeper, the bitrate.
type videoMetrics struct {
	encoders, active, alive, encFrames, encDropped, margin, minX *metric
	frames, switches, gaps, healthRestarts                       *metric
	locked, pending, relocks, relockFailures, mismatches, skew   *metric
	bitrate, ceiling, floor, abr, p50, p99, muxErrors            *metric
	signal, live, repeated, slate, black, skipped, reclaimedKeep *metric
}

func newVideoMetrics(def define) videoMetrics {
	return videoMetrics{
		encoders:   def(gauge, "onair_video_encoders", "Encoders configured: 1, or 2 for twins."),
		active:     def(gauge, "onair_video_active_encoder", "1 for the encoder the programme comes from.", "encoder"),
		alive:      def(gauge, "onair_video_encoder_alive", "1 while the encoder runs.", "encoder"),
		encFrames:  def(counter, "onair_video_encoder_frames_total", "Frames of this encoder that went to the mux.", "encoder"),
		encDropped: def(counter, "onair_video_encoder_dropped_total", "Later copies and unusable packets of this encoder, dropped.", "encoder"),
		margin:     def(gauge, "onair_video_encoder_margin_ratio", "How many times faster than the frame cadence the encoder works (frame interval over its wall time per frame, last second); below 1 it falls behind.", "encoder"),
		minX:       def(gauge, "onair_video_encoder_margin_min_ratio", "The lowest margin of the encoder over the last 10 s.", "encoder"),

		frames:         def(counter, "onair_video_frames_total", "Frames the switch emitted to the mux."),
		switches:       def(counter, "onair_video_switches_total", "Changes of the active encoder (failovers, manual or not)."),
		gaps:           def(counter, "onair_video_gap_frames_total", "Video frame indexes never emitted."),
		healthRestarts: def(counter, "onair_video_health_restarts_total", "Encoders restarted as hung or lagging."),

		locked:         def(gauge, "onair_video_locked", "1 while the twin encoders are locked (a failover is hitless)."),
		pending:        def(gauge, "onair_video_failover_pending", "1 while a manual failover waits for a seamless point."),
		relocks:        def(counter, "onair_video_relocks_total", "Verified re-locks of the twins."),
		relockFailures: def(counter, "onair_video_relock_failures_total", "Re-locks whose copies differed (the twins stayed unlocked)."),
		mismatches:     def(counter, "onair_video_mismatches_total", "Unexpected differences between the twins while locked."),
		skew:           def(gauge, "onair_video_twin_skew_max_frames", "The largest distance seen between the locked twins, in frames."),

		bitrate:   def(gauge, "onair_video_bitrate_bytes_per_second", "The encoders' current bitrate."),
		ceiling:   def(gauge, "onair_video_bitrate_ceiling_bytes_per_second", "The most the bitrate may reach now (adaptive bitrate, power, heat)."),
		floor:     def(gauge, "onair_video_bitrate_floor_bytes_per_second", "The least the adaptive bitrate goes down to."),
		abr:       def(gauge, "onair_video_abr_enabled", "1 while the adaptive bitrate moves the bitrate."),
		p50:       def(gauge, "onair_video_latency_p50_seconds", "Capture stamp to packet muxed, median."),
		p99:       def(gauge, "onair_video_latency_p99_seconds", "Capture stamp to packet muxed, 99th percentile."),
		muxErrors: def(counter, "onair_video_mux_errors_total", "Errors of the TS mux."),

		signal:        def(gauge, "onair_video_signal_state", "What the cadence keeper shows: 1 for the current signal.", "state"),
		live:          def(counter, "onair_video_live_frames_total", "Frame indexes capture delivered in time."),
		repeated:      def(counter, "onair_video_repeated_frames_total", "Frame indexes filled with a repeat of the last picture."),
		slate:         def(counter, "onair_video_slate_frames_total", "Frame indexes filled with the slate."),
		black:         def(counter, "onair_video_black_frames_total", "Frame indexes filled with black."),
		skipped:       def(counter, "onair_video_skipped_frames_total", "Frame indexes the keeper, fallen behind, skipped."),
		reclaimedKeep: def(counter, "onair_video_reclaimed_frames_total", "Frame indexes capture claimed and never published (filled by the keeper)."),
	}
}

// encoderChild is the encoder child called name, nil if there is none.
func encoderChild(children []api.ChildStatus, name string) *api.ChildStatus {
	for i := range children {
		if children[i].Name == name && children[i].Role == "encode" {
			return &children[i]
		}
	}
	return nil
}

// encoderLabel is an encoder's label value: "a" for "encoder-a".
func encoderLabel(name string) string { return strings.TrimPrefix(name, "encoder-") }

func (m videoMetrics) collect(e emitter, v *api.VideoStatus, bond *api.BondStatus, children []api.ChildStatus) {
	sw := &v.Switch
	e.emit(m.encoders, float64(len(sw.Names)))
	for i, name := range sw.Names {
		enc := encoderLabel(name)
		// The margin comes from the encoder's own heartbeat: only once
		// measured (0 is "not yet", not "no margin at all").
		if c := encoderChild(children, name); c != nil && c.Margin > 0 {
			e.emit(m.margin, c.Margin, enc)
			e.emit(m.minX, c.MarginMin, enc)
		}
		e.flag(m.active, sw.Active != "" && sw.Active == name, enc)
		if i < len(sw.Alive) {
			e.flag(m.alive, sw.Alive[i], enc)
		}
		if i < len(sw.FramesFrom) {
			e.emit(m.encFrames, float64(sw.FramesFrom[i]), enc)
		}
		if i < len(sw.Dropped) {
			e.emit(m.encDropped, float64(sw.Dropped[i]), enc)
		}
	}
	e.emit(m.frames, float64(sw.Emitted))
	e.emit(m.switches, float64(sw.Switches))
	e.emit(m.gaps, float64(sw.GapFrames))
	e.emit(m.healthRestarts, float64(v.HealthRestarts))
	if sw.Twins {
		e.flag(m.locked, sw.Locked)
		e.flag(m.pending, sw.FailoverPending != "")
		e.emit(m.relocks, float64(sw.Relocks))
		e.emit(m.relockFailures, float64(sw.RelockFailures))
		e.emit(m.mismatches, float64(sw.Mismatches))
		e.emit(m.skew, float64(v.TwinSkewMaxFrames))
	}

	e.emit(m.bitrate, kbps(v.BitrateKbps))
	if bond != nil {
		e.emit(m.ceiling, kbps(bond.Bitrate.MaxKbps))
		e.emit(m.floor, kbps(bond.Bitrate.MinKbps))
		e.flag(m.abr, bond.Bitrate.ABR)
	}
	e.emit(m.p50, ms(v.LatencyP50Ms))
	e.emit(m.p99, ms(v.LatencyP99Ms))
	e.emit(m.muxErrors, float64(v.MuxErrors))

	k := &v.Keeper
	e.states(m.signal, k.Signal, keeperSignals)
	e.emit(m.live, float64(k.Live))
	e.emit(m.repeated, float64(k.Repeats))
	e.emit(m.slate, float64(k.Slates))
	e.emit(m.black, float64(k.Blacks))
	e.emit(m.skipped, float64(k.BehindFrames))
	e.emit(m.reclaimedKeep, float64(k.Reclaimed))
}

// outputMetrics are the SRT output and its connection's statistics.
type outputMetrics struct {
	state, connects, sent, dropped, queued, input, sendRate, pace *metric
	rtt, pkts, retrans, lost, pktDropped, retransRatio            *metric
	bufSeconds, bufPackets, peerLatency                           *metric
}

func newOutputMetrics(def define) outputMetrics {
	return outputMetrics{
		state:    def(gauge, "onair_output_state", "The SRT output's connection state: 1 for the current state.", "state"),
		connects: def(counter, "onair_output_connects_total", "SRT connections made."),
		sent:     def(counter, "onair_output_sent_bytes_total", "Bytes the output sent."),
		dropped:  def(counter, "onair_output_dropped_bytes_total", "Bytes the output dropped before they could be sent."),
		queued:   def(gauge, "onair_output_queued_bytes", "Bytes waiting to be sent."),
		input:    def(gauge, "onair_output_input_rate_bytes_per_second", "What the mux hands the output."),
		sendRate: def(gauge, "onair_output_send_rate_bytes_per_second", "What SRT sends."),
		pace:     def(gauge, "onair_output_pace_rate_bytes_per_second", "The pace the output sends at."),

		rtt:          def(gauge, "onair_srt_rtt_seconds", "SRT round-trip time of the current (or last) connection."),
		pkts:         def(counter, "onair_srt_sent_packets_total", "SRT packets sent on the current connection."),
		retrans:      def(counter, "onair_srt_retransmitted_packets_total", "SRT packets sent again on the current connection."),
		lost:         def(counter, "onair_srt_lost_packets_total", "SRT packets the receiver reported lost on the current connection."),
		pktDropped:   def(counter, "onair_srt_dropped_packets_total", "SRT packets the sender dropped as too late on the current connection."),
		retransRatio: def(gauge, "onair_srt_retransmit_ratio", "SRT packets retransmitted / sent."),
		bufSeconds:   def(gauge, "onair_srt_send_buffer_seconds", "Span of the unacknowledged SRT packets."),
		bufPackets:   def(gauge, "onair_srt_send_buffer_packets", "Unacknowledged SRT packets."),
		peerLatency:  def(gauge, "onair_srt_peer_latency_seconds", "The SRT latency agreed with the receiver."),
	}
}

func (m outputMetrics) collect(e emitter, o *api.OutputStatus) {
	e.states(m.state, string(o.State), outputStates)
	e.emit(m.connects, float64(o.Connects))
	e.emit(m.sent, float64(o.BytesSent))
	e.emit(m.dropped, float64(o.BytesDropped))
	e.emit(m.queued, float64(o.BytesQueued))
	e.emit(m.input, kbps(o.InputKbps))
	e.emit(m.sendRate, kbps(o.SendRateKbps))
	e.emit(m.pace, kbps(o.PaceKbps))
	s := &o.SRT
	e.emit(m.rtt, ms(s.RTTms))
	e.emit(m.pkts, float64(s.PktSent))
	e.emit(m.retrans, float64(s.PktRetrans))
	e.emit(m.lost, float64(s.PktLoss))
	e.emit(m.pktDropped, float64(s.PktDropped))
	e.emit(m.retransRatio, pct(s.LossRatePct))
	e.emit(m.bufSeconds, ms(s.SendBufMs))
	e.emit(m.bufPackets, float64(s.SendBufPkts))
	e.emit(m.peerLatency, ms(s.PeerLatencyM))
}
