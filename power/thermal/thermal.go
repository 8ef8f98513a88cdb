// Package thermal watches the CPU temperature through the kernel's thermal
// zones (/sys/class/thermal/thermal_zoneN/{type,temp}) and sheds load when
// the box runs hot: above thermal.warn_c it asks for a lower bitrate cap
// (both twins at one frame index, so they stay locked), and lifts it when
// the hottest zone falls below warn_c minus thermal.hysteresis_c. Field boxes
// throttle or die when hot, and twin encoders double the load: the cap is
// the one lever that lowers the load without a gap.
//
// It never stops the stream for heat: a hot box that keeps streaming at a
// lower bitrate beats a dark one.
//
// Reading is split from parsing (Read walks an fs.FS, parseMilliC is pure);
// the root is configurable so tests point it at a directory they write.
//
// Not for: applying the cap (package shed and the encoders do) or fan
// control (the kernel's thermal governor does).
package thermal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/web/api"
)

// ErrNoZones is returned by New when the root has no readable thermal zone
// (a VM, a container): the box runs without the heat watch.
var ErrNoZones = errors.New("thermal: no thermal zone")

var errBadTemp = errors.New("thermal: temp is not millidegrees")

// Shedder asks for (on) or lifts the bitrate cap for heat.
type Shedder interface {
	Shed(on bool, reason string) error
}

// Config configures the watch.
type Config struct {
	Root        string  // /sys/class/thermal
	WarnC       float64 // above it: shed
	HysteresisC float64 // shed until below WarnC - HysteresisC
	Poll        time.Duration
}

// Watch is the heat watch. Safe for concurrent use.
type Watch struct {
	cfg   Config
	fsys  fs.FS
	shed  Shedder
	log   *zap.Logger
	clock clockwork.Clock

	mu       sync.Mutex
	st       api.ThermalStatus
	shedding bool // the cap the Shedder last accepted
	readErrs uint64
}

// New reads the zones once; with none it returns ErrNoZones.
func New(cfg Config, shed Shedder, log *zap.Logger, clock clockwork.Clock) (*Watch, error) {
	if cfg.Root == "" || cfg.Poll <= 0 || shed == nil {
		return nil, errors.New("thermal: a root, a poll interval and a shedder are required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	w := &Watch{cfg: cfg, fsys: os.DirFS(cfg.Root), shed: shed, log: log, clock: clock}
	w.st.WarnC = cfg.WarnC
	zones, err := Read(w.fsys)
	if err != nil {
		return nil, fmt.Errorf("thermal: %s: %w", cfg.Root, err)
	}
	if len(zones) == 0 {
		return nil, fmt.Errorf("%w under %s", ErrNoZones, cfg.Root)
	}
	w.update(zones)
	return w, nil
}

// Run polls the zones every Poll until ctx is done. It leaves the cap as it
// stands: a restarted Run goes on from the same state.
func (w *Watch) Run(ctx context.Context) error {
	t := w.clock.NewTicker(w.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.Chan():
			w.Poll()
		}
	}
}

// Poll reads the zones and applies the policy once (Run calls it).
func (w *Watch) Poll() {
	zones, err := Read(w.fsys)
	if err != nil || len(zones) == 0 {
		w.mu.Lock()
		w.readErrs++
		n := w.readErrs
		w.mu.Unlock()
		if n == 1 || n%100 == 0 {
			w.log.Warn("thermal zones unreadable: keeping the last state", zap.Error(err), zap.Uint64("times", n))
		}
		return
	}
	w.update(zones)
}

// update records zones, decides hot and asks the shedder when it changed
// (or when the last ask failed).
func (w *Watch) update(zones []api.ThermalZone) {
	maxC, hottest := zones[0].TempC, zones[0]
	for _, z := range zones[1:] {
		if z.TempC > maxC {
			maxC, hottest = z.TempC, z
		}
	}
	w.mu.Lock()
	hot := w.st.Hot
	switch {
	case maxC > w.cfg.WarnC:
		hot = true
	case maxC < w.cfg.WarnC-w.cfg.HysteresisC:
		hot = false
	}
	changed := hot != w.st.Hot
	w.st.MaxC, w.st.Zones, w.st.Hot = maxC, zones, hot
	need := hot != w.shedding
	w.mu.Unlock()

	if changed {
		if hot {
			w.log.Warn("hot: shedding load", zap.String("zone", hottest.Name), zap.String("type", hottest.Type),
				zap.Float64("temp_c", maxC), zap.Float64("warn_c", w.cfg.WarnC))
		} else {
			w.log.Info("cooled down: load restored", zap.Float64("temp_c", maxC),
				zap.Float64("below_c", w.cfg.WarnC-w.cfg.HysteresisC))
		}
	}
	if !need {
		return
	}
	reason := fmt.Sprintf("%s %.1f °C > thermal.warn_c %g °C", hottest.Type, maxC, w.cfg.WarnC)
	if !hot {
		reason = fmt.Sprintf("%.1f °C < %g °C", maxC, w.cfg.WarnC-w.cfg.HysteresisC)
	}
	if err := w.shed.Shed(hot, reason); err != nil {
		w.log.Error("thermal: bitrate cap not applied (retried at the next poll)", zap.Bool("shed", hot), zap.Error(err))
		return
	}
	w.mu.Lock()
	w.shedding = hot
	w.mu.Unlock()
}

// Status is the temperatures and the policy's state.
func (w *Watch) Status() api.ThermalStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.st
	st.Zones = append([]api.ThermalZone(nil), w.st.Zones...)
	st.Shedding = w.shedding
	return st
}

// Read returns every thermal_zoneN under fsys with a readable temperature,
// in zone order. A zone whose temp cannot be read or parsed (disabled
// zones answer EINVAL or ENODATA; some drivers print nothing) is left out.
func Read(fsys fs.FS) ([]api.ThermalZone, error) {
	names, err := fs.Glob(fsys, "thermal_zone*")
	if err != nil {
		return nil, err
	}
	sort.Slice(names, func(i, j int) bool { return zoneNum(names[i]) < zoneNum(names[j]) })
	var zones []api.ThermalZone
	for _, n := range names {
		raw, err := fs.ReadFile(fsys, path.Join(n, "temp"))
		if err != nil {
			continue
		}
		c, err := parseMilliC(raw)
		if err != nil {
			continue
		}
		typ, _ := fs.ReadFile(fsys, path.Join(n, "type"))
		zones = append(zones, api.ThermalZone{Name: n, Type: string(bytes.TrimSpace(typ)), TempC: c})
	}
	return zones, nil
}

func zoneNum(name string) int {
	n, err := strconv.Atoi(name[len("thermal_zone"):])
	if err != nil {
		return 1 << 30
	}
	return n
}

// parseMilliC parses a thermal zone's temp: millidegrees Celsius, one
// integer and a newline ("48686\n"). Readings outside -100..250 °C are a
// broken sensor, not a temperature.
func parseMilliC(b []byte) (float64, error) {
	v, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", errBadTemp, bytes.TrimSpace(b))
	}
	c := float64(v) / 1000
	if c < -100 || c > 250 {
		return 0, fmt.Errorf("%w: %g °C is out of range", errBadTemp, c)
	}
	return c, nil
}
