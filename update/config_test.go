package update

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestConfigValidateNamesTheYAMLKey(t *testing.T) {
	on := func(edit func(*Config)) Config {
		c := DefaultConfig()
		c.PublicKey, c.SlotA, c.SlotB = "/etc/onair/update.pub", "/dev/disk/by-partlabel/onair-root-a", "/dev/disk/by-partlabel/onair-root-b"
		edit(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"default (not configured)", DefaultConfig(), nil},
		{"configured", on(func(*Config) {}), nil},
		{"file bootloader", on(func(c *Config) { c.Bootloader, c.StateFile = BootloaderFile, "/data/boot.json" }), nil},
		{"short healthy_after", on(func(c *Config) { c.HealthyAfter = time.Second }), []string{"update.healthy_after: 1s: want 10s..24h0m0s"}},
		{"zero max_tries", on(func(c *Config) { c.MaxTries = 0 }), []string{"update.max_tries: 0: want 1..9"}},
		{"ten max_tries", on(func(c *Config) { c.MaxTries = 10 }), []string{"update.max_tries: 10"}},
		{"deadline too short", on(func(c *Config) { c.TrialDeadline = time.Minute }), []string{"update.trial_deadline: 1m0s: must be longer than update.healthy_after"}},
		{"unknown bootloader", on(func(c *Config) { c.Bootloader = "uboot" }), []string{`update.bootloader: "uboot": want grub or file`}},
		{"relative key", on(func(c *Config) { c.PublicKey = "update.pub" }), []string{`update.public_key: "update.pub": must be an absolute path`}},
		{"no slots", on(func(c *Config) { c.SlotA, c.SlotB = "", "" }), []string{"update.slot_a: required", "update.slot_b: required"}},
		{"same slot twice", on(func(c *Config) { c.SlotB = c.SlotA + "/" }), []string{"update.slot_b:", "the same as update.slot_a"}},
		{"file without state_file", on(func(c *Config) { c.Bootloader = BootloaderFile }), []string{"update.state_file: required"}},
		{"grub without grubenv", on(func(c *Config) { c.GrubEnv = "" }), []string{"update.grubenv: required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestConfigReadsDurationsFromYAML(t *testing.T) {
	cfg := DefaultConfig()
	in := "public_key: /etc/onair/update.pub\nslot_a: /dev/a\nslot_b: /dev/b\nbootloader: file\nstate_file: /data/boot.json\nhealthy_after: 90s\nmax_tries: 2\n"
	if err := yaml.Unmarshal([]byte(in), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.HealthyAfter != 90*time.Second || cfg.MaxTries != 2 || cfg.Bootloader != BootloaderFile || cfg.Deadline() != 450*time.Second {
		t.Fatalf("config %+v", cfg)
	}
	if b, err := NewBootloader(cfg); err != nil || b == nil {
		t.Fatalf("NewBootloader: %v", err)
	}
}
