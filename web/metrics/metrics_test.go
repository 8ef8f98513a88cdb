package metrics

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"onair/internal/testutil"
	"onair/web/api"
)

func withMargin(c api.ChildStatus, x, minX float64) api.ChildStatus {
	c.Margin, c.MarginMin = x, minX
	return c
}

// fullStatus is a box with every part configured: twin encoders, two audio
// chains, a bonded output on two uplinks (one capped), a UPS with GPIO
// signals and two thermal zones; mid-show, degraded by a restarting
// encoder-b.
func fullStatus() api.Status {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	child := func(name, role string, state api.RunState, restarts int, frames uint64, lag int64) api.ChildStatus {
		return api.ChildStatus{ProcessStatus: api.ProcessStatus{Name: name, Role: role, PID: 100, State: state,
			Restarts: restarts, Since: now, Instance: restarts + 1}, Frames: frames, LagFrames: lag, LastIndex: frames}
	}
	return api.Status{
		Version: "1.4.2", State: api.BoxDegraded, Uptime: 3600.5,
		Children: []api.ChildStatus{
			child("capture", "capture", "running", 0, 90000, 0),
			withMargin(child("encoder-a", "encode", "running", 1, 89000, 2), 1.8, 1.25),
			child("encoder-b", "encode", "backoff", 3, 120, 0),
			child("audio-main", "audio", "running", 0, 84375, 0),
			child("audio-backup", "audio", "running", 2, 84000, 0),
		},
		Components: []api.Component{
			{Name: "cadence", State: "running", Vital: true, Since: now},
			{Name: "output", State: "running", Restarts: 4, Since: now},
			{Name: "bond", State: "backoff", Restarts: 1, LastError: "netlink: x", Since: now},
		},
		Video: api.VideoStatus{
			Switch: api.SwitchStatus{Twins: true, Locked: false, Active: "encoder-a", Emitted: 89950,
				FramesFrom: []uint64{89000, 950}, Dropped: []uint64{12, 3}, Names: []string{"encoder-a", "encoder-b"},
				Alive: []bool{true, false}, Switches: 2, GapFrames: 1, Relocks: 5, RelockFailures: 1,
				Mismatches: 0, FailoverPending: "encoder-b", Compared: 80000},
			Keeper: api.KeeperStatus{Signal: "frozen", Repeats: 40, Slates: 0, Blacks: 2, Live: 89958,
				BehindFrames: 0, Reclaimed: 1},
			BitrateKbps: 6000, LatencyP50Ms: 180, LatencyP99Ms: 420, MuxErrors: 0,
			TwinSkewMaxFrames: 3, HealthRestarts: 1,
		},
		Audio: api.AudioStatus{Frames: 84300, GapFrames: 4, Duplicates: 1, Mode: api.AudioAuto, Active: "main",
			Switches: 1, Filled: 7, Missing: 2,
			Chains: []api.AudioChainStatus{
				{Name: "main", State: api.AudioChainOK, PeakDBFS: -6.5, RMSDBFS: -18.25, HealthyS: 1200,
					RatePPM: 12.5, RateMeasured: true, OffsetMs: 2.5, DelayMs: 15, Frames: 84375, Played: 84290, Late: 3, Dropped: 1},
				{Name: "backup", State: api.AudioChainSilent, PeakDBFS: -120, RMSDBFS: -120,
					RateMeasured: false, RatePPM: 0, Frames: 84000, Played: 10},
			}},
		Output: api.OutputStatus{State: "connected", Connects: 3, BytesSent: 2_700_000_000, BytesDropped: 1316,
			BytesQueued: 18800, InputKbps: 6200, SendRateKbps: 6400, PaceKbps: 7000,
			SRT: api.SRTStats{RTTms: 85, PktSent: 1_900_000, PktRetrans: 3800, PktDropped: 2, PktLoss: 4100,
				LossRatePct: 0.2, SendBufMs: 250, SendBufPkts: 140, PeerLatencyM: 2000}},
		OnAir: api.OnAirStatus{Phase: api.OnAirLive, Reason: "auto-start", Since: now},
		Bond: &api.BondStatus{Group: api.GroupRegistered, Receiver: "ingest.example:5000", Registers: 2, RetransSuppressed: 17,
			Bitrate: api.BitrateStatus{Kbps: 6000, MinKbps: 1500, MaxKbps: 8000, ABR: true, Reason: "capacity back"},
			Uplinks: []api.UplinkStatus{
				{Name: "cell1", Interface: "wwan0", Policy: api.PolicyBond, State: api.UplinkUp, Enabled: true, Carrying: true,
					RTTms: 62.5, LossPct: 1.5, ThroughputKbps: 3200, BytesSent: 1_200_000_000, CapBytes: 5_000_000_000,
					Window: 45000, InFlight: 30},
				{Name: "wired", Interface: "eth*", Policy: api.PolicyDuplicate, State: api.UplinkAbsent, Enabled: true},
			}},
		Power: &api.PowerStatus{State: api.PowerOnBattery, Source: api.SourceBattery, Reason: "UPS on battery", Since: now,
			Shedding: true,
			UPS: &api.UPSStatus{Name: "ups@localhost:3493", Reachable: true, Status: []string{"OB", "DISCHRG"},
				ChargePct: 87, RuntimeS: 1500, Updated: now},
			Signals: []api.PowerSignal{{Name: "power_good", Line: "GPIO17", Active: false}, {Name: "shutdown_request", Line: "GPIO27", Active: false}}},
		Thermal: &api.ThermalStatus{MaxC: 71.5, WarnC: 80, Hot: false,
			Zones: []api.ThermalZone{{Name: "thermal_zone0", Type: "cpu-thermal", TempC: 71.5}, {Name: "thermal_zone1", Type: "gpu-thermal", TempC: 64}}},
		Panel: &api.PanelStatus{Virtual: true},
	}
}

// bareStatus is a box with only what every box has: one encoder, a plain
// srt:// output, no audio, no power, no thermal zone (a VM).
func bareStatus() api.Status {
	return api.Status{
		Version: "1.4.2", State: api.BoxOffAir, Uptime: 12,
		Children: []api.ChildStatus{{ProcessStatus: api.ProcessStatus{Name: "encoder-a", Role: "encode", State: "running"}}},
		Video: api.VideoStatus{Switch: api.SwitchStatus{Twins: false, Active: "encoder-a", Names: []string{"encoder-a"},
			FramesFrom: []uint64{100}, Dropped: []uint64{0}, Alive: []bool{true}}, BitrateKbps: 4000},
		Audio:  api.AudioStatus{Mode: api.AudioAuto},
		Output: api.OutputStatus{State: "connecting"},
		OnAir:  api.OnAirStatus{Phase: api.OnAirLive},
	}
}

// scrape GETs the handler once and parses the text answer.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return fams
}

func handlerFor(t *testing.T, st func() api.Status) http.Handler {
	t.Helper()
	return New(st, testutil.NilLogger(t)).Handler()
}

func fixed(st api.Status) func() api.Status { return func() api.Status { return st } }

// labels is a series' label set as "k=v,k=v" in name order.
func labels(m *dto.Metric) string {
	var kv []string
	for _, l := range m.GetLabel() {
		kv = append(kv, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return math.NaN()
}

// sample is the value of the series name{want}; ok is false when there is none.
func sample(fams map[string]*dto.MetricFamily, name, want string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		if labels(m) == want {
			return value(m), true
		}
	}
	return 0, false
}

func TestFullStatusScrapesToTheseValues(t *testing.T) {
	fams := scrape(t, handlerFor(t, fixed(fullStatus())))
	tests := []struct {
		name, labels string
		typ          dto.MetricType
		want         float64
	}{
		{"onair_build_info", "version=1.4.2", dto.MetricType_GAUGE, 1},
		{"onair_box_state", "state=degraded", dto.MetricType_GAUGE, 1},
		{"onair_box_state", "state=on_air", dto.MetricType_GAUGE, 0},
		{"onair_uptime_seconds", "", dto.MetricType_GAUGE, 3600.5},
		{"onair_on_air_state", "state=live", dto.MetricType_GAUGE, 1},
		{"onair_on_air_state", "state=stopped", dto.MetricType_GAUGE, 0},

		{"onair_child_state", "child=encoder-b,role=encode,state=backoff", dto.MetricType_GAUGE, 1},
		{"onair_child_state", "child=encoder-b,role=encode,state=running", dto.MetricType_GAUGE, 0},
		{"onair_child_restarts_total", "child=encoder-b,role=encode", dto.MetricType_COUNTER, 3},
		{"onair_child_restarts_total", "child=audio-backup,role=audio", dto.MetricType_COUNTER, 2},
		{"onair_child_frames_total", "child=capture,role=capture", dto.MetricType_COUNTER, 90000},
		{"onair_child_lag_frames", "child=encoder-a,role=encode", dto.MetricType_GAUGE, 2},
		{"onair_child_violations_total", "child=encoder-a,role=encode", dto.MetricType_COUNTER, 0},
		{"onair_component_state", "component=bond,state=backoff", dto.MetricType_GAUGE, 1},
		{"onair_component_restarts_total", "component=output", dto.MetricType_COUNTER, 4},
		{"onair_component_vital", "component=cadence", dto.MetricType_GAUGE, 1},
		{"onair_component_vital", "component=output", dto.MetricType_GAUGE, 0},

		{"onair_video_encoders", "", dto.MetricType_GAUGE, 2},
		{"onair_video_active_encoder", "encoder=a", dto.MetricType_GAUGE, 1},
		{"onair_video_active_encoder", "encoder=b", dto.MetricType_GAUGE, 0},
		{"onair_video_encoder_alive", "encoder=b", dto.MetricType_GAUGE, 0},
		{"onair_video_encoder_frames_total", "encoder=a", dto.MetricType_COUNTER, 89000},
		{"onair_video_encoder_frames_total", "encoder=b", dto.MetricType_COUNTER, 950},
		{"onair_video_encoder_dropped_total", "encoder=a", dto.MetricType_COUNTER, 12},
		{"onair_video_encoder_margin_ratio", "encoder=a", dto.MetricType_GAUGE, 1.8},
		{"onair_video_encoder_margin_min_ratio", "encoder=a", dto.MetricType_GAUGE, 1.25},
		{"onair_video_frames_total", "", dto.MetricType_COUNTER, 89950},
		{"onair_video_switches_total", "", dto.MetricType_COUNTER, 2},
		{"onair_video_gap_frames_total", "", dto.MetricType_COUNTER, 1},
		{"onair_video_health_restarts_total", "", dto.MetricType_COUNTER, 1},
		{"onair_video_locked", "", dto.MetricType_GAUGE, 0},
		{"onair_video_failover_pending", "", dto.MetricType_GAUGE, 1},
		{"onair_video_relocks_total", "", dto.MetricType_COUNTER, 5},
		{"onair_video_relock_failures_total", "", dto.MetricType_COUNTER, 1},
		{"onair_video_mismatches_total", "", dto.MetricType_COUNTER, 0},
		{"onair_video_twin_skew_max_frames", "", dto.MetricType_GAUGE, 3},
		{"onair_video_bitrate_bytes_per_second", "", dto.MetricType_GAUGE, 750_000},
		{"onair_video_bitrate_ceiling_bytes_per_second", "", dto.MetricType_GAUGE, 1_000_000},
		{"onair_video_bitrate_floor_bytes_per_second", "", dto.MetricType_GAUGE, 187_500},
		{"onair_video_abr_enabled", "", dto.MetricType_GAUGE, 1},
		{"onair_video_latency_p50_seconds", "", dto.MetricType_GAUGE, 0.18},
		{"onair_video_latency_p99_seconds", "", dto.MetricType_GAUGE, 0.42},
		{"onair_video_mux_errors_total", "", dto.MetricType_COUNTER, 0},
		{"onair_video_signal_state", "state=frozen", dto.MetricType_GAUGE, 1},
		{"onair_video_signal_state", "state=live", dto.MetricType_GAUGE, 0},
		{"onair_video_live_frames_total", "", dto.MetricType_COUNTER, 89958},
		{"onair_video_repeated_frames_total", "", dto.MetricType_COUNTER, 40},
		{"onair_video_slate_frames_total", "", dto.MetricType_COUNTER, 0},
		{"onair_video_black_frames_total", "", dto.MetricType_COUNTER, 2},
		{"onair_video_skipped_frames_total", "", dto.MetricType_COUNTER, 0},
		{"onair_video_reclaimed_frames_total", "", dto.MetricType_COUNTER, 1},

		{"onair_output_state", "state=connected", dto.MetricType_GAUGE, 1},
		{"onair_output_state", "state=backoff", dto.MetricType_GAUGE, 0},
		{"onair_output_connects_total", "", dto.MetricType_COUNTER, 3},
		{"onair_output_sent_bytes_total", "", dto.MetricType_COUNTER, 2.7e9},
		{"onair_output_dropped_bytes_total", "", dto.MetricType_COUNTER, 1316},
		{"onair_output_queued_bytes", "", dto.MetricType_GAUGE, 18800},
		{"onair_output_input_rate_bytes_per_second", "", dto.MetricType_GAUGE, 775_000},
		{"onair_output_send_rate_bytes_per_second", "", dto.MetricType_GAUGE, 800_000},
		{"onair_output_pace_rate_bytes_per_second", "", dto.MetricType_GAUGE, 875_000},
		{"onair_srt_rtt_seconds", "", dto.MetricType_GAUGE, 0.085},
		{"onair_srt_sent_packets_total", "", dto.MetricType_COUNTER, 1.9e6},
		{"onair_srt_retransmitted_packets_total", "", dto.MetricType_COUNTER, 3800},
		{"onair_srt_lost_packets_total", "", dto.MetricType_COUNTER, 4100},
		{"onair_srt_dropped_packets_total", "", dto.MetricType_COUNTER, 2},
		{"onair_srt_retransmit_ratio", "", dto.MetricType_GAUGE, 0.002},
		{"onair_srt_send_buffer_seconds", "", dto.MetricType_GAUGE, 0.25},
		{"onair_srt_send_buffer_packets", "", dto.MetricType_GAUGE, 140},
		{"onair_srt_peer_latency_seconds", "", dto.MetricType_GAUGE, 2},

		{"onair_audio_mode", "mode=auto", dto.MetricType_GAUGE, 1},
		{"onair_audio_mode", "mode=main", dto.MetricType_GAUGE, 0},
		{"onair_audio_active_chain", "chain=main", dto.MetricType_GAUGE, 1},
		{"onair_audio_active_chain", "chain=backup", dto.MetricType_GAUGE, 0},
		{"onair_audio_frames_total", "", dto.MetricType_COUNTER, 84300},
		{"onair_audio_gap_frames_total", "", dto.MetricType_COUNTER, 4},
		{"onair_audio_duplicate_frames_total", "", dto.MetricType_COUNTER, 1},
		{"onair_audio_switches_total", "", dto.MetricType_COUNTER, 1},
		{"onair_audio_filled_frames_total", "", dto.MetricType_COUNTER, 7},
		{"onair_audio_missing_frames_total", "", dto.MetricType_COUNTER, 2},
		{"onair_audio_chain_state", "chain=backup,state=silent", dto.MetricType_GAUGE, 1},
		{"onair_audio_chain_state", "chain=backup,state=ok", dto.MetricType_GAUGE, 0},
		{"onair_audio_chain_state", "chain=main,state=ok", dto.MetricType_GAUGE, 1},
		{"onair_audio_chain_peak_dbfs", "chain=main", dto.MetricType_GAUGE, -6.5},
		{"onair_audio_chain_rms_dbfs", "chain=main", dto.MetricType_GAUGE, -18.25},
		{"onair_audio_chain_peak_dbfs", "chain=backup", dto.MetricType_GAUGE, -120},
		{"onair_audio_chain_healthy_seconds", "chain=main", dto.MetricType_GAUGE, 1200},
		{"onair_audio_chain_clock_drift_ratio", "chain=main", dto.MetricType_GAUGE, 12.5e-6},
		{"onair_audio_chain_offset_seconds", "chain=main", dto.MetricType_GAUGE, 0.0025},
		{"onair_audio_chain_delay_seconds", "chain=main", dto.MetricType_GAUGE, 0.015},
		{"onair_audio_chain_received_frames_total", "chain=main", dto.MetricType_COUNTER, 84375},
		{"onair_audio_chain_played_frames_total", "chain=backup", dto.MetricType_COUNTER, 10},
		{"onair_audio_chain_late_frames_total", "chain=main", dto.MetricType_COUNTER, 3},
		{"onair_audio_chain_dropped_frames_total", "chain=main", dto.MetricType_COUNTER, 1},

		{"onair_bond_group_state", "state=registered", dto.MetricType_GAUGE, 1},
		{"onair_bond_group_state", "state=outage", dto.MetricType_GAUGE, 0},
		{"onair_bond_registrations_total", "", dto.MetricType_COUNTER, 2},
		{"onair_bond_suppressed_retransmits_total", "", dto.MetricType_COUNTER, 17},
		{"onair_uplink_info", "interface=wwan0,policy=bond,uplink=cell1", dto.MetricType_GAUGE, 1},
		{"onair_uplink_info", "interface=eth*,policy=duplicate,uplink=wired", dto.MetricType_GAUGE, 1},
		{"onair_uplink_state", "state=up,uplink=cell1", dto.MetricType_GAUGE, 1},
		{"onair_uplink_state", "state=absent,uplink=wired", dto.MetricType_GAUGE, 1},
		{"onair_uplink_state", "state=up,uplink=wired", dto.MetricType_GAUGE, 0},
		{"onair_uplink_enabled", "uplink=cell1", dto.MetricType_GAUGE, 1},
		{"onair_uplink_carrying", "uplink=wired", dto.MetricType_GAUGE, 0},
		{"onair_uplink_rtt_seconds", "uplink=cell1", dto.MetricType_GAUGE, 0.0625},
		{"onair_uplink_loss_ratio", "uplink=cell1", dto.MetricType_GAUGE, 0.015},
		{"onair_uplink_throughput_bytes_per_second", "uplink=cell1", dto.MetricType_GAUGE, 400_000},
		{"onair_uplink_sent_bytes_total", "uplink=cell1", dto.MetricType_COUNTER, 1.2e9},
		{"onair_uplink_cap_bytes", "uplink=cell1", dto.MetricType_GAUGE, 5e9},
		{"onair_uplink_window_packets", "uplink=cell1", dto.MetricType_GAUGE, 45},
		{"onair_uplink_in_flight_packets", "uplink=cell1", dto.MetricType_GAUGE, 30},

		{"onair_power_state", "state=on_battery", dto.MetricType_GAUGE, 1},
		{"onair_power_state", "state=online", dto.MetricType_GAUGE, 0},
		{"onair_power_source", "source=battery", dto.MetricType_GAUGE, 1},
		{"onair_power_shedding", "", dto.MetricType_GAUGE, 1},
		{"onair_power_off_requested", "", dto.MetricType_GAUGE, 0},
		{"onair_power_signal_active", "line=GPIO17,signal=power_good", dto.MetricType_GAUGE, 0},
		{"onair_ups_reachable", "ups=ups@localhost:3493", dto.MetricType_GAUGE, 1},
		{"onair_ups_battery_charge_ratio", "ups=ups@localhost:3493", dto.MetricType_GAUGE, 0.87},
		{"onair_ups_battery_runtime_seconds", "ups=ups@localhost:3493", dto.MetricType_GAUGE, 1500},
		{"onair_thermal_temperature_celsius", "", dto.MetricType_GAUGE, 71.5},
		{"onair_thermal_warn_celsius", "", dto.MetricType_GAUGE, 80},
		{"onair_thermal_hot", "", dto.MetricType_GAUGE, 0},
		{"onair_thermal_shedding", "", dto.MetricType_GAUGE, 0},
		{"onair_thermal_zone_temperature_celsius", "type=gpu-thermal,zone=thermal_zone1", dto.MetricType_GAUGE, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name+"{"+tt.labels+"}", func(t *testing.T) {
			if f := fams[tt.name]; f == nil || f.GetType() != tt.typ {
				t.Fatalf("family %s: %v, want type %v", tt.name, f, tt.typ)
			}
			got, ok := sample(fams, tt.name, tt.labels)
			if !ok {
				t.Fatalf("no series %s{%s}", tt.name, tt.labels)
			}
			if math.Abs(got-tt.want) > 1e-9*math.Max(1, math.Abs(tt.want)) {
				t.Fatalf("%s{%s} = %v, want %v", tt.name, tt.labels, got, tt.want)
			}
		})
	}
	// encoder-b restarts and has not measured a margin yet: 0 would read
	// as "hopelessly behind", so there is no series.
	if v, ok := sample(fams, "onair_video_encoder_margin_ratio", "encoder=b"); ok {
		t.Errorf("unmeasured encoder-b has a margin of %v", v)
	}
	// The backup chain's rate is not measured yet: no drift to show.
	if v, ok := sample(fams, "onair_audio_chain_clock_drift_ratio", "chain=backup"); ok {
		t.Errorf("unmeasured backup chain has a drift of %v", v)
	}
	// The uncapped uplink has no cap series (0 would read as "cap reached").
	if v, ok := sample(fams, "onair_uplink_cap_bytes", "uplink=wired"); ok {
		t.Errorf("uncapped uplink has a cap of %v", v)
	}
	// The Go and process collectors are in the registry too.
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "promhttp_metric_handler_errors_total"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}

// Every state family is a state set: for each series set (one child, one
// uplink …) exactly one state is 1 and every known state has a series.
func TestEveryStateSetHasExactlyOneStateSet(t *testing.T) {
	fams := scrape(t, handlerFor(t, fixed(fullStatus())))
	sets := map[string][]string{
		"onair_box_state": boxStates, "onair_on_air_state": onAirPhases, "onair_child_state": runStates,
		"onair_component_state": runStates, "onair_video_signal_state": keeperSignals, "onair_output_state": outputStates,
		"onair_audio_mode": audioModes, "onair_audio_chain_state": audioChainStates, "onair_bond_group_state": groupStates,
		"onair_uplink_state": uplinkStates, "onair_power_state": powerStates, "onair_power_source": powerSources,
	}
	for name, known := range sets {
		t.Run(name, func(t *testing.T) {
			f := fams[name]
			if f == nil {
				t.Fatal("no series")
			}
			stateLabel := "state"
			switch name {
			case "onair_audio_mode":
				stateLabel = "mode"
			case "onair_power_source":
				stateLabel = "source"
			}
			ones, seen := map[string]float64{}, map[string][]string{}
			for _, m := range f.GetMetric() {
				var rest []string
				var state string
				for _, l := range m.GetLabel() {
					if l.GetName() == stateLabel {
						state = l.GetValue()
					} else {
						rest = append(rest, l.GetName()+"="+l.GetValue())
					}
				}
				key := strings.Join(rest, ",")
				ones[key] += value(m)
				seen[key] = append(seen[key], state)
			}
			for key, n := range ones {
				if n != 1 {
					t.Errorf("{%s}: %v states at 1, want 1", key, n)
				}
				if got := slices.Sorted(slices.Values(seen[key])); !slices.Equal(got, slices.Sorted(slices.Values(known))) {
					t.Errorf("{%s}: states %v, want %v", key, got, known)
				}
			}
		})
	}
}

// A newer daemon's state the list does not know must still show, not
// vanish into all zeros (an alert on state="on_air" == 0 would not see why).
func TestUnknownStateStillShowsAtOne(t *testing.T) {
	st := fullStatus()
	st.Output.State = "draining"
	st.Video.Keeper.Signal = "" // not decided yet: all zeros
	fams := scrape(t, handlerFor(t, fixed(st)))
	if v, ok := sample(fams, "onair_output_state", "state=draining"); !ok || v != 1 {
		t.Errorf("draining: %v %v, want 1", v, ok)
	}
	if v, _ := sample(fams, "onair_output_state", "state=connected"); v != 0 {
		t.Errorf("connected: %v, want 0", v)
	}
	for _, s := range keeperSignals {
		if v, ok := sample(fams, "onair_video_signal_state", "state="+s); !ok || v != 0 {
			t.Errorf("signal %s: %v %v, want 0", s, v, ok)
		}
	}
	if n := len(fams["onair_video_signal_state"].GetMetric()); n != len(keeperSignals) {
		t.Errorf("%d signal series, want %d", n, len(keeperSignals))
	}
}

// A box without bonding, power, thermal zones, audio chains or a twin must
// not show zeros for them: a dashboard would read "UPS at 0 %", "uplink
// down", "twins unlocked".
func TestPartsNotConfiguredProduceNoSeries(t *testing.T) {
	fams := scrape(t, handlerFor(t, fixed(bareStatus())))
	absentPrefixes := []string{"onair_bond_", "onair_uplink_", "onair_power_", "onair_ups_", "onair_thermal_", "onair_audio_"}
	absent := []string{"onair_video_locked", "onair_video_failover_pending", "onair_video_relocks_total",
		"onair_video_relock_failures_total", "onair_video_mismatches_total", "onair_video_twin_skew_max_frames",
		"onair_video_bitrate_ceiling_bytes_per_second", "onair_video_bitrate_floor_bytes_per_second", "onair_video_abr_enabled",
		"onair_component_state", "onair_component_restarts_total"}
	for name := range fams {
		for _, p := range absentPrefixes {
			if strings.HasPrefix(name, p) {
				t.Errorf("%s present", name)
			}
		}
		if slices.Contains(absent, name) {
			t.Errorf("%s present", name)
		}
	}
	for _, want := range []struct{ name, labels string }{
		{"onair_build_info", "version=1.4.2"}, {"onair_box_state", "state=off_air"}, {"onair_uptime_seconds", ""},
		{"onair_video_encoders", ""}, {"onair_video_active_encoder", "encoder=a"},
		{"onair_video_encoder_frames_total", "encoder=a"}, {"onair_video_bitrate_bytes_per_second", ""},
		{"onair_output_state", "state=connecting"}, {"onair_srt_rtt_seconds", ""},
		{"onair_child_restarts_total", "child=encoder-a,role=encode"},
	} {
		if _, ok := sample(fams, want.name, want.labels); !ok {
			t.Errorf("no %s{%s}", want.name, want.labels)
		}
	}
	if n := len(fams["onair_video_active_encoder"].GetMetric()); n != 1 {
		t.Errorf("%d encoders, want 1", n)
	}

	// Power configured without NUT (GPIO only), a UPS that reports no
	// charge or runtime (-1): the policy shows, the battery does not.
	st := bareStatus()
	st.Power = &api.PowerStatus{State: api.PowerOnline, Source: api.SourceUnknown,
		Signals: []api.PowerSignal{{Name: "power_good", Line: "GPIO17", Active: true}}}
	fams = scrape(t, handlerFor(t, fixed(st)))
	if _, ok := sample(fams, "onair_power_state", "state=online"); !ok {
		t.Error("no power state")
	}
	if fams["onair_ups_reachable"] != nil {
		t.Error("UPS series without a UPS")
	}
	st.Power.UPS = &api.UPSStatus{Name: "ups@localhost", Reachable: false, ChargePct: -1, RuntimeS: -1}
	fams = scrape(t, handlerFor(t, fixed(st)))
	if v, ok := sample(fams, "onair_ups_reachable", "ups=ups@localhost"); !ok || v != 0 {
		t.Errorf("ups reachable %v %v, want 0", v, ok)
	}
	for _, name := range []string{"onair_ups_battery_charge_ratio", "onair_ups_battery_runtime_seconds"} {
		if fams[name] != nil {
			t.Errorf("%s present for a UPS that does not report it", name)
		}
	}
}

// The reference the monitoring people read: every name is a Prometheus
// name without problems (base units, _total on counters only, snake_case,
// help text), the Go and process collectors' included.
func TestEveryNamePassesPromlint(t *testing.T) {
	rec := httptest.NewRecorder()
	handlerFor(t, fixed(fullStatus())).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	problems, err := promlint.New(rec.Body).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// The registry is pedantic-clean: every family sent was described, with
// the label names it is sent with (a collector that lies in Describe is
// refused by a stricter registry, or collides with another one silently).
func TestEveryFamilySentWasDescribed(t *testing.T) {
	for _, st := range []api.Status{fullStatus(), bareStatus()} {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(newCollector(fixed(st)))
		if _, err := reg.Gather(); err != nil {
			t.Fatalf("gather: %v", err)
		}
	}
}

// The package comment is the metric reference: it must name exactly the
// families the collector has.
func TestPackageCommentListsEveryMetric(t *testing.T) {
	src, err := readFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for line := range strings.Lines(src) {
		if !strings.HasPrefix(line, "//\tonair_") { // a line of the table
			continue
		}
		if f := strings.Fields(strings.TrimPrefix(line, "//")); len(f) > 2 {
			documented = append(documented, strings.SplitN(f[0], "{", 2)[0])
		}
	}
	var described []string
	for _, m := range newCollector(fixed(api.Status{})).all {
		described = append(described, m.name)
	}
	slices.Sort(documented)
	slices.Sort(described)
	if !slices.Equal(documented, described) {
		t.Fatalf("doc.go lists\n%v\nthe collector has\n%v", documented, described)
	}
}

// One scrape is one snapshot: status is called once, however many
// families come out of it (a scrape that read the status per family could
// show a switch counted in onair_video_switches_total but not yet in
// onair_video_active_encoder).
func TestOneScrapeTakesOneSnapshot(t *testing.T) {
	var calls atomic.Int64
	h := handlerFor(t, func() api.Status { calls.Add(1); return fullStatus() })
	if calls.Load() != 0 {
		t.Fatalf("New called status %d times", calls.Load())
	}
	scrape(t, h)
	scrape(t, h)
	if n := calls.Load(); n != 2 {
		t.Fatalf("2 scrapes called status %d times", n)
	}
}

// The counters are the status's counters: they move when the box's move,
// by the same amount.
func TestCountersMoveWithTheStatusBetweenScrapes(t *testing.T) {
	var mu sync.Mutex
	st := fullStatus()
	h := handlerFor(t, func() api.Status { mu.Lock(); defer mu.Unlock(); return st })
	before := scrape(t, h)

	mu.Lock()
	st.Video.Switch.Switches++
	st.Video.Switch.GapFrames += 3
	st.Video.Switch.FramesFrom = []uint64{89000 + 250, 950}
	st.Video.Switch.Emitted += 250
	st.Children[2].Restarts++
	st.Components[1].Restarts++
	st.Output.SRT.PktRetrans += 40
	st.Output.BytesSent += 1_000_000
	st.Bond.Uplinks[0].BytesSent += 500_000
	st.Audio.Chains[0].Late++
	mu.Unlock()
	after := scrape(t, h)

	tests := []struct {
		name, labels string
		delta        float64
	}{
		{"onair_video_switches_total", "", 1},
		{"onair_video_gap_frames_total", "", 3},
		{"onair_video_encoder_frames_total", "encoder=a", 250},
		{"onair_video_encoder_frames_total", "encoder=b", 0},
		{"onair_video_frames_total", "", 250},
		{"onair_child_restarts_total", "child=encoder-b,role=encode", 1},
		{"onair_component_restarts_total", "component=output", 1},
		{"onair_srt_retransmitted_packets_total", "", 40},
		{"onair_output_sent_bytes_total", "", 1e6},
		{"onair_uplink_sent_bytes_total", "uplink=cell1", 5e5},
		{"onair_audio_chain_late_frames_total", "chain=main", 1},
	}
	for _, tt := range tests {
		b, ok1 := sample(before, tt.name, tt.labels)
		a, ok2 := sample(after, tt.name, tt.labels)
		if !ok1 || !ok2 {
			t.Errorf("%s{%s}: missing (%v, %v)", tt.name, tt.labels, ok1, ok2)
			continue
		}
		if a-b != tt.delta {
			t.Errorf("%s{%s} moved %v → %v, want +%v", tt.name, tt.labels, b, a, tt.delta)
		}
	}
}

// A status gone odd (NaN and Inf from a division by a zero duration,
// negative ints, slices of different lengths, names that are not UTF-8,
// two uplinks of one name) must never panic the handler nor blank the
// scrape: the rest of the box still shows.
func TestOddStatusNeverPanicsNorBlanksTheScrape(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name string
		edit func(*api.Status)
		// check looks at the scrape beyond "it answered and parsed".
		check func(t *testing.T, fams map[string]*dto.MetricFamily)
	}{
		{"NaN and Inf gauges", func(st *api.Status) {
			st.Uptime, st.Video.LatencyP99Ms, st.Output.SRT.RTTms = nan, inf, math.Inf(-1)
			st.Audio.Chains[0].PeakDBFS, st.Audio.Chains[0].RatePPM = nan, nan
			st.Bond.Uplinks[0].LossPct, st.Bond.Uplinks[0].ThroughputKbps = nan, inf
			st.Power.UPS.ChargePct, st.Power.UPS.RuntimeS = nan, inf
			st.Thermal.MaxC, st.Thermal.Zones[0].TempC = nan, nan
		}, func(t *testing.T, fams map[string]*dto.MetricFamily) {
			if v, ok := sample(fams, "onair_uptime_seconds", ""); !ok || !math.IsNaN(v) {
				t.Errorf("uptime %v %v, want NaN", v, ok)
			}
			if v, ok := sample(fams, "onair_video_latency_p99_seconds", ""); !ok || !math.IsInf(v, 1) {
				t.Errorf("p99 %v %v, want +Inf", v, ok)
			}
		}},
		{"negative ints", func(st *api.Status) {
			st.Children[0].Restarts, st.Children[0].LagFrames = -1, -40
			st.Components[0].Restarts = -2
			st.Output.Connects, st.Output.BytesQueued = -5, -1
			st.Bond.Registers, st.Bond.Uplinks[0].Window, st.Bond.Uplinks[0].InFlight = -1, -1000, -3
			st.Video.BitrateKbps, st.Bond.Bitrate.MaxKbps = -1, -8000
		}, func(t *testing.T, fams map[string]*dto.MetricFamily) {
			// No counter goes below zero: the series is left out.
			for _, c := range []struct{ name, labels string }{
				{"onair_child_restarts_total", "child=capture,role=capture"},
				{"onair_component_restarts_total", "component=cadence"},
				{"onair_output_connects_total", ""},
				{"onair_bond_registrations_total", ""},
			} {
				if v, ok := sample(fams, c.name, c.labels); ok {
					t.Errorf("%s{%s} = %v", c.name, c.labels, v)
				}
			}
			// A gauge may be negative: the lag of a twin ahead of the head.
			if v, _ := sample(fams, "onair_child_lag_frames", "child=capture,role=capture"); v != -40 {
				t.Errorf("lag %v, want -40", v)
			}
			if _, ok := sample(fams, "onair_child_restarts_total", "child=encoder-b,role=encode"); !ok {
				t.Error("the other children's counters went too")
			}
		}},
		{"slices of different lengths", func(st *api.Status) {
			st.Video.Switch.Names = []string{"encoder-a", "encoder-b", "encoder-c"}
			st.Video.Switch.FramesFrom = nil
			st.Video.Switch.Alive = []bool{true}
			st.Video.Switch.Dropped = []uint64{1, 2, 3, 4}
		}, func(t *testing.T, fams map[string]*dto.MetricFamily) {
			if fams["onair_video_encoder_frames_total"] != nil {
				t.Error("frames of encoders without figures")
			}
			if n := len(fams["onair_video_encoder_alive"].GetMetric()); n != 1 {
				t.Errorf("%d alive series, want 1", n)
			}
		}},
		{"names that are not UTF-8", func(st *api.Status) {
			st.Bond.Uplinks[0].Name, st.Bond.Uplinks[0].Interface = "cell\xff1", "wwan\xc3"
			st.Version = "\xfe"
			st.Thermal.Zones[0].Type = "\x80"
		}, func(t *testing.T, fams map[string]*dto.MetricFamily) {
			if _, ok := sample(fams, "onair_uplink_rtt_seconds", "uplink=cell\uFFFD1"); !ok {
				t.Error("the uplink of an odd name has no series")
			}
			if _, ok := sample(fams, "onair_build_info", "version=\uFFFD"); !ok {
				t.Error("no build info")
			}
		}},
		{"two uplinks of one name, empty names", func(st *api.Status) {
			st.Bond.Uplinks[1].Name = st.Bond.Uplinks[0].Name
			st.Children[0].Name, st.Children[1].Name = "", ""
			st.Audio.Chains[1].Name = ""
		}, func(t *testing.T, fams map[string]*dto.MetricFamily) {
			if _, ok := sample(fams, "onair_video_switches_total", ""); !ok {
				t.Error("a duplicate series blanked the rest")
			}
		}},
		{"empty status", func(st *api.Status) { *st = api.Status{} }, func(t *testing.T, fams map[string]*dto.MetricFamily) {
			if _, ok := sample(fams, "onair_build_info", "version="); !ok {
				t.Error("no build info")
			}
		}},
		{"pointers to empty parts", func(st *api.Status) {
			st.Bond, st.Power, st.Thermal = &api.BondStatus{}, &api.PowerStatus{UPS: &api.UPSStatus{}}, &api.ThermalStatus{}
			st.Audio = api.AudioStatus{Chains: []api.AudioChainStatus{{}}}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := fullStatus()
			tt.edit(&st)
			fams := scrape(t, handlerFor(t, fixed(st)))
			if fams["go_goroutines"] == nil {
				t.Error("no go_goroutines")
			}
			if tt.check != nil {
				tt.check(t, fams)
			}
		})
	}
}

// A panic in Box.Status while a scrape runs happens in the registry's
// collecting goroutine, where net/http's recovery does not reach: it must
// fail that scrape's onair_ series (logged), not kill onaird mid-show.
func TestPanickingStatusFailsTheScrapeNotTheDaemon(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	h := New(func() api.Status { panic("status: nil map") }, zap.New(core)).Handler()
	fams := scrape(t, h)
	for name := range fams {
		if strings.HasPrefix(name, "onair_") {
			t.Errorf("%s after a panic", name)
		}
	}
	if fams["go_goroutines"] == nil {
		t.Error("the Go collector's series went too")
	}
	if logs.Len() == 0 || !strings.Contains(fmt.Sprint(logs.All()[0].ContextMap()["errors"]), "status: nil map") {
		t.Errorf("panic not logged: %v", logs.All())
	}
}

// Each Metrics has its own registry: a second one (a restarted component,
// a test) must not panic with "duplicate metrics collector registration",
// as it would on the default registry, which stays untouched.
func TestTwoMetricsDoNotShareARegistry(t *testing.T) {
	a := New(fixed(fullStatus()), nil)
	b := New(fixed(bareStatus()), nil)
	if fa, fb := scrape(t, a.Handler()), scrape(t, b.Handler()); fa["onair_bond_group_state"] == nil || fb["onair_bond_group_state"] != nil {
		t.Fatal("the two registries mixed their boxes")
	}
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "onair_") {
			t.Fatalf("%s in the default registry", f.GetName())
		}
	}
}

// The recording, the tunnel and the page's streams are scraped when they
// exist: the studio alerts on a recording stopped by a full disk.
func TestRecordingTunnelAndPageSeriesFollowTheStatus(t *testing.T) {
	st := bareStatus()
	st.Recording = &api.RecordingStatus{State: api.RecordingStopped, Reason: "disk full: x", Bytes: 3128132, Segments: 2, BytesDropped: 10, Gaps: 1, BytesQueued: 5}
	st.Tunnel = &api.TunnelStatus{State: api.TunnelUp, Connects: 2, Sessions: 1, BytesIn: 3681, BytesOut: 3717}
	st.Page = &api.PageStatus{Auth: "ready", Streams: 3}
	fams := scrape(t, handlerFor(t, func() api.Status { return st }))
	for _, c := range []struct {
		name, labels string
		want         float64
	}{
		{"onair_recording_state", "state=stopped", 1}, {"onair_recording_state", "state=recording", 0},
		{"onair_recording_bytes_total", "", 3128132}, {"onair_recording_segments_total", "", 2},
		{"onair_recording_dropped_bytes_total", "", 10}, {"onair_recording_gaps_total", "", 1}, {"onair_recording_queued_bytes", "", 5},
		{"onair_tunnel_state", "state=up", 1}, {"onair_tunnel_connects_total", "", 2}, {"onair_tunnel_sessions", "", 1},
		{"onair_tunnel_bytes_total", "direction=in", 3681}, {"onair_tunnel_bytes_total", "direction=out", 3717},
		{"onair_page_streams", "", 3},
	} {
		if v, ok := sample(fams, c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s{%s} = %v (present %v); want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if fams = scrape(t, handlerFor(t, bareStatus)); fams["onair_recording_state"] != nil || fams["onair_tunnel_state"] != nil || fams["onair_page_streams"] != nil {
		t.Error("recording, tunnel or page series without them configured")
	}
}
