package tunnel

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// KeyPrefix is the YAML path of Config in onaird's configuration; every
// Validate problem starts with it.
const KeyPrefix = "maintenance.tunnel"

// Config configures the tunnel (maintenance.tunnel:). A zero field takes
// the default named in brackets, so the zero value of a field and its
// default validate alike.
type Config struct {
	// Host is the maintenance host, a name or an address (required).
	Host string `yaml:"host"`
	// Port is its sshd's port [22].
	Port int `yaml:"port"`
	// User logs in on the maintenance host (required).
	User string `yaml:"user"`
	// KeyFile is the box's private key, OpenSSH format, ed25519 or RSA,
	// unencrypted (required, absolute; read once by New).
	KeyFile string `yaml:"key_file"`
	// KnownHosts holds the maintenance host's key, OpenSSH known_hosts
	// format (required, absolute; re-read on every attempt, so a fixed
	// file takes effect without a restart). There is no "accept any key".
	KnownHosts string `yaml:"known_hosts"`
	// RemotePort is opened on the maintenance host's loopback
	// (127.0.0.1:RemotePort); a connection to it reaches Local (required).
	RemotePort int `yaml:"remote_port"`
	// Local is what a tunnelled connection reaches [127.0.0.1:22, the
	// box's own sshd].
	Local string `yaml:"local"`
	// RateKbps caps the tunnel's bytes, both directions and all forwarded
	// connections together, in kbit/s [2000], so that maintenance never
	// competes with the stream.
	RateKbps int `yaml:"rate_kbps"`
	// Keepalive is how often a keepalive@openssh.com request goes out, and
	// how long its reply may take before the connection counts as dead [15s].
	Keepalive time.Duration `yaml:"keepalive"`
	// BackoffMin and BackoffMax bound the wait between attempts [1s, 60s];
	// it doubles (with jitter) per failure and resets once a tunnel stayed
	// up for a minute.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
}

// Defaults of the optional fields.
const (
	DefaultPort       = 22
	DefaultLocal      = "127.0.0.1:22"
	DefaultRateKbps   = 2000
	DefaultKeepalive  = 15 * time.Second
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 60 * time.Second
)

// Limits Validate enforces.
const (
	minRateKbps    = 64
	maxRateKbps    = 1_000_000
	minKeepalive   = time.Second
	maxKeepalive   = 10 * time.Minute
	backoffFloor   = 100 * time.Millisecond
	backoffCeiling = time.Hour
)

// Configured reports whether a tunnel is configured at all (Host set);
// onaird validates and runs one only then.
func (c Config) Configured() bool { return c.Host != "" }

// WithDefaults returns c with every zero optional field set to its default.
func (c Config) WithDefaults() Config {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Local == "" {
		c.Local = DefaultLocal
	}
	if c.RateKbps == 0 {
		c.RateKbps = DefaultRateKbps
	}
	if c.Keepalive == 0 {
		c.Keepalive = DefaultKeepalive
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultMinBackoff
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultMaxBackoff
	}
	return c
}

// ConfigError lists every problem of a Config, each starting with the
// YAML key it is about ("maintenance.tunnel.port: 0: must be 1..65535").
type ConfigError struct {
	Problems []string
}

func (e *ConfigError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0]
	}
	return fmt.Sprintf("%d problems: %s", len(e.Problems), strings.Join(e.Problems, "; "))
}

type problems []string

func (p *problems) add(key, format string, a ...any) {
	*p = append(*p, KeyPrefix+"."+key+": "+fmt.Sprintf(format, a...))
}

// Validate checks c (zero optional fields count as their defaults) and
// returns a *ConfigError naming each bad key, or nil. It checks the form
// only; New reads the key file and known_hosts.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var p problems
	switch {
	case c.Host == "":
		p.add("host", "required (the maintenance host's name or address)")
	case strings.ContainsAny(c.Host, " \t\n/@[]"):
		p.add("host", "%q: a host name or address, without user, port or brackets", c.Host)
	}
	checkPort(&p, "port", c.Port)
	switch {
	case c.User == "":
		p.add("user", "required (the login on the maintenance host)")
	case strings.ContainsAny(c.User, " \t\n@:"):
		p.add("user", "%q: a login name has no blanks, @ or :", c.User)
	}
	checkAbs(&p, "key_file", c.KeyFile, "the box's private key")
	checkAbs(&p, "known_hosts", c.KnownHosts, "the maintenance host's key; there is no way to skip the check")
	if c.RemotePort == 0 {
		p.add("remote_port", "required (the port opened on the maintenance host's loopback)")
	} else {
		checkPort(&p, "remote_port", c.RemotePort)
	}
	if host, port, err := net.SplitHostPort(c.Local); err != nil || host == "" {
		p.add("local", "%q: must be host:port (e.g. %s)", c.Local, DefaultLocal)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		p.add("local", "%q: the port must be 1..65535", c.Local)
	}
	if c.RateKbps < minRateKbps || c.RateKbps > maxRateKbps {
		p.add("rate_kbps", "%d: must be %d..%d", c.RateKbps, minRateKbps, maxRateKbps)
	}
	if c.Keepalive < minKeepalive || c.Keepalive > maxKeepalive {
		p.add("keepalive", "%s: must be %s..%s", c.Keepalive, minKeepalive, maxKeepalive)
	}
	if c.BackoffMin < backoffFloor || c.BackoffMin > backoffCeiling {
		p.add("backoff_min", "%s: must be %s..%s", c.BackoffMin, backoffFloor, backoffCeiling)
	}
	if c.BackoffMax < c.BackoffMin || c.BackoffMax > backoffCeiling {
		p.add("backoff_max", "%s: must be backoff_min (%s)..%s", c.BackoffMax, c.BackoffMin, backoffCeiling)
	}
	if len(p) > 0 {
		return &ConfigError{Problems: p}
	}
	return nil
}

func checkPort(p *problems, key string, port int) {
	if port < 1 || port > 65535 {
		p.add(key, "%d: must be 1..65535", port)
	}
}

func checkAbs(p *problems, key, path, what string) {
	switch {
	case path == "":
		p.add(key, "required (%s)", what)
	case !filepath.IsAbs(path):
		p.add(key, "%q: must be an absolute path", path)
	}
}
