package nut

import (
	"fmt"
	"strings"
)

// MaxLineLen bounds a response line (without its "\n"): upsd's own lines
// are far shorter (a VAR value is at most a few hundred bytes), so a longer
// one is a broken or hostile peer, refused before parsing.
const MaxLineLen = 4096

// Kind is the kind of a response line.
type Kind uint8

// The response lines ParseLine understands.
const (
	// KindOK is `OK` or `OK <text>` (LOGOUT answers `OK Goodbye`).
	KindOK Kind = iota + 1
	// KindErr is `ERR <code> [<extra>]`.
	KindErr
	// KindBegin is `BEGIN LIST VAR <ups>` or `BEGIN LIST UPS`.
	KindBegin
	// KindEnd is `END LIST VAR <ups>` or `END LIST UPS`.
	KindEnd
	// KindVar is `VAR <ups> <name> "<value>"` (GET VAR's answer and LIST
	// VAR's items).
	KindVar
	// KindUPS is `UPS <name> "<description>"` (LIST UPS's items).
	KindUPS
)

var kindNames = [...]string{KindOK: "OK", KindErr: "ERR", KindBegin: "BEGIN", KindEnd: "END", KindVar: "VAR", KindUPS: "UPS"}

// String is the line's keyword, or "Kind(n)" for an unknown kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// The lists of BEGIN/END lines.
const (
	ListVar = "VAR"
	ListUPS = "UPS"
)

// Line is one response line from upsd, parsed. Which fields are set
// depends on Kind; the others are empty.
type Line struct {
	Kind Kind
	// List is ListVar or ListUPS (KindBegin, KindEnd).
	List string
	// UPS is the UPS's name (KindVar; KindBegin and KindEnd of ListVar;
	// KindUPS, where it is the listed UPS).
	UPS string
	// Name is the variable (KindVar).
	Name string
	// Value is the variable's value (KindVar) or the UPS's description
	// (KindUPS), unescaped.
	Value string
	// Code is the error code (KindErr), e.g. ACCESS-DENIED.
	Code string
	// Text is what follows OK (KindOK) or the code (KindErr), as sent.
	Text string
}

// Err is the *ServerError of an ERR line, nil for any other line.
func (l Line) Err() error {
	if l.Kind != KindErr {
		return nil
	}
	return &ServerError{Code: l.Code, Extra: l.Text}
}

// String writes l back in wire form (without the "\n"), quoting and
// escaping values as upsd does; ParseLine(l.String()) gives l again.
func (l Line) String() string {
	switch l.Kind {
	case KindOK:
		return joinText("OK", l.Text)
	case KindErr:
		return joinText("ERR "+l.Code, l.Text)
	case KindBegin, KindEnd:
		s := l.Kind.String() + " LIST " + l.List
		if l.List == ListVar {
			s += " " + l.UPS
		}
		return s
	case KindVar:
		return "VAR " + l.UPS + " " + l.Name + " " + quote(l.Value)
	case KindUPS:
		return "UPS " + l.UPS + " " + quote(l.Value)
	}
	return ""
}

func joinText(s, text string) string {
	if text == "" {
		return s
	}
	return s + " " + text
}

// ParseLine parses one response line. A trailing "\n" or "\r\n" is
// ignored. Fields are separated by exactly one space, as upsd writes them;
// names are bare words (no space, quote, backslash or control character);
// values are double-quoted with `\"` and `\\` escaped (any other escaped
// character stands for itself, as in NUT's own parser); control characters
// other than a tab inside a quoted value are malformed. An ERR line parses
// without error: Line.Err gives its *ServerError. A line longer than
// MaxLineLen is ErrLineTooLong; anything else not listed at Kind is
// ErrMalformed.
func ParseLine(line string) (Line, error) {
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	if len(line) > MaxLineLen {
		return Line{}, fmt.Errorf("%w: %d bytes (at most %d)", ErrLineTooLong, len(line), MaxLineLen)
	}
	l, reason := parse(line)
	if reason != "" {
		return Line{}, fmt.Errorf("%w (%s): %q", ErrMalformed, reason, clip(line))
	}
	return l, nil
}

// parse does ParseLine's work; a non-empty reason says why line is malformed.
func parse(line string) (Line, string) {
	keyword, rest, _ := strings.Cut(line, " ")
	switch keyword {
	case "OK":
		if !isText(rest) {
			return Line{}, "control character"
		}
		return Line{Kind: KindOK, Text: rest}, ""
	case "ERR":
		code, extra, _ := strings.Cut(rest, " ")
		if !isWord(code) {
			return Line{}, "bad error code"
		}
		if !isText(extra) {
			return Line{}, "control character"
		}
		return Line{Kind: KindErr, Code: code, Text: extra}, ""
	case "BEGIN", "END":
		kind := KindBegin
		if keyword == "END" {
			kind = KindEnd
		}
		f := strings.Split(rest, " ")
		switch {
		case len(f) == 2 && f[0] == "LIST" && f[1] == ListUPS:
			return Line{Kind: kind, List: ListUPS}, ""
		case len(f) == 3 && f[0] == "LIST" && f[1] == ListVar && isWord(f[2]):
			return Line{Kind: kind, List: ListVar, UPS: f[2]}, ""
		}
		return Line{}, "not LIST VAR <ups> or LIST UPS"
	case "VAR":
		ups, after, _ := strings.Cut(rest, " ")
		name, quoted, _ := strings.Cut(after, " ")
		if !isWord(ups) || !isWord(name) {
			return Line{}, "bad ups or variable name"
		}
		value, reason := unquote(quoted)
		if reason != "" {
			return Line{}, reason
		}
		return Line{Kind: KindVar, UPS: ups, Name: name, Value: value}, ""
	case "UPS":
		name, quoted, _ := strings.Cut(rest, " ")
		if !isWord(name) {
			return Line{}, "bad ups name"
		}
		desc, reason := unquote(quoted)
		if reason != "" {
			return Line{}, reason
		}
		return Line{Kind: KindUPS, UPS: name, Value: desc}, ""
	}
	return Line{}, "unknown keyword"
}

// isWord reports whether s is a bare NUT word: a UPS, variable or code.
func isWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// isText reports whether s has no control character.
func isText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// unquote decodes s, which must be exactly one quoted value.
func unquote(s string) (string, string) {
	if len(s) < 2 || s[0] != '"' {
		return "", "value not quoted"
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			if i != len(s)-1 {
				return "", "text after the quoted value"
			}
			return b.String(), ""
		case '\\':
			i++
			if i == len(s) {
				return "", "unterminated value"
			}
			c = s[i]
		}
		if (c < ' ' && c != '\t') || c == 0x7f {
			return "", "control character"
		}
		b.WriteByte(c)
	}
	return "", "unterminated value"
}

// quote is v double-quoted with `"` and `\` escaped, as upsd sends values
// and as commands send arguments.
func quote(v string) string {
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String()
}

// clip shortens a line for an error message.
func clip(s string) string {
	const maxClip = 80
	if len(s) <= maxClip {
		return s
	}
	return s[:maxClip] + "…"
}
