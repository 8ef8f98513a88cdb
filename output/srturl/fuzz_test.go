package srturl

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics; a URL it accepts prints without its
// passphrase and parses back (from its fields) to the same value; an error
// never quotes the passphrase the input carried.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"srt://10.0.0.1:9000",
		"srt://ingest.example:9000?latency=2000&passphrase=0123456789&pbkeylen=32&streamid=%23%21%3A%3Dr%3Dcam1&connect_timeout=1500&mode=caller",
		"srt://[::1]:9000?latency=20",
		"srt://127.0.0.1:9000?passphrase=Secret1234%zz",
		"udp://x:1?passphrase=Secret12345",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := Parse(s)
		if err != nil {
			for _, sep := range []string{"?passphrase=", "&passphrase="} {
				if _, after, ok := strings.Cut(s, sep); ok {
					if p, _, _ := strings.Cut(after, "&"); len(p) >= 10 && strings.Count(s, p) == 1 && strings.Contains(err.Error(), p) {
						t.Fatalf("error %q quotes the passphrase %q", err, p)
					}
				}
			}
			return
		}
		if u.Passphrase != "" && strings.Contains(u.String(), u.Passphrase) {
			t.Fatalf("String() %q shows the passphrase", u.String())
		}
		back, err := Parse(unredacted(u))
		if err != nil || back != u {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", s, back, err, u)
		}
	})
}

// unredacted is the URL with every field, passphrase included.
func unredacted(u URL) string {
	s := "srt://" + u.Addr() + "?latency=" + itoa(int(u.Latency.Milliseconds())) + "&connect_timeout=" + itoa(int(u.ConnectTimeout.Milliseconds()))
	if u.Passphrase != "" {
		s += "&passphrase=" + escape(u.Passphrase) + "&pbkeylen=" + itoa(u.PBKeyLen)
	}
	if u.StreamID != "" {
		s += "&streamid=" + escape(u.StreamID)
	}
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }

func escape(s string) string { return url.QueryEscape(s) }
