package metrics

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"onair/web/api"
)

// maxScrapes bounds the scrapes served at once (the box has few cores; a
// scrape takes one snapshot, so more in flight only repeat it): a further
// one is answered 503.
const maxScrapes = 2

// Metrics is the box's metrics: a registry of its own and the handler that
// serves it. Create it with New.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler
}

// New builds the metrics of the box whose snapshot status returns. status
// is called once per scrape, from the scrape's goroutine, and may be called
// concurrently by concurrent scrapes (as web.Box.Status is); a panic in it
// fails that scrape's onair_ series, never the daemon. log gets the errors
// of a scrape (nil: none are logged).
func New(status func() api.Status, log *zap.Logger) *Metrics {
	if log == nil {
		log = zap.NewNop()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newCollector(status),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: errorLog{log},
		// One bad series (a duplicate uplink name, say) must not blank
		// every other figure of the box: serve the rest, count the error
		// in promhttp_metric_handler_errors_total and log it.
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            reg,
		MaxRequestsInFlight: maxScrapes,
	})
	return &Metrics{reg: reg, handler: promhttp.InstrumentMetricHandler(reg, h)}
}

// Handler serves the metrics in the Prometheus text (or negotiated)
// format, to GET on whatever path the caller mounts it on. It has no
// authentication of its own.
func (m *Metrics) Handler() http.Handler { return m.handler }

// errorLog is promhttp's error log on zap: a plain Warn, it never panics
// or exits. promhttp logs ("error gathering metrics:", err) where err is
// often a prometheus.MultiError: its errors become one field of one entry.
type errorLog struct{ log *zap.Logger }

func (l errorLog) Println(v ...any) {
	var what, errs []string
	for _, x := range v {
		var multi prometheus.MultiError
		switch e := x.(type) {
		case error:
			if errors.As(e, &multi) {
				for _, err := range multi {
					errs = append(errs, err.Error())
				}
			} else {
				errs = append(errs, e.Error())
			}
		default:
			what = append(what, strings.TrimSuffix(fmt.Sprint(x), ":"))
		}
	}
	l.log.Warn("metrics: "+strings.Join(what, " "), zap.Strings("errors", errs))
}

// metric is one metric family: its name, Desc and type.
type metric struct {
	name string
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

// emitter sends one scrape's metrics.
type emitter struct{ ch chan<- prometheus.Metric }

// emit sends one sample. A counter that is negative or not finite is left
// out (no counter can be there; an int field of the status gone wrong). A
// label value that is not UTF-8 is repaired, so an odd interface name
// cannot fail the series. An error (none is expected: the label counts are
// fixed here) becomes an invalid metric, which the registry reports.
func (e emitter) emit(m *metric, v float64, labels ...string) {
	if m.typ == prometheus.CounterValue && (v < 0 || math.IsNaN(v) || math.IsInf(v, 0)) {
		return
	}
	lv := make([]string, len(labels))
	for i, l := range labels {
		lv[i] = strings.ToValidUTF8(l, "\uFFFD")
	}
	pm, err := prometheus.NewConstMetric(m.desc, m.typ, v, lv...)
	if err != nil {
		pm = prometheus.NewInvalidMetric(m.desc, err)
	}
	e.ch <- pm
}

// flag sends a boolean as 0 or 1.
func (e emitter) flag(m *metric, b bool, labels ...string) {
	e.emit(m, b01(b), labels...)
}

// states sends one sample per known state, the last label being the state:
// 1 for current, 0 for the others. A current state the list does not know
// gets its own sample at 1; an empty one none.
func (e emitter) states(m *metric, current string, known []string, labels ...string) {
	withState := func(s string) []string { return append(labels[:len(labels):len(labels)], s) }
	found := false
	for _, s := range known {
		found = found || s == current
		e.flag(m, s == current, withState(s)...)
	}
	if !found && current != "" {
		e.flag(m, true, withState(current)...)
	}
}

func b01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// kbps is the box's kbit/s (1000 bit/s) in bytes per second.
func kbps[N int | float64](v N) float64 { return float64(v) * 1000 / 8 }

// ms is milliseconds in seconds.
func ms[N uint64 | float64](v N) float64 { return float64(v) / 1000 }

// pct is a percentage as a ratio.
func pct(v float64) float64 { return v / 100 }
