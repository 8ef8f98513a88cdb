package config

import "onair/output/srturl"

// Output configures where the stream goes (output:).
type Output struct {
	// URL is srt://host:port?latency=…&passphrase=…&streamid=…, parsed and
	// validated once while the file is read; it prints redacted.
	URL srturl.URL `yaml:"url"`
}

func defaultOutput() Output { return Output{} }

func (o Output) validate(p *problems) {
	if o.URL.IsZero() {
		p.add("output.url", "missing: set srt://host:port?latency=…")
	}
}
