package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"onair/web/api"
)

// The value lists of the state enums, in their owners' order. A test
// (TestStateListsMatchTheirOwnersConstants) reads the owners' sources and
// fails when one gains, loses or renames a value.
var (
	boxStates   = names(api.BoxOnAir, api.BoxDegraded, api.BoxOffAir, api.BoxStopped)
	onAirPhases = names(api.OnAirLive, api.OnAirStopping, api.OnAirStopped)
	// runStates are supervisor.State's (children and components alike).
	runStates = []string{"stopped", "starting", "running", "stalled", "stopping", "backoff", "failed"}
)

// names turns an enum's values into label values.
func names[S ~string](v ...S) []string {
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = string(s)
	}
	return out
}

// collector is the box as a prometheus.Collector. Its metric families are
// fixed when it is made (Describe lists all of them); Collect takes one
// snapshot and sends what it has.
type collector struct {
	status func() api.Status
	all    []*metric

	box   boxMetrics
	video videoMetrics
	out   outputMetrics
	audio audioMetrics
	bond  bondMetrics
	power powerMetrics
	ops   opsMetrics
}

func newCollector(status func() api.Status) *collector {
	c := &collector{status: status}
	c.box = newBoxMetrics(c.def)
	c.video = newVideoMetrics(c.def)
	c.out = newOutputMetrics(c.def)
	c.audio = newAudioMetrics(c.def)
	c.bond = newBondMetrics(c.def)
	c.power = newPowerMetrics(c.def)
	c.ops = newOpsMetrics(c.def)
	return c
}

// define makes one metric family.
type define func(typ prometheus.ValueType, name, help string, labels ...string) *metric

func (c *collector) def(typ prometheus.ValueType, name, help string, labels ...string) *metric {
	m := &metric{name: name, desc: prometheus.NewDesc(name, help, labels, nil), typ: typ}
	c.all = append(c.all, m)
	return m
}

// Describe sends every family the collector may send.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.all {
		ch <- m.desc
	}
}

// Collect takes one snapshot and sends its metrics. A panic (in status or
// here) is recovered by the registry, which reports it as the scrape's
// error.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	e := emitter{ch}
	c.box.collect(e, &st)
	c.video.collect(e, &st.Video, st.Bond, st.Children)
	c.out.collect(e, &st.Output)
	c.audio.collect(e, &st.Audio)
	if st.Bond != nil {
		c.bond.collect(e, st.Bond)
	}
	c.power.collect(e, st.Power, st.Thermal)
	c.ops.collect(e, &st)
}

const (
	gauge   = prometheus.GaugeValue
	counter = prometheus.CounterValue
)

// boxMetrics are the box as a whole and its supervision.
type boxMetrics struct {
	buildInfo, state, uptime, onAir                                  *metric
	childState, childRestarts, childFrames, childLag, childViolation *metric
	compState, compRestarts, compVital                               *metric
}

func newBoxMetrics(def define) boxMetrics {
	return boxMetrics{
		buildInfo: def(gauge, "onair_build_info", "Always 1; version is the firmware's version.", "version"),
		state:     def(gauge, "onair_box_state", "The state of the whole box: 1 for the current state.", "state"),
		uptime:    def(gauge, "onair_uptime_seconds", "Seconds since onaird started."),
		onAir:     def(gauge, "onair_on_air_state", "The go live / stop control: 1 for the current phase.", "state"),

		childState:     def(gauge, "onair_child_state", "Supervision state of a child process: 1 for the current state.", "child", "role", "state"),
		childRestarts:  def(counter, "onair_child_restarts_total", "Start attempts of a child process after the first.", "child", "role"),
		childFrames:    def(counter, "onair_child_frames_total", "Frames handled by the child's current instance (resets when it restarts).", "child", "role"),
		childLag:       def(gauge, "onair_child_lag_frames", "How far the child is behind the ring head, in frames (encoders).", "child", "role"),
		childViolation: def(counter, "onair_child_violations_total", "Messages of the child that broke the wire contract (each restarted it).", "child", "role"),

		compState:    def(gauge, "onair_component_state", "Supervision state of an in-process component: 1 for the current state.", "component", "state"),
		compRestarts: def(counter, "onair_component_restarts_total", "Restarts of an in-process component.", "component"),
		compVital:    def(gauge, "onair_component_vital", "1 when the box cannot stay on air without the component.", "component"),
	}
}

func (m boxMetrics) collect(e emitter, st *api.Status) {
	e.emit(m.buildInfo, 1, st.Version)
	e.states(m.state, string(st.State), boxStates)
	e.emit(m.uptime, st.Uptime)
	e.states(m.onAir, string(st.OnAir.Phase), onAirPhases)
	for _, c := range st.Children {
		e.states(m.childState, string(c.State), runStates, c.Name, c.Role)
		e.emit(m.childRestarts, float64(c.Restarts), c.Name, c.Role)
		e.emit(m.childFrames, float64(c.Frames), c.Name, c.Role)
		e.emit(m.childLag, float64(c.LagFrames), c.Name, c.Role)
		e.emit(m.childViolation, float64(c.Violations), c.Name, c.Role)
	}
	for _, c := range st.Components {
		e.states(m.compState, string(c.State), runStates, c.Name)
		e.emit(m.compRestarts, float64(c.Restarts), c.Name)
		e.flag(m.compVital, c.Vital, c.Name)
	}
}
