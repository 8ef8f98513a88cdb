package config

import (
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"time"
)

// OnAir configures the on-air control (onair:).
type OnAir struct {
	// AutoStart: power on, on air (the default). False: the box starts
	// stopped and waits for go live (panel, page, onairctl).
	AutoStart bool `yaml:"autostart"`
}

func defaultOnAir() OnAir { return OnAir{AutoStart: true} }

// Line is one GPIO line, found by its chardev line name.
type Line struct {
	// Name is the GPIO line name (gpioinfo); empty: not fitted.
	Name string `yaml:"line"`
	// ActiveLow: the signal is asserted when the line reads low (a button to
	// ground with a pull-up, an open-collector power-fail output).
	ActiveLow bool `yaml:"active_low"`
}

// Fitted reports whether the line is configured.
func (l Line) Fitted() bool { return l.Name != "" }

var lineName = regexp.MustCompile(`^[A-Za-z0-9_.:+-]{1,64}$`)

func (l Line) validate(p *problems, key string) {
	if l.Name != "" && !lineName.MatchString(l.Name) {
		p.add(key+".line", "%q: a GPIO line name is 1..64 letters, digits or _.:+-", l.Name)
	}
}

// NUT is the UPS through Network UPS Tools' upsd (power.nut:).
type NUT struct {
	// Host of upsd; empty: no UPS.
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	// UPS is the UPS name in upsd (ups.conf section).
	UPS string `yaml:"ups"`
	// User logs in (LOGIN) when set; its password is read from
	// PasswordFile (so the config holds no secret).
	User         string `yaml:"user"`
	PasswordFile string `yaml:"password_file"`
}

// Power configures the power policy (power:).
type Power struct {
	NUT NUT `yaml:"nut"`
	// Poll is how often the UPS is read.
	Poll Duration `yaml:"poll"`
	// MinRuntime: battery.runtime below it ends the stream (0: off).
	MinRuntime Duration `yaml:"min_runtime"`
	// Grace: power-good lost for this long ends the stream; back within it cancels.
	Grace Duration `yaml:"grace"`
	// ShedOnBattery lowers the bitrate cap to ShedKbps while on battery.
	ShedOnBattery bool `yaml:"shed_on_battery"`
	// ShedKbps is the bitrate cap while shedding (0: half video.bitrate_kbps).
	ShedKbps int `yaml:"shed_kbps"`
	// PowerOff asks systemd-logind to power off after the clean end.
	PowerOff bool `yaml:"poweroff"`
	// PowerGood and ShutdownRequest are GPIO inputs (optional).
	PowerGood       Line `yaml:"power_good"`
	ShutdownRequest Line `yaml:"shutdown_request"`
}

// Configured reports whether any power source is configured.
func (c Power) Configured() bool {
	return c.NUT.Host != "" || c.PowerGood.Fitted() || c.ShutdownRequest.Fitted()
}

func defaultPower() Power {
	return Power{NUT: NUT{Port: 3493}, Poll: Duration(2 * time.Second), MinRuntime: Duration(2 * time.Minute),
		Grace: Duration(30 * time.Second), ShedOnBattery: true, PowerOff: true}
}

func (c Power) validate(p *problems, maxKbps int) {
	n := c.NUT
	if n.Host != "" {
		if n.Port < 1 || n.Port > 65535 {
			p.add("power.nut.port", "%d: must be 1..65535", n.Port)
		}
		if n.UPS == "" {
			p.add("power.nut.ups", "required with power.nut.host (the UPS name in upsd, e.g. ups)")
		}
		if (n.User == "") != (n.PasswordFile == "") {
			p.add("power.nut.password_file", "power.nut.user and power.nut.password_file go together")
		}
		if n.PasswordFile != "" && !filepath.IsAbs(n.PasswordFile) {
			p.add("power.nut.password_file", "%q: must be an absolute path", n.PasswordFile)
		}
	}
	if c.Poll < Duration(200*time.Millisecond) || c.Poll > Duration(time.Minute) {
		p.add("power.poll", "%s: must be 200ms..1m", c.Poll)
	}
	if c.MinRuntime < 0 {
		p.add("power.min_runtime", "must not be negative")
	}
	if c.Grace < 0 || c.Grace > Duration(time.Hour) {
		p.add("power.grace", "%s: must be 0..1h", c.Grace)
	}
	if c.ShedKbps < 0 || (maxKbps > 0 && c.ShedKbps > maxKbps) {
		p.add("power.shed_kbps", "%d: must be 0 (half video.bitrate_kbps) up to video.bitrate_kbps (%d)", c.ShedKbps, maxKbps)
	}
	c.PowerGood.validate(p, "power.power_good")
	c.ShutdownRequest.validate(p, "power.shutdown_request")
}

// Thermal configures the heat watch (thermal:).
type Thermal struct {
	// Root is the sysfs thermal class directory (tests point it elsewhere).
	Root string `yaml:"root"`
	// WarnC: above it the box sheds load (a lower bitrate cap); it never
	// stops the stream for heat.
	WarnC float64 `yaml:"warn_c"`
	// HysteresisC: the cap returns below WarnC - HysteresisC.
	HysteresisC float64  `yaml:"hysteresis_c"`
	Poll        Duration `yaml:"poll"`
	// ShedKbps is the bitrate cap while hot (0: half video.bitrate_kbps).
	ShedKbps int `yaml:"shed_kbps"`
}

func defaultThermal() Thermal {
	return Thermal{Root: "/sys/class/thermal", WarnC: 80, HysteresisC: 5, Poll: Duration(2 * time.Second)}
}

func (t Thermal) validate(p *problems, maxKbps int) {
	if t.Root == "" || !filepath.IsAbs(t.Root) {
		p.add("thermal.root", "%q: must be an absolute path", t.Root)
	}
	if t.WarnC < 30 || t.WarnC > 125 {
		p.add("thermal.warn_c", "%g: must be 30..125 °C", t.WarnC)
	}
	if t.HysteresisC < 0 || t.HysteresisC > 30 {
		p.add("thermal.hysteresis_c", "%g: must be 0..30 °C", t.HysteresisC)
	}
	if t.Poll < Duration(200*time.Millisecond) || t.Poll > Duration(time.Minute) {
		p.add("thermal.poll", "%s: must be 200ms..1m", t.Poll)
	}
	if t.ShedKbps < 0 || (maxKbps > 0 && t.ShedKbps > maxKbps) {
		p.add("thermal.shed_kbps", "%d: must be 0 (half video.bitrate_kbps) up to video.bitrate_kbps (%d)", t.ShedKbps, maxKbps)
	}
}

// Panel configures the front panel (panel:). With no line configured the
// panel is virtual: its LEDs are in /api/status and its buttons are pressed
// with POST /api/panel/press.
type Panel struct {
	LongPress Duration `yaml:"long_press"`
	Debounce  Duration `yaml:"debounce"`
	Buttons   Buttons  `yaml:"buttons"`
	LEDs      LEDs     `yaml:"leds"`
}

// Buttons are the panel's inputs.
type Buttons struct {
	GoLive   Line `yaml:"go_live"`  // short: go live; long: stop
	Failover Line `yaml:"failover"` // video failover
	Audio    Line `yaml:"audio"`    // force backup audio; again: auto
}

// LEDs are the panel's outputs.
type LEDs struct {
	Power    Line `yaml:"power"`
	EncoderA Line `yaml:"encoder_a"`
	EncoderB Line `yaml:"encoder_b"`
	Audio    Line `yaml:"audio"`
	Tally    Line `yaml:"tally"`
	// Recording shows the local recording (solid: recording; fast blink:
	// stopped by a full disk or a write error).
	Recording Line `yaml:"recording"`
	// Uplinks maps an uplink name to its LED line.
	Uplinks map[string]Line `yaml:"uplinks"`
}

func defaultPanel() Panel {
	return Panel{LongPress: Duration(2 * time.Second), Debounce: Duration(50 * time.Millisecond)}
}

func (c Panel) validate(p *problems, uplinks []Uplink) {
	if c.LongPress < Duration(500*time.Millisecond) || c.LongPress > Duration(10*time.Second) {
		p.add("panel.long_press", "%s: must be 500ms..10s", c.LongPress)
	}
	if c.Debounce < Duration(5*time.Millisecond) || c.Debounce > Duration(500*time.Millisecond) {
		p.add("panel.debounce", "%s: must be 5ms..500ms", c.Debounce)
	}
	b, l := c.Buttons, c.LEDs
	seen := map[string]string{}
	for _, kl := range []struct {
		key  string
		line Line
	}{
		{"panel.buttons.go_live", b.GoLive}, {"panel.buttons.failover", b.Failover}, {"panel.buttons.audio", b.Audio},
		{"panel.leds.power", l.Power}, {"panel.leds.encoder_a", l.EncoderA}, {"panel.leds.encoder_b", l.EncoderB},
		{"panel.leds.audio", l.Audio}, {"panel.leds.tally", l.Tally}, {"panel.leds.recording", l.Recording},
	} {
		key, line := kl.key, kl.line
		line.validate(p, key)
		if line.Name != "" {
			if other, dup := seen[line.Name]; dup {
				p.add(key+".line", "%q is also %s", line.Name, other)
			}
			seen[line.Name] = key
		}
	}
	for _, name := range slices.Sorted(maps.Keys(l.Uplinks)) {
		line := l.Uplinks[name]
		known := false
		for _, u := range uplinks {
			known = known || u.Name == name
		}
		if !known {
			p.add("panel.leds.uplinks."+name, "no uplink named %q", name)
		}
		line.validate(p, "panel.leds.uplinks."+name)
	}
}
