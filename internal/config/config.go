// Package config is onaird's typed configuration: one file per section
// (video, audio, output, uplinks, api, supervisor, onair, power, thermal,
// panel), each with its defaults and its
// validation, plus this root: loading YAML with unknown keys rejected, and
// the shared Rate and Duration types. Every error names the YAML key at fault
// ("video.fps: must be …") or says the YAML is malformed, and none carries
// the SRT passphrase. A bad file never replaces a good one: the caller keeps
// running the last Config that validated.
//
// A later part (power, board, recording) adds one file with its
// section type, defaults and validate, and one field here.
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
	Version int    `yaml:"version"`
	Video   Video  `yaml:"video"`
	Audio   Audio  `yaml:"audio"`
	Output  Output `yaml:"output"`
	// Uplinks are the network paths of a bonded (srtla://) output.
	Uplinks    []Uplink   `yaml:"uplinks"`
	API        API        `yaml:"api"`
	Supervisor Supervisor `yaml:"supervisor"`
	OnAir      OnAir      `yaml:"onair"`
	Power      Power      `yaml:"power"`
	Thermal    Thermal    `yaml:"thermal"`
	Panel      Panel      `yaml:"panel"`
	Metrics    Metrics    `yaml:"metrics"`
	Recording  Recording  `yaml:"recording"`
	// Maintenance is remote maintenance: the reverse SSH tunnel.
	Maintenance Maintenance `yaml:"maintenance"`
	// Update is how new builds go on air.
	Update Update `yaml:"update"`
	// RuntimeDir holds the frame ring and other per-run files (tmpfs).
	RuntimeDir string `yaml:"runtime_dir"`
	// AVBinary is the path of the onair-av binary; empty means next to onaird, then $PATH.
	AVBinary string   `yaml:"av_binary"`
	LogLevel LogLevel `yaml:"log_level"` // debug, info, warn or error
}

// Defaults returns a Config with every default set (and no source or output:
// those have no sensible default).
func Defaults() Config {
	return Config{
		Version:    CurrentVersion,
		Video:      defaultVideo(),
		Audio:      defaultAudio(),
		Output:     defaultOutput(),
		API:        defaultAPI(),
		Supervisor: defaultSupervisor(),
		OnAir:      defaultOnAir(),
		Power:      defaultPower(),
		Thermal:    defaultThermal(),
		Panel:      defaultPanel(),
		Recording:  defaultRecording(),
		Update:     defaultUpdate(),
		RuntimeDir: "/dev/shm/onair",
		LogLevel:   LogInfo,
	}
}

// String is the config as YAML, with the passphrase redacted.
func (c Config) String() string {
	b, err := yaml.Marshal(c)
	if err != nil {
		return "config: " + err.Error()
	}
	return string(b)
}

// GoString keeps %#v from printing the passphrase.
func (c Config) GoString() string { return c.String() }

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
// are errors that name the key. The error is an *Error.
func Parse(b []byte) (Config, error) {
	var doc yaml.Node
	docErr := yaml.Unmarshal(b, &doc)
	secrets := srturl.Secrets(string(b))
	keys := keyIndex{lines: map[int]string{}, pos: map[[2]int]string{}}
	if docErr == nil {
		keys.walk(&doc, "", func(s string) { secrets = append(secrets, srturl.Secrets(s)...) })
	}
	scrub := func(e *Error) *Error {
		for i, m := range e.Problems {
			e.Problems[i] = srturl.Scrub(m, secrets)
		}
		return e
	}

	c := Defaults()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, scrub(yamlError(err, keys))
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return Config{}, scrub(&Error{Problems: []string{"malformed YAML: more than one document (a second --- ?)"}})
	}
	if c.Version == 0 {
		c.Version = CurrentVersion
	}
	if err := c.Validate(); err != nil {
		e := &Error{}
		if errors.As(err, &e) {
			return Config{}, scrub(e)
		}
		return Config{}, err
	}
	return c, nil
}

// yamlError rewrites yaml.v3's messages ("line 3: field bogus not found in
// type config.Video", "line 4: cannot unmarshal !!str `x` into int", and this
// package's "line 4 column 8: …") so each starts with the dotted key the
// operator wrote, found from its position; what names no key is malformed YAML.
func yamlError(err error, keys keyIndex) *Error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return &Error{Problems: []string{"malformed YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	msgs := make([]string, 0, len(te.Errors))
	for _, m := range te.Errors {
		key, rest := keys.lookup(m)
		switch {
		case key != "" && strings.Contains(m, " not found in type "):
			msgs = append(msgs, fmt.Sprintf("%s: unknown key (%s)", key, m))
		case key != "":
			msgs = append(msgs, fmt.Sprintf("%s: %s", key, rest))
		default:
			msgs = append(msgs, "malformed YAML: "+m)
		}
	}
	return &Error{Problems: msgs}
}

// keyIndex finds the dotted key ("video.fps") of a decode error from the
// position it starts with.
type keyIndex struct {
	lines map[int]string    // line → the last key on it
	pos   map[[2]int]string // line, column of a key or its value → key
}

func (k keyIndex) walk(n *yaml.Node, prefix string, scalar func(string)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			k.walk(c, prefix, scalar)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			k.walk(c, fmt.Sprintf("%s[%d].", strings.TrimSuffix(prefix, "."), i), scalar)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, v := n.Content[i], n.Content[i+1]
			scalar(kn.Value)
			path := prefix + kn.Value
			k.lines[kn.Line] = path
			if v.Line != kn.Line {
				k.lines[v.Line] = path
			}
			k.pos[[2]int{kn.Line, kn.Column}] = path
			k.pos[[2]int{v.Line, v.Column}] = path
			k.walk(v, path+".", scalar)
		}
	case yaml.ScalarNode:
		scalar(n.Value)
	}
}

// lookup returns the key of message m and m without its position, or "".
func (k keyIndex) lookup(m string) (key, rest string) {
	var line, col int
	if n, _ := fmt.Sscanf(m, "line %d column %d:", &line, &col); n == 2 {
		_, rest, _ = strings.Cut(m, ": ")
		if key = k.pos[[2]int{line, col}]; key == "" {
			key = k.lines[line]
		}
		return key, rest
	}
	if n, _ := fmt.Sscanf(m, "line %d:", &line); n == 1 {
		return k.lines[line], m
	}
	return "", m
}

// Error lists every problem found; each starts with the key at fault, or
// with "malformed YAML".
type Error struct{ Problems []string }

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0]
	}
	return fmt.Sprintf("%d problems: %s", len(e.Problems), strings.Join(e.Problems, "; "))
}

type problems []string

func (p *problems) add(key, format string, a ...any) {
	*p = append(*p, key+": "+fmt.Sprintf(format, a...))
}

// Validate checks every field and returns an *Error naming each bad key.
func (c Config) Validate() error {
	var p problems
	if c.Version != CurrentVersion {
		p.add("version", "unsupported version %d (this build reads %d)", c.Version, CurrentVersion)
	}
	c.Video.validate(&p)
	c.Audio.validate(&p)
	c.Output.validate(&p)
	validateUplinks(&p, c.Uplinks, c.Output.URL.SRTLA)
	c.API.validate(&p)
	c.Metrics.validate(&p)
	c.Recording.validate(&p)
	c.Maintenance.validate(&p)
	c.Update.validate(&p)
	c.Supervisor.validate(&p)
	c.Power.validate(&p, c.Video.BitrateKbps)
	c.Thermal.validate(&p, c.Video.BitrateKbps)
	c.Panel.validate(&p, c.Uplinks)
	if c.RuntimeDir == "" || !filepath.IsAbs(c.RuntimeDir) {
		p.add("runtime_dir", "%q: must be an absolute path", c.RuntimeDir)
	}
	checkEnum(&p, "log_level", c.LogLevel, LogLevels)
	if len(p) > 0 {
		return &Error{Problems: p}
	}
	return nil
}

// Rate is a frame rate as a reduced fraction; YAML accepts 30, 29.97 or "30000/1001".
type Rate struct{ Num, Den int }

// maxRateTerm bounds numerator and denominator, so index ↔ time maths on
// them cannot overflow.
const maxRateTerm = 1_000_000

// Float is the rate as a float.
func (r Rate) Float() float64 {
	if r.Den == 0 {
		return 0
	}
	return float64(r.Num) / float64(r.Den)
}

func (r Rate) valid() bool {
	f := r.Float()
	return r.Num > 0 && r.Den > 0 && r.Num <= maxRateTerm && r.Den <= maxRateTerm && f >= 1 && f <= 120
}

func (r Rate) String() string {
	if r.Den == 1 {
		return strconv.Itoa(r.Num)
	}
	return fmt.Sprintf("%d/%d", r.Num, r.Den)
}

// UnmarshalYAML parses 30, 29.97, 59.94 or "30000/1001".
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	bad := func() error {
		return typeError(n, "bad frame rate %q (use e.g. 30, 29.97 or 30000/1001)", n.Value)
	}
	if n.Kind != yaml.ScalarNode {
		return bad()
	}
	s := strings.TrimSpace(n.Value)
	if a, b, ok := strings.Cut(s, "/"); ok {
		num, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
		den, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
		if err1 != nil || err2 != nil || den <= 0 || num < 0 {
			return bad()
		}
		red, ok := reduce(num, den)
		if !ok {
			return bad()
		}
		*r = red
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > maxRateTerm {
		return bad()
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
	*r, _ = reduce(int64(math.Round(f*1000)), 1000) // |f| ≤ maxRateTerm: reduces into range
	return nil
}

// reduce returns num/den in lowest terms (num ≥ 0, den > 0), or false if
// a term is still over maxRateTerm.
func reduce(num, den int64) (Rate, bool) {
	a, b := num, den
	if a < 0 {
		a = -a
	}
	for b != 0 {
		a, b = b, a%b
	}
	if a > 1 {
		num, den = num/a, den/a
	}
	if num > maxRateTerm || den > maxRateTerm || num < -maxRateTerm {
		return Rate{}, false
	}
	return Rate{int(num), int(den)}, true
}

// MarshalYAML writes the rate back as it is read.
func (r Rate) MarshalYAML() (any, error) { return r.String(), nil }

// Duration is a time.Duration that YAML writes as "500ms", "2s".
type Duration time.Duration

// UnmarshalYAML parses Go duration syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if n.Kind != yaml.ScalarNode || err != nil {
		return typeError(n, "bad duration %q (use e.g. 500ms, 2s)", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes Go duration syntax.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D is the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }
