package wire

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Role is what an onair-av child does.
type Role string

// Roles of onair-av.
const (
	RoleCapture Role = "capture"
	RoleEncode  Role = "encode"
	RoleAudio   Role = "audio"
)

// ChildArgs is the command line of one onair-av child: onaird writes it with
// Args, onair-av reads it with ParseChildArgs. A zero field is not written
// and means the child's default; each role takes only its own fields.
type ChildArgs struct {
	Role Role   // required
	Name string // required: "capture", "encoder-a", "audio-main", …
	// LogLevel is the child's zap level: debug, info, warn or error
	// (empty: info).
	LogLevel string

	// Ring is the frame ring path (capture, encode; required).
	Ring string
	// Source is, for capture, "lavfi:<graph>" or a V4L2 device path; for
	// audio, "lavfi:", "alsa:" or "pulse:<name>" (capture, audio; required).
	Source string
	// InputFormat, VideoSize and Framerate go to the V4L2 demuxer as
	// input_format, video_size and framerate (capture; empty: device default).
	InputFormat, VideoSize, Framerate string

	// BitrateKbps is the initial target (encode, audio; 0: the child's
	// default, 4000 for video, 128 for audio).
	BitrateKbps int
	GOP         int    // IDR at every index % GOP == 0 (encode; required)
	Preset      string // x264 preset (encode; empty: veryfast)
	// StartIndex is the first ring index to encode (encode; nil: the ring head).
	StartIndex *int64
	// ResetEveryGOP opens a fresh codec session at every GOP boundary (encode).
	ResetEveryGOP bool

	// EpochNs is the session epoch, CLOCK_MONOTONIC ns (audio; required).
	EpochNs int64
}

// Flag names, as written by Args.
const (
	flagRole          = "role"
	flagName          = "name"
	flagLogLevel      = "log-level"
	flagRing          = "ring"
	flagSource        = "source"
	flagInputFormat   = "input-format"
	flagVideoSize     = "video-size"
	flagFramerate     = "framerate"
	flagBitrate       = "bitrate-kbps"
	flagGOP           = "gop"
	flagPreset        = "preset"
	flagStartIndex    = "start-index"
	flagResetEveryGOP = "reset-every-gop"
	flagEpochNs       = "epoch-ns"
)

// roleFlags lists the flags each role takes besides role, name and log-level.
var roleFlags = map[Role][]string{
	RoleCapture: {flagRing, flagSource, flagInputFormat, flagVideoSize, flagFramerate},
	RoleEncode:  {flagRing, flagBitrate, flagGOP, flagPreset, flagStartIndex, flagResetEveryGOP},
	RoleAudio:   {flagSource, flagBitrate, flagEpochNs},
}

// Args returns the command line for a (without the program name). Only the
// fields a's role takes are written, and only when set. It does not
// validate: call Validate first when a comes from configuration.
func (a ChildArgs) Args() []string {
	out := []string{"-" + flagRole, string(a.Role), "-" + flagName, a.Name}
	str := func(name, v string) {
		if v != "" {
			out = append(out, "-"+name, v)
		}
	}
	num := func(name string, v int64) {
		if v != 0 {
			out = append(out, "-"+name, strconv.FormatInt(v, 10))
		}
	}
	str(flagLogLevel, a.LogLevel)
	for _, f := range roleFlags[a.Role] {
		switch f {
		case flagRing:
			str(f, a.Ring)
		case flagSource:
			str(f, a.Source)
		case flagInputFormat:
			str(f, a.InputFormat)
		case flagVideoSize:
			str(f, a.VideoSize)
		case flagFramerate:
			str(f, a.Framerate)
		case flagBitrate:
			num(f, int64(a.BitrateKbps))
		case flagGOP:
			num(f, int64(a.GOP))
		case flagPreset:
			str(f, a.Preset)
		case flagStartIndex:
			if a.StartIndex != nil {
				out = append(out, "-"+f, strconv.FormatInt(*a.StartIndex, 10))
			}
		case flagResetEveryGOP:
			if a.ResetEveryGOP {
				out = append(out, "-"+f)
			}
		case flagEpochNs:
			num(f, a.EpochNs)
		}
	}
	return out
}

// ParseChildArgs reads the command line written by Args (without the
// program name). Unknown flags, a flag given twice, a flag the role does not
// take, bad values, positional arguments and missing required fields are
// errors, each naming its flag.
func ParseChildArgs(args []string) (ChildArgs, error) {
	var a ChildArgs
	fs := flag.NewFlagSet("onair-av", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	seen := map[string]bool{}
	once := func(name string, set func(string) error) {
		fs.Func(name, name, func(v string) error {
			if seen[name] {
				return errors.New("given twice")
			}
			seen[name] = true
			return set(v)
		})
	}
	str := func(name string, p *string) {
		once(name, func(v string) error {
			if v == "" {
				return errors.New("must not be empty")
			}
			*p = v
			return nil
		})
	}
	positive := func(name string, p *int) {
		once(name, func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return errors.New("must be a positive integer")
			}
			*p = n
			return nil
		})
	}
	var role string
	str(flagRole, &role)
	str(flagName, &a.Name)
	once(flagLogLevel, func(v string) error {
		switch v {
		case "debug", "info", "warn", "error":
			a.LogLevel = v
			return nil
		}
		return errors.New("must be debug, info, warn or error")
	})
	str(flagRing, &a.Ring)
	str(flagSource, &a.Source)
	str(flagInputFormat, &a.InputFormat)
	str(flagVideoSize, &a.VideoSize)
	str(flagFramerate, &a.Framerate)
	positive(flagBitrate, &a.BitrateKbps)
	positive(flagGOP, &a.GOP)
	str(flagPreset, &a.Preset)
	once(flagStartIndex, func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errors.New("must be a ring index >= 0 (omit it for the ring head)")
		}
		a.StartIndex = &n
		return nil
	})
	fs.BoolFunc(flagResetEveryGOP, flagResetEveryGOP, func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("must be a boolean")
		}
		if seen[flagResetEveryGOP] {
			return errors.New("given twice")
		}
		seen[flagResetEveryGOP] = true
		a.ResetEveryGOP = b
		return nil
	})
	once(flagEpochNs, func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return errors.New("must be a positive CLOCK_MONOTONIC time in ns")
		}
		a.EpochNs = n
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return ChildArgs{}, fmt.Errorf("wire: child args: %w", err)
	}
	if fs.NArg() > 0 {
		return ChildArgs{}, fmt.Errorf("wire: child args: unexpected argument %q", fs.Arg(0))
	}
	a.Role = Role(role)
	if err := a.check(seen); err != nil {
		return ChildArgs{}, err
	}
	return a, nil
}

// Validate reports the first field a's role requires but lacks, or a field
// set that the role does not take.
func (a ChildArgs) Validate() error {
	_, err := ParseChildArgs(a.Args())
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	set := func(name string, on bool) {
		if on {
			seen[name] = true
		}
	}
	set(flagRing, a.Ring != "")
	set(flagSource, a.Source != "")
	set(flagInputFormat, a.InputFormat != "")
	set(flagVideoSize, a.VideoSize != "")
	set(flagFramerate, a.Framerate != "")
	set(flagBitrate, a.BitrateKbps != 0)
	set(flagGOP, a.GOP != 0)
	set(flagPreset, a.Preset != "")
	set(flagStartIndex, a.StartIndex != nil)
	set(flagResetEveryGOP, a.ResetEveryGOP)
	set(flagEpochNs, a.EpochNs != 0)
	return a.check(seen)
}

// check applies the per-role rules to the flags in seen.
func (a ChildArgs) check(seen map[string]bool) error {
	allowed, ok := roleFlags[a.Role]
	if !ok {
		return fmt.Errorf("wire: child args: -%s %q: must be capture, encode or audio", flagRole, a.Role)
	}
	if a.Name == "" {
		return fmt.Errorf("wire: child args: -%s is required", flagName)
	}
	takes := map[string]bool{flagRole: true, flagName: true, flagLogLevel: true}
	for _, f := range allowed {
		takes[f] = true
	}
	var extra []string
	for f := range seen {
		if !takes[f] {
			extra = append(extra, "-"+f)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return fmt.Errorf("wire: child args: %s: not an argument of role %s", strings.Join(extra, ", "), a.Role)
	}
	var required []string
	switch a.Role {
	case RoleCapture:
		required = []string{flagRing, flagSource}
	case RoleEncode:
		required = []string{flagRing, flagGOP}
	case RoleAudio:
		required = []string{flagSource, flagEpochNs}
	}
	for _, f := range required {
		if !seen[f] {
			return fmt.Errorf("wire: child args: -%s is required for role %s", f, a.Role)
		}
	}
	return nil
}
