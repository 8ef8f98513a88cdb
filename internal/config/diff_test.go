package config

import (
	"strings"
	"testing"
	"time"
)

func TestChangedNamesEveryKeyThatDiffersAndNothingElse(t *testing.T) {
	base := `version: 1
video:
  source: "lavfi:testsrc2=size=1280x720:rate=30"
  bitrate_kbps: 4000
audio:
  main:
    source: "lavfi:sine=frequency=1000:sample_rate=48000"
output:
  url: "srt://127.0.0.1:9000?latency=200&passphrase=0123456789ab"
`
	a, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if same, serr := Changed(a, a); serr != nil || len(same) != 0 {
		t.Fatalf("Changed(a, a) = %v, %v; want nothing", same, serr)
	}
	next := strings.Replace(base, "bitrate_kbps: 4000", "bitrate_kbps: 3000\n  gop: 30", 1)
	next = strings.Replace(next, "latency=200", "latency=400", 1) + "  \naudio_x: 1\n"
	next = strings.Replace(next, "  \naudio_x: 1\n", "recording:\n  dir: /rec\n", 1)
	b, err := Parse([]byte(next))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Changed(a, b)
	if err != nil {
		t.Fatal(err)
	}
	want := "output.url recording.dir video.bitrate_kbps video.gop"
	if strings.Join(got, " ") != want {
		t.Errorf("Changed = %v; want %s", got, want)
	}
	// Only the passphrase differs: the redacted YAML is the same, the
	// change is not.
	c, err := Parse([]byte(strings.Replace(base, "passphrase=0123456789ab", "passphrase=ba9876543210", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err = Changed(a, c); err != nil || strings.Join(got, " ") != "output.url" {
		t.Errorf("Changed with a new passphrase = %v, %v; want output.url", got, err)
	}
}

func TestUpdateKeysAreReadAndABadOneIsNamed(t *testing.T) {
	base := `version: 1
video:
  source: "lavfi:testsrc2=size=1280x720:rate=30"
audio:
  main:
    source: "lavfi:sine=frequency=1000:sample_rate=48000"
output:
  url: "srt://127.0.0.1:9000"
update:
  public_key: /data/onair/update.pub
  slot_a: /dev/disk/by-partlabel/onair-root-a
  slot_b: /dev/disk/by-partlabel/onair-root-b
  bootloader: grub
  grubenv: /boot/efi/onair/grubenv
  healthy_after: 90s
  canary_after: 20s
`
	c, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if c.Update.HealthyAfter != 90*time.Second || c.Update.SlotB != "/dev/disk/by-partlabel/onair-root-b" || c.Update.CanaryAfter.D() != 20*time.Second || c.Update.MaxTries != 3 {
		t.Errorf("update %+v", c.Update)
	}
	_, err = Parse([]byte(strings.Replace(base, "healthy_after: 90s", "healthy_after: 1s", 1)))
	if err == nil || !strings.Contains(err.Error(), "update.healthy_after: 1s") {
		t.Errorf("a too short healthy_after: %v; want the key named", err)
	}
}
