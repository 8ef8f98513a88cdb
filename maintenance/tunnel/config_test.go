package tunnel

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"
)

func validConfig() Config {
	return Config{Host: "maint.example.net", User: "box17", KeyFile: "/etc/onair/tunnel_key",
		KnownHosts: "/etc/onair/known_hosts", RemotePort: 2217}
}

func TestValidateNamesEveryBadKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string // each a problem's start
	}{
		{"defaults fill the rest", func(*Config) {}, nil},
		{"nothing set", func(c *Config) { *c = Config{} }, []string{
			"maintenance.tunnel.host: required", "maintenance.tunnel.user: required",
			"maintenance.tunnel.key_file: required", "maintenance.tunnel.known_hosts: required",
			"maintenance.tunnel.remote_port: required"}},
		{"no known_hosts: the host key is never skipped", func(c *Config) { c.KnownHosts = "" },
			[]string{"maintenance.tunnel.known_hosts: required"}},
		{"host with a port", func(c *Config) { c.Host = "[10.1.0.2]:22" }, []string{"maintenance.tunnel.host: "}},
		{"user@ in host", func(c *Config) { c.Host = "box@maint" }, []string{"maintenance.tunnel.host: "}},
		{"port out of range", func(c *Config) { c.Port = 70000 }, []string{"maintenance.tunnel.port: 70000"}},
		{"user with a blank", func(c *Config) { c.User = "a b" }, []string{"maintenance.tunnel.user: "}},
		{"relative key file", func(c *Config) { c.KeyFile = "key" }, []string{`maintenance.tunnel.key_file: "key"`}},
		{"relative known_hosts", func(c *Config) { c.KnownHosts = "kh" }, []string{`maintenance.tunnel.known_hosts: "kh"`}},
		{"remote port out of range", func(c *Config) { c.RemotePort = -1 }, []string{"maintenance.tunnel.remote_port: -1"}},
		{"local without a port", func(c *Config) { c.Local = "127.0.0.1" }, []string{`maintenance.tunnel.local: "127.0.0.1"`}},
		{"local port 0", func(c *Config) { c.Local = "127.0.0.1:0" }, []string{`maintenance.tunnel.local: "127.0.0.1:0"`}},
		{"rate too low to log in", func(c *Config) { c.RateKbps = 8 }, []string{"maintenance.tunnel.rate_kbps: 8"}},
		{"keepalive too short", func(c *Config) { c.Keepalive = 10 * time.Millisecond }, []string{"maintenance.tunnel.keepalive: 10ms"}},
		{"backoff max under min", func(c *Config) { c.BackoffMin, c.BackoffMax = 5*time.Second, 2*time.Second },
			[]string{"maintenance.tunnel.backoff_max: 2s"}},
		{"backoff min negative", func(c *Config) { c.BackoffMin = -time.Second }, []string{"maintenance.tunnel.backoff_min: -1s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.edit(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Validate = %v, want a *ConfigError", err)
			}
			if len(ce.Problems) != len(tc.want) {
				t.Fatalf("problems %q, want %d starting %q", ce.Problems, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(ce.Problems[i], w) {
					t.Errorf("problem %d = %q, want it to start %q", i, ce.Problems[i], w)
				}
			}
		})
	}
}

func TestConfigReadsSnakeCaseYAMLWithDurations(t *testing.T) {
	var c Config
	err := yaml.Unmarshal([]byte(`
host: 10.1.0.2
port: 2022
user: box17
key_file: /k
known_hosts: /kh
remote_port: 2217
local: 127.0.0.1:2200
rate_kbps: 500
keepalive: 5s
backoff_min: 2s
backoff_max: 1m
`), &c)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Host: "10.1.0.2", Port: 2022, User: "box17", KeyFile: "/k", KnownHosts: "/kh", RemotePort: 2217,
		Local: "127.0.0.1:2200", RateKbps: 500, Keepalive: 5 * time.Second, BackoffMin: 2 * time.Second, BackoffMax: time.Minute}
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	if d := (Config{}).WithDefaults(); d.Port != 22 || d.Local != "127.0.0.1:22" || d.RateKbps != 2000 ||
		d.Keepalive != 15*time.Second || d.BackoffMin != time.Second || d.BackoffMax != time.Minute {
		t.Fatalf("defaults %+v", d)
	}
}

// writeKey writes a fresh ed25519 private key in OpenSSH format.
func writeKey(t *testing.T, path string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestNewNamesTheKeyFileItCannotUse(t *testing.T) {
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "id_ed25519")
	writeKey(t, good)
	for _, tc := range []struct {
		name, key, kh, want string
	}{
		{"missing key", filepath.Join(dir, "nope"), kh, "maintenance.tunnel.key_file: open " + filepath.Join(dir, "nope")},
		{"not a key", garbage, kh, "maintenance.tunnel.key_file: " + garbage + ": "},
		{"missing known_hosts", good, filepath.Join(dir, "nokh"), "maintenance.tunnel.known_hosts: open "},
		{"good", good, kh, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			c.KeyFile, c.KnownHosts = tc.key, tc.kh
			_, err := New(c, Deps{})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Fatalf("New = %v, want an error starting %q", err, tc.want)
			}
		})
	}
}
