package metrics

import "onair/web/api"

var (
	recordingStates = names(api.RecordingRecording, api.RecordingStopped, api.RecordingError)
	tunnelStates    = names(api.TunnelConnecting, api.TunnelUp, api.TunnelBackoff, api.TunnelRefused)
)

// opsMetrics are the local recording, the maintenance tunnel and the web
// page: each only when it is configured.
type opsMetrics struct {
	recState, recBytes, recSegments, recDropped, recGaps, recQueued *metric
	tunState, tunConnects, tunSessions, tunBytes                    *metric
	pageStreams                                                     *metric
}

func newOpsMetrics(def define) opsMetrics {
	return opsMetrics{
		recState:    def(gauge, "onair_recording_state", "Where the local recording is: 1 for the current state.", "state"),
		recBytes:    def(counter, "onair_recording_bytes_total", "Bytes written to the recording since it last started."),
		recSegments: def(counter, "onair_recording_segments_total", "Segments closed since the recording last started."),
		recDropped:  def(counter, "onair_recording_dropped_bytes_total", "Bytes the recording dropped because the disk fell behind."),
		recGaps:     def(counter, "onair_recording_gaps_total", "Runs of dropped bytes (each ends a segment)."),
		recQueued:   def(gauge, "onair_recording_queued_bytes", "Bytes waiting for the disk."),

		tunState:    def(gauge, "onair_tunnel_state", "Where the maintenance tunnel is: 1 for the current state.", "state"),
		tunConnects: def(counter, "onair_tunnel_connects_total", "Tunnels that came up."),
		tunSessions: def(gauge, "onair_tunnel_sessions", "Forwarded connections open now."),
		tunBytes:    def(counter, "onair_tunnel_bytes_total", "Bytes through the tunnel: in is from the maintenance host.", "direction"),

		pageStreams: def(gauge, "onair_page_streams", "Web pages open now (their live streams)."),
	}
}

func (m opsMetrics) collect(e emitter, st *api.Status) {
	if r := st.Recording; r != nil {
		e.states(m.recState, string(r.State), recordingStates)
		e.emit(m.recBytes, float64(r.Bytes))
		e.emit(m.recSegments, float64(r.Segments))
		e.emit(m.recDropped, float64(r.BytesDropped))
		e.emit(m.recGaps, float64(r.Gaps))
		e.emit(m.recQueued, float64(r.BytesQueued))
	}
	if t := st.Tunnel; t != nil {
		e.states(m.tunState, string(t.State), tunnelStates)
		e.emit(m.tunConnects, float64(t.Connects))
		e.emit(m.tunSessions, float64(t.Sessions))
		e.emit(m.tunBytes, float64(t.BytesIn), "in")
		e.emit(m.tunBytes, float64(t.BytesOut), "out")
	}
	if p := st.Page; p != nil {
		e.emit(m.pageStreams, float64(p.Streams))
	}
}
