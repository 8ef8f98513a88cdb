// Package metrics is the box's Prometheus metrics: one collector that, on
// each scrape, takes ONE api.Status snapshot and turns it into const
// metrics, so every figure of a scrape comes from the same instant and
// nothing runs between scrapes. Its registry (never the default one) also
// holds the standard Go and process collectors and the handler's own
// promhttp_metric_handler_* series.
//
// Not for: serving or authenticating (the caller mounts Handler on a
// listener of its own), nor for keeping any state: every counter here is a
// counter the box already keeps, read from the snapshot. A part of the box
// that is not configured (no bonding, no power, no thermal zone, no audio
// chain, a single encoder) produces no series at all, rather than zeros.
//
// # Conventions
//
// Names start with onair_, counters end in _total, and values are in base
// units: seconds, bytes, ratios (0..1, not percent), celsius. The box's
// kbit/s figures are 1000 bit/s, so a bit rate of K kbit/s reads K*125
// bytes per second (multiply by 8 for bit/s). Audio levels stay in dBFS,
// which has no base unit. A boolean is a gauge of 0 or 1.
//
// A state is one gauge per possible state with a state label (mode and
// source for the two enums that are not states), 1 for the current state
// and 0 for every other one, so an alert can say
// onair_box_state{state="on_air"} == 0 and a dashboard can stack them. A
// value the list does not know (a newer daemon) still shows, as its own
// series at 1; an empty value (not decided yet) shows as all zeros.
// Descriptive strings that change (the uplink's interface, its policy, the
// firmware version) are labels of an _info gauge that is always 1.
//
// Counters reset when what counts them restarts: the child frame counters
// with each instance of the child, the SRT counters with each connection,
// everything else with onaird. Prometheus' rate() and increase() handle
// such resets.
//
// Labels: child and role (a supervised child process: capture,
// encoder-a, encoder-b, audio-main …; role capture, encode, audio),
// component (an in-process part: cadence, output, api-tcp, bond …),
// encoder (a or b: the encoder's name without "encoder-"), chain (main or
// backup), uplink (its configured name), ups (ups@host:port), signal and
// line (a GPIO power input), zone and type (a thermal zone).
//
// # Metrics
//
// The box (always present):
//
//	onair_build_info{version}                          gauge   1; version is the firmware's
//	onair_box_state{state}                             gauge   on_air, degraded, off_air, stopped
//	onair_uptime_seconds                               gauge   since onaird started
//	onair_on_air_state{state}                          gauge   the go live / stop control: live, stopping, stopped
//
// Supervision (one series set per child process or component):
//
//	onair_child_state{child,role,state}                gauge   stopped, starting, running, stalled, stopping, backoff, failed
//	onair_child_restarts_total{child,role}             counter start attempts after the first
//	onair_child_frames_total{child,role}               counter frames handled by the current instance
//	onair_child_lag_frames{child,role}                 gauge   how far behind the ring head (encoders)
//	onair_child_violations_total{child,role}           counter messages that broke the wire contract (each restarted the child)
//	onair_component_state{component,state}             gauge   as onair_child_state
//	onair_component_restarts_total{component}          counter restarts of the component
//	onair_component_vital{component}                   gauge   1: the box cannot stay on air without it
//
// Video (the hitless switch, the cadence keeper, the encoders' bitrate):
//
//	onair_video_encoders                               gauge   encoders configured (1, or 2 for twins)
//	onair_video_active_encoder{encoder}                gauge   1 for the encoder the programme comes from
//	onair_video_encoder_alive{encoder}                 gauge   1 while the encoder runs
//	onair_video_encoder_frames_total{encoder}          counter frames of this encoder that went to the mux
//	onair_video_encoder_dropped_total{encoder}         counter its later copies and unusable packets, dropped
//	onair_video_encoder_margin_ratio{encoder}          gauge   times faster than the cadence it works (last second; < 1: falls behind), once measured
//	onair_video_encoder_margin_min_ratio{encoder}      gauge   its lowest margin over the last 10 s
//	onair_video_frames_total                           counter frames the switch emitted to the mux
//	onair_video_switches_total                         counter changes of the active encoder (failovers, manual or not)
//	onair_video_gap_frames_total                       counter frame indexes never emitted
//	onair_video_health_restarts_total                  counter encoders restarted as hung or lagging
//	onair_video_locked                                 gauge   twins only: 1 while the twins are locked (a failover is hitless)
//	onair_video_failover_pending                       gauge   twins only: 1 while a manual failover waits for a seamless point
//	onair_video_relocks_total                          counter twins only: verified re-locks
//	onair_video_relock_failures_total                  counter twins only: re-locks whose copies differed
//	onair_video_mismatches_total                       counter twins only: unexpected differences while locked
//	onair_video_twin_skew_max_frames                   gauge   twins only: the largest distance seen between the locked twins
//	onair_video_bitrate_bytes_per_second               gauge   the encoders' current bitrate
//	onair_video_bitrate_ceiling_bytes_per_second       gauge   bonded only: the most the bitrate may reach now (abr, power, heat)
//	onair_video_bitrate_floor_bytes_per_second         gauge   bonded only: the least the adaptive bitrate goes to
//	onair_video_abr_enabled                            gauge   bonded only: 1 while the adaptive bitrate moves the bitrate
//	onair_video_latency_p50_seconds                    gauge   capture stamp to packet muxed, median
//	onair_video_latency_p99_seconds                    gauge   the same, 99th percentile
//	onair_video_mux_errors_total                       counter errors of the TS mux
//	onair_video_signal_state{state}                    gauge   what the cadence keeper shows: live, frozen (repeating), slate
//	onair_video_live_frames_total                      counter indexes capture delivered in time
//	onair_video_repeated_frames_total                  counter indexes filled with a repeat of the last picture
//	onair_video_slate_frames_total                     counter indexes filled with the slate
//	onair_video_black_frames_total                     counter indexes filled with black
//	onair_video_skipped_frames_total                   counter indexes the keeper, fallen behind, skipped
//	onair_video_reclaimed_frames_total                 counter indexes capture claimed and never published
//
// The SRT output (the SRT figures are those of the current or last connection):
//
//	onair_output_state{state}                          gauge   stopped, connecting, connected, backoff, idle
//	onair_output_connects_total                        counter connections made
//	onair_output_sent_bytes_total                      counter bytes sent
//	onair_output_dropped_bytes_total                   counter bytes dropped before they could be sent
//	onair_output_queued_bytes                          gauge   bytes waiting to be sent
//	onair_output_input_rate_bytes_per_second           gauge   what the mux hands the output
//	onair_output_send_rate_bytes_per_second            gauge   what SRT sends
//	onair_output_pace_rate_bytes_per_second            gauge   the pace the output sends at
//	onair_srt_rtt_seconds                              gauge   SRT round-trip time
//	onair_srt_sent_packets_total                       counter packets sent
//	onair_srt_retransmitted_packets_total              counter packets sent again
//	onair_srt_lost_packets_total                       counter packets the receiver reported lost
//	onair_srt_dropped_packets_total                    counter packets the sender dropped as too late
//	onair_srt_retransmit_ratio                         gauge   retransmitted / sent
//	onair_srt_send_buffer_seconds                      gauge   span of the unacknowledged packets
//	onair_srt_send_buffer_packets                      gauge   unacknowledged packets
//	onair_srt_peer_latency_seconds                     gauge   the latency agreed with the receiver
//
// Audio (only when an audio chain is configured):
//
//	onair_audio_mode{mode}                             gauge   the operator's choice: auto, main, backup
//	onair_audio_active_chain{chain}                    gauge   1 for the chain the programme's audio comes from
//	onair_audio_frames_total                           counter audio frames muxed
//	onair_audio_gap_frames_total                       counter audio frame indexes never muxed
//	onair_audio_duplicate_frames_total                 counter frames at or before the last one muxed (dropped)
//	onair_audio_switches_total                         counter changes of the active chain
//	onair_audio_filled_frames_total                    counter frames the inactive chain supplied, in time, for the active one
//	onair_audio_missing_frames_total                   counter frame indexes no chain delivered in time
//	onair_audio_chain_state{chain,state}               gauge   down, stalled, silent, ok
//	onair_audio_chain_peak_dbfs{chain}                 gauge   the last frame's peak level (-120: silence)
//	onair_audio_chain_rms_dbfs{chain}                  gauge   the last frame's RMS level
//	onair_audio_chain_healthy_seconds{chain}           gauge   how long the chain has been in time and above silence
//	onair_audio_chain_clock_drift_ratio{chain}         gauge   once measured: the device's rate against the box clock, minus 1
//	onair_audio_chain_offset_seconds{chain}            gauge   how far the chain's frames sit from the box clock
//	onair_audio_chain_delay_seconds{chain}             gauge   how late after its last sample the last frame arrived
//	onair_audio_chain_received_frames_total{chain}     counter frames received
//	onair_audio_chain_played_frames_total{chain}       counter frames that went to the programme
//	onair_audio_chain_late_frames_total{chain}         counter frames that came after their deadline
//	onair_audio_chain_dropped_frames_total{chain}      counter frames refused (duplicate, out of order, too far ahead)
//
// Bonding (only for an srtla:// output):
//
//	onair_bond_group_state{state}                      gauge   unregistered, registering, registered, outage
//	onair_bond_registrations_total                     counter registrations that got a group
//	onair_bond_suppressed_retransmits_total            counter SRT retransmissions dropped as a NAK storm
//	onair_uplink_info{uplink,interface,policy}         gauge   1; interface is the one matched (or the glob), policy bond, duplicate, backup
//	onair_uplink_state{uplink,state}                   gauge   absent, down, registering, up, dead, disabled, capped
//	onair_uplink_enabled{uplink}                       gauge   0 when the operator switched it off
//	onair_uplink_carrying{uplink}                      gauge   1 while it carries stream bytes
//	onair_uplink_rtt_seconds{uplink}                   gauge   round-trip time of its keepalives
//	onair_uplink_loss_ratio{uplink}                    gauge   share of its packets SRT reported lost, lately
//	onair_uplink_throughput_bytes_per_second{uplink}   gauge   what it carries now
//	onair_uplink_sent_bytes_total{uplink}              counter bytes sent on it
//	onair_uplink_cap_bytes{uplink}                     gauge   only with a cap: its cap_mb, in bytes
//	onair_uplink_window_packets{uplink}                gauge   its SRTLA window
//	onair_uplink_in_flight_packets{uplink}             gauge   packets sent on it, not yet acknowledged
//
// Power (only when power is configured) and heat (only when a thermal zone
// was found):
//
//	onair_power_state{state}                           gauge   online, on_battery, low_battery, forced_shutdown, power_lost, unreachable, ending, ended
//	onair_power_source{source}                         gauge   mains, battery, unknown
//	onair_power_shedding                               gauge   1 while the bitrate is capped for power
//	onair_power_off_requested                          gauge   1 once the power-off was asked for
//	onair_power_signal_active{signal,line}             gauge   a GPIO power input (power_good, shutdown_request)
//	onair_ups_reachable{ups}                           gauge   1 while upsd answers
//	onair_ups_battery_charge_ratio{ups}                gauge   battery.charge, when the UPS reports it
//	onair_ups_battery_runtime_seconds{ups}             gauge   battery.runtime, when the UPS reports it
//	onair_thermal_temperature_celsius                  gauge   the hottest zone
//	onair_thermal_warn_celsius                         gauge   the warning threshold (thermal.warn_c)
//	onair_thermal_hot                                  gauge   1 while above it (with hysteresis)
//	onair_thermal_shedding                             gauge   1 while the bitrate is capped for heat
//	onair_thermal_zone_temperature_celsius{zone,type}  gauge   one thermal zone
//
// The local recording (only when recording.dir is set), the maintenance
// tunnel (only when maintenance.tunnel is set) and the web page (only with
// a TCP listener):
//
//	onair_recording_state{state}                       gauge   recording, stopped, error
//	onair_recording_bytes_total                        counter bytes written since it last started
//	onair_recording_segments_total                     counter segments closed since it last started
//	onair_recording_dropped_bytes_total                counter bytes dropped: the disk fell behind
//	onair_recording_gaps_total                         counter runs of dropped bytes (each ends a segment)
//	onair_recording_queued_bytes                       gauge   bytes waiting for the disk
//	onair_tunnel_state{state}                          gauge   connecting, up, backoff, refused
//	onair_tunnel_connects_total                        counter tunnels that came up
//	onair_tunnel_sessions                              gauge   forwarded connections open now
//	onair_tunnel_bytes_total{direction}                counter in (from the maintenance host) and out
//	onair_page_streams                                 gauge   web pages open now
package metrics
