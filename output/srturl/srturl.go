// Package srturl parses and validates the SRT caller URL of output.url
// (srt://host:port?latency=…&passphrase=…&streamid=…) into a typed value, once,
// and prints it with the passphrase redacted. It has no dependency beyond the
// standard library, so config, the CLI and the output can all share it.
//
// Not for: dialing (output) or any other URL scheme.
package srturl

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Defaults for query keys left out of the URL.
const (
	DefaultLatency        = 120 * time.Millisecond // SRT's own default
	DefaultConnectTimeout = 3 * time.Second
	DefaultPBKeyLen       = 16
)

// ErrInvalidURL is wrapped by every Parse error.
var ErrInvalidURL = errors.New("invalid srt url")

// URL is a parsed, validated SRT caller URL.
type URL struct {
	Host           string        // host name or IP, without brackets
	Port           int           // UDP port
	Latency        time.Duration // SRT latency (both directions)
	Passphrase     string        // AES passphrase; empty means unencrypted
	PBKeyLen       int           // AES key length in bytes: 16, 24 or 32
	StreamID       string        // SRT stream id, may be empty
	ConnectTimeout time.Duration // handshake timeout per attempt
}

// Addr is host:port for dialing.
func (t URL) Addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// GoString is String: %#v must not print the passphrase either.
func (t URL) GoString() string { return t.String() }

// IsZero reports whether no URL is set.
func (t URL) IsZero() bool { return t.Host == "" }

// UnmarshalText parses a URL (YAML and JSON decoding use it), so a
// configuration holds the typed value and nothing parses the string twice.
func (t *URL) UnmarshalText(b []byte) error {
	u, err := Parse(string(b))
	if err != nil {
		return err
	}
	*t = u
	return nil
}

// String is the URL with the passphrase redacted, safe for logs and status.
func (t URL) String() string {
	q := []string{"latency=" + strconv.FormatInt(t.Latency.Milliseconds(), 10)}
	if t.Passphrase != "" {
		q = append(q, "passphrase=REDACTED", "pbkeylen="+strconv.Itoa(t.PBKeyLen))
	}
	if t.StreamID != "" {
		q = append(q, "streamid="+url.QueryEscape(t.StreamID))
	}
	return "srt://" + t.Addr() + "?" + strings.Join(q, "&")
}

// Parse parses srt://host:port?latency=ms&passphrase=...&pbkeylen=16&streamid=...&connect_timeout=ms.
// mode=caller is accepted for URLs copied from FFmpeg; any other query key,
// or any value out of range, is an error naming the key.
// Limits: latency 20..8000 ms, passphrase 10..79 characters, pbkeylen
// 16/24/32 (only with a passphrase), connect_timeout 100..60000 ms,
// streamid at most 512 bytes.
func Parse(s string) (URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		// net/url's errors quote the URL or a piece of it (the whole URL,
		// "invalid port \":passphrase=…\"", the bad escape): say what is
		// wrong without quoting anything the operator wrote.
		return URL{}, fmt.Errorf("%w: %s", ErrInvalidURL, describeParseError(err))
	}
	if u.Scheme != "srt" {
		return URL{}, fmt.Errorf("%w: scheme %q, want srt", ErrInvalidURL, u.Scheme)
	}
	t := URL{
		Host:           u.Hostname(),
		Latency:        DefaultLatency,
		PBKeyLen:       DefaultPBKeyLen,
		ConnectTimeout: DefaultConnectTimeout,
	}
	if t.Host == "" {
		return URL{}, fmt.Errorf("%w: missing host", ErrInvalidURL)
	}
	if !validHost(t.Host) {
		return URL{}, fmt.Errorf("%w: host is neither an IP address nor a DNS name", ErrInvalidURL)
	}
	if u.Port() == "" {
		return URL{}, fmt.Errorf("%w: missing port", ErrInvalidURL)
	}
	if t.Port, err = strconv.Atoi(u.Port()); err != nil || t.Port < 1 || t.Port > 65535 {
		return URL{}, fmt.Errorf("%w: port %q outside 1..65535", ErrInvalidURL, u.Port())
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return URL{}, fmt.Errorf("%w: unexpected user, path or fragment", ErrInvalidURL)
	}

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return URL{}, fmt.Errorf("%w: query: %s", ErrInvalidURL, describeParseError(err))
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var unknown []string
	pbkeylenSet := false
	for _, k := range keys {
		if len(q[k]) != 1 {
			return URL{}, fmt.Errorf("%w: %s given %d times", ErrInvalidURL, k, len(q[k]))
		}
		v := q[k][0]
		switch k {
		case "latency":
			ms, err := msInRange(k, v, 20, 8000)
			if err != nil {
				return URL{}, err
			}
			t.Latency = ms
		case "connect_timeout":
			ms, err := msInRange(k, v, 100, 60000)
			if err != nil {
				return URL{}, err
			}
			t.ConnectTimeout = ms
		case "passphrase":
			if n := len(v); n < 10 || n > 79 {
				return URL{}, fmt.Errorf("%w: passphrase must be 10..79 characters, got %d", ErrInvalidURL, n)
			}
			t.Passphrase = v
		case "pbkeylen":
			n, err := strconv.Atoi(v)
			if err != nil || (n != 16 && n != 24 && n != 32) {
				return URL{}, fmt.Errorf("%w: pbkeylen %q must be 16, 24 or 32", ErrInvalidURL, v)
			}
			t.PBKeyLen, pbkeylenSet = n, true
		case "streamid":
			if len(v) > 512 {
				return URL{}, fmt.Errorf("%w: streamid longer than 512 bytes", ErrInvalidURL)
			}
			t.StreamID = v
		case "mode":
			if v != "caller" {
				return URL{}, fmt.Errorf("%w: mode %q: only caller is supported", ErrInvalidURL, v)
			}
		default:
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		return URL{}, fmt.Errorf("%w: unknown query key(s) %s", ErrInvalidURL, strings.Join(unknown, ", "))
	}
	if pbkeylenSet && t.Passphrase == "" {
		return URL{}, fmt.Errorf("%w: pbkeylen given without passphrase", ErrInvalidURL)
	}
	return t, nil
}

func msInRange(key, v string, lo, hi int) (time.Duration, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: %s %q must be %d..%d ms", ErrInvalidURL, key, v, lo, hi)
	}
	return time.Duration(n) * time.Millisecond, nil
}

// describeParseError names the kind of a net/url error without its text.
func describeParseError(err error) string {
	var esc url.EscapeError
	var host url.InvalidHostError
	switch {
	case errors.As(err, &esc):
		return "bad %-escape (write % as %25)"
	case errors.As(err, &host):
		return "invalid character in the host"
	case strings.Contains(err.Error(), "invalid port"):
		return "invalid port after the host (want host:port)"
	case strings.Contains(err.Error(), "control character"):
		return "control character in the URL"
	case strings.Contains(err.Error(), "missing protocol scheme"):
		return "missing srt:// scheme"
	}
	return "malformed URL"
}

// validHost accepts an IP address or a DNS name (letters, digits, '-', '.').
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, r := range h {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-' && r != '.' && r != '_' {
			return false
		}
	}
	return true
}
