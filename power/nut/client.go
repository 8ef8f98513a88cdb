package nut

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
)

// Defaults of Config's zero durations.
const (
	DefaultTimeout        = 3 * time.Second
	DefaultBackoffMinimum = 500 * time.Millisecond
	DefaultBackoffMaximum = 10 * time.Second
)

// maxListLines bounds the lines of one LIST VAR answer (a real UPS has a
// few dozen variables; dummy-ups 17), so a peer that streams VAR lines
// forever fails the read instead of filling memory.
const maxListLines = 4096

// Config says which UPS to read on which upsd.
type Config struct {
	// Addr is upsd's host:port, e.g. 127.0.0.1:3493.
	Addr string
	// UPS is the UPS's name on that upsd (the section of its ups.conf).
	UPS string
	// User and Password, both set or both empty, log in after connecting
	// (USERNAME, PASSWORD, LOGIN <ups>); the user needs the upsmon role.
	User     string
	Password string
	// Timeout bounds each dial and each request (send and whole answer);
	// 0 is DefaultTimeout.
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the wait before redialing after a
	// failure: it starts at BackoffMin, doubles with every failure in a row
	// up to BackoffMax, and resets after a successful read; 0 is
	// DefaultBackoffMinimum / DefaultBackoffMaximum.
	BackoffMin time.Duration
	BackoffMax time.Duration
}

// validate fills c's defaults and checks it, naming the field at fault.
func (c *Config) validate() error {
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, a...))
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return bad("Addr", "%q is not host:port: %v", c.Addr, err)
	}
	if host == "" || port == "" {
		return bad("Addr", "%q needs a host and a port", c.Addr)
	}
	if !isWord(c.UPS) {
		return bad("UPS", "%q is not a UPS name (empty, or has a space, quote or control character)", c.UPS)
	}
	if (c.User == "") != (c.Password == "") {
		return bad("User", "User and Password go together (one of them is empty)")
	}
	if !isText(c.User) {
		return bad("User", "has a control character")
	}
	if !isText(c.Password) {
		return bad("Password", "has a control character")
	}
	for _, d := range []struct {
		field string
		v     *time.Duration
		def   time.Duration
	}{{"Timeout", &c.Timeout, DefaultTimeout}, {"BackoffMin", &c.BackoffMin, DefaultBackoffMinimum}, {"BackoffMax", &c.BackoffMax, DefaultBackoffMaximum}} {
		if *d.v < 0 {
			return bad(d.field, "negative (%s)", *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.BackoffMin > c.BackoffMax {
		return bad("BackoffMin", "%s is above BackoffMax %s", c.BackoffMin, c.BackoffMax)
	}
	return nil
}

// Stats counts what a Client did since New.
type Stats struct {
	Reads     uint64 // Reads that returned a Reading
	Errors    uint64 // failed attempts (dial, login or LIST VAR); Reads refused during a backoff are not counted
	Malformed uint64 // response lines that did not parse (ErrMalformed, ErrLineTooLong)
	Dials     uint64 // TCP dials attempted
}

// Client reads one UPS from one upsd over a connection it keeps open
// between reads and redials, after a backoff, when anything fails. It is
// safe for concurrent use; calls are serialised (one poller in practice).
type Client struct {
	cfg   Config
	name  string
	log   *zap.Logger
	clock clockwork.Clock

	mu      sync.Mutex
	conn    net.Conn      // nil when not connected
	r       *bufio.Reader // reads conn
	closed  bool
	lastErr error         // the last attempt's error; nil after a success
	delay   time.Duration // the current backoff; 0 after a success
	retryAt time.Time     // no dial before this (on clock)
	stats   Stats
}

// New checks cfg (the error names the field) and returns a client that has
// not dialed yet. log may be nil (no logging); clock times the backoff and
// Reading.At, nil is the real clock.
func New(cfg Config, log *zap.Logger, clock clockwork.Clock) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	name := cfg.UPS + "@" + cfg.Addr
	return &Client{cfg: cfg, name: name, log: log.With(zap.String("ups", name)), clock: clock}, nil
}

// Name is the UPS as NUT's tools write it: "ups@host:port".
func (c *Client) Name() string { return c.name }

// Stats returns the counters so far.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Read returns the UPS's variables. It dials (and logs in) first when not
// connected, then sends LIST VAR. Any failure (dial, I/O, timeout, a
// malformed or unexpected line, an ERR answer) closes the connection and
// starts a backoff; a Read during the backoff returns at once, without
// dialing, an error that is ErrBackoff and also the failure's error (so
// errors.Is(err, ErrAccessDenied) holds until the next attempt). Errors
// name the UPS and the step, e.g. "nut: dummy@127.0.0.1:3493: login: nut:
// upsd: ERR ACCESS-DENIED". ctx bounds the whole call besides Timeout.
func (c *Client) Read(ctx context.Context) (Reading, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return Reading{}, fmt.Errorf("nut: %s: %w", c.name, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return Reading{}, fmt.Errorf("nut: %s: %w", c.name, err)
	}
	if c.conn == nil {
		if wait := c.retryAt.Sub(c.clock.Now()); wait > 0 {
			return Reading{}, fmt.Errorf("%w (next dial in %s) after: %w", ErrBackoff, wait.Round(time.Millisecond), c.lastErr)
		}
		if err := c.connect(ctx); err != nil {
			return Reading{}, c.fail(err)
		}
	}
	var vars map[string]string
	err := c.exchange(ctx, "list var", func() (err error) {
		vars, err = c.listVar()
		return err
	})
	if err != nil {
		return Reading{}, c.fail(err)
	}
	if c.lastErr != nil {
		c.log.Info("upsd answers again", zap.Uint64("errors_total", c.stats.Errors))
	}
	c.lastErr, c.delay = nil, 0
	c.stats.Reads++
	return Reading{
		Status:  strings.Fields(vars["ups.status"]),
		Charge:  number(vars, "battery.charge"),
		Runtime: number(vars, "battery.runtime"),
		Vars:    vars,
		At:      c.clock.Now(),
	}, nil
}

// Close logs out (LOGOUT, bounded by Timeout) when connected and closes the
// connection; later Reads fail with ErrClosed. It waits for a Read in
// progress. Closing twice is a no-op.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.conn == nil {
		return nil
	}
	err := c.exchange(context.Background(), "logout", func() error {
		if err := c.send("LOGOUT"); err != nil {
			return err
		}
		_, err := c.readLine() // "OK Goodbye"; upsd then closes
		return err
	})
	if err != nil {
		c.log.Debug("logout failed", zap.Error(err))
	}
	cerr := c.conn.Close()
	c.conn, c.r = nil, nil
	if cerr != nil {
		return fmt.Errorf("nut: %s: close: %w", c.name, cerr)
	}
	return nil
}

// connect dials upsd and logs in when configured; on error the caller's
// fail closes what is open.
func (c *Client) connect(ctx context.Context) error {
	c.stats.Dials++
	d := net.Dialer{Timeout: c.cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return c.stepError(ctx, "dial", err)
	}
	c.conn, c.r = conn, bufio.NewReaderSize(conn, MaxLineLen+2)
	c.log.Debug("connected to upsd")
	if c.cfg.User == "" {
		return nil
	}
	return c.exchange(ctx, "login", c.login)
}

// login sends USERNAME, PASSWORD and LOGIN <ups>; only LOGIN's answer
// tells whether the credentials are right (upsd says OK to the others).
func (c *Client) login() error {
	for _, cmd := range []string{"USERNAME " + arg(c.cfg.User), "PASSWORD " + arg(c.cfg.Password), "LOGIN " + c.cfg.UPS} {
		if err := c.send(cmd); err != nil {
			return err
		}
		l, err := c.readLine()
		if err != nil {
			return err
		}
		switch {
		case l.Kind == KindOK:
		case l.Kind == KindErr && l.Code == "ALREADY-LOGGED-IN" && strings.HasPrefix(cmd, "LOGIN "):
		case l.Kind == KindErr:
			return l.Err()
		default:
			return unexpected(l)
		}
	}
	return nil
}

// listVar sends LIST VAR and collects the answer's variables.
func (c *Client) listVar() (map[string]string, error) {
	if err := c.send("LIST VAR " + c.cfg.UPS); err != nil {
		return nil, err
	}
	l, err := c.readLine()
	if err != nil {
		return nil, err
	}
	if l.Kind == KindErr {
		return nil, l.Err()
	}
	if l.Kind != KindBegin || l.List != ListVar || l.UPS != c.cfg.UPS {
		return nil, unexpected(l)
	}
	vars := make(map[string]string, 32)
	for range maxListLines {
		l, err := c.readLine()
		if err != nil {
			return nil, err
		}
		switch {
		case l.Kind == KindVar && l.UPS == c.cfg.UPS:
			vars[l.Name] = l.Value
		case l.Kind == KindEnd && l.List == ListVar && l.UPS == c.cfg.UPS:
			return vars, nil
		case l.Kind == KindErr:
			return nil, l.Err()
		default:
			return nil, unexpected(l)
		}
	}
	return nil, fmt.Errorf("%w: LIST VAR longer than %d lines", ErrUnexpected, maxListLines)
}

// exchange runs fn, a request and its answer, under a deadline: Timeout
// from now or ctx's deadline, whichever is first, and cancelling ctx
// interrupts it. Socket deadlines are wall-clock time, so this uses the
// real time, not c.clock. Errors are named after step.
func (c *Client) exchange(ctx context.Context, step string, fn func() error) error {
	deadline := time.Now().Add(c.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn := c.conn
	if err := conn.SetDeadline(deadline); err != nil {
		return c.stepError(ctx, step, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	err := fn()
	stop()
	if err != nil {
		return c.stepError(ctx, step, err)
	}
	return nil
}

// send writes one command line.
func (c *Client) send(cmd string) error {
	_, err := io.WriteString(c.conn, cmd+"\n")
	return err
}

// readLine reads and parses one response line, counting the malformed.
func (c *Client) readLine() (Line, error) {
	b, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		c.stats.Malformed++
		return Line{}, fmt.Errorf("%w: no end of line within %d bytes", ErrLineTooLong, len(b))
	}
	if err != nil {
		return Line{}, err
	}
	l, err := ParseLine(string(b))
	if err != nil {
		c.stats.Malformed++
		return Line{}, err
	}
	return l, nil
}

// fail closes the connection, remembers err and schedules the next dial.
// A Read the caller cancelled says nothing about upsd: the connection, left
// mid-answer, is closed, but no backoff starts.
func (c *Client) fail(err error) error {
	c.stats.Errors++
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn, c.r = nil, nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	if c.delay == 0 {
		c.delay = c.cfg.BackoffMin
	} else {
		c.delay = min(2*c.delay, c.cfg.BackoffMax)
	}
	c.retryAt = c.clock.Now().Add(c.delay)
	log := c.log.Debug
	if c.lastErr == nil {
		log = c.log.Warn // the first failure after a success; the rest are noise
	}
	log("ups read failed", zap.Error(err), zap.Duration("retry_in", c.delay))
	c.lastErr = err
	return err
}

// stepError names err after the UPS and the step, and makes the network
// errors short: "dial: connection refused", not "dial: dial tcp
// 127.0.0.1:3493: connect: connection refused". The chain keeps the
// syscall error and os.ErrDeadlineExceeded for errors.Is.
func (c *Client) stepError(ctx context.Context, step string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		err = op.Err
	}
	var sys *os.SyscallError
	if errors.As(err, &sys) {
		err = sys.Err
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = cerr // the deadline AfterFunc set, or ctx's own
		}
	}
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("upsd closed the connection (%w)", err)
	}
	return fmt.Errorf("nut: %s: %s: %w", c.name, step, err)
}

// unexpected is the error of a line that does not answer the request.
func unexpected(l Line) error {
	return fmt.Errorf("%w: %q", ErrUnexpected, clip(l.String()))
}

// arg is s as a command argument: bare when it is a word, else quoted.
func arg(s string) string {
	if isWord(s) {
		return s
	}
	return quote(s)
}

// number is vars[name] as a finite number, or -1.
func number(vars map[string]string, name string) float64 {
	v, ok := vars[name]
	if !ok {
		return -1
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return -1
	}
	return f
}
