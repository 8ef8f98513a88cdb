// Package gpioline finds the box's GPIO lines by the names the config gives
// them (power.power_good, panel.buttons.*, panel.leds.*), through periph: the
// GPIO character device (gpioioctl) registers every named line of every
// /dev/gpiochipN when the host drivers load, which this package does once per
// process.
//
// A line that does not exist is an error wrapping ErrNotFound: the caller
// (the daemon) logs it as skipped and runs without it (a laptop, CI, a board
// without that wire), never aborts.
//
// Not for: polarity, debounce or what a line means (package power and package
// board do that with the gpio.PinIO they get).
package gpioline

import (
	"errors"
	"fmt"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// ErrNotFound is returned for a line no GPIO chip has.
var ErrNotFound = errors.New("gpioline: no such GPIO line")

var (
	initOnce sync.Once
	initErr  error
)

// Find returns the GPIO line named name. With no GPIO chip at all (a VM, a
// laptop) every name is ErrNotFound.
func Find(name string) (gpio.PinIO, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: empty name", ErrNotFound)
	}
	initOnce.Do(func() {
		if _, err := host.Init(); err != nil {
			initErr = fmt.Errorf("gpioline: periph host init: %w", err)
		}
	})
	if initErr != nil {
		return nil, initErr
	}
	p := gpioreg.ByName(name)
	if p == nil {
		return nil, fmt.Errorf("%w: %q (%d lines known)", ErrNotFound, name, len(gpioreg.All()))
	}
	return p, nil
}
