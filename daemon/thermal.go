package daemon

import (
	"errors"

	"go.uber.org/zap"

	"onair/power/thermal"
	"onair/shed"
	"onair/supervisor"
)

// buildThermal starts the heat watch when the box has a thermal zone (a
// VM or a container has none: skipped, logged).
func (d *Daemon) buildThermal() error {
	t := d.cfg.Thermal
	w, err := thermal.New(thermal.Config{Root: t.Root, WarnC: t.WarnC, HysteresisC: t.HysteresisC, Poll: t.Poll.D()},
		capShedder{d.caps, "thermal", t.ShedKbps}, d.log.Named("thermal"), d.clock)
	if errors.Is(err, thermal.ErrNoZones) {
		d.log.Info("thermal: skipped", zap.Error(err))
		return nil
	}
	if err != nil {
		return err
	}
	d.thermal = w
	return d.front.Add(supervisor.ComponentSpec{Name: "thermal", Run: w.Run, Backoff: d.backoff()})
}

// capShedder is one source's bitrate cap in the box's ceiling.
type capShedder struct {
	caps   *shed.Caps
	source string
	kbps   int // 0: half video.bitrate_kbps
}

func (c capShedder) Shed(on bool, reason string) error {
	return c.caps.Shed(c.source, on, c.kbps, reason)
}
