package config

import (
	"errors"
	"strings"
	"testing"
)

// Every bad power, thermal, panel or onair value is refused with its key
// named, so a crew editing the file on the box sees which line is wrong.
func TestPowerThermalPanelErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ yaml, key string }{
		{"power:\n  nut: {host: 127.0.0.1, port: 0, ups: ups}", "power.nut.port"},
		{"power:\n  nut: {host: 127.0.0.1}", "power.nut.ups"},
		{"power:\n  nut: {host: 127.0.0.1, ups: ups, user: monuser}", "power.nut.password_file"},
		{"power:\n  nut: {host: 127.0.0.1, ups: ups, user: monuser, password_file: secret}", "power.nut.password_file"},
		{"power:\n  poll: 1ms", "power.poll"},
		{"power:\n  min_runtime: -1s", "power.min_runtime"},
		{"power:\n  grace: 2h", "power.grace"},
		{"power:\n  shed_kbps: 999999", "power.shed_kbps"},
		{"power:\n  power_good: {line: 'bad line name'}", "power.power_good.line"},
		{"thermal:\n  warn_c: 500", "thermal.warn_c"},
		{"thermal:\n  root: relative", "thermal.root"},
		{"thermal:\n  hysteresis_c: -1", "thermal.hysteresis_c"},
		{"thermal:\n  shed_kbps: -5", "thermal.shed_kbps"},
		{"panel:\n  long_press: 10ms", "panel.long_press"},
		{"panel:\n  debounce: 1s", "panel.debounce"},
		{"panel:\n  buttons: {go_live: {line: BTN}, failover: {line: BTN}}", "panel.buttons.failover.line"},
		{"panel:\n  leds: {uplinks: {nosuch: {line: LED9}}}", "panel.leds.uplinks.nosuch"},
		{"onair:\n  autostart: maybe", "onair.autostart"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			_, err := Parse([]byte(good + tc.yaml + "\n"))
			e := &Error{}
			if !errors.As(err, &e) || len(e.Problems) != 1 || !strings.HasPrefix(e.Problems[0], tc.key) {
				t.Fatalf("%q: got %v, want one problem naming %s", tc.yaml, err, tc.key)
			}
		})
	}
}

func TestPowerDefaultsAreWhatACrewExpects(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if !c.OnAir.AutoStart || c.Power.Configured() || !c.Power.PowerOff || !c.Power.ShedOnBattery ||
		c.Power.Grace.D().Seconds() != 30 || c.Power.MinRuntime.D().Seconds() != 120 || c.Power.NUT.Port != 3493 ||
		c.Thermal.WarnC != 80 || c.Panel.LongPress.D().Seconds() != 2 {
		t.Errorf("defaults %+v %+v %+v %+v", c.OnAir, c.Power, c.Thermal, c.Panel)
	}
	c, err = Parse([]byte(good + "power:\n  nut: {host: 127.0.0.1, ups: dummy}\n"))
	if err != nil || !c.Power.Configured() {
		t.Errorf("a NUT host configures power: %v", err)
	}
}
