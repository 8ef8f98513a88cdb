package config

import (
	"strings"
	"testing"
)

func withVideo(key, value string) string {
	return strings.Replace(good, "video:\n", "video:\n  "+key+": "+value+"\n", 1)
}

// Found in review: no test failed when the frame-rate range check was
// removed, though a rate below 1 fps (or 0) only failed later, deep in the
// ring and the encoders, with an error that did not name the key.
func TestFrameRateOutsideOneTo120IsRefusedNamingTheKey(t *testing.T) {
	for _, fps := range []string{"0", "0.5", ".5", "0.0001", "-30", `"0/1"`, `"30/0"`, `"-30/1"`, "121", "1000", "fast"} {
		y := strings.Replace(good, "fps: 29.97", "fps: "+fps, 1)
		_, err := Parse([]byte(y))
		if err == nil || !strings.Contains(err.Error(), "video.fps") {
			t.Errorf("fps %s: error %v, want one naming video.fps", fps, err)
		}
	}
	for _, fps := range []string{"1", "23.976", "25", "29.97", `"30000/1001"`, "59.94", "120"} {
		if _, err := Parse([]byte(strings.Replace(good, "fps: 29.97", "fps: "+fps, 1))); err != nil && strings.Contains(err.Error(), "video.fps") {
			t.Errorf("fps %s refused: %v", fps, err)
		}
	}
}

// Found in review: late_frames of half the ring or more makes the cadence
// keeper skip every deadline (no repeat, no slate: holes at the receiver).
// The rule forbidding it was not pinned by any test.
func TestLateFramesFromHalfTheRingIsRefused(t *testing.T) {
	for _, tc := range []struct {
		slots, late string
		ok          bool
	}{{"12", "5", true}, {"12", "6", false}, {"12", "11", false}, {"4", "1", true}, {"4", "2", false}, {"12", "0", false}} {
		y := strings.Replace(withVideo("ring_slots", tc.slots), "video:\n", "video:\n  late_frames: "+tc.late+"\n", 1)
		_, err := Parse([]byte(y))
		if tc.ok && err != nil {
			t.Errorf("slots %s late %s: %v", tc.slots, tc.late, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "video.late_frames")) {
			t.Errorf("slots %s late %s: error %v, want one naming video.late_frames", tc.slots, tc.late, err)
		}
	}
}

// The API has no authentication yet: listening beyond loopback would hand
// the box to anyone on the venue network.
func TestNonLoopbackAPIListenIsRefused(t *testing.T) {
	for _, tc := range []struct {
		listen string
		ok     bool
	}{{"127.0.0.1:8080", true}, {"[::1]:8080", true}, {"localhost:8080", true}, {"127.0.0.2:80", true},
		{"0.0.0.0:8080", false}, {":8080", false}, {"192.168.1.10:8080", false}, {"[::]:8080", false}, {"box.local:8080", false}} {
		_, err := Parse([]byte(good + "api:\n  listen: \"" + tc.listen + "\"\n"))
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.listen, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "api.listen") || !strings.Contains(err.Error(), "loopback")) {
			t.Errorf("%s: error %v, want api.listen refused as not loopback", tc.listen, err)
		}
	}
}

// output.url is parsed once, into the typed value onaird uses.
func TestOutputURLIsParsedOnceIntoTheTypedValue(t *testing.T) {
	c, err := Parse([]byte(strings.Replace(good, "?latency=200", "?latency=200&passphrase=0123456789abc&streamid=cam1", 1)))
	if err != nil {
		t.Fatal(err)
	}
	u := c.Output.URL
	if u.Host != "127.0.0.1" || u.Port != 9000 || u.Passphrase != "0123456789abc" || u.StreamID != "cam1" || u.Latency.Milliseconds() != 200 {
		t.Fatalf("typed url %+v", u)
	}
}
