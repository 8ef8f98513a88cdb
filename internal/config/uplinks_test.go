package config

import (
	"errors"
	"strings"
	"testing"

	"onair/web/api"
)

func bonded(uplinks string) string {
	return strings.Replace(good, `url: "srt://127.0.0.1:9000?latency=200"`,
		`url: "srtla://studio.example:5000?latency=1500&streamid=cam1"`, 1) + uplinks
}

// The issue's own example decodes: globs, policies, caps, and bond as the
// default policy; ABR is on for srtla:// and the floor has its default.
func TestUplinksOfTheIssueExampleDecode(t *testing.T) {
	c, err := Parse([]byte(bonded(`uplinks:
  - {name: wired, interface: "eth*"}
  - {name: cell1, interface: "wwan0", policy: duplicate}
  - {name: cell2, interface: "wwan1", policy: backup, cap_mb: 5000}
`)))
	if err != nil {
		t.Fatal(err)
	}
	want := []Uplink{
		{Name: "wired", Interface: "eth*", Policy: api.PolicyBond},
		{Name: "cell1", Interface: "wwan0", Policy: api.PolicyDuplicate},
		{Name: "cell2", Interface: "wwan1", Policy: api.PolicyBackup, CapMB: 5000},
	}
	if len(c.Uplinks) != len(want) {
		t.Fatalf("uplinks = %+v", c.Uplinks)
	}
	for i := range want {
		if c.Uplinks[i] != want[i] {
			t.Errorf("uplinks[%d] = %+v, want %+v", i, c.Uplinks[i], want[i])
		}
	}
	if c.Uplinks[2].CapBytes() != 5_000_000_000 {
		t.Errorf("cap bytes %d", c.Uplinks[2].CapBytes())
	}
	if !c.Output.URL.SRTLA || !c.Video.ABREnabled(c.Output.URL.SRTLA) || c.Video.MinKbps() != 1000 {
		t.Errorf("srtla %v abr %v min %d", c.Output.URL.SRTLA, c.Video.ABREnabled(true), c.Video.MinKbps())
	}
	if c.Output.OutageHold.D().Seconds() != 15 {
		t.Errorf("outage_hold default %s", c.Output.OutageHold)
	}
}

func TestBadUplinksNameTheirKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		url        string
		key        string
	}{
		{"srtla-without-uplinks", "", "srtla", "uplinks: missing"},
		{"uplinks-with-plain-srt", "uplinks:\n  - {name: wired, interface: eth0}\n", "srt", "uplinks: only used"},
		{"bad-policy", "uplinks:\n  - {name: wired, interface: eth0, policy: fastest}\n", "srtla", "uplinks[0].policy:"},
		{"bad-name", "uplinks:\n  - {name: Wired!, interface: eth0}\n", "srtla", "uplinks[0].name:"},
		{"twice", "uplinks:\n  - {name: a, interface: eth0}\n  - {name: a, interface: eth1}\n", "srtla", "uplinks[1].name:"},
		{"bad-glob", "uplinks:\n  - {name: a, interface: \"eth[\"}\n", "srtla", "uplinks[0].interface:"},
		{"no-interface", "uplinks:\n  - {name: a}\n", "srtla", "uplinks[0].interface:"},
		{"unknown-key", "uplinks:\n  - {name: a, interface: eth0, cap: 5}\n", "srtla", "uplinks[0].cap: unknown key"},
		{"min-over-max", "uplinks:\n  - {name: a, interface: eth0}\n", "srtla-min", "video.bitrate_min_kbps:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := good + tc.yaml
			switch tc.url {
			case "srtla":
				y = bonded(tc.yaml)
			case "srtla-min":
				y = strings.Replace(bonded(tc.yaml), "fps: 29.97", "fps: 29.97\n  bitrate_min_kbps: 9000", 1)
			}
			_, err := Parse([]byte(y))
			e := &Error{}
			if !errors.As(err, &e) {
				t.Fatalf("err %v", err)
			}
			found := false
			for _, p := range e.Problems {
				found = found || strings.HasPrefix(p, tc.key)
			}
			if !found {
				t.Fatalf("problems %q do not start with %q", e.Problems, tc.key)
			}
		})
	}
}
