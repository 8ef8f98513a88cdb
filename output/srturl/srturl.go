// Package srturl parses and validates the SRT caller URL of output.url
// (srt://host:port?latency=…&passphrase=…&streamid=…, or srtla://… for a
// bonded output whose host:port is an SRTLA receiver; passphrase, streamid
// and latency stay end to end either way) into a typed value, once,
// and prints it with the passphrase redacted. The passphrase never appears in
// anything this package prints: not in String, GoString, JSON or YAML, and not
// in a Parse error (net/url's errors quote the whole URL; Parse's never do).
// It depends on the standard library and yaml.v3 only (for the config's
// unmarshaller), so config, the CLI and the output can all share it.
//
// Not for: dialing (output), bonding (bond) or any other URL scheme.
package srturl

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
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

// Redacted stands for the passphrase in everything printed. It is itself a
// valid passphrase, so a printed URL parses back (to a URL whose passphrase
// is Redacted).
const Redacted = "REDACTED-PASSPHRASE"

// ErrInvalidURL is wrapped by every Parse error.
var ErrInvalidURL = errors.New("invalid srt url")

// URL is a parsed, validated SRT caller URL. The zero value is "no URL".
type URL struct {
	// SRTLA is true for srtla://: Host:Port is an SRTLA receiver that the
	// bonding layer reaches over every uplink; the SRT session inside is
	// the same as for srt://.
	SRTLA          bool
	Host           string        // host name or IP, without brackets
	Port           int           // UDP port
	Latency        time.Duration // SRT latency (both directions)
	Passphrase     string        // AES passphrase; empty means unencrypted
	PBKeyLen       int           // AES key length in bytes: 16, 24 or 32
	StreamID       string        // SRT stream id, may be empty
	ConnectTimeout time.Duration // handshake timeout per attempt
}

// IsZero reports whether u is the zero value (no URL configured).
func (u URL) IsZero() bool { return u == URL{} }

// Addr is host:port for dialing.
func (u URL) Addr() string { return net.JoinHostPort(u.Host, strconv.Itoa(u.Port)) }

// String is the URL with the passphrase redacted, safe for logs and status.
// It parses back to u, except that the passphrase is Redacted.
func (u URL) String() string {
	if u.IsZero() {
		return ""
	}
	q := []string{"latency=" + strconv.FormatInt(u.Latency.Milliseconds(), 10)}
	if u.Passphrase != "" {
		q = append(q, "passphrase="+Redacted, "pbkeylen="+strconv.Itoa(u.PBKeyLen))
	}
	if u.StreamID != "" {
		q = append(q, "streamid="+url.QueryEscape(u.StreamID))
	}
	if u.ConnectTimeout != DefaultConnectTimeout {
		q = append(q, "connect_timeout="+strconv.FormatInt(u.ConnectTimeout.Milliseconds(), 10))
	}
	return u.Scheme() + "://" + u.Addr() + "?" + strings.Join(q, "&")
}

// Scheme is "srt" or "srtla".
func (u URL) Scheme() string {
	if u.SRTLA {
		return "srtla"
	}
	return "srt"
}

// GoString keeps %#v from printing the passphrase.
func (u URL) GoString() string { return "srturl.URL(" + strconv.Quote(u.String()) + ")" }

// MarshalJSON writes the redacted String, so a URL inside a status struct or
// a zap.Any field never carries the passphrase.
func (u URL) MarshalJSON() ([]byte, error) { return json.Marshal(u.String()) }

// MarshalYAML writes the redacted String. There is no way to write the
// passphrase back out; a tool that saves a config must carry it separately.
func (u URL) MarshalYAML() (any, error) { return u.String(), nil }

// Parse parses srt:// or srtla://host:port?latency=ms&passphrase=...&pbkeylen=16&streamid=...&connect_timeout=ms.
// mode=caller is accepted for URLs copied from FFmpeg; any other query key,
// or any value out of range, is an error naming the key.
// Limits: latency 20..8000 ms, passphrase 10..79 characters, pbkeylen
// 16/24/32 (only with a passphrase), connect_timeout 100..60000 ms,
// streamid at most 512 bytes. The host is an IP address (no IPv6 zone) or a
// DNS name. No error quotes the passphrase.
func Parse(s string) (URL, error) {
	u, err := parse(s)
	if err != nil {
		return URL{}, scrubbed{err, Secrets(s)}
	}
	return u, nil
}

func parse(s string) (URL, error) {
	// The query is split off first and parsed here, so net/url never sees
	// (and never quotes) the passphrase.
	base, rawQuery, _ := strings.Cut(s, "?")
	u, err := url.Parse(base)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL that *url.Error quotes
		}
		return URL{}, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	if u.Scheme != "srt" && u.Scheme != "srtla" {
		return URL{}, fmt.Errorf("%w: scheme %q, want srt or srtla", ErrInvalidURL, u.Scheme)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.Fragment != "" || u.Opaque != "" || strings.Contains(rawQuery, "#") {
		return URL{}, fmt.Errorf("%w: unexpected user, path or fragment", ErrInvalidURL)
	}
	t := URL{
		SRTLA:          u.Scheme == "srtla",
		Host:           u.Hostname(),
		Latency:        DefaultLatency,
		PBKeyLen:       DefaultPBKeyLen,
		ConnectTimeout: DefaultConnectTimeout,
	}
	if herr := checkHost(t.Host); herr != nil {
		return URL{}, herr
	}
	if u.Port() == "" {
		return URL{}, fmt.Errorf("%w: missing port", ErrInvalidURL)
	}
	if t.Port, err = strconv.Atoi(u.Port()); err != nil || t.Port < 1 || t.Port > 65535 {
		return URL{}, fmt.Errorf("%w: port %q outside 1..65535", ErrInvalidURL, u.Port())
	}

	q, err := parseQuery(rawQuery)
	if err != nil {
		return URL{}, err
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
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
			unknown = append(unknown, strconv.Quote(k))
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

// checkHost accepts an IP address without zone or a DNS name, so that
// String always prints a host that parses back.
func checkHost(h string) error {
	if h == "" {
		return fmt.Errorf("%w: missing host", ErrInvalidURL)
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return fmt.Errorf("%w: host: IPv6 zones are not supported", ErrInvalidURL)
		}
		return nil
	}
	if len(h) > 253 {
		return fmt.Errorf("%w: host longer than 253 characters", ErrInvalidURL)
	}
	for _, label := range strings.Split(h, ".") {
		ok := label != "" && len(label) <= 63 && label[0] != '-' && label[len(label)-1] != '-'
		for _, c := range []byte(label) {
			ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_')
		}
		if !ok {
			return fmt.Errorf("%w: host %q is neither an IP address nor a DNS name", ErrInvalidURL, h)
		}
	}
	return nil
}

// parseQuery is url.ParseQuery whose errors name the key but never quote a
// value (url.ParseQuery quotes the bad escape, which may be the passphrase's).
func parseQuery(raw string) (map[string][]string, error) {
	q := map[string][]string{}
	for piece := range strings.SplitSeq(raw, "&") {
		if piece == "" {
			continue
		}
		rk, rv, _ := strings.Cut(piece, "=")
		k, err := url.QueryUnescape(rk)
		if err != nil {
			return nil, fmt.Errorf("%w: query: bad %%-escape in a key", ErrInvalidURL)
		}
		if strings.Contains(piece, ";") {
			return nil, fmt.Errorf("%w: query: %q: ';' is not a separator (use '&'), write it %%3B in a value", ErrInvalidURL, k)
		}
		v, err := url.QueryUnescape(rv)
		if err != nil {
			return nil, fmt.Errorf("%w: query: bad %%-escape in the value of %q", ErrInvalidURL, k)
		}
		q[k] = append(q[k], v)
	}
	return q, nil
}

func msInRange(key, v string, lo, hi int) (time.Duration, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: %s %q must be %d..%d ms", ErrInvalidURL, key, v, lo, hi)
	}
	return time.Duration(n) * time.Millisecond, nil
}

// Secrets returns every passphrase that text carries in a "passphrase="
// query pair (as written and %-decoded), longest first, for scrubbing
// messages that may quote text. Values shorter than 4 bytes are left out:
// scrubbing them would shred messages, and no valid passphrase is that short.
func Secrets(text string) []string {
	var out []string
	add := func(s string) {
		if len(s) >= 4 && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for rest := text; ; {
		i := strings.Index(rest, "passphrase=")
		if i < 0 {
			break
		}
		rest = rest[i+len("passphrase="):]
		end := strings.IndexAny(rest, "&#\"'\n\r")
		v := rest
		if end >= 0 {
			v = rest[:end]
		}
		add(v)
		add(strings.TrimSpace(v))
		if d, err := url.QueryUnescape(v); err == nil {
			add(d)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// Scrub replaces every secret in msg by "***", until none is left.
func Scrub(msg string, secrets []string) string {
	for changed := true; changed; {
		changed = false
		for _, s := range secrets {
			if strings.Contains(msg, s) {
				msg, changed = strings.ReplaceAll(msg, s, "***"), true
			}
		}
	}
	return msg
}

// scrubbed is an error whose message has the secrets removed; it still
// unwraps to the original (for errors.Is).
type scrubbed struct {
	err     error
	secrets []string
}

func (e scrubbed) Error() string { return Scrub(e.err.Error(), e.secrets) }
func (e scrubbed) Unwrap() error { return e.err }
