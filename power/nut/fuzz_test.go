package nut

import (
	"errors"
	"testing"
)

// FuzzParse parses arbitrary text as a upsd response line: it must never
// panic, every error is ErrMalformed or ErrLineTooLong, and whatever parses
// writes back (Line.String) to text that parses to the same Line.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"OK", "OK Goodbye", "ERR ACCESS-DENIED", "BEGIN LIST VAR dummy",
		`VAR dummy ups.status "OB LB"`, `UPS dummy "a \"quoted\" desc"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		l, err := ParseLine(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrLineTooLong) {
				t.Fatalf("%q: error of no known kind: %v", in, err)
			}
			return
		}
		out := l.String()
		if len(out) > MaxLineLen {
			t.Fatalf("%q parsed, but writes back %d bytes", in, len(out))
		}
		again, err := ParseLine(out)
		if err != nil {
			t.Fatalf("%q parsed to %+v, which writes %q that does not parse: %v", in, l, out, err)
		}
		if again != l {
			t.Fatalf("%q: round trip changed the line: %+v then %+v", in, l, again)
		}
	})
}
