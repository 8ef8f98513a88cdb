package srturl

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		want    URL
		errKeys []string // words the error must name
	}{
		{url: "srt://10.0.0.1:9000", want: URL{Host: "10.0.0.1", Port: 9000, Latency: 120 * time.Millisecond, PBKeyLen: 16, ConnectTimeout: 3 * time.Second}},
		{url: "srt://ingest.example:9000?latency=2000&passphrase=0123456789&pbkeylen=32&streamid=%23%21%3A%3Dr%3Dcam1&connect_timeout=1500&mode=caller",
			want: URL{Host: "ingest.example", Port: 9000, Latency: 2 * time.Second, Passphrase: "0123456789", PBKeyLen: 32, StreamID: "#!:=r=cam1", ConnectTimeout: 1500 * time.Millisecond}},
		{url: "srt://[::1]:9000?latency=20", want: URL{Host: "::1", Port: 9000, Latency: 20 * time.Millisecond, PBKeyLen: 16, ConnectTimeout: 3 * time.Second}},
		{url: "udp://10.0.0.1:9000", errKeys: []string{"scheme"}},
		{url: "srt://:9000", errKeys: []string{"host"}},
		{url: "srt://10.0.0.1", errKeys: []string{"port"}},
		{url: "srt://10.0.0.1:70000", errKeys: []string{"port"}},
		{url: "srt://10.0.0.1:9000?latency=19", errKeys: []string{"latency"}},
		{url: "srt://10.0.0.1:9000?latency=8001", errKeys: []string{"latency"}},
		{url: "srt://10.0.0.1:9000?latency=abc", errKeys: []string{"latency"}},
		{url: "srt://10.0.0.1:9000?passphrase=short", errKeys: []string{"passphrase"}},
		{url: "srt://10.0.0.1:9000?passphrase=" + strings.Repeat("x", 80), errKeys: []string{"passphrase"}},
		{url: "srt://10.0.0.1:9000?passphrase=0123456789&pbkeylen=20", errKeys: []string{"pbkeylen"}},
		{url: "srt://10.0.0.1:9000?pbkeylen=16", errKeys: []string{"pbkeylen"}},
		{url: "srt://10.0.0.1:9000?connect_timeout=5", errKeys: []string{"connect_timeout"}},
		{url: "srt://10.0.0.1:9000?mode=listener", errKeys: []string{"mode"}},
		{url: "srt://10.0.0.1:9000?latency=100&latency=200", errKeys: []string{"latency"}},
		{url: "srt://10.0.0.1:9000?lantecy=100&foo=1", errKeys: []string{"lantecy", "foo"}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got, err := Parse(tc.url)
			if tc.errKeys == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Fatalf("got %+v, want %+v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, got %+v", got)
			}
			if !errors.Is(err, ErrInvalidURL) {
				t.Errorf("error %v does not wrap ErrInvalidURL", err)
			}
			for _, k := range tc.errKeys {
				if !strings.Contains(err.Error(), k) {
					t.Errorf("error %q does not name %q", err, k)
				}
			}
		})
	}
}

func TestTargetStringRedactsPassphrase(t *testing.T) {
	tg, err := Parse("srt://10.0.0.1:9000?passphrase=supersecret1&streamid=cam")
	if err != nil {
		t.Fatal(err)
	}
	if s := tg.String(); strings.Contains(s, "supersecret1") || !strings.Contains(s, "REDACTED") {
		t.Errorf("String() = %q", s)
	}
}
