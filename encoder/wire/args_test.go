package wire

import (
	"reflect"
	"strings"
	"testing"
)

func validArgs() map[string]ChildArgs {
	start := int64(1200)
	zero := int64(0)
	return map[string]ChildArgs{
		"capture lavfi": {Role: RoleCapture, Name: "capture", LogLevel: "info", Ring: "/run/onair/ring", Source: "lavfi:testsrc2=size=1280x720:rate=30000/1001"},
		"capture v4l2": {Role: RoleCapture, Name: "capture", LogLevel: "debug", Ring: "/run/onair/ring", Source: "/dev/video0",
			InputFormat: "mjpeg", VideoSize: "1920x1080", Framerate: "30000/1001"},
		"encode": {Role: RoleEncode, Name: "encoder-a", LogLevel: "warn", Ring: "/run/onair/ring", BitrateKbps: 4000, GOP: 60,
			Preset: "veryfast", ResetEveryGOP: true},
		"encode defaults":       {Role: RoleEncode, Name: "encoder-b", Ring: "/r", GOP: 30},
		"encode start index":    {Role: RoleEncode, Name: "encoder-b", Ring: "/r", GOP: 30, StartIndex: &start},
		"encode start index 0":  {Role: RoleEncode, Name: "encoder-b", Ring: "/r", GOP: 30, StartIndex: &zero},
		"audio":                 {Role: RoleAudio, Name: "audio-main", LogLevel: "error", Source: "lavfi:sine=frequency=1000", EpochNs: 1234567890123, BitrateKbps: 128},
		"audio source with -":   {Role: RoleAudio, Name: "audio-main", Source: "-odd source", EpochNs: 1},
		"audio default bitrate": {Role: RoleAudio, Name: "audio-backup", Source: "pulse:default", EpochNs: 9},
	}
}

func TestChildArgsRoundTripEveryRole(t *testing.T) {
	for name, a := range validArgs() {
		t.Run(name, func(t *testing.T) {
			if err := a.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			got, err := ParseChildArgs(a.Args())
			if err != nil {
				t.Fatalf("ParseChildArgs(%q): %v", a.Args(), err)
			}
			if !reflect.DeepEqual(got, a) {
				t.Fatalf("round trip of %q:\n got %+v\nwant %+v", a.Args(), got, a)
			}
		})
	}
}

// A nil StartIndex is the ring head; index 0 is a real index and must not
// be lost on the way (it was "-start-index -1" before the typed contract).
func TestChildArgsKeepStartIndexZeroApartFromRingHead(t *testing.T) {
	head, err := ParseChildArgs([]string{"-role", "encode", "-name", "e", "-ring", "/r", "-gop", "30"})
	if err != nil || head.StartIndex != nil {
		t.Fatalf("no -start-index: %+v, %v; want nil (ring head)", head.StartIndex, err)
	}
	zero, err := ParseChildArgs([]string{"-role", "encode", "-name", "e", "-ring", "/r", "-gop", "30", "-start-index", "0"})
	if err != nil || zero.StartIndex == nil || *zero.StartIndex != 0 {
		t.Fatalf("-start-index 0: %v, %v; want index 0", zero.StartIndex, err)
	}
}

func TestChildArgsWritesOnlyTheRolesFields(t *testing.T) {
	a := ChildArgs{Role: RoleAudio, Name: "audio-main", Source: "alsa:hw:0", EpochNs: 5, GOP: 60, Ring: "/r"}
	got := strings.Join(a.Args(), " ")
	if strings.Contains(got, "-gop") || strings.Contains(got, "-ring") {
		t.Fatalf("audio args %q carry encoder fields", got)
	}
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "-gop, -ring: not an argument of role audio") {
		t.Fatalf("Validate: %v, want the stray fields named", err)
	}
}

func TestParseChildArgsRefusesBadArgsNamingTheFlag(t *testing.T) {
	enc := []string{"-role", "encode", "-name", "encoder-a", "-ring", "/r", "-gop", "60"}
	with := func(extra ...string) []string { return append(append([]string{}, enc...), extra...) }
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no args", nil, "-role"},
		{"unknown role", []string{"-role", "mux", "-name", "x"}, `-role "mux"`},
		{"no name", []string{"-role", "encode", "-ring", "/r", "-gop", "60"}, "-name is required"},
		{"empty name", []string{"-role", "encode", "-name", "", "-ring", "/r", "-gop", "60"}, "-name"},
		{"unknown flag", with("-console-log"), "-console-log"},
		{"bad level", with("-log-level", "loud"), "-log-level"},
		{"gop not a number", with("-gop", "sixty"), "-gop"},
		{"gop twice", with("-gop", "30"), "-gop: given twice"},
		{"bitrate zero", with("-bitrate-kbps", "0"), "-bitrate-kbps"},
		{"bitrate negative", with("-bitrate-kbps", "-4000"), "-bitrate-kbps"},
		{"start index negative", with("-start-index", "-1"), "-start-index"},
		{"reset bad bool", with("-reset-every-gop=maybe"), "-reset-every-gop"},
		{"positional", with("extra"), `unexpected argument "extra"`},
		{"flag of another role", with("-epoch-ns", "5"), "-epoch-ns: not an argument of role encode"},
		{"encode without ring", []string{"-role", "encode", "-name", "e", "-gop", "60"}, "-ring is required for role encode"},
		{"encode without gop", []string{"-role", "encode", "-name", "e", "-ring", "/r"}, "-gop is required for role encode"},
		{"capture without source", []string{"-role", "capture", "-name", "c", "-ring", "/r"}, "-source is required for role capture"},
		{"capture without ring", []string{"-role", "capture", "-name", "c", "-source", "/dev/video0"}, "-ring is required for role capture"},
		{"capture with gop", []string{"-role", "capture", "-name", "c", "-ring", "/r", "-source", "/dev/video0", "-gop", "60"}, "-gop: not an argument of role capture"},
		{"audio without epoch", []string{"-role", "audio", "-name", "a", "-source", "lavfi:sine"}, "-epoch-ns is required for role audio"},
		{"audio epoch zero", []string{"-role", "audio", "-name", "a", "-source", "lavfi:sine", "-epoch-ns", "0"}, "-epoch-ns"},
		{"audio with ring", []string{"-role", "audio", "-name", "a", "-source", "lavfi:sine", "-epoch-ns", "5", "-ring", "/r"}, "-ring: not an argument of role audio"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseChildArgs(tc.args)
			if err == nil {
				t.Fatalf("ParseChildArgs(%q) = %+v, want an error", tc.args, a)
			}
			if !strings.HasPrefix(err.Error(), "wire: child args: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it prefixed and naming %q", err, tc.want)
			}
		})
	}
}
