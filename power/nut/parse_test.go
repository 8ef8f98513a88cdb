package nut

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"
)

// Every line a real upsd 2.8.0 sent (testdata/upsd-2.8.0.txt, captured from
// /lib/nut/upsd with dummy-ups) parses, and writes back byte for byte.
func TestParseLinesCapturedFromUpsd(t *testing.T) {
	f, err := os.Open("testdata/upsd-2.8.0.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		l, err := ParseLine(sc.Text() + "\n")
		if err != nil {
			t.Fatalf("line %d %q: %v", n, sc.Text(), err)
		}
		if got := l.String(); got != sc.Text() {
			t.Errorf("line %d: wrote back %q, upsd sent %q", n, got, sc.Text())
		}
	}
	if err := sc.Err(); err != nil || n < 20 {
		t.Fatalf("read %d lines: %v", n, err)
	}
}

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Line
	}{
		{"OK", Line{Kind: KindOK}},
		{"OK Goodbye\n", Line{Kind: KindOK, Text: "Goodbye"}},
		{"ERR ACCESS-DENIED", Line{Kind: KindErr, Code: "ACCESS-DENIED"}},
		{"ERR UNKNOWN-COMMAND some extra\r\n", Line{Kind: KindErr, Code: "UNKNOWN-COMMAND", Text: "some extra"}},
		{"BEGIN LIST VAR dummy", Line{Kind: KindBegin, List: ListVar, UPS: "dummy"}},
		{"END LIST VAR dummy", Line{Kind: KindEnd, List: ListVar, UPS: "dummy"}},
		{"BEGIN LIST UPS", Line{Kind: KindBegin, List: ListUPS}},
		{"END LIST UPS", Line{Kind: KindEnd, List: ListUPS}},
		{`VAR dummy ups.status "OB LB"`, Line{Kind: KindVar, UPS: "dummy", Name: "ups.status", Value: "OB LB"}},
		{`VAR dummy ups.status ""`, Line{Kind: KindVar, UPS: "dummy", Name: "ups.status"}},
		{`VAR u x "a \"b\" \\c"`, Line{Kind: KindVar, UPS: "u", Name: "x", Value: `a "b" \c`}},
		{`VAR u x "\q"`, Line{Kind: KindVar, UPS: "u", Name: "x", Value: "q"}},
		{"VAR u x \"tab\there\"", Line{Kind: KindVar, UPS: "u", Name: "x", Value: "tab\there"}},
		{`UPS dummy "a \"quoted\" desc"`, Line{Kind: KindUPS, UPS: "dummy", Value: `a "quoted" desc`}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLine(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			again, err := ParseLine(got.String())
			if err != nil || again != got {
				t.Fatalf("round trip %q: %+v, %v", got.String(), again, err)
			}
		})
	}
}

// A broken or hostile upsd must give an error the client counts, never a
// Line that looks valid.
func TestMalformedLinesAreErrMalformed(t *testing.T) {
	for _, in := range []string{
		"", "\n", "ok", "OKAY", "ERR", "ERR ", "ERR  X", "ERR BAD\x01CODE", "OK \x00",
		"BEGIN", "BEGIN LIST", "BEGIN LIST VAR", "BEGIN LIST VAR a b", "BEGIN LIST  VAR a",
		"BEGIN LIST RW dummy", "BEGIN LIST UPS x", "END LIST VAR ",
		"VAR", "VAR dummy", "VAR dummy ups.status", `VAR dummy ups.status OL`,
		`VAR dummy ups.status "OL`, `VAR dummy ups.status "OL\"`, `VAR dummy ups.status "OL" x`,
		`VAR dummy ups.status "O"L"`, `VAR dummy  ups.status "OL"`, `VAR du"mmy ups.status "OL"`,
		"VAR dummy ups.status \"O\nL\"", "VAR dummy ups.status \"\x7f\"", `UPS dummy`, `UPS "dummy" "x"`,
		"VAR dummy ups.status \"OL\"\r\r\n",
	} {
		if l, err := ParseLine(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: got %+v, %v; want ErrMalformed", in, l, err)
		}
	}
}

func TestLineOverMaxLineLenIsRefusedBeforeParsing(t *testing.T) {
	long := `VAR dummy x "` + strings.Repeat("a", MaxLineLen) + `"`
	if _, err := ParseLine(long); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("got %v, want ErrLineTooLong", err)
	}
	exact := `VAR dummy x "` + strings.Repeat("a", MaxLineLen-len(`VAR dummy x ""`)) + `"`
	if _, err := ParseLine(exact + "\r\n"); err != nil {
		t.Fatalf("a line of exactly MaxLineLen bytes: %v", err)
	}
}

func TestServerErrorMatchesItsSentinel(t *testing.T) {
	for code, want := range map[string]error{
		"ACCESS-DENIED":        ErrAccessDenied,
		"UNKNOWN-UPS":          ErrUnknownUPS,
		"DRIVER-NOT-CONNECTED": ErrDriverNotConnected,
		"DATA-STALE":           ErrDataStale,
		"VAR-NOT-SUPPORTED":    ErrVarNotSupported,
	} {
		l, err := ParseLine("ERR " + code)
		if err != nil {
			t.Fatal(err)
		}
		got := l.Err()
		if !errors.Is(got, want) {
			t.Errorf("ERR %s: %v is not %v", code, got, want)
		}
		if errors.Is(got, ErrMalformed) || (!errors.Is(want, ErrAccessDenied) && errors.Is(got, ErrAccessDenied)) {
			t.Errorf("ERR %s matches a sentinel of another code", code)
		}
		var se *ServerError
		if !errors.As(got, &se) || se.Code != code {
			t.Errorf("ERR %s: not a *ServerError with its code: %#v", code, got)
		}
	}
	if got := (&ServerError{Code: "ACCESS-DENIED"}).Error(); got != "nut: upsd: ERR ACCESS-DENIED" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&ServerError{Code: "X", Extra: "why"}).Error(); got != "nut: upsd: ERR X why" {
		t.Errorf("Error() = %q", got)
	}
	if (Line{Kind: KindOK}).Err() != nil {
		t.Error("OK has an error")
	}
}
