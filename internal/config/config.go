// Package config is onaird's typed configuration: defaults, YAML loading with
// unknown keys rejected, and validation whose every error names the YAML key
// at fault ("video.fps: must be …"). A bad file never replaces a good one: the
// caller keeps running the last Config that validated.
//
// Not for: runtime state, or values the operator changes live (those are API
// commands).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"onair/output/srturl"
)

// CurrentVersion is the config schema version this build writes and reads.
const CurrentVersion = 1

// Config is the whole configuration of onaird.
type Config struct {
	Version    int        `yaml:"version"`
	Video      Video      `yaml:"video"`
	Audio      Audio      `yaml:"audio"`
	Output     Output     `yaml:"output"`
	API        API        `yaml:"api"`
	Supervisor Supervisor `yaml:"supervisor"`
	// RuntimeDir holds the frame ring and other per-run files (tmpfs).
	RuntimeDir string `yaml:"runtime_dir"`
	// AVBinary is the path of the onair-av binary; empty means next to onaird, then $PATH.
	AVBinary string `yaml:"av_binary"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
}

// Video configures capture and the encoders.
type Video struct {
	Source      string   `yaml:"source"` // lavfi:<graph>, url:<libavformat URL> or a V4L2 device path
	Width       int      `yaml:"width"`
	Height      int      `yaml:"height"`
	FPS         Rate     `yaml:"fps"`
	BitrateKbps int      `yaml:"bitrate_kbps"`
	GOP         int      `yaml:"gop"`
	Preset      string   `yaml:"preset"`
	Twins       *bool    `yaml:"twins"`       // run encoders A and B (default true)
	SlateAfter  Duration `yaml:"slate_after"` // repeat the last picture this long, then show the slate
	StallAfter  Duration `yaml:"stall_after"` // an encoder with no packet for this long is restarted
	// HangAfter: while the twins are locked, an encoder this far behind its
	// twin is hung and restarted (restarting it costs no frame then).
	HangAfter  Duration `yaml:"hang_after"`
	RingSlots  int      `yaml:"ring_slots"`  // pictures the capture ring holds
	LateFrames int      `yaml:"late_frames"` // frames capture may be late before the keeper substitutes
	// Relock is how a restarted twin re-locks: "gop" (default) — every GOP is a
	// fresh codec session in both encoders, so a restarted encoder is identical
	// from the next GOP boundary and the survivor's bits never change; "command"
	// — onaird tells both encoders to reset at one chosen GOP boundary.
	Relock string `yaml:"relock"`
}

// TwinsEnabled reports whether both encoders run.
func (v Video) TwinsEnabled() bool { return v.Twins == nil || *v.Twins }

// Audio configures the audio chains.
type Audio struct {
	Main        AudioChain `yaml:"main"`
	BitrateKbps int        `yaml:"bitrate_kbps"`
}

// AudioChain is one audio input.
type AudioChain struct {
	Source string `yaml:"source"` // lavfi:<graph>, alsa:<device> or pulse:<source>; empty disables the chain
}

// Output configures where the stream goes.
type Output struct {
	URL srturl.URL `yaml:"url"` // srt://host:port?latency=…&passphrase=…&streamid=…, parsed once
}

// UnmarshalYAML reads the section with unknown keys refused and parses
// output.url once, into the typed value; a bad URL is an error naming the
// key (and never quoting the passphrase).
func (o *Output) UnmarshalYAML(n *yaml.Node) error {
	var raw struct {
		URL string `yaml:"url"`
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; k != "url" {
				return fmt.Errorf("line %d: field %s not found in type config.Output", n.Content[i].Line, k)
			}
		}
	}
	if err := n.Decode(&raw); err != nil {
		return err
	}
	if raw.URL == "" {
		*o = Output{}
		return nil
	}
	u, err := srturl.Parse(raw.URL)
	if err != nil {
		return fmt.Errorf("output.url: %w", err)
	}
	o.URL = u
	return nil
}

// API configures the local status API.
type API struct {
	Listen string `yaml:"listen"` // TCP address; empty disables
	Socket string `yaml:"socket"` // unix socket for onairctl; empty disables
}

// Supervisor configures child supervision.
type Supervisor struct {
	Grace      Duration `yaml:"grace"`       // SIGTERM → SIGKILL
	BackoffMax Duration `yaml:"backoff_max"` // cap of the restart backoff
}

// Defaults returns a Config with every default set (and no source or output:
// those have no sensible default).
func Defaults() Config {
	return Config{
		Version: CurrentVersion,
		Video: Video{
			Width: 1280, Height: 720, FPS: Rate{30, 1}, BitrateKbps: 4000, GOP: 60,
			Preset: "veryfast", SlateAfter: Duration(2 * time.Second),
			StallAfter: Duration(500 * time.Millisecond), HangAfter: Duration(200 * time.Millisecond), RingSlots: 12, LateFrames: 2, Relock: "gop",
		},
		Audio:      Audio{BitrateKbps: 128},
		API:        API{Listen: "127.0.0.1:8080", Socket: "/run/onair/onaird.sock"},
		Supervisor: Supervisor{Grace: Duration(5 * time.Second), BackoffMax: Duration(30 * time.Second)},
		RuntimeDir: "/dev/shm/onair",
		LogLevel:   "info",
	}
}

// Load reads, migrates and validates the file at path.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML on top of Defaults and validates the result. Unknown keys
// are errors that name the key.
func Parse(b []byte) (Config, error) {
	c := Defaults()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, yamlError(err, keysByLine(b))
	}
	if c.Version == 0 {
		c.Version = CurrentVersion
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// yamlError rewrites yaml.v3's messages ("line 3: field bogus not found in
// type config.Video", "line 4: cannot unmarshal !!str `x` into int") so each
// starts with the dotted key the operator wrote, found from its line.
func yamlError(err error, keys map[int]string) error {
	var raw []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		raw = te.Errors
	} else {
		raw = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	msgs := make([]string, 0, len(raw))
	for _, m := range raw {
		key := ""
		if rest, ok := strings.CutPrefix(m, "line "); ok {
			if n, err := strconv.Atoi(rest[:strings.IndexFunc(rest+":", func(r rune) bool { return r < '0' || r > '9' })]); err == nil {
				key = keys[n]
			}
		}
		switch {
		case key != "" && strings.Contains(m, " not found in type "):
			msgs = append(msgs, fmt.Sprintf("%s: unknown key (%s)", key, m))
		case key != "":
			msgs = append(msgs, fmt.Sprintf("%s: %s", key, m))
		default:
			msgs = append(msgs, m)
		}
	}
	return &Error{Problems: msgs}
}

// keysByLine maps each line of a YAML document that holds a key to the
// key's dotted path ("video.fps").
func keysByLine(b []byte) map[int]string {
	keys := map[int]string{}
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil {
		return keys
	}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				path := prefix + k.Value
				keys[k.Line] = path
				if v.Line != k.Line {
					keys[v.Line] = path
				}
				walk(v, path+".")
			}
		}
	}
	walk(&doc, "")
	return keys
}

// Error lists every problem found; each starts with the key at fault.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0]
	}
	return fmt.Sprintf("%d problems: %s", len(e.Problems), strings.Join(e.Problems, "; "))
}

// Validate checks every field and returns an *Error naming each bad key.
func (c Config) Validate() error {
	var p []string
	bad := func(key, format string, a ...any) { p = append(p, key+": "+fmt.Sprintf(format, a...)) }

	if c.Version != CurrentVersion {
		bad("version", "unsupported version %d (this build reads %d)", c.Version, CurrentVersion)
	}
	v := c.Video
	switch {
	case v.Source == "":
		bad("video.source", "missing: set lavfi:<filtergraph> or a V4L2 device path such as /dev/video0")
	case strings.HasPrefix(v.Source, "lavfi:"):
		if strings.TrimPrefix(v.Source, "lavfi:") == "" {
			bad("video.source", "empty lavfi filtergraph")
		}
	case strings.HasPrefix(v.Source, "url:"): // a stream read through libavformat (encoder/av)
		if strings.TrimPrefix(v.Source, "url:") == "" {
			bad("video.source", "empty url")
		}
	case strings.HasPrefix(v.Source, "/dev/"):
	default:
		bad("video.source", "%q is neither lavfi:<filtergraph>, url:<stream URL> nor a /dev/ device path", v.Source)
	}
	if v.Width < 16 || v.Width > 7680 || v.Width%2 != 0 {
		bad("video.width", "%d: must be even, 16..7680", v.Width)
	}
	if v.Height < 16 || v.Height > 4320 || v.Height%2 != 0 {
		bad("video.height", "%d: must be even, 16..4320", v.Height)
	}
	if f := v.FPS.Float(); v.FPS.Den <= 0 || f < 1 || f > 120 {
		bad("video.fps", "%s: must be 1..120 (e.g. 30, 29.97, 30000/1001)", v.FPS)
	}
	if v.BitrateKbps < 100 || v.BitrateKbps > 100000 {
		bad("video.bitrate_kbps", "%d: must be 100..100000", v.BitrateKbps)
	}
	if v.GOP < 1 || v.GOP > 600 {
		bad("video.gop", "%d: must be 1..600 frames", v.GOP)
	}
	switch v.Preset {
	case "ultrafast", "superfast", "veryfast", "faster", "fast", "medium":
	default:
		bad("video.preset", "%q: must be one of ultrafast, superfast, veryfast, faster, fast, medium", v.Preset)
	}
	if v.SlateAfter < 0 {
		bad("video.slate_after", "must not be negative")
	}
	if time.Duration(v.StallAfter) < 50*time.Millisecond {
		bad("video.stall_after", "%s: must be at least 50ms", v.StallAfter)
	}
	if f := v.FPS.Float(); f > 0 && (time.Duration(v.HangAfter).Seconds()*f < 3 || v.HangAfter > v.StallAfter) {
		bad("video.hang_after", "%s: must be at least 3 frame intervals and at most video.stall_after", v.HangAfter)
	}
	if v.RingSlots < 4 || v.RingSlots > 120 {
		bad("video.ring_slots", "%d: must be 4..120", v.RingSlots)
	}
	if v.LateFrames < 1 || v.LateFrames >= v.RingSlots/2 {
		bad("video.late_frames", "%d: must be at least 1 and under half of video.ring_slots", v.LateFrames)
	}

	if v.Relock != "gop" && v.Relock != "command" {
		bad("video.relock", "%q: must be gop or command", v.Relock)
	}

	if s := c.Audio.Main.Source; s != "" && !hasAnyPrefix(s, "lavfi:", "alsa:", "pulse:") {
		bad("audio.main.source", "%q: must be lavfi:<graph>, alsa:<device> or pulse:<source>", s)
	}
	if c.Audio.BitrateKbps < 32 || c.Audio.BitrateKbps > 512 {
		bad("audio.bitrate_kbps", "%d: must be 32..512", c.Audio.BitrateKbps)
	}

	if c.Output.URL.IsZero() {
		bad("output.url", "missing: set srt://host:port?latency=…")
	}

	if c.API.Listen != "" {
		if host, _, err := net.SplitHostPort(c.API.Listen); err != nil {
			bad("api.listen", "%q: %v", c.API.Listen, err)
		} else if !loopback(host) {
			bad("api.listen", "%q: only loopback addresses (127.0.0.1, [::1], localhost) until the web page has authentication", c.API.Listen)
		}
	}
	if c.API.Socket != "" && !filepath.IsAbs(c.API.Socket) {
		bad("api.socket", "%q: must be an absolute path", c.API.Socket)
	}
	if c.Supervisor.Grace <= 0 {
		bad("supervisor.grace", "must be positive")
	}
	if c.Supervisor.BackoffMax < Duration(time.Second) {
		bad("supervisor.backoff_max", "must be at least 1s")
	}
	if c.RuntimeDir == "" || !filepath.IsAbs(c.RuntimeDir) {
		bad("runtime_dir", "%q: must be an absolute path", c.RuntimeDir)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q: must be debug, info, warn or error", c.LogLevel)
	}
	if len(p) > 0 {
		return &Error{Problems: p}
	}
	return nil
}

// loopback reports whether host names this machine only.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Rate is a frame rate as a fraction; YAML accepts 30, 29.97 or "30000/1001".
type Rate struct{ Num, Den int }

// Float is the rate as a float.
func (r Rate) Float() float64 {
	if r.Den == 0 {
		return 0
	}
	return float64(r.Num) / float64(r.Den)
}

func (r Rate) String() string {
	if r.Den == 1 {
		return strconv.Itoa(r.Num)
	}
	return fmt.Sprintf("%d/%d", r.Num, r.Den)
}

// UnmarshalYAML parses 30, 29.97, 59.94 or "30000/1001".
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	if a, b, ok := strings.Cut(s, "/"); ok {
		num, err1 := strconv.Atoi(a)
		den, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil || den <= 0 {
			return fmt.Errorf("line %d: bad frame rate %q", n.Line, s)
		}
		*r = Rate{num, den}
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("line %d: bad frame rate %q", n.Line, s)
	}
	if f == math.Trunc(f) {
		*r = Rate{int(f), 1}
		return nil
	}
	// NTSC rates: 23.976, 29.97, 59.94 → N*1000/1001.
	for _, base := range []int{24, 30, 60, 120} {
		if math.Abs(f-float64(base)*1000/1001) < 0.01 {
			*r = Rate{base * 1000, 1001}
			return nil
		}
	}
	*r = Rate{int(math.Round(f * 1000)), 1000}
	return nil
}

// MarshalYAML writes the rate back as it is read.
func (r Rate) MarshalYAML() (any, error) { return r.String(), nil }

// Duration is a time.Duration that YAML writes as "500ms", "2s".
type Duration time.Duration

// UnmarshalYAML parses Go duration syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return fmt.Errorf("line %d: bad duration %q (use e.g. 500ms, 2s)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes Go duration syntax.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D is the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }
