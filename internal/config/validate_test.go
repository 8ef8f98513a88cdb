package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"onair/output/srturl"
)

func withVideo(kv string) string { return strings.Replace(good, "fps: 29.97", kv, 1) }

func withVideoSource(src string) string {
	return strings.Replace(good, `source: "lavfi:testsrc2=size=1280x720:rate=30"`, "source: "+src, 1)
}

// video.fps of 0, 0.5 and other rates no encoder can run fail while the file
// is read, naming video.fps, instead of later in the ring or the encoder.
func TestFPSOutOfRangeNamesVideoFPS(t *testing.T) {
	for _, fps := range []string{"0", "0.5", "0.99", "-1", "-30", `"0/1"`, `"30/0"`, `"-30/1"`, `"30/-1"`,
		"121", "1e9", "1e300", ".nan", ".inf", "-.inf", `"1000000000/1"`, `"30/1/2"`, "[30]", "fast", `""`} {
		t.Run(fps, func(t *testing.T) {
			_, err := Parse([]byte(withVideo("fps: " + fps)))
			if err == nil {
				t.Fatalf("fps %s accepted", fps)
			}
			e := &Error{}
			if !errors.As(err, &e) || len(e.Problems) != 1 || !strings.HasPrefix(e.Problems[0], "video.fps: ") {
				t.Fatalf("fps %s: want one problem naming video.fps, got %q", fps, e.Problems)
			}
		})
	}
	for fps, want := range map[string]Rate{"1": {1, 1}, "120": {120, 1}, "25": {25, 1}, "59.94": {60000, 1001},
		"23.976": {24000, 1001}, "12.5": {25, 2}, `"60/2"`: {30, 1}, `"30000/1001"`: {30000, 1001}} {
		c, err := Parse([]byte(withVideo("fps: " + fps + "\n  hang_after: 3s\n  stall_after: 3s")))
		if err != nil || c.Video.FPS != want {
			t.Errorf("fps %s: got %v, %v; want %v", fps, c.Video.FPS, err, want)
		}
	}
}

// The cadence keeper jumps ahead once it is more than ring_slots/2 behind
// the head, and it fills an index late_frames behind the head: late_frames
// at or over ring_slots/2 makes it skip deadlines. The rule refuses exactly
// those values, for even and odd slot counts.
func TestLateFramesAtHalfTheRingIsRefused(t *testing.T) {
	for _, slots := range []int{4, 5, 12, 13, 120} {
		ok := withVideo(fmt.Sprintf("fps: 30\n  ring_slots: %d\n  late_frames: %d", slots, slots/2-1))
		if _, err := Parse([]byte(ok)); err != nil {
			t.Errorf("slots %d late %d refused: %v", slots, slots/2-1, err)
		}
		for _, late := range []int{slots / 2, slots/2 + 1, slots} {
			_, err := Parse([]byte(withVideo(fmt.Sprintf("fps: 30\n  ring_slots: %d\n  late_frames: %d", slots, late))))
			if err == nil || !strings.Contains(err.Error(), "video.late_frames:") {
				t.Errorf("slots %d late %d: %v, want a video.late_frames error", slots, late, err)
			}
		}
	}
	if _, err := Parse([]byte(withVideo("fps: 30\n  late_frames: 0"))); err == nil || !strings.Contains(err.Error(), "video.late_frames:") {
		t.Errorf("late_frames 0: %v", err)
	}
}

func TestAPIListenOnlyOnLoopback(t *testing.T) {
	for _, l := range []string{"127.0.0.1:8080", "[::1]:8080", "localhost:8080", "127.0.0.2:80", ""} {
		if _, err := Parse([]byte(good + "api:\n  listen: \"" + l + "\"\n")); err != nil {
			t.Errorf("%q refused: %v", l, err)
		}
	}
	for _, l := range []string{"0.0.0.0:8080", ":8080", "[::]:8080", "192.168.1.10:8080", "box.local:8080", "[fe80::1%eth0]:80"} {
		_, err := Parse([]byte(good + "api:\n  listen: \"" + l + "\"\n"))
		if err == nil || !strings.Contains(err.Error(), "api.listen: ") || !strings.Contains(err.Error(), "plain HTTP is for loopback only") {
			t.Errorf("%q: %v", l, err)
		}
	}
	if _, err := Parse([]byte(good + "api:\n  listen: \"127.0.0.1:99999\"\n")); err == nil || !strings.Contains(err.Error(), "api.listen:") {
		t.Errorf("port 99999: %v", err)
	}
}

// Each enum refuses an unknown value naming the key and listing what it takes.
func TestEnumErrorsNameKeyAndAllowedValues(t *testing.T) {
	for _, tc := range []struct{ yaml, key, allowed string }{
		{withVideo("fps: 30\n  relock: sometimes"), "video.relock:", "gop, command"},
		{withVideo("fps: 30\n  preset: slow"), "video.preset:", "ultrafast, superfast, veryfast, faster, fast, medium"},
		{withVideo("fps: 30\n  preset: [fast]"), "video.preset:", "ultrafast"},
		{good + "log_level: verbose\n", "log_level:", "debug, info, warn, error"},
		{withVideoSource("rtsp://cam"), "video.source:", "a V4L2 device path"},
		{withVideoSource(`"lavfi:"`), "video.source:", "empty lavfi filtergraph"},
		{withVideoSource("/dev/../etc/passwd"), "video.source:", "V4L2 device path"},
		{strings.Replace(good, `"lavfi:sine=frequency=1000"`, `"jack:system"`, 1), "audio.main.source:", "lavfi:<graph>, alsa:<device> or pulse:<source>"},
		{strings.Replace(good, `"lavfi:sine=frequency=1000"`, `"alsa:"`, 1), "audio.main.source:", "empty alsa"},
	} {
		_, err := Parse([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.allowed) {
			t.Errorf("%s: error %v, want %s … %s", tc.key, err, tc.key, tc.allowed)
		}
	}
}

func TestTypedValuesDecode(t *testing.T) {
	c, err := Parse([]byte(strings.Replace(withVideoSource("/dev/video2"), "fps: 29.97", "fps: 30\n  relock: command\n  preset: fast", 1) + "log_level: debug\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Video.Source != (VideoSource{VideoV4L2, "/dev/video2"}) || c.Video.Relock != RelockCommand || c.Video.Relock.ResetEveryGOP() ||
		c.Video.Preset != PresetFast || c.LogLevel != LogDebug {
		t.Fatalf("decoded %+v", c)
	}
	if a := c.Audio.Main.Source; a != (AudioSource{AudioLavfi, "sine=frequency=1000"}) || a.String() != "lavfi:sine=frequency=1000" {
		t.Fatalf("audio source %+v", a)
	}
	if c.Output.URL.Port != 9000 || c.Output.URL.Latency.Milliseconds() != 200 {
		t.Fatalf("output.url %+v", c.Output.URL)
	}
	c, err = Parse([]byte(strings.Replace(good, `"lavfi:sine=frequency=1000"`, `""`, 1)))
	if err != nil || c.Audio.Main.Source.Enabled() {
		t.Fatalf("empty audio source: %+v, %v", c.Audio.Main.Source, err)
	}
}

// A problem in a flow mapping is named by its own key, not by the last key
// written on its line.
func TestErrorInFlowMappingNamesItsOwnKey(t *testing.T) {
	_, err := Parse([]byte("video: {relock: bad, source: \"lavfi:testsrc\"}\noutput: {url: \"srt://h:9000\"}\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "video.relock: ") {
		t.Fatalf("error %v, want video.relock first", err)
	}
}

func TestMalformedYAMLSaysSo(t *testing.T) {
	for _, y := range []string{"video: [\n", "\tvideo: 1\n", "- 1\n- 2\n", good + "---\nvideo: {}\n", "video:\n  source: \"lavfi:x\n"} {
		_, err := Parse([]byte(y))
		if err == nil || !strings.HasPrefix(err.Error(), "malformed YAML") {
			t.Errorf("%q: %v", y, err)
		}
	}
}

const secret = "Zebra-Quokka-7781"

// Whatever is wrong with a file that carries a passphrase, no error quotes it.
func TestErrorsNeverCarryThePassphrase(t *testing.T) {
	url := "srt://127.0.0.1:9000?latency=200&passphrase=" + secret
	for name, y := range map[string]string{
		"bad scheme":         strings.Replace(good, "srt://127.0.0.1:9000?latency=200", "udp"+url[3:], 1),
		"bad port":           strings.Replace(good, "srt://127.0.0.1:9000?latency=200", strings.Replace(url, "9000", "99x", 1), 1),
		"bad escape":         strings.Replace(good, "srt://127.0.0.1:9000?latency=200", url+"%zz", 1),
		"unknown query key":  strings.Replace(good, "srt://127.0.0.1:9000?latency=200", url+"&lantecy=3", 1),
		"url as mapping":     strings.Replace(good, `url: "srt://127.0.0.1:9000?latency=200"`, "url: {u: \""+url+"\"}", 1),
		"url as sequence":    strings.Replace(good, `url: "srt://127.0.0.1:9000?latency=200"`, "url: [\""+url+"\"]", 1),
		"output as string":   strings.Replace(good, "output:\n  url:", "output:", 1),
		"url under bad key":  strings.Replace(good, "url:", "uri:", 1),
		"url in unknown key": good + "\"" + url + "\": 1\n",
		"url as gop":         withVideo("fps: 30\n  gop: \"" + url + "\""),
		"yaml escapes":       strings.Replace(good, "srt://127.0.0.1:9000?latency=200", "udp://h:1?passphrase=Zebra-\\x51uokka-7781", 1),
		"duplicated key":     strings.Replace(good, "output:\n", "output:\n  url: \""+url+"\"\n", 1),
		"syntax error":       strings.Replace(good, `url: "srt://127.0.0.1:9000?latency=200"`, "url: \""+url+"\n  x: [", 1),
	} {
		_, err := Parse([]byte(y))
		if err == nil {
			t.Errorf("%s accepted", name)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "Zebra-") {
			t.Errorf("%s: error carries the passphrase: %v", name, err)
		}
	}
}

func TestPrintedConfigRedactsThePassphrase(t *testing.T) {
	c, err := Parse([]byte(strings.Replace(good, "latency=200", "latency=200&passphrase="+secret, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Output.URL.Passphrase != secret {
		t.Fatalf("passphrase %q", c.Output.URL.Passphrase)
	}
	for name, s := range map[string]string{"String": c.String(), "%v": fmt.Sprint(c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"Output %+v": fmt.Sprintf("%+v", c.Output), "Output %#v": fmt.Sprintf("%#v", c.Output)} {
		if strings.Contains(s, secret) || !strings.Contains(s, srturl.Redacted) {
			t.Errorf("%s = %s", name, s)
		}
	}
	// String is YAML that reads back (with the passphrase redacted).
	back, err := Parse([]byte(c.String()))
	if err != nil {
		t.Fatalf("String does not parse back: %v\n%s", err, c.String())
	}
	want := c
	want.Output.URL.Passphrase = srturl.Redacted
	if back.String() != want.String() || back.Output.URL != want.Output.URL {
		t.Fatalf("parsed back to\n%s\nwant\n%s", back, want)
	}
}

func TestValidateChecksEnumsOfAConfigBuiltInCode(t *testing.T) {
	c := Defaults()
	c.Video.Source = VideoSource{Kind: "rtsp", Spec: "cam"}
	c.Video.Preset = "placebo"
	c.Video.Relock = "never"
	c.Audio.Main.Source = AudioSource{Kind: "jack", Spec: "x"}
	c.LogLevel = "loud"
	c.Output.URL = srturl.URL{Host: "h", Port: 1}
	var e *Error
	if err := c.Validate(); !errors.As(err, &e) {
		t.Fatalf("Validate: %v", err)
	}
	for _, k := range []string{"video.source:", "video.preset:", "video.relock:", "audio.main.source:", "log_level:"} {
		if !strings.Contains(e.Error(), k) {
			t.Errorf("no %s in %v", k, e)
		}
	}
}

func TestEnumsMarshalAsTheyRead(t *testing.T) {
	b, err := yaml.Marshal(Defaults().Video)
	if err != nil || !strings.Contains(string(b), "relock: gop") || !strings.Contains(string(b), "preset: veryfast") {
		t.Fatalf("%s %v", b, err)
	}
}
