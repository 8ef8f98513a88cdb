package srturl

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
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
		{url: "srtla://studio.example:5000?latency=1500&streamid=cam1",
			want: URL{SRTLA: true, Host: "studio.example", Port: 5000, Latency: 1500 * time.Millisecond, PBKeyLen: 16, StreamID: "cam1", ConnectTimeout: 3 * time.Second}},
		{url: "udp://10.0.0.1:9000", errKeys: []string{"scheme"}},
		{url: "srt://:9000", errKeys: []string{"host"}},
		{url: "srt://bad host:9000", errKeys: []string{"host"}},
		{url: "srt://[fe80::1%25eth0]:9000", errKeys: []string{"zone"}},
		{url: "srt://10.0.0.1", errKeys: []string{"port"}},
		{url: "srt://10.0.0.1:70000", errKeys: []string{"port"}},
		{url: "srt://10.0.0.1:9000/live", errKeys: []string{"path"}},
		{url: "srt://10.0.0.1:9000?latency=1#x", errKeys: []string{"fragment"}},
		{url: "srt://10.0.0.1:9000?latency=19", errKeys: []string{"latency"}},
		{url: "srt://10.0.0.1:9000?latency=8001", errKeys: []string{"latency"}},
		{url: "srt://10.0.0.1:9000?latency=abc", errKeys: []string{"latency"}},
		{url: "srt://10.0.0.1:9000?latency=%zz", errKeys: []string{"latency", "escape"}},
		{url: "srt://10.0.0.1:9000?latency=1;a=2", errKeys: []string{"latency"}},
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

const secret = "Zebra-Quokka-7781"

// net/url's *url.Error quotes the whole URL, and url.ParseQuery quotes the bad
// escape; a Parse error must quote neither the passphrase nor a part of it.
func TestParseErrorNeverQuotesThePassphrase(t *testing.T) {
	for _, s := range []string{
		"udp://10.0.0.1:9000?passphrase=" + secret,
		"srt://10.0.0.1:99x?passphrase=" + secret,
		"srt://10.0.0.1:9000\x7f?passphrase=" + secret,
		"srt://10.0.0.1:9000 ?passphrase=" + secret,
		"srt://10.0.0.1:9000?passphrase=Zebra%zzQuokka-7781",
		"srt://10.0.0.1:9000?passphrase=" + secret + "&passphrase=" + secret,
		"srt://10.0.0.1:9000?passphrase=" + secret + "&latency=" + secret,
		"srt://10.0.0.1:9000?passphrase=" + secret + "&" + secret + "=1",
		"srt://10.0.0.1:9000?passphrase=" + secret + ";latency=200",
		"srt://10.0.0.1:9000?passphrase=" + strings.Repeat(secret, 5),
		"srt://user:" + secret + "@10.0.0.1:9000",
	} {
		_, err := Parse(s)
		if err == nil {
			t.Fatalf("%q accepted", s)
		}
		for _, part := range []string{secret, "Zebra%zz", "%zzQ", "Zebra-Q"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("Parse(%q) error %q quotes %q", s, err, part)
			}
		}
	}
}

func TestEveryPrintedFormRedactsThePassphrase(t *testing.T) {
	u, err := Parse("srt://10.0.0.1:9000?passphrase=" + secret + "&streamid=cam")
	if err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(struct{ Target URL }{u})
	y, _ := yaml.Marshal(struct{ Target URL }{u})
	for name, s := range map[string]string{
		"String": u.String(), "%v": fmt.Sprintf("%v", u), "%+v": fmt.Sprintf("%+v", u), "%#v": fmt.Sprintf("%#v", u),
		"nested %+v": fmt.Sprintf("%+v", struct{ U URL }{u}), "nested %#v": fmt.Sprintf("%#v", struct{ U URL }{u}),
		"json": string(j), "yaml": string(y),
	} {
		if strings.Contains(s, secret) || !strings.Contains(s, Redacted) {
			t.Errorf("%s = %q", name, s)
		}
	}
}

func TestStringParsesBackWithThePassphraseRedacted(t *testing.T) {
	for _, scheme := range []string{"srt", "srtla"} {
		u, err := Parse(scheme + "://[2001:db8::1]:9000?passphrase=" + secret + "&pbkeylen=24&streamid=%23%21%3A%3Dr%3Dcam%261&connect_timeout=700&latency=350")
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(u.String())
		if err != nil {
			t.Fatalf("Parse(%q): %v", u.String(), err)
		}
		want := u
		want.Passphrase = Redacted
		if back != want {
			t.Fatalf("String %q parsed back to %+v, want %+v", u.String(), back, want)
		}
	}
}

func TestUnmarshalYAML(t *testing.T) {
	var c struct {
		URL URL `yaml:"url"`
	}
	if err := yaml.Unmarshal([]byte("url: srt://h.example:9000?latency=300\n"), &c); err != nil || c.URL.Port != 9000 || c.URL.Latency != 300*time.Millisecond {
		t.Fatalf("got %+v, %v", c.URL, err)
	}
	c.URL = URL{}
	if err := yaml.Unmarshal([]byte("url: \"\"\n"), &c); err != nil || !c.URL.IsZero() {
		t.Fatalf("empty url: got %+v, %v", c.URL, err)
	}
	for _, bad := range []string{"url: [srt://h:1]\n", "url: {a: 1}\n", "url: \"srt://h:9000?passphrase=" + secret + "&x=1\"\n"} {
		err := yaml.Unmarshal([]byte(bad), &c)
		var te *yaml.TypeError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), "line 1 column 6") || strings.Contains(err.Error(), secret) {
			t.Errorf("%q: error %v", bad, err)
		}
	}
}
