// Package logind asks systemd-logind to power the box off, over the D-Bus
// system bus (org.freedesktop.login1.Manager.PowerOff). It is the last step
// of the power policy's clean end, made once.
//
// It calls the method through godbus itself rather than go-systemd's
// login1.Conn.PowerOff, which returns nothing: a refused or failed
// power-off (no logind, polkit says no, the bus is gone) must reach the
// status and the journal, not vanish. The bus is the one
// DBUS_SYSTEM_BUS_ADDRESS names, else the system default, so a test points
// it at internal/logindtest's private bus.
//
// Not for: deciding to power off (package power does, after the stream has
// ended), or flushing files (the daemon syncs before it calls this).
package logind

import (
	"context"
	"errors"
	"fmt"

	"github.com/godbus/dbus/v5"
)

// The logind object and method.
const (
	busName = "org.freedesktop.login1"
	path    = dbus.ObjectPath("/org/freedesktop/login1")
	method  = "org.freedesktop.login1.Manager.PowerOff"
)

// PowerOff asks logind to power off now, without interactive
// authorization (onaird runs as root; polkit allows it). It returns when
// logind answered: nil means the shutdown is under way.
func PowerOff(ctx context.Context) error {
	conn, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("logind: system bus: %w", err)
	}
	defer func() { _ = conn.Close() }()
	call := conn.Object(busName, path).CallWithContext(ctx, method, 0, false)
	if call.Err != nil {
		var de dbus.Error
		if errors.As(call.Err, &de) {
			return fmt.Errorf("logind: PowerOff refused: %s: %v", de.Name, de.Body)
		}
		return fmt.Errorf("logind: PowerOff: %w", call.Err)
	}
	return nil
}
