package srturl

import (
	"strings"
	"testing"
)

// FuzzParse: Parse never panics; a parsed URL prints without its passphrase
// and parses back to itself with the passphrase Redacted; an error never
// quotes a passphrase of the input. Seeds: testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add("srt://10.0.0.1:9000?latency=200&passphrase=0123456789&streamid=cam")
	f.Add("srt://[::1]:9000?passphrase=Zebra%zzQuokka")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := Parse(s)
		if err != nil {
			for _, p := range Secrets(s) {
				if len(p) >= 10 && strings.Count(s, p) == 1 && strings.Contains(err.Error(), p) {
					t.Fatalf("Parse(%q) error %q quotes the passphrase %q", s, err, p)
				}
			}
			return
		}
		printed := u.String()
		other := u
		if u.Passphrase != "" {
			other.Passphrase = strings.Repeat("x", len(u.Passphrase))
		}
		if other.String() != printed {
			t.Fatalf("String depends on the passphrase: %q vs %q", printed, other.String())
		}
		back, err := Parse(printed)
		if err != nil {
			t.Fatalf("String %q of %q does not parse back: %v", printed, s, err)
		}
		want := u
		if want.Passphrase != "" {
			want.Passphrase = Redacted
		}
		if back != want {
			t.Fatalf("%q printed as %q parsed back to %+v, want %+v", s, printed, back, want)
		}
	})
}
