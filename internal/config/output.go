package config

import (
	"time"

	"onair/output/srturl"
)

// Output configures where the stream goes (output:).
type Output struct {
	// URL is srt://host:port?latency=…&passphrase=…&streamid=…, or srtla://…
	// for a bonded output over uplinks:, parsed and validated once while the
	// file is read; it prints redacted.
	URL srturl.URL `yaml:"url"`
	// OutageHold is how long a bonded output keeps its SRTLA group and its
	// SRT session through a total outage of every uplink (srtla:// only).
	OutageHold Duration `yaml:"outage_hold"`
}

func defaultOutput() Output { return Output{OutageHold: Duration(15 * time.Second)} }

func (o Output) validate(p *problems) {
	if o.URL.IsZero() {
		p.add("output.url", "missing: set srt://host:port?latency=… (or srtla:// for bonded uplinks)")
	}
	if o.OutageHold < Duration(2*time.Second) || o.OutageHold > Duration(120*time.Second) {
		p.add("output.outage_hold", "%s: must be 2s..120s", o.OutageHold)
	}
}
