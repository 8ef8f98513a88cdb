package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse: no configuration file, however broken, panics the parser; a
// rejected one gets an *Error whose every problem names a key or says the
// YAML is malformed; and no error ever quotes the output.url passphrase.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(strings.Replace(good, "?latency=200", "?latency=200&passphrase=Secret123456", 1)))
	f.Add([]byte(strings.Replace(good, "?latency=200", ":x?passphrase=Secret123456", 1)))
	f.Add([]byte("video:\n  fps: \"30/0\"\n  late_frames: 9\n"))
	f.Add([]byte("output: [1, 2]\napi:\n  listen: 0.0.0.0:1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := Parse(b)
		if err == nil {
			return
		}
		var ce *Error
		if !errors.As(err, &ce) && !strings.Contains(err.Error(), "output.url") {
			// yaml syntax errors come back as one problem in an *Error too
			t.Fatalf("error %T %q is not a config error", err, err)
		}
		_, s, found := strings.Cut(string(b), "srt://") // the output.url line
		if !found {
			return
		}
		s, _, _ = strings.Cut(s, "\n")
		for _, sep := range []string{"?passphrase=", "&passphrase="} {
			if _, after, ok := strings.Cut(s, sep); ok {
				p, _, _ := strings.Cut(after, "&")
				p, _, _ = strings.Cut(p, "\"")
				p, _, _ = strings.Cut(p, "\n")
				if len(p) >= 10 && strings.Count(string(b), p) == 1 && strings.Contains(err.Error(), p) {
					t.Fatalf("error %q quotes the passphrase %q", err, p)
				}
			}
		}
	})
}
