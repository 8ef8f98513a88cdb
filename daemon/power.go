package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"onair/internal/config"
	"onair/internal/gpioline"
	"onair/power"
	"onair/power/logind"
	"onair/power/nut"
	"onair/supervisor"
)

// buildPower starts the power policy when power is configured: the UPS
// through NUT and the GPIO power lines that exist on this board. A line
// the board does not have is skipped (logged), not fatal.
func (d *Daemon) buildPower() error {
	p := d.cfg.Power
	if !p.Configured() {
		return nil
	}
	log := d.log.Named("power")
	var in power.Inputs
	if n := p.NUT; n.Host != "" {
		user, password := n.User, ""
		if n.PasswordFile != "" {
			b, err := os.ReadFile(n.PasswordFile)
			if err != nil {
				// The UPS is still worth reading: without LOGIN upsd
				// answers LIST VAR all the same.
				log.Error("power.nut.password_file unreadable: reading the UPS without login", zap.Error(err))
				user = ""
			}
			password = strings.TrimSpace(string(b))
		}
		c, err := nut.New(nut.Config{Addr: net.JoinHostPort(n.Host, strconv.Itoa(n.Port)), UPS: n.UPS,
			User: user, Password: password}, log.Named("nut"), d.clock)
		if err != nil {
			return fmt.Errorf("power.nut: %w", err)
		}
		in.UPS = c
	}
	in.PowerGood = d.powerLine(log, "power.power_good", p.PowerGood)
	in.ShutdownRequest = d.powerLine(log, "power.shutdown_request", p.ShutdownRequest)
	if in.UPS == nil && in.PowerGood == nil && in.ShutdownRequest == nil {
		log.Warn("power: skipped: no UPS and none of the configured GPIO lines exist")
		return nil
	}
	m, err := power.New(power.Config{Poll: p.Poll.D(), MinRuntime: p.MinRuntime.D(), Grace: p.Grace.D(),
		ShedOnBattery: p.ShedOnBattery, PowerOff: p.PowerOff},
		in, powerActions{d}, log, d.clock)
	if err != nil {
		return err
	}
	d.power = m
	return d.front.Add(supervisor.ComponentSpec{Name: "power", Run: m.Run, Backoff: d.backoff()})
}

// powerLine is one configured GPIO power input, nil when not fitted or not
// found on this board.
func (d *Daemon) powerLine(log *zap.Logger, key string, l config.Line) *power.Signal {
	if !l.Fitted() {
		return nil
	}
	pin, err := gpioline.Find(l.Name)
	if err != nil {
		level := log.Warn
		if !errors.Is(err, gpioline.ErrNotFound) {
			level = log.Error
		}
		level("power: GPIO line skipped", zap.String("key", key), zap.Error(err))
		return nil
	}
	return &power.Signal{Pin: pin, ActiveLow: l.ActiveLow}
}

// powerActions is the box as the power policy acts on it.
type powerActions struct{ d *Daemon }

// Shed lowers (or lifts) the bitrate cap for power.
func (a powerActions) Shed(on bool, reason string) error {
	return a.d.caps.Shed("power", on, a.d.cfg.Power.ShedKbps, reason)
}

// EndStream ends the stream cleanly (the same stop as the crew's), then
// closes the recording's segment (synced) before the power goes.
func (a powerActions) EndStream(ctx context.Context, reason string) error {
	_, err := a.d.live.Stop(ctx, reason)
	if r := a.d.recorder(); r != nil {
		if rerr := r.Stop(ctx, reason); rerr != nil && err == nil {
			err = fmt.Errorf("recording: %w", rerr)
		}
	}
	return err
}

// PowerOff flushes every file system, then asks logind to power off.
func (a powerActions) PowerOff(ctx context.Context) error {
	unix.Sync()
	return logind.PowerOff(ctx)
}
